"""Which calls need a human's approval, and the rules APPROVE_ALWAYS adds."""

from __future__ import annotations

import json
import shlex

from kodad.engine.model import ApprovalMode, ApprovalRule
from kodad.tools import ToolKind

# Tokens that make a command more than one simple command.
_OPERATORS = frozenset(
    {";", "&", "&&", "|", "||", "|&", "<", ">", ">>", "<<", "(", ")", "<&", ">&"}
)


def _words(command: str) -> list[str] | None:
    """The words of a single simple command, or None when it is more than that."""
    if any(c in command for c in ("\n", "`", "$(", "<(", ">(")):
        return None
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:
        return None
    if not words or any(w in _OPERATORS or set(w) <= set(";&|<>()") for w in words):
        return None
    return words


def _command(arguments_json: str) -> str:
    try:
        value = json.loads(arguments_json or "{}")
    except json.JSONDecodeError:
        return ""
    command = value.get("command") if isinstance(value, dict) else None
    return command if isinstance(command, str) else ""


def needs_approval(mode: ApprovalMode, kind: ToolKind) -> bool:
    return mode is ApprovalMode.CONFIRM and kind is not ToolKind.READ_ONLY


def rule_for(tool_name: str, kind: ToolKind, arguments_json: str) -> ApprovalRule:
    """The rule APPROVE_ALWAYS adds: the tool, and for bash its program and first argument."""
    if kind is not ToolKind.SHELL:
        return ApprovalRule(tool_name)
    command = _command(arguments_json)
    words = _words(command)
    if words is None:  # a compound command: the words of its first simple command
        words = []
        lexer = shlex.shlex(command.split("\n")[0], posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            for word in lexer:
                if word in _OPERATORS or set(word) <= set(";&|<>()") or set(word) & set("`$"):
                    break
                words.append(word)
        except ValueError:
            pass
    return ApprovalRule(tool_name, " ".join(words[:2]))


def allowed(
    rules: tuple[ApprovalRule, ...], tool_name: str, kind: ToolKind, arguments_json: str
) -> bool:
    """True when a rule lets this call run without asking."""
    if kind is not ToolKind.SHELL:
        return any(r.tool_name == tool_name and not r.command_prefix for r in rules)
    words = _words(_command(arguments_json))
    if words is None:
        return False
    for rule in rules:
        prefix = rule.command_prefix.split()
        if rule.tool_name == tool_name and prefix and words[: len(prefix)] == prefix:
            return True
    return False
