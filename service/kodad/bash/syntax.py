"""Reading bash as bash reads it, with tree-sitter's bash grammar (the parser editors use):
the syntax tree of a command and the words of its simple commands."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

# A word whose value is only known when bash runs it ($x, $(…), …).
DYNAMIC = None


Word = str | None


@functools.cache
def parser() -> Parser:
    return Parser(Language(tree_sitter_bash.language()))


def parse(command: str) -> Node | None:
    """The syntax tree, or None when bash would not accept the command as written."""
    root = parser().parse(command.encode()).root_node
    if root.has_error:
        return None
    return root


def text(node: Node) -> str:
    return (node.text or b"").decode(errors="replace")


def word(node: Node) -> Word:
    """The value of a word as bash would pass it, or DYNAMIC when only running tells."""
    kind = node.type
    if kind == "command_name":
        return word(node.named_children[0]) if node.named_child_count == 1 else DYNAMIC
    if kind in ("word", "number"):
        return unescape(text(node))
    if kind == "raw_string":
        return text(node)[1:-1]
    if kind == "string":
        parts = node.named_children
        if all(p.type == "string_content" for p in parts):
            return re.sub(r'\\([$`"\\\n])', r"\1", "".join(text(p) for p in parts))
        return DYNAMIC
    if kind == "concatenation":
        values = [word(p) for p in node.named_children]
        if any(v is None for v in values):
            return DYNAMIC
        return "".join(v for v in values if v is not None)
    return DYNAMIC


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text.replace("\\\n", ""))


# Children of a command node that are not its words.
NOT_WORDS = frozenset({"variable_assignment", "file_redirect", "herestring_redirect",
                        "heredoc_redirect"})  # fmt: skip


def words_of(command: Node) -> list[Word]:
    """The words of a command node: its program and arguments, as bash passes them."""
    return [word(c) for c in command.named_children if c.type not in NOT_WORDS]


def program(words: Sequence[Word]) -> str:
    first = words[0] if words else None
    return first.rsplit("/", 1)[-1] if first else ""


def commands_in(command: str) -> Iterator[list[Word]]:
    """The words of every simple command in `command` (empty when it cannot be parsed)."""
    root = parse(command)
    if root is None:
        return
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "command":
            yield words_of(node)
        stack.extend(reversed(node.children))
