"""Where kodad keeps a user's files when nothing else is configured (XDG base directories)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

_BASES = {"data": ("XDG_DATA_HOME", ".local/share"), "config": ("XDG_CONFIG_HOME", ".config")}


def user_dir(kind: Literal["data", "config"], env: Mapping[str, str] | None = None) -> Path:
    """kodad's directory under $XDG_DATA_HOME or $XDG_CONFIG_HOME (default ~/.local/share,
    ~/.config)."""
    env = os.environ if env is None else env
    variable, default = _BASES[kind]
    return Path(env.get(variable) or Path.home() / default) / "kodad"
