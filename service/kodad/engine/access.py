"""Who is calling, what they may see, and the limits every caller shares."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kodad.engine.errors import PermissionDenied


@dataclass(frozen=True)
class Caller:
    """The identity a call runs as: its tenant, whether it is an admin (sees every tenant's
    sessions), and the directories its sessions may use (anywhere when empty)."""

    tenant: str = ""
    admin: bool = False
    workspace_roots: tuple[Path, ...] = ()

    def sees(self, tenant: str) -> bool:
        return self.admin or tenant == self.tenant

    def check_workspace(self, workspace: str) -> None:
        """PermissionDenied unless `workspace` (symlinks resolved) lies under a root."""
        if not self.workspace_roots:
            return
        real = Path(os.path.realpath(workspace))
        for root in self.workspace_roots:
            if real.is_relative_to(Path(os.path.realpath(root))):
                return
        roots = ", ".join(str(r) for r in self.workspace_roots)
        raise PermissionDenied(f"workspace {workspace} is outside the allowed roots ({roots})")


# In-process callers and a server without authentication: every session, any workspace.
LOCAL = Caller(admin=True)


@dataclass(frozen=True)
class Limits:
    """Configurable limits; hitting one is RESOURCE_EXHAUSTED naming it. 0 disables one."""

    sessions_per_tenant: int = 10_000
    turns: int = 256
    turns_per_tenant: int = 64
    input_bytes: int = 1024 * 1024
    watchers_per_session: int = 64
