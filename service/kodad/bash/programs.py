"""What each program does with its arguments: the tables the classifier reads."""

from __future__ import annotations

import enum
import re


class CommandClass(enum.IntEnum):
    READ_ONLY = 0
    MUTATING = 1
    DESTRUCTIVE = 2


# Programs that only read whatever their arguments are (no flag of theirs writes a file or
# runs a program).
READERS = frozenset(
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
CHECKED = frozenset(
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


GIT_READERS = frozenset(
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
GIT_WRITING = (
    "--output", "-O", "--open-files-in-pager", "--ext-diff", "--textconv", "--filters",
    "--exec", "--upload-pack", "--receive-pack", "--config", "--config-env", "--contents-from",
)  # fmt: skip


GIT_GLOBAL_WITH_VALUE = frozenset({"-C", "--git-dir", "--work-tree", "--namespace"})


# Test runners run the project's own checks; in the sandbox they cannot write the workspace
# unless approved. Flags that name an output file still ask.
TEST_RUNNERS: dict[str, tuple[str, ...] | None] = {
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
    "cargo": (),  # only `cargo fmt --check` (see runner): test and build write target/
}


RUNNER_WRITING = (
    "--basetemp", "--junitxml", "--junit-xml", "--result-log", "--report-log", "--cov-report",
    "--eval", "-E", "--file", "-f", "--makefile", "-C", "--directory", "-o", "--output",
    "--prefix", "--coverprofile", "-coverprofile", "-exec", "--exec", "-toolexec",
)  # fmt: skip


SHELLS = frozenset(
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


DOWNLOADERS = frozenset({"curl", "wget"})


ALWAYS_DESTRUCTIVE = frozenset(
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
WRAPPERS: dict[str, tuple[frozenset[str], frozenset[str], int]] = {
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
WRAPPER_ACTING = {"ionice": ("-p", "--pid", "-P", "--pgid", "-u", "--uid"), "chrt": ("-p",)}


# Variables a command may be given without changing what it runs.
HARMLESS_VARIABLES = re.compile(r"^(LC_[A-Z]+|LANG|LANGUAGE|TZ|COLUMNS|LINES|NO_COLOR|TERM)$")


SYSTEM_BIN = ("/usr/bin/", "/bin/", "/usr/local/bin/", "/usr/sbin/", "/sbin/")


# A sed script of only these commands reads: line addresses, p d q = n l, and s/// without
# the e and w flags.
SED_ADDRESS = r"(\d+|\$|/(?:[^/\\]|\\.)*/)(,(\d+|\$|/(?:[^/\\]|\\.)*/))?!?"


SED_SAFE = re.compile(
    rf"^\s*({SED_ADDRESS})?\s*([pdqQ=nNlgGhHxz]|s(.)((?:(?!\6)[^\\]|\\.)*)\6"
    rf"((?:(?!\6)[^\\]|\\.)*)\6[gpiIm0-9]*)?\s*$"
)


FIND_WRITING = frozenset(
    ["-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf", "-fls"]
)
