"""Where the processes of a session run: under bubblewrap, in namespaces of their own.

Every process a session starts (bash, MCP stdio servers, whatever they spawn) is started
through `Sandbox.command`. Inside: own user, PID, IPC, UTS and (unless the session allows
it) network namespaces, no capabilities, a new session (no terminal to inject into), killed
with the service (`--die-with-parent`), a cleared environment. The file system holds the
system read-only, a private /tmp, a private /proc that shows only the sandbox's processes,
and the session's workspace at its real path — read-only unless the call may write. The
data dir, tokens file, TLS keys, other workspaces and $HOME are not there at all; those of
them that sit under a mounted system directory are masked.

`Confinement` says what one call may do; the turn decides it (a command that runs without
asking never gets write access, so CONFIRM holds even when the classifier errs).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

TURN_VARIABLE = "KODAD_TURN_ID"
# System directories the sandbox shows read-only (those that exist on the host).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
# Files of /etc no command of a session needs to read.
SECRET_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh", "/etc/ssl/private")
# Variables kept from the service's environment; everything else is dropped.
KEPT_VARIABLES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
HOME = "/tmp"


@dataclass(frozen=True)
class Confinement:
    """What the processes of one tool call may do. The default is the least."""

    write: bool = False  # the workspace is writable
    network: bool = False  # the network namespace is the host's
    unconfined: bool = False  # no sandbox at all (FULL_ACCESS, approved)


@dataclass(frozen=True)
class SandboxInfo:
    """Whether this host confines commands, for GetServerInfo and the server's checks."""

    available: bool
    mechanism: str  # e.g. "bubblewrap 0.8.0"; empty when unavailable
    reason: str  # why it is unavailable; empty when available


def _version(bwrap: str) -> str:
    try:
        done = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "bubblewrap"
    return done.stdout.strip() or "bubblewrap"


class Sandbox:
    """Builds the command lines of a session's processes. One per service."""

    def __init__(
        self,
        bwrap: str | None,
        *,
        hidden: tuple[Path, ...] = (),
        readable: tuple[Path, ...] = (),
        reason: str = "",
    ) -> None:
        self._bwrap = bwrap
        self._hidden = tuple(Path(os.path.abspath(p)) for p in hidden)
        # The interpreter the service runs on, so `python3` of that install works inside.
        runtime = {Path(sys.prefix), Path(sys.base_prefix)}
        extra = [Path(os.path.realpath(p)) for p in (*readable, *sorted(runtime))]
        self._readable = tuple(
            dict.fromkeys([Path(d) for d in SYSTEM_DIRS if os.path.lexists(d)] + extra)
        )
        self.info = SandboxInfo(
            bwrap is not None,
            _version(bwrap) if bwrap is not None else "",
            "" if bwrap is not None else reason or "bubblewrap (bwrap) is not installed",
        )

    @classmethod
    def detect(cls, *, hidden: tuple[Path, ...] = (), readable: tuple[Path, ...] = ()) -> Sandbox:
        """Finds bwrap on PATH (or KODAD_BWRAP) and checks once that it can make namespaces
        on this host; when it cannot, the sandbox is unavailable and says why."""
        bwrap = os.environ.get("KODAD_BWRAP") or shutil.which("bwrap")
        if bwrap is None:
            return cls(None, reason="bubblewrap (bwrap) is not installed")
        probe = cls(bwrap, hidden=hidden, readable=readable)
        argv = probe.command(["/bin/true"], workspace=Path("/"), confinement=Confinement())
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=20, env={})
        except (OSError, subprocess.TimeoutExpired) as e:
            return cls(None, reason=f"bwrap cannot run: {e}")
        if done.returncode != 0:
            why = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
            return cls(None, reason=f"bwrap cannot make namespaces here: {why[0]}")
        return probe

    @property
    def available(self) -> bool:
        return self._bwrap is not None

    def environment(self, turn_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a sandboxed process: a few of the service's variables
        (never a secret), HOME in the private /tmp, and the turn it runs for (so a
        restarted service finds what its turns left behind)."""
        env = {k: os.environ[k] for k in KEPT_VARIABLES if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update(HOME=HOME, TERM="dumb", USER="kodad", LOGNAME="kodad", TMPDIR="/tmp")
        if turn_id:
            env[TURN_VARIABLE] = turn_id
        env.update(extra or {})
        return env

    def confines(self, confinement: Confinement) -> bool:
        """Whether a process started for `confinement` runs in the sandbox."""
        return self._bwrap is not None and not confinement.unconfined

    def command(self, argv: list[str], *, workspace: Path, confinement: Confinement) -> list[str]:
        """`argv` as it must be started for `confinement` in `workspace` (a real path).
        Unchanged when the call is unconfined or the host has no sandbox."""
        if self._bwrap is None or not self.confines(confinement):
            return argv
        args = [
            self._bwrap,
            "--die-with-parent",
            "--new-session",
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--cap-drop",
            "ALL",
            "--hostname",
            "kodad-sandbox",
        ]
        if not confinement.network:
            args.append("--unshare-net")
        # The private /tmp first: a directory shown below /tmp (a checkout's interpreter)
        # is then bound on top of it rather than hidden by it.
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for directory in self._readable:
            args += ["--ro-bind", str(directory), str(directory)]
        secrets = [
            p for p in (*(Path(f) for f in SECRET_FILES), *self._hidden) if os.path.lexists(p)
        ]
        has_workspace = workspace != Path("/")
        inside = [p for p in secrets if has_workspace and p.is_relative_to(workspace)]
        # Masks of what the system directories show come before the workspace's bind (a
        # masked workspace root may hold this workspace), masks inside the workspace after.
        args += _masks(p for p in secrets if p not in inside and self._shown(p))
        if has_workspace:
            bind = "--bind" if confinement.write else "--ro-bind"
            args += [bind, str(workspace), str(workspace)]
            args += _masks(inside)
            args += ["--chdir", str(workspace)]
        return [*args, "--", *argv]

    def _shown(self, path: Path) -> bool:
        """Whether `path` lies inside a system directory the sandbox shows."""
        return any(path.is_relative_to(d) for d in self._readable)


def _masks(paths: Iterable[Path]) -> list[str]:
    """bwrap arguments hiding each path: an empty tmpfs over a directory, /dev/null over a
    file."""
    args: list[str] = []
    for path in paths:
        if path.is_dir():
            args += ["--tmpfs", str(path)]
        else:
            args += ["--ro-bind", "/dev/null", str(path)]
    return args
