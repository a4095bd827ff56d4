"""The engine's settings, fixed when the service starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kodad.domain.access import Limits, ProviderKeys
from kodad.domain.model import ProviderConfig
from kodad.engine.budget import PriceTable
from kodad.engine.snapshots import Limits as SnapshotLimits
from kodad.tools.sandbox import Sandbox


@dataclass(frozen=True)
class EngineSettings:
    default_loop_cap: int = 50
    tool_output_limit: int = 256 * 1024
    # How much of a call's output streams (and is stored) before only its last 64 KiB do.
    tool_stream_limit: int = 1024 * 1024
    default_provider: ProviderConfig = field(default_factory=ProviderConfig)
    default_context_window: int = 128_000
    limits: Limits = field(default_factory=Limits)
    profiles_dir: Path | None = None
    # Where sessions' processes run (bash, MCP stdio servers); unconfined without one.
    sandbox: Sandbox = field(default_factory=lambda: Sandbox(None))
    # Sessions of admin callers may use SandboxPolicy.FULL_ACCESS (--allow-full-access).
    allow_full_access: bool = False
    # The API key variables sessions may name, each bound to a host (--provider-key-env);
    # the default provider's own key is added to them.
    provider_keys: ProviderKeys = field(default_factory=ProviderKeys)
    # Workspaces whose profiles' MCP servers start without asking (--trust-workspace).
    trusted_workspaces: tuple[Path, ...] = ()
    # What models' tokens cost (--prices), for usage costs and cost budgets.
    prices: PriceTable = field(default_factory=PriceTable)
    # Where workspace checkpoints are kept (--snapshot-dir); None: no checkpoints.
    snapshot_dir: Path | None = None
    # What one checkpoint keeps: files up to a size, new bytes up to a total (the rest is
    # reported as skipped and left alone by rewinds).
    snapshot_limits: SnapshotLimits = field(default_factory=SnapshotLimits)
