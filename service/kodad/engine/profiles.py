"""Agent profiles: a name, instructions, a model, the tools allowed, a loop cap, memory on or
off. Built in: `default`. More come from *.json / *.toml files in the server's profile
directory and in a workspace's `.kodad/agents/` (a workspace's profile of the same name wins
for sessions on that workspace). Many sessions share one profile."""

from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kodad.engine import validation
from kodad.engine.errors import FailedPrecondition, InvalidArgument, NotFound
from kodad.engine.model import McpServerSpec

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

    def allows(self, tool: str) -> bool:
        if tool in self.disallowed_tools:
            return False
        return not self.allowed_tools or tool in self.allowed_tools


DEFAULT = AgentProfile("default", "The general coding agent, with every tool.")


def parse(path: Path) -> AgentProfile:
    """One profile file; ValueError says what is wrong with it."""
    text = path.read_text()
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
        mcp_servers=_mcp_servers(path, data.get("mcp_servers", [])),
        source=str(path),
    )


def _mcp_servers(path: Path, value: Any) -> tuple[McpServerSpec, ...]:
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
        servers.append(
            McpServerSpec(
                name,
                tuple(command),
                url,
                v.get("trusted", False),
                tuple(sorted(maps[0].items())),
                tuple(sorted(maps[1].items())),
            )
        )
    try:
        return validation.mcp_servers(tuple(servers), "mcp_servers")
    except InvalidArgument as e:
        raise ValueError(f"{path}: {e}") from None


class ProfileCatalog:
    """The profiles a session on a workspace can use, read from disk when asked (so edits
    apply to the next turn)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory

    def _files(self, workspace: str | None) -> list[Path]:
        dirs = [self.directory] if self.directory is not None else []
        if workspace:
            dirs.append(Path(workspace) / WORKSPACE_DIR)
        return [
            p for d in dirs if d.is_dir() for p in sorted(d.iterdir())
            if p.suffix in (".json", ".toml") and p.is_file()
        ]  # fmt: skip

    def all(self, workspace: str | None = None) -> list[AgentProfile]:
        found = {DEFAULT.name: DEFAULT}
        for path in self._files(workspace):
            try:
                profile = parse(path)
            except (OSError, ValueError) as e:
                log.warning("skipping agent profile: %s", e)
                continue
            found[profile.name] = profile
        return sorted(found.values(), key=lambda p: (p.name != "default", p.name))

    def get(self, name: str, workspace: str | None = None) -> AgentProfile:
        name = name or DEFAULT.name
        chosen = DEFAULT if name == DEFAULT.name else None
        for path in self._files(workspace):
            try:
                profile = parse(path)
            except (OSError, ValueError) as e:
                if path.stem == name:
                    raise FailedPrecondition(f"agent profile {name!r} is broken: {e}") from e
                continue
            if profile.name == name:
                chosen = profile
        if chosen is None:
            raise NotFound(f"agent profile {name!r} not found")
        return chosen
