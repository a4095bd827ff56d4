"""The agent's tools, each confined to the session's workspace."""

from kodad.tools.base import ApprovalScope, BuiltinTool, Tool, ToolContext, ToolKind, ToolOutcome
from kodad.tools.errors import ToolError
from kodad.tools.registry import ToolRegistry, default_registry
from kodad.tools.workspace import Workspace

__all__ = [
    "ApprovalScope",
    "BuiltinTool",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolKind",
    "ToolOutcome",
    "ToolRegistry",
    "Workspace",
    "default_registry",
]
