"""Agent profiles: a name, instructions, a model, the tools allowed, a loop cap, memory on or
off. Built in: `default`. More come from *.json / *.toml files in the server's profile
directory (the operator's) and in a workspace's `.kodad/agents/`. Many sessions share one.

A workspace is untrusted content (a cloned repository can hold anything), so its profiles
are data, not configuration: they cannot take the name of a built-in or server profile, read
the service's environment (`env_from`, `header_env`) or declare themselves trusted, and the
MCP servers they declare are marked as the workspace's (the turn asks before starting them
in CONFIRM and refuses them in READ_ONLY). Their files are read beneath the workspace only."""

from __future__ import annotations

import functools
import json
import logging
import os
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kodad.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from kodad.domain.model import McpServerSpec
from kodad.engine import validation
from kodad.tools.errors import ToolError
from kodad.tools.workspace import Workspace, read_regular

log = logging.getLogger(__name__)

WORKSPACE_DIR = ".kodad/agents"
_FIELDS = {
    "name", "description", "system_prompt", "model", "allowed_tools", "disallowed_tools",
    "loop_cap", "memory", "mcp_servers",
}  # fmt: skip


@dataclass(frozen=True)
class AgentProfile:
    name: str
    description: str = ""
    system_prompt: str = ""
    model: str = ""
    allowed_tools: tuple[str, ...] = ()  # empty: every tool
    disallowed_tools: tuple[str, ...] = ()
    loop_cap: int = 0  # 0: the session's (else the server's)
    memory: bool = True
    mcp_servers: tuple[McpServerSpec, ...] = ()
    source: str = "builtin"
    broken: str = ""  # why its file could not be used (never offered)

    def allows(self, tool: str) -> bool:
        if tool in self.disallowed_tools:
            return False
        return not self.allowed_tools or tool in self.allowed_tools


DEFAULT = AgentProfile("default", "The general coding agent, with every tool.")


def parse(path: Path, text: str | None = None, *, workspace: bool = False) -> AgentProfile:
    """One profile file (its `text` when already read); ValueError says what is wrong with
    it. A workspace's profile may not use what only the operator may (see above)."""
    text = path.read_text() if text is None else text
    try:
        data: Any = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid {path.suffix[1:].upper()}: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must hold an object")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ValueError(f"{path}: unknown fields {unknown}; allowed: {sorted(_FIELDS)}")

    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{path}: {key} must be a list of tool names")
        return tuple(value)

    for key in ("name", "description", "system_prompt", "model"):
        if not isinstance(data.get(key, ""), str):
            raise ValueError(f"{path}: {key} must be a string")
    loop_cap, memory = data.get("loop_cap", 0), data.get("memory", True)
    if not isinstance(loop_cap, int) or isinstance(loop_cap, bool) or not 0 <= loop_cap <= 10_000:
        raise ValueError(f"{path}: loop_cap must be an integer from 0 to 10000")
    if not isinstance(memory, bool):
        raise ValueError(f"{path}: memory must be true or false")
    return AgentProfile(
        name=data.get("name") or path.stem,
        description=data.get("description", ""),
        system_prompt=data.get("system_prompt", ""),
        model=data.get("model", ""),
        allowed_tools=strings("allowed_tools"),
        disallowed_tools=strings("disallowed_tools"),
        loop_cap=loop_cap,
        memory=memory,
        mcp_servers=_mcp_servers(path, data.get("mcp_servers", []), workspace),
        source=str(path),
    )


def _mcp_servers(path: Path, value: Any, workspace: bool) -> tuple[McpServerSpec, ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{path}: mcp_servers must be a list of objects")
    servers = []
    for i, v in enumerate(value):
        unknown = sorted(set(v) - {"name", "command", "url", "trusted", "header_env", "env_from"})
        command, url, name = v.get("command", []), v.get("url", ""), v.get("name", "")
        maps = [v.get("header_env", {}), v.get("env_from", {})]
        if (
            unknown
            or not isinstance(name, str)
            or not isinstance(url, str)
            or not isinstance(v.get("trusted", False), bool)
            or not isinstance(command, list)
            or not all(isinstance(a, str) for a in command)
            or not all(isinstance(m, dict) for m in maps)
            or not all(isinstance(x, str) for m in maps for kv in m.items() for x in kv)
        ):
            raise ValueError(
                f"{path}: mcp_servers[{i}] takes name (string), command (list of strings),"
                " url (string), trusted (boolean), header_env and env_from (string tables)"
            )
        if workspace and (maps[0] or maps[1] or v.get("trusted", False)):
            raise ValueError(
                f"{path}: mcp_servers[{i}]: a workspace's profile cannot use header_env, "
                "env_from or trusted (they give it the service's secrets or skip approvals)"
            )
        servers.append(
            McpServerSpec(
                name,
                tuple(command),
                url,
                v.get("trusted", False),
                tuple(sorted(maps[0].items())),
                tuple(sorted(maps[1].items())),
                from_workspace=workspace,
            )
        )
    try:
        return validation.mcp_servers(tuple(servers), "mcp_servers")
    except InvalidArgument as e:
        raise ValueError(f"{path}: {e}") from None


# A file changed this recently is read again even if its stamp is the one kept: mtime cannot
# tell two writes within one clock tick apart.
_RECENT_NS = 2_000_000_000
_CACHED = 1024  # files
_CACHED_CHARS = 64 * 1024  # a larger file is read and parsed every time (memory stays small)
Stamp = tuple[int, ...]


def _stamp(st: os.stat_result) -> Stamp | None:
    """What tells the file's content changed: another inode, size, mtime, ctime (a chmod,
    a new hard link), or None when it changed too recently to tell."""
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < _RECENT_NS:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_nlink)


