"""Classifying a bash command before it runs: read-only (runs without asking in CONFIRM),
mutating (asks), or destructive (asks, flagged high risk).

The command is parsed — quotes, `;`, `&&`, `||`, `|`, `&`, newlines, redirections, subshells
`( )`, `{ }`, `$( )` and backticks — into simple commands; the whole is as dangerous as its
most dangerous part. Anything not recognised is mutating: a false "read-only" would run
unasked.
"""

from __future__ import annotations

import enum
import re
import shlex


class CommandClass(enum.IntEnum):
    READ_ONLY = 0
    MUTATING = 1
    DESTRUCTIVE = 2


# Programs that only read, whatever their arguments (subject to the checks below).
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
        "rg",
        "ag",
        "stat",
        "file",
        "which",
        "whereis",
        "type",
        "diff",
        "cmp",
        "tree",
        "du",
        "df",
        "date",
        "uname",
        "whoami",
        "id",
        "hostname",
        "true",
        "false",
        "test",
        "[",
        "sort",
        "uniq",
        "cut",
        "tr",
        "less",
        "more",
        "nl",
        "od",
        "hexdump",
        "xxd",
        "basename",
        "dirname",
        "realpath",
        "readlink",
        "jq",
        "yq",
        "column",
        "seq",
        "sleep",
        "md5sum",
        "sha1sum",
        "sha256sum",
        "cksum",
        "strings",
        "comm",
        "paste",
        "fold",
        "expand",
        "rev",
        "tac",
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
        "cat-file",
        "name-rev",
        "count-objects",
    ]
)
# Test runners: they run the project's own checks and are expected to leave it unchanged.
_TEST_RUNNERS = {
    "pytest": None,
    "tox": None,
    "cargo": {"test", "check", "clippy", "build", "fmt --check"},
    "go": {"test", "vet", "build"},
    "npm": {"test", "run test"},
    "yarn": {"test"},
    "pnpm": {"test"},
    "make": {"test", "check", "lint"},
    "mvn": {"test", "verify"},
    "gradle": {"test", "check"},
    "gradlew": {"test", "check"},
}
_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "fish", "python", "python3", "perl"})
_DOWNLOADERS = frozenset({"curl", "wget"})
_ALWAYS_DESTRUCTIVE = frozenset(
    [
        "sudo",
        "su",
        "doas",
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
    ]
)
_SEPARATORS = frozenset({";", "&", "&&", "||", "|", "|&", "\n"})
_REDIRECTS = re.compile(r"^\d*(>>?|&>>?|>&|>\|)$")


def classify(command: str) -> CommandClass:
    """How dangerous `command` is; unparseable commands are MUTATING."""
    try:
        pipelines = _split(command)
    except ValueError:
        return CommandClass.MUTATING
    if not pipelines:
        return CommandClass.READ_ONLY
    worst = CommandClass.READ_ONLY
    for pipeline in pipelines:
        for i, words in enumerate(pipeline):
            kind = _simple(words)
            # curl … | sh: running what was just downloaded.
            downloaded = any(_program(w) in _DOWNLOADERS for w in pipeline[:i])
            if downloaded and _runs_a_shell(words):
                kind = CommandClass.DESTRUCTIVE
            worst = max(worst, kind)
    return worst


def _runs_a_shell(words: list[str]) -> bool:
    while words and _program(words) in ("sudo", "env", "doas"):
        words = words[1:]
    return bool(words) and _program(words) in _SHELLS


def _program(words: list[str]) -> str:
    return words[0].rsplit("/", 1)[-1] if words else ""


def _split(command: str) -> list[list[list[str]]]:
    """Pipelines (lists of simple commands, each a list of words). Substitutions and
    subshells become pipelines of their own; redirections become ">" markers."""
    pipelines: list[list[list[str]]] = []
    inner = _substitutions(command, pipelines)
    lexer = shlex.shlex(inner, posix=True, punctuation_chars=";&|()<>{}")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    current: list[list[str]] = [[]]
    for token in lexer:
        if token in ("(", ")", "{", "}"):
            token = ";"  # a group runs its commands: split on it like a separator
        if token in _SEPARATORS or set(token) <= set(";&|"):
            if token in ("|", "|&"):
                current.append([])
            else:
                pipelines.append(current)
                current = [[]]
            continue
        current[-1].append(token)
    pipelines.append(current)
    return [[c for c in p if c] for p in pipelines if any(p)]


def _substitutions(command: str, out: list[list[list[str]]]) -> str:
    """Classifies `$( … )` and backtick bodies as pipelines of their own (appended to `out`)
    and replaces them by a placeholder word."""
    result: list[str] = []
    i = 0
    while i < len(command):
        if command.startswith("$(", i) or command[i] == "`":
            closing = ")" if command[i] == "$" else "`"
            start = i + (2 if closing == ")" else 1)
            depth, j = 1, start
            while j < len(command):
                if closing == ")" and command.startswith("$(", j):
                    depth += 1
                    j += 2
                    continue
                if command[j] == closing:
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(command):
                raise ValueError("unclosed substitution")
            out.extend(_split(command[start:j]))
            result.append("SUBST")
            i = j + 1
        else:
            result.append(command[i])
            i += 1
    text = "".join(result).replace("<(", "(").replace(">(", "(")
    return text.replace("\n", " ; ")


