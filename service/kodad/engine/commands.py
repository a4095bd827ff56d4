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

import enum
import functools
import re
from collections.abc import Iterator, Sequence

import tree_sitter_bash
from tree_sitter import Language, Node, Parser


class CommandClass(enum.IntEnum):
    READ_ONLY = 0
    MUTATING = 1
    DESTRUCTIVE = 2


# A word whose value is only known when bash runs it ($x, $(…), …).
DYNAMIC = None
Word = str | None

# Programs that only read whatever their arguments are (no flag of theirs writes a file or
# runs a program).
_READERS = frozenset(
    [
        "ls",
        "cat",
        "head",
        "tail",
        "wc",
        "pwd",
        "echo",
        "printf",
        "grep",
        "egrep",
        "fgrep",
        "stat",
        "file",
        "which",
        "whereis",
        "type",
        "diff",
        "cmp",
        "du",
        "df",
        "uname",
        "whoami",
        "id",
        "true",
        "false",
        "test",
        "[",
        "cut",
        "tr",
        "nl",
        "od",
        "hexdump",
        "basename",
        "dirname",
        "realpath",
        "readlink",
        "jq",
        "column",
        "seq",
        "sleep",
        "md5sum",
        "sha1sum",
        "sha256sum",
        "sha512sum",
        "b2sum",
        "cksum",
        "strings",
        "comm",
        "paste",
        "fold",
        "expand",
        "unexpand",
        "rev",
        "tac",
        "cd",
        "pushd",
        "popd",
        "wait",
        "read",
        "printenv",
        "locale",
        "nproc",
        "getconf",
        "tty",
        "groups",
        "arch",
        "less",
        "more",
    ]
)
# Readers checked flag by flag below (some of their flags write or run code).
_CHECKED = frozenset(
    [
        "sort",
        "uniq",
        "tree",
        "xxd",
        "sed",
        "find",
        "git",
        "rg",
        "ag",
        "yq",
        "date",
        "hostname",
        "pytest",
        "make",
    ]
)
_GIT_READERS = frozenset(
    [
        "status",
        "log",
        "diff",
        "show",
        "blame",
        "shortlog",
        "describe",
        "rev-parse",
        "ls-files",
        "ls-tree",
        "grep",
        "reflog",
        "name-rev",
        "count-objects",
        "show-ref",
        "merge-base",
        "rev-list",
        "cat-file",
        "version",
        "help",
    ]
)
# git options that write a file or run a program (the value may follow or be joined by "=").
_GIT_WRITING = (
    "--output", "-O", "--open-files-in-pager", "--ext-diff", "--textconv", "--filters",
    "--exec", "--upload-pack", "--receive-pack", "--config", "--config-env", "--contents-from",
)  # fmt: skip
_GIT_GLOBAL_WITH_VALUE = frozenset({"-C", "--git-dir", "--work-tree", "--namespace"})
# Test runners run the project's own checks; in the sandbox they cannot write the workspace
# unless approved. Flags that name an output file still ask.
_TEST_RUNNERS: dict[str, tuple[str, ...] | None] = {
    "pytest": None,
    "py.test": None,
    "tox": None,
    "go": ("test", "vet"),
    "npm": ("test", "run test"),
    "yarn": ("test",),
    "pnpm": ("test",),
    "make": ("test", "check", "lint"),
    "mvn": ("test", "verify"),
    "gradle": ("test", "check"),
    "gradlew": ("test", "check"),
    "cargo": (),  # only `cargo fmt --check` (see _runner): test and build write target/
}
_RUNNER_WRITING = (
    "--basetemp", "--junitxml", "--junit-xml", "--result-log", "--report-log", "--cov-report",
    "--eval", "-E", "--file", "-f", "--makefile", "-C", "--directory", "-o", "--output",
    "--prefix", "--coverprofile", "-coverprofile", "-exec", "--exec", "-toolexec",
)  # fmt: skip
_SHELLS = frozenset(
    [
        "sh",
        "bash",
        "zsh",
        "dash",
        "ksh",
        "fish",
        "python",
        "python3",
        "perl",
        "ruby",
        "node",
        "php",
        "lua",
        "tclsh",
    ]
)
_DOWNLOADERS = frozenset({"curl", "wget"})
_ALWAYS_DESTRUCTIVE = frozenset(
    [
        "sudo",
        "su",
        "doas",
        "pkexec",
        "dd",
        "mkfs",
        "shred",
        "shutdown",
        "reboot",
        "halt",
        "poweroff",
        "fdisk",
        "parted",
        "wipefs",
        "killall",
        "pkill",
        "mkswap",
        "swapoff",
        "truncate",
    ]
)
# Wrappers run the command in their arguments: (options taking a value, options whose
# value is itself a command line or otherwise unknowable, positional values before the
# command). An option not listed as taking a value is taken as a flag.
_WRAPPERS: dict[str, tuple[frozenset[str], frozenset[str], int]] = {
    "nice": (frozenset({"-n", "--adjustment"}), frozenset(), 0),
    "nohup": (frozenset(), frozenset(), 0),
    "time": (frozenset({"-f", "--format", "-o", "--output"}), frozenset({"-o", "--output"}), 0),
    "timeout": (frozenset({"-s", "--signal", "-k", "--kill-after"}), frozenset(), 1),
    "env": (
        frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}),
        frozenset({"-S", "--split-string"}),
        0,
    ),
    "xargs": (
        frozenset(
            [
                "-a",
                "--arg-file",
                "-d",
                "--delimiter",
                "-E",
                "-e",
                "--eof",
                "-I",
                "-i",
                "--replace",
                "-L",
                "-l",
                "--max-lines",
                "-n",
                "--max-args",
                "-P",
                "--max-procs",
                "-s",
                "--max-chars",
                "--process-slot-var",
            ]
        ),
        frozenset(),
        0,
    ),
    "command": (frozenset(), frozenset(), 0),
    "exec": (frozenset({"-a"}), frozenset(), 0),
    "builtin": (frozenset(), frozenset(), 0),
    "stdbuf": (frozenset({"-i", "--input", "-o", "--output", "-e", "--error"}), frozenset(), 0),
    "ionice": (frozenset({"-c", "--class", "-n", "--classdata"}), frozenset(), 0),
    "setsid": (frozenset(), frozenset(), 0),
    "chrt": (frozenset(), frozenset(), 1),
    "taskset": (frozenset(), frozenset(), 1),
    "busybox": (frozenset(), frozenset(), 0),
    "unbuffer": (frozenset(), frozenset(), 0),
}
# Wrapper options that act on something other than the wrapped command.
_WRAPPER_ACTING = {"ionice": ("-p", "--pid", "-P", "--pgid", "-u", "--uid"), "chrt": ("-p",)}
# Variables a command may be given without changing what it runs.
_HARMLESS_VARIABLES = re.compile(r"^(LC_[A-Z]+|LANG|LANGUAGE|TZ|COLUMNS|LINES|NO_COLOR|TERM)$")
_SYSTEM_BIN = ("/usr/bin/", "/bin/", "/usr/local/bin/", "/usr/sbin/", "/sbin/")
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


