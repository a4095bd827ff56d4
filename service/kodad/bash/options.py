"""How the arguments of some programs decide whether they only read."""

from __future__ import annotations

import re
from collections.abc import Sequence

from kodad.bash import programs
from kodad.bash.programs import CommandClass
from kodad.bash.syntax import Word


def rm(args: list[Word]) -> CommandClass:
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


def has_option(args: Sequence[str], names: Sequence[str]) -> bool:
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


def short_flags(args: Sequence[str]) -> set[str]:
    """Every letter of the short-option clusters (`-uo` gives u and o)."""
    return {c for a in args if a.startswith("-") and not a.startswith("--") for c in a[1:]}


def positionals(args: Sequence[str]) -> list[str]:
    return [a for a in args if not a.startswith("-") or a == "-"]


def checked(program: str, args: list[str]) -> CommandClass:
    writes = CommandClass.MUTATING
    match program:
        case "sort":
            if "o" in short_flags(args) or has_option(args, ("--output", "--compress-program")):
                return writes
        case "uniq":
            if len(positionals(args)) > 1:  # uniq IN OUT writes OUT
                return writes
        case "xxd":
            if len(positionals(args)) > 1:
                return writes
        case "tree":
            if "o" in short_flags(args) or has_option(args, ("-o",)):
                return writes
        case "rg":
            if has_option(args, ("--pre", "--search-zip", "-z")):
                return writes
        case "ag":
            if has_option(args, ("--pager",)):
                return writes
        case "yq":
            if "i" in short_flags(args) or has_option(args, ("--inplace",)):
                return writes
        case "date":
            if "s" in short_flags(args) or has_option(args, ("--set",)):
                return writes
        case "hostname":
            if positionals(args) or has_option(args, ("-F", "--file")):
                return writes
        case "sed":
            return sed(args)
        case "find":
            return find(args)
        case "git":
            return git(args)
        case _:
            return runner(program, args)
    return CommandClass.READ_ONLY


def runner(program: str, args: list[str]) -> CommandClass:
    subcommands = programs.TEST_RUNNERS.get(program, ())
    if has_option(args, programs.RUNNER_WRITING):
        return CommandClass.MUTATING
    line = " ".join(a for a in args if not a.startswith("-"))
    if subcommands is None or any(line == s or line.startswith(s + " ") for s in subcommands):
        return CommandClass.READ_ONLY
    if program == "cargo" and args[:2] == ["fmt", "--check"]:
        return CommandClass.READ_ONLY
    return CommandClass.MUTATING


def sed(args: list[str]) -> CommandClass:
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
            if not programs.SED_SAFE.match(part):
                return CommandClass.MUTATING
    return CommandClass.READ_ONLY


def find(args: list[str]) -> CommandClass:
    if "-delete" in args:
        return CommandClass.DESTRUCTIVE
    if any(a in programs.FIND_WRITING for a in args):
        return CommandClass.MUTATING
    return CommandClass.READ_ONLY


def git(args: list[str]) -> CommandClass:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        arg = args[i]
        if arg in ("-c", "--config-env") or arg.startswith(("-c", "--exec-path=", "--config")):
            return CommandClass.MUTATING  # configuration can name programs to run
        i += 2 if arg in programs.GIT_GLOBAL_WITH_VALUE else 1
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
    if has_option(rest, programs.GIT_WRITING):
        return CommandClass.MUTATING
    if sub in programs.GIT_READERS:
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
