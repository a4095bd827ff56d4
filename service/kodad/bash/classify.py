"""Classifying a bash command before it runs: read-only (runs without asking in CONFIRM),
mutating (asks), or destructive (asks, flagged high risk).

The command is parsed with tree-sitter's bash grammar — the parser editors use — so comments,
quoting, `$( )`, backticks, process substitution, redirections, here-docs, subshells, loops
and functions are read as bash reads them. Every simple command anywhere in the tree is
classified (also inside substitutions and loops), through wrappers (`nice`, `env`, `timeout`,
`xargs`, `sudo`, `command`, `exec`, `busybox`, …) to the program they run, with the flags that
make a "reading" program write or run code; the whole is as dangerous as its worst part.
What is not recognised is mutating, what cannot be parsed is destructive (asks, high risk).

The classification decides whether to ask and how loudly, never what a command may do: a
command that runs unasked gets the workspace read-only in the sandbox (tools/sandbox.py), so
a wrong "read-only" costs nothing.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from kodad.bash import options, programs, syntax
from kodad.bash.programs import CommandClass
from kodad.bash.syntax import DYNAMIC, Word

# Nodes that only hold other nodes (their commands are classified one by one).
_CONTAINERS = frozenset(
    [
        "program",
        "list",
        "pipeline",
        "redirected_statement",
        "subshell",
        "compound_statement",
        "command_substitution",
        "process_substitution",
        "negated_command",
        "if_statement",
        "elif_clause",
        "else_clause",
        "for_statement",
        "c_style_for_statement",
        "while_statement",
        "do_group",
        "case_statement",
        "case_item",
        "test_command",
        "heredoc_body",
        "heredoc_redirect",
        "herestring_redirect",
        "comment",
        "string",
        "concatenation",
        "expansion",
        "arithmetic_expansion",
        "binary_expression",
        "unary_expression",
        "ternary_expression",
        "postfix_expression",
        "parenthesized_expression",
        "test_operator",
        "word",
        "number",
        "raw_string",
        "ansi_c_string",
        "translated_string",
        "string_content",
        "simple_expansion",
        "variable_name",
        "special_variable_name",
        "subscript",
        "regex",
        "extglob_pattern",
        "brace_expression",
        "heredoc_start",
        "heredoc_end",
        "heredoc_content",
        "file_descriptor",
        "array",
    ]
)
_WRITE_REDIRECTS = frozenset({">", ">>", "&>", "&>>", ">|", "<>", ">&", "&>|"})


def classify(command: str) -> CommandClass:
    """How dangerous `command` is; what cannot be parsed is DESTRUCTIVE (asks, high risk)."""
    root = syntax.parse(command)
    if root is None:
        return CommandClass.DESTRUCTIVE
    return _node(root)


def single_command(command: str) -> list[str] | None:
    """The words of `command` when it is exactly one plain simple command — static words
    only, no assignments, redirections, substitutions or wrappers — else None. Approval
    rules match only such commands."""
    root = syntax.parse(command)
    if root is None:
        return None
    statements = [c for c in root.named_children if c.type != "comment"]
    if len(statements) != 1 or statements[0].type != "command":
        return None
    node = statements[0]
    if any(c.type not in ("command_name", "word", "string", "raw_string", "concatenation",
                          "number") for c in node.named_children):  # fmt: skip
        return None
    words = [syntax.word(c) for c in node.named_children]
    if any(w is None for w in words) or not words:
        return None
    static = [w for w in words if w is not None]
    if syntax.program(static) in programs.WRAPPERS or "/" in static[0]:
        return None
    return static


def _node(node: Node) -> CommandClass:
    kind = node.type
    if kind == "command":
        return _command(node)
    if kind == "file_redirect":
        return max(_redirect(node), _children(node))
    if kind == "pipeline" and _runs_download(node):
        return CommandClass.DESTRUCTIVE
    if kind in ("function_definition", "declaration_command", "unset_command"):
        # Defines what later commands run or see (a function named like a reader, an
        # exported PAGER): asks, whatever its body does.
        return max(CommandClass.MUTATING, _children(node))
    if kind in ("variable_assignment", "variable_assignments"):
        name = node.child_by_field_name("name")
        harmless = (
            name is not None and programs.HARMLESS_VARIABLES.match(syntax.text(name)) is not None
        )
        return max(CommandClass.READ_ONLY if harmless else CommandClass.MUTATING, _children(node))
    if kind in _CONTAINERS or not node.is_named:
        return _children(node)
    return CommandClass.MUTATING  # a construct not known here


def _runs_download(pipeline: Node) -> bool:
    """`curl … | sh`: a shell or interpreter reading what was just downloaded."""
    downloaded = False
    for part in pipeline.named_children:
        command = part if part.type == "command" else part.named_children[0]
        if command.type != "command":
            continue
        words = syntax.words_of(command)
        while words and syntax.program(words) in ("sudo", "env", "doas", "command", "exec"):
            words = words[1:]
        if downloaded and syntax.program(words) in programs.SHELLS:
            return True
        downloaded = downloaded or syntax.program(words) in programs.DOWNLOADERS
    return False


def _children(node: Node) -> CommandClass:
    worst = CommandClass.READ_ONLY
    for child in node.children:
        worst = max(worst, _node(child))
    return worst


def _redirect(node: Node) -> CommandClass:
    operator = next((syntax.text(c) for c in node.children if not c.is_named), "")
    if operator not in _WRITE_REDIRECTS:
        return CommandClass.READ_ONLY
    target = node.child_by_field_name("destination")
    value = syntax.word(target) if target is not None else DYNAMIC
    if value == "/dev/null" or (operator == ">&" and value is not None and value.isdigit()):
        return CommandClass.READ_ONLY
    if operator == ">&" and value == "-":
        return CommandClass.READ_ONLY
    return CommandClass.MUTATING


def _command(node: Node) -> CommandClass:
    worst = CommandClass.READ_ONLY
    for child in node.named_children:
        # Assignments and redirections are classified themselves; substitutions inside the
        # words run too.
        worst = max(worst, _node(child) if child.type in syntax.NOT_WORDS else _children(child))
    words = syntax.words_of(node)
    return max(worst, _program_class(words)) if words else worst


def _program_class(words: list[Word]) -> CommandClass:
    first = words[0]
    if first is None:
        return CommandClass.MUTATING  # the program is only known when it runs
    if "/" in first and not first.startswith(programs.SYSTEM_BIN):
        return CommandClass.MUTATING  # a program of the workspace, whatever its name
    program, args = syntax.program(words), words[1:]
    if program in programs.ALWAYS_DESTRUCTIVE:
        return CommandClass.DESTRUCTIVE
    if program in programs.WRAPPERS:
        return _wrapped(program, args)
    if program == "rm":
        return options.rm(args)
    if program in ("chmod", "chown", "chgrp") and any(
        a in ("-R", "--recursive") or (a is not None and re.match(r"^-[a-zA-Z]*R", a)) for a in args
    ):
        return CommandClass.DESTRUCTIVE
    if program in programs.READERS:
        return CommandClass.READ_ONLY
    if program in programs.CHECKED or program in programs.TEST_RUNNERS:
        if any(a is None for a in args):
            return CommandClass.MUTATING  # a flag may hide in what only running tells
        return options.checked(program, [a for a in args if a is not None])
    if program in ("python", "python3") and args[:2] == ["-m", "pytest"]:
        static = [a for a in args[2:] if a is not None]
        return (
            options.checked("pytest", static)
            if len(static) == len(args) - 2
            else CommandClass.MUTATING
        )
    return CommandClass.MUTATING


def _wrapped(program: str, args: list[Word]) -> CommandClass:
    takes_value, opaque, positional = programs.WRAPPERS[program]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg is None:
            return CommandClass.MUTATING
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name = arg.split("=", 1)[0]
        if (
            arg in programs.WRAPPER_ACTING.get(program, ())
            or name in opaque
            or (len(arg) > 2 and not arg.startswith("--") and arg[:2] in opaque)
        ):
            return CommandClass.MUTATING
        if name in takes_value and "=" not in arg:
            i += 2
        elif program == "nice" and re.match(r"^-\d+$", arg):
            i += 1
        else:
            i += 1
    rest = args[i:]
    if program == "command" and any(a in ("-v", "-V") for a in args[:i]):
        return CommandClass.READ_ONLY  # only says what the name would run
    least = CommandClass.READ_ONLY
    if program == "env":
        while rest and rest[0] is not None and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", rest[0]):
            if not programs.HARMLESS_VARIABLES.match(rest[0].split("=", 1)[0]):
                least = CommandClass.MUTATING  # a variable may change what the program runs
            rest = rest[1:]
    rest = rest[positional:] if len(rest) > positional else []
    if not rest:
        # `env` alone prints the environment, `xargs` alone echoes; the others do nothing.
        return least
    return max(least, _program_class(rest))