@functools.cache
def _parser() -> Parser:
    return Parser(Language(tree_sitter_bash.language()))


def _tree(command: str) -> Node | None:
    """The syntax tree, or None when bash would not accept the command as written."""
    root = _parser().parse(command.encode()).root_node
    if root.has_error:
        return None
    return root


def classify(command: str) -> CommandClass:
    """How dangerous `command` is; what cannot be parsed is DESTRUCTIVE (asks, high risk)."""
    root = _tree(command)
    if root is None:
        return CommandClass.DESTRUCTIVE
    return _node(root)


def single_command(command: str) -> list[str] | None:
    """The words of `command` when it is exactly one plain simple command — static words
    only, no assignments, redirections, substitutions or wrappers — else None. Approval
    rules match only such commands."""
    root = _tree(command)
    if root is None:
        return None
    statements = [c for c in root.named_children if c.type != "comment"]
    if len(statements) != 1 or statements[0].type != "command":
        return None
    node = statements[0]
    if any(c.type not in ("command_name", "word", "string", "raw_string", "concatenation",
                          "number") for c in node.named_children):  # fmt: skip
        return None
    words = [_word(c) for c in node.named_children]
    if any(w is None for w in words) or not words:
        return None
    static = [w for w in words if w is not None]
    if _program(static) in _WRAPPERS or "/" in static[0]:
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
        harmless = name is not None and _HARMLESS_VARIABLES.match(_text(name)) is not None
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
        words = _words_of(command)
        while words and _program(words) in ("sudo", "env", "doas", "command", "exec"):
            words = words[1:]
        if downloaded and _program(words) in _SHELLS:
            return True
        downloaded = downloaded or _program(words) in _DOWNLOADERS
    return False


