"""Server configuration: defaults, environment (KODAD_*), then command-line flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from kodad.engine.manager import EngineSettings


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kodad"


@dataclass(frozen=True)
class ServerConfig:
    listen: str = "127.0.0.1:50051"
    data_dir: Path = field(default_factory=default_data_dir)
    engine: EngineSettings = field(default_factory=EngineSettings)
    shutdown_grace_s: float = 5.0
    max_message_bytes: int = 64 * 1024 * 1024

    @property
    def database(self) -> Path:
        return self.data_dir / "kodad.db"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServerConfig:
        env = dict(os.environ if env is None else env)
        defaults = cls()
        return cls(
            listen=env.get("KODAD_LISTEN") or defaults.listen,
            data_dir=Path(env["KODAD_DATA_DIR"])
            if env.get("KODAD_DATA_DIR")
            else defaults.data_dir,
        )
