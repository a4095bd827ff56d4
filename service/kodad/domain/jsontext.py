"""JSON from untrusted text (scripts, tool arguments, rule payloads) with its nesting bounded,
so a value nested thousands deep is a clear error instead of a RecursionError."""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class TooDeep(ValueError):
    """The JSON nests deeper than allowed."""


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads, refusing values nested deeper than `max_depth` (TooDeep); other errors
    are json.JSONDecodeError as usual."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep(f"nested deeper than {max_depth} levels") from None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise TooDeep(f"nested deeper than {max_depth} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value