def _children(node: Node) -> CommandClass:
    worst = CommandClass.READ_ONLY
    for child in node.children:
        worst = max(worst, _node(child))
    return worst


def _text(node: Node) -> str:
    return (node.text or b"").decode(errors="replace")


def _redirect(node: Node) -> CommandClass:
    operator = next((_text(c) for c in node.children if not c.is_named), "")
    if operator not in _WRITE_REDIRECTS:
        return CommandClass.READ_ONLY
    target = node.child_by_field_name("destination")
    value = _word(target) if target is not None else DYNAMIC
    if value == "/dev/null" or (operator == ">&" and value is not None and value.isdigit()):
        return CommandClass.READ_ONLY
    if operator == ">&" and value == "-":
        return CommandClass.READ_ONLY
    return CommandClass.MUTATING


def _word(node: Node) -> Word:
    """The value of a word as bash would pass it, or DYNAMIC when only running tells."""
    kind = node.type
    if kind == "command_name":
        return _word(node.named_children[0]) if node.named_child_count == 1 else DYNAMIC
    if kind in ("word", "number"):
        return _unescape(_text(node))
    if kind == "raw_string":
        return _text(node)[1:-1]
    if kind == "string":
        parts = node.named_children
        if all(p.type == "string_content" for p in parts):
            return re.sub(r'\\([$`"\\\n])', r"\1", "".join(_text(p) for p in parts))
        return DYNAMIC
    if kind == "concatenation":
        values = [_word(p) for p in node.named_children]
        if any(v is None for v in values):
            return DYNAMIC
        return "".join(v for v in values if v is not None)
    return DYNAMIC


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text.replace("\\\n", ""))


# Children of a command node that are not its words.
_NOT_WORDS = frozenset({"variable_assignment", "file_redirect", "herestring_redirect",
                        "heredoc_redirect"})  # fmt: skip


def _words_of(command: Node) -> list[Word]:
    """The words of a command node: its program and arguments, as bash passes them."""
    return [_word(c) for c in command.named_children if c.type not in _NOT_WORDS]


def _command(node: Node) -> CommandClass:
    worst = CommandClass.READ_ONLY
    for child in node.named_children:
        # Assignments and redirections are classified themselves; substitutions inside the
        # words run too.
        worst = max(worst, _node(child) if child.type in _NOT_WORDS else _children(child))
    words = _words_of(node)
    return max(worst, _program_class(words)) if words else worst


def _program(words: Sequence[Word]) -> str:
    first = words[0] if words else None
    return first.rsplit("/", 1)[-1] if first else ""


def _program_class(words: list[Word]) -> CommandClass:
    first = words[0]
    if first is None:
        return CommandClass.MUTATING  # the program is only known when it runs
    if "/" in first and not first.startswith(_SYSTEM_BIN):
        return CommandClass.MUTATING  # a program of the workspace, whatever its name
    program, args = _program(words), words[1:]
    if program in _ALWAYS_DESTRUCTIVE:
        return CommandClass.DESTRUCTIVE
    if program in _WRAPPERS:
        return _wrapped(program, args)
    if program == "rm":
        return _rm(args)
    if program in ("chmod", "chown", "chgrp") and any(
        a in ("-R", "--recursive") or (a is not None and re.match(r"^-[a-zA-Z]*R", a)) for a in args
    ):
        return CommandClass.DESTRUCTIVE
    if program in _READERS:
        return CommandClass.READ_ONLY
    if program in _CHECKED or program in _TEST_RUNNERS:
        if any(a is None for a in args):
            return CommandClass.MUTATING  # a flag may hide in what only running tells
        return _checked(program, [a for a in args if a is not None])
    if program in ("python", "python3") and args[:2] == ["-m", "pytest"]:
        static = [a for a in args[2:] if a is not None]
        return _checked("pytest", static) if len(static) == len(args) - 2 else CommandClass.MUTATING
    return CommandClass.MUTATING


