"""Confines tool paths to a session's workspace directory."""

from __future__ import annotations

from pathlib import Path

from kodad.tools.errors import ToolError


class Workspace:
    """A directory tools may touch. Paths resolve through symlinks before the check."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def resolve(self, path: str) -> Path:
        """The absolute path for `path` (relative to the root, or absolute inside it).

        Raises ToolError when it, or a symlink on the way, leads outside the workspace.
        """
        if not path:
            raise ToolError("path must not be empty")
        if "\x00" in path:
            raise ToolError("path must not contain NUL characters")
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = self.root / candidate
        resolved = candidate.resolve()
        if resolved != self.root and not resolved.is_relative_to(self.root):
            raise ToolError(f"path {path!r} is outside the workspace {self.root}")
        return resolved

    def relative(self, path: Path) -> str:
        """`path` relative to the root, with "/" separators ("." for the root itself)."""
        return path.relative_to(self.root).as_posix() or "."
