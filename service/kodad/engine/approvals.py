"""Which calls need a human's approval, and the rules APPROVE_ALWAYS and REJECT_ALWAYS add."""

from __future__ import annotations

from kodad import bash
from kodad.domain import jsontext
from kodad.domain.model import ApprovalMode, ApprovalRule
from kodad.tools import ToolKind


def _command(arguments_json: str) -> str:
    try:
        value = jsontext.loads(arguments_json or "{}")
    except ValueError:  # not JSON, or too deep: no command (the tool refuses it)
        return ""
    command = value.get("command") if isinstance(value, dict) else None
    return command if isinstance(command, str) else ""


def needs_approval(mode: ApprovalMode, kind: ToolKind) -> bool:
    return mode is ApprovalMode.CONFIRM and kind is not ToolKind.READ_ONLY


def rule_for(
    tool_name: str, kind: ToolKind, arguments_json: str, *, reject: bool = False
) -> ApprovalRule:
    """The rule APPROVE_ALWAYS (or with `reject`, REJECT_ALWAYS) adds: the tool, and for bash
    its program and first argument."""
    if kind is not ToolKind.SHELL:
        return ApprovalRule(tool_name, reject=reject)
    command = _command(arguments_json)
    words = bash.single_command(command)
    if words is None:  # a compound command: the static words of its first simple command
        words = _static_prefix(next(bash.commands_in(command), []))
    return ApprovalRule(tool_name, " ".join(words[:2]), reject)


def allowed(
    rules: tuple[ApprovalRule, ...], tool_name: str, kind: ToolKind, arguments_json: str
) -> ApprovalRule | None:
    """The rule that lets this call run without asking, if one does. A bash rule matches only
    one plain simple command (see bash.single_command): never a list, pipe, redirection,
    substitution, variable assignment or wrapper."""
    rules = tuple(r for r in rules if not r.reject and r.tool_name == tool_name)
    if kind is not ToolKind.SHELL:
        return next((r for r in rules if not r.command_prefix), None)
    words = bash.single_command(_command(arguments_json))
    if words is None:
        return None
    for rule in rules:
        prefix = rule.command_prefix.split()
        if prefix and words[: len(prefix)] == prefix:
            return rule
    return None


def refused(
    rules: tuple[ApprovalRule, ...], tool_name: str, kind: ToolKind, arguments_json: str
) -> ApprovalRule | None:
    """The reject rule that refuses this call, if one does. For bash it matches when any
    simple command of the line begins with the rule's words (static words only: a word
    built from a variable or substitution ends the comparison), so wrapping a refused
    command in a list or a pipe does not get it past the rule."""
    rules = tuple(r for r in rules if r.reject and r.tool_name == tool_name)
    if not rules or kind is not ToolKind.SHELL:
        return next((r for r in rules if not r.command_prefix), None)
    commands = [_static_prefix(words) for words in bash.commands_in(_command(arguments_json))]
    for rule in rules:
        prefix = rule.command_prefix.split()
        if not prefix or any(words[: len(prefix)] == prefix for words in commands):
            return rule
    return None


def _static_prefix(words: list[str | None]) -> list[str]:
    out: list[str] = []
    for word in words:
        if word is None:
            break
        out.append(word)
    return out
