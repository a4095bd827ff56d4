"""What the chat needs of the terminal and of the past: typed-ahead keys dropped, the prompt
history's file, the new-line key, a past call's outcome."""

from __future__ import annotations

import contextlib
import sys
import termios
from pathlib import Path

from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.paths import user_dir


def outcome(result: spb.ToolResult | None) -> tuple[str, str]:
    """How a past call ended, as a mark and a word."""
    if result is None:
        return "·", "no result"
    if not result.is_error:
        return "✓", "done"
    for start, word in (("rejected by the user", "rejected"), ("cancelled", "cancelled"),
                        ("refused by the session's rule", "refused by a rule"),
                        ("not run", "not run")):  # fmt: skip
        if result.output.startswith(start):
            return "✗", word
    return "✗", "failed"


def history_file() -> Path:
    """Where the prompt history is kept across runs."""
    path = user_dir("data") / "chat_history"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def newline_keys() -> KeyBindings:
    """Esc then Enter (or Alt-Enter) starts a new line; Enter sends."""
    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    return bindings


def discard_typed_ahead() -> None:
    """Drops what was typed but not read yet (keys pressed while an answer streamed)."""
    with contextlib.suppress(OSError, termios.error, ValueError):
        if sys.stdin.isatty():
            termios.tcflush(sys.stdin.fileno(), termios.TCIFLUSH)
