"""Time-ordered identifiers: a prefix, "_" and 26 base32 characters (48-bit ms, 80 random bits).

Ids made by one process sort in creation order, also within one millisecond (the random part
then counts up), so newest-first listings and cursors can order by id.
"""

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_last = 0


def new_id(prefix: str) -> str:
    """Returns e.g. "s_01jd3k..."; later calls return greater ids."""
    global _last
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    if value <= _last:
        value = _last + 1
    _last = value
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return prefix + "_" + "".join(reversed(chars))