@functools.lru_cache(maxsize=_CACHED)
def _parsed_small(path: Path, text: str, workspace: bool) -> AgentProfile:
    return parse(path, text, workspace=workspace)


def _parsed(path: Path, text: str, workspace: bool) -> AgentProfile:
    if len(text) > _CACHED_CHARS:
        return parse(path, text, workspace=workspace)
    return _parsed_small(path, text, workspace)


class ProfileCatalog:
    """The profiles a session on a workspace can use, looked up when asked (so edits apply to
    the next turn). A file is read and parsed again only when its stamp (device, inode, size,
    mtime) changed: a turn's start stats the profile files instead of parsing them."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._texts: dict[tuple[str, str], tuple[Stamp, str]] = {}

    def _text(
        self, key: tuple[str, str], st: os.stat_result, read: Callable[[], str | None]
    ) -> str | None:
        """The file's text: the one kept while its stamp holds, else read (and kept)."""
        stamp = _stamp(st)
        kept = self._texts.get(key)
        if stamp is not None and kept is not None and kept[0] == stamp:
            return kept[1]
        text = read()
        if stamp is not None and text is not None and len(text) <= _CACHED_CHARS:
            if len(self._texts) >= _CACHED:
                self._texts.clear()
            self._texts[key] = (stamp, text)
        return text

    def _server_profiles(self) -> list[AgentProfile]:
        found = []
        directory = self.directory
        files = sorted(directory.iterdir()) if directory is not None and directory.is_dir() else []
        for path in files:
            if path.suffix not in (".json", ".toml") or not path.is_file():
                continue
            try:
                text = self._text(("", str(path)), path.stat(), path.read_text)
                assert text is not None
                found.append(_parsed(path, text, False))
            except (OSError, ValueError) as e:
                log.warning("skipping agent profile: %s", e)
                if path.stem != DEFAULT.name:
                    found.append(_broken(path, e))
        return found

    def _workspace_profiles(self, workspace: str, taken: set[str]) -> list[AgentProfile]:
        """The workspace's profiles, read beneath it; those naming a profile of the server
        (or the built-in) are left out."""
        found = []
        for name, text in _workspace_files(workspace, self._text):
            path = Path(workspace) / WORKSPACE_DIR / name
            try:
                profile = _parsed(path, text, True)
            except ValueError as e:
                log.warning("skipping agent profile: %s", e)
                profile = _broken(path, e)
            if profile.name in taken:
                log.warning(
                    "skipping agent profile %s: a workspace cannot replace the profile %r",
                    path,
                    profile.name,
                )
                continue
            found.append(profile)
        return found

    def _profiles(self, workspace: str | None) -> dict[str, AgentProfile]:
        found = {DEFAULT.name: DEFAULT}
        for profile in self._server_profiles():
            found[profile.name] = profile
        if workspace:
            for profile in self._workspace_profiles(workspace, set(found)):
                found[profile.name] = profile
        return found

    def all(self, workspace: str | None = None) -> list[AgentProfile]:
        found = [p for p in self._profiles(workspace).values() if not p.broken]
        return sorted(found, key=lambda p: (p.name != "default", p.name))

    def get(self, name: str, workspace: str | None = None) -> AgentProfile:
        name = name or DEFAULT.name
        chosen = self._profiles(workspace).get(name)
        if chosen is None:
            raise NotFound(f"agent profile {name!r} not found")
        if chosen.broken:
            raise FailedPrecondition(f"agent profile {name!r} is broken: {chosen.broken}")
        return chosen


def _broken(path: Path, error: Exception) -> AgentProfile:
    """Stands for a file that does not parse, under its file name, so asking for it says why."""
    return AgentProfile(path.stem, source=str(path), broken=str(error))


Reader = Callable[[tuple[str, str], os.stat_result, Callable[[], "str | None"]], "str | None"]


def _workspace_files(workspace: str, text: Reader) -> list[tuple[str, str]]:
    """(file name, text) of the workspace's profile files, read beneath it (through `text`,
    which may keep them): no symlink or hard link leads out, a file that is not regular or is
    over 1 MiB is skipped."""
    if not os.path.isdir(os.path.join(workspace, WORKSPACE_DIR)):
        return []  # the common case, settled by a plain lookup (reading beneath finds less)
    space = Workspace(workspace)
    found = []
    try:
        with space.directory(WORKSPACE_DIR) as fd:
            entries = sorted(
                (e for e in os.scandir(fd) if e.name.endswith((".json", ".toml"))),
                key=lambda e: e.name,
            )
            for e in entries:
                if not e.is_file(follow_symlinks=False):
                    continue

                def read(name: str = e.name) -> str | None:
                    data = read_regular(fd, name, 1024 * 1024)
                    return None if data is None else data.decode(errors="replace")

                content = text((workspace, e.name), e.stat(follow_symlinks=False), read)
                if content is not None:
                    found.append((e.name, content))
    except (ToolError, OSError):
        return []
    return found