def _wrapped(program: str, args: list[Word]) -> CommandClass:
    takes_value, opaque, positional = _WRAPPERS[program]
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
            arg in _WRAPPER_ACTING.get(program, ())
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
            if not _HARMLESS_VARIABLES.match(rest[0].split("=", 1)[0]):
                least = CommandClass.MUTATING  # a variable may change what the program runs
            rest = rest[1:]
    rest = rest[positional:] if len(rest) > positional else []
    if not rest:
        # `env` alone prints the environment, `xargs` alone echoes; the others do nothing.
        return least
    return max(least, _program_class(rest))


def _rm(args: list[Word]) -> CommandClass:
    for arg in args:
        if arg is None:
            return CommandClass.DESTRUCTIVE  # it could be -rf
        if arg == "--":
            break
        if arg in ("--recursive", "--force") or (
            arg.startswith("-") and not arg.startswith("--") and set(arg[1:]) & set("rRf")
        ):
            return CommandClass.DESTRUCTIVE
    return CommandClass.MUTATING


def _has_option(args: Sequence[str], names: Sequence[str]) -> bool:
    """Whether an option of `names` is given: alone, `--name=value`, or a short option with
    its value joined (`-ofile`)."""
    for arg in args:
        if arg == "--":
            return False
        for name in names:
            if arg == name or arg.startswith(name + "="):
                return True
            if len(name) == 2 and not name.startswith("--") and arg.startswith(name):
                return True
    return False


def _short_flags(args: Sequence[str]) -> set[str]:
    """Every letter of the short-option clusters (`-uo` gives u and o)."""
    return {c for a in args if a.startswith("-") and not a.startswith("--") for c in a[1:]}


def _positionals(args: Sequence[str]) -> list[str]:
    return [a for a in args if not a.startswith("-") or a == "-"]


def _checked(program: str, args: list[str]) -> CommandClass:
    writes = CommandClass.MUTATING
    match program:
        case "sort":
            if "o" in _short_flags(args) or _has_option(args, ("--output", "--compress-program")):
                return writes
        case "uniq":
            if len(_positionals(args)) > 1:  # uniq IN OUT writes OUT
                return writes
        case "xxd":
            if len(_positionals(args)) > 1:
                return writes
        case "tree":
            if "o" in _short_flags(args) or _has_option(args, ("-o",)):
                return writes
        case "rg":
            if _has_option(args, ("--pre", "--search-zip", "-z")):
                return writes
        case "ag":
            if _has_option(args, ("--pager",)):
                return writes
        case "yq":
            if "i" in _short_flags(args) or _has_option(args, ("--inplace",)):
                return writes
        case "date":
            if "s" in _short_flags(args) or _has_option(args, ("--set",)):
                return writes
        case "hostname":
            if _positionals(args) or _has_option(args, ("-F", "--file")):
                return writes
        case "sed":
            return _sed(args)
        case "find":
            return _find(args)
        case "git":
            return _git(args)
        case _:
            return _runner(program, args)
    return CommandClass.READ_ONLY


def _runner(program: str, args: list[str]) -> CommandClass:
    subcommands = _TEST_RUNNERS.get(program, ())
    if _has_option(args, _RUNNER_WRITING):
        return CommandClass.MUTATING
    line = " ".join(a for a in args if not a.startswith("-"))
    if subcommands is None or any(line == s or line.startswith(s + " ") for s in subcommands):
        return CommandClass.READ_ONLY
    if program == "cargo" and args[:2] == ["fmt", "--check"]:
        return CommandClass.READ_ONLY
    return CommandClass.MUTATING


