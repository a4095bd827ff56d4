"""The agent's tools, each confined to the session's workspace."""

from kodad.tools.base import (
    Tool,
    ToolContext,
    ToolKind,
    ToolOutcome,
    ToolRegistry,
    default_registry,
)
from kodad.tools.errors import ToolError
from kodad.tools.workspace import Workspace

__all__ = [
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolKind",
    "ToolOutcome",
    "ToolRegistry",
    "Workspace",
    "default_registry",
]