def _simple(words: list[str]) -> CommandClass:
    """One simple command (words may include redirection markers)."""
    words = _without_assignments(words)
    # Redirections: writing a file mutates (except to /dev/null or a descriptor).
    kind = CommandClass.READ_ONLY
    plain: list[str] = []
    skip = False
    for i, word in enumerate(words):
        if skip:
            skip = False
            continue
        if word in (">", ">>", "<", "<<", "&>") or _REDIRECTS.match(word):
            target = words[i + 1] if i + 1 < len(words) else ""
            if word != "<" and word != "<<" and target not in ("/dev/null", "&1", "&2"):
                kind = CommandClass.MUTATING
            skip = True
            continue
        if word == "&" and plain and plain[-1].endswith(">"):
            continue
        plain.append(word)
    if not plain:
        return kind
    return max(kind, _program_class(plain))


def _without_assignments(words: list[str]) -> list[str]:
    i = 0
    while i < len(words) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[i]):
        i += 1
    return words[i:]


# Programs that run the command given in their arguments: that command decides.
_WRAPPERS = frozenset({"xargs", "env", "nice", "nohup", "time", "timeout", "command", "exec"})


def _program_class(words: list[str]) -> CommandClass:
    program, args = _program(words), words[1:]
    if program in _WRAPPERS:
        i = 0
        while i < len(args) and args[i].startswith("-"):
            i += 1  # the wrapper's own options
        rest = _without_assignments(args[i:])
        if program == "timeout" and rest:
            rest = rest[1:]  # the duration
        return _program_class(rest) if rest else CommandClass.READ_ONLY
    flags = {a for a in args if a.startswith("-")}
    if program in _ALWAYS_DESTRUCTIVE:
        return CommandClass.DESTRUCTIVE
    if program == "rm":
        recursive = any(
            f in ("--recursive", "--force") or (not f.startswith("--") and set(f[1:]) & set("rRf"))
            for f in flags
        )
        return CommandClass.DESTRUCTIVE if recursive else CommandClass.MUTATING
    if program in ("chmod", "chown", "chgrp") and flags & {"-R", "--recursive"}:
        return CommandClass.DESTRUCTIVE
    if program == "git":
        return _git(args)
    if program == "find":
        if any(a in ("-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint") for a in args):
            return CommandClass.MUTATING if "-delete" not in args else CommandClass.DESTRUCTIVE
        return CommandClass.READ_ONLY
    if program == "sort" and any(a.startswith("-o") or a == "--output" for a in args):
        return CommandClass.MUTATING
    if program in ("sed", "perl") and any(a.startswith("-i") for a in args):
        return CommandClass.MUTATING
    if program == "sed":
        return CommandClass.READ_ONLY
    if program in _READERS:
        return CommandClass.READ_ONLY
    if program in ("python", "python3") and args[:2] == ["-m", "pytest"]:
        return CommandClass.READ_ONLY
    if program in _TEST_RUNNERS:
        allowed = _TEST_RUNNERS[program]
        line = " ".join(a for a in args if not a.startswith("-"))
        if allowed is None or any(line == s or line.startswith(s + " ") for s in allowed):
            return CommandClass.READ_ONLY
    return CommandClass.MUTATING


def _git(args: list[str]) -> CommandClass:
    # Skip global options such as `-C dir` or `--no-pager`.
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("-C", "-c") else 1
    if i >= len(args):
        return CommandClass.READ_ONLY
    sub, rest = args[i], args[i + 1 :]
    forced = ("--force", "-f", "--mirror", "--delete")
    if sub == "push" and any(a in forced or a.startswith(("--force", "+")) for a in rest):
        return CommandClass.DESTRUCTIVE
    if sub == "reset" and "--hard" in rest:
        return CommandClass.DESTRUCTIVE
    if sub == "clean" and any(a.startswith("-") and "f" in a for a in rest):
        return CommandClass.DESTRUCTIVE
    if sub == "branch" and any(a in ("-D", "--delete", "-d", "-m", "-M") for a in rest):
        return CommandClass.MUTATING
    if sub == "branch" or sub in _GIT_READERS:
        return CommandClass.READ_ONLY
    if sub in ("stash",) and rest[:1] in (["list"], ["show"]):
        return CommandClass.READ_ONLY
    listing = ("-v", "show", "--list", "-l")
    if sub in ("remote", "tag", "config") and (not rest or rest[0] in listing):
        return CommandClass.READ_ONLY
    return CommandClass.MUTATING