# A sed script of only these commands reads: line addresses, p d q = n l, and s/// without
# the e and w flags.
_SED_ADDRESS = r"(\d+|\$|/(?:[^/\\]|\\.)*/)(,(\d+|\$|/(?:[^/\\]|\\.)*/))?!?"
_SED_SAFE = re.compile(
    rf"^\s*({_SED_ADDRESS})?\s*([pdqQ=nNlgGhHxz]|s(.)((?:(?!\6)[^\\]|\\.)*)\6"
    rf"((?:(?!\6)[^\\]|\\.)*)\6[gpiIm0-9]*)?\s*$"
)


def _sed(args: list[str]) -> CommandClass:
    scripts: list[str] = []
    explicit = False  # a script given with -e: the first positional is then a file
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-e", "--expression") or (
            arg.startswith("-") and not arg.startswith("--") and arg.endswith("e")
        ):
            if set(arg[1:]) & set("if"):
                return CommandClass.MUTATING
            scripts.append(args[i + 1] if i + 1 < len(args) else "")
            explicit = True
            i += 2
            continue
        if arg.startswith("--expression="):
            scripts.append(arg.split("=", 1)[1])
            explicit = True
        elif arg.startswith(("--in-place", "--file")):
            return CommandClass.MUTATING
        elif arg.startswith("-") and not arg.startswith("--") and set(arg[1:]) & set("if"):
            return CommandClass.MUTATING  # -i edits in place, -f reads a script file
        elif not arg.startswith("-") and not explicit and not scripts:
            scripts.append(arg)
        i += 1
    for script in scripts:
        for part in re.split(r"[;\n]", script):
            if not _SED_SAFE.match(part):
                return CommandClass.MUTATING
    return CommandClass.READ_ONLY


_FIND_WRITING = frozenset(
    ["-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf", "-fls"]
)


def _find(args: list[str]) -> CommandClass:
    if "-delete" in args:
        return CommandClass.DESTRUCTIVE
    if any(a in _FIND_WRITING for a in args):
        return CommandClass.MUTATING
    return CommandClass.READ_ONLY


def _git(args: list[str]) -> CommandClass:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        arg = args[i]
        if arg in ("-c", "--config-env") or arg.startswith(("-c", "--exec-path=", "--config")):
            return CommandClass.MUTATING  # configuration can name programs to run
        i += 2 if arg in _GIT_GLOBAL_WITH_VALUE else 1
    if i >= len(args):
        return CommandClass.READ_ONLY
    sub, rest = args[i], args[i + 1 :]
    forced = ("--force", "-f", "--mirror", "--delete", "-d")
    if sub == "push" and any(a in forced or a.startswith(("--force", "+")) for a in rest):
        return CommandClass.DESTRUCTIVE
    if sub == "reset" and "--hard" in rest:
        return CommandClass.DESTRUCTIVE
    if sub == "clean" and any(a.startswith("-") and "f" in a for a in rest):
        return CommandClass.DESTRUCTIVE
    if sub in ("checkout", "restore") and any(a in (".", "--", "-f", "--force") for a in rest):
        return CommandClass.DESTRUCTIVE  # throws away uncommitted work
    if _has_option(rest, _GIT_WRITING):
        return CommandClass.MUTATING
    if sub in _GIT_READERS:
        return CommandClass.READ_ONLY
    listing = ("-v", "-vv", "--list", "-l", "-a", "-r", "--all", "--show-current")
    if sub == "branch" and all(a in listing or a.startswith("--format") for a in rest):
        return CommandClass.READ_ONLY
    if sub == "stash" and rest[:1] in (["list"], ["show"]):
        return CommandClass.READ_ONLY
    if sub in ("remote", "tag") and (not rest or all(a in listing for a in rest)):
        return CommandClass.READ_ONLY
    if (
        sub == "config"
        and rest
        and all(
            a in ("--list", "-l", "--get", "--get-all", "--show-origin") or not a.startswith("-")
            for a in rest
        )
        and (rest[0] in ("--list", "-l", "--get", "--get-all"))
    ):
        return CommandClass.READ_ONLY
    return CommandClass.MUTATING


def commands_in(command: str) -> Iterator[list[Word]]:
    """The words of every simple command in `command` (empty when it cannot be parsed)."""
    root = _tree(command)
    if root is None:
        return
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "command":
            yield _words_of(node)
        stack.extend(reversed(node.children))
