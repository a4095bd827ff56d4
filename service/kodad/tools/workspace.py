"""Confines tool paths to a session's workspace directory, without races.

Every file a tool touches is opened by the kernel relative to the workspace's directory with
`openat2(RESOLVE_BENEATH)`: a symlink or `..` at any depth that leads out fails, also when
the path is swapped for a symlink while the tool runs (there is no check-then-open window).
On kernels without openat2, each component is opened with O_NOFOLLOW instead, refusing every
symlink. Files with more than one hard link are refused: a link may name a file outside.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from kodad.tools.errors import ToolError

_SYS_OPENAT2 = 437  # the same number on x86_64 and aarch64
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_openat2_works = True


def _openat2(dir_fd: int, path: str, flags: int, mode: int) -> int:
    """openat2(dir_fd, path, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS); OSError(ENOSYS)
    where the kernel has no openat2."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0, _RESOLVE_BENEATH
                   | _RESOLVE_NO_MAGICLINKS)  # fmt: skip
    fd = _libc.syscall(
        ctypes.c_long(_SYS_OPENAT2),
        ctypes.c_int(dir_fd),
        ctypes.c_char_p(os.fsencode(path)),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), path)
    return int(fd)


def _walk_open(dir_fd: int, path: str, flags: int, mode: int) -> int:
    """The same without openat2: component by component, no symlink followed."""
    parts = [p for p in path.split("/") if p and p != "."]
    if any(p == ".." for p in parts):
        raise OSError(errno.EXDEV, "'..' is not followed", path)
    fd = os.dup(dir_fd)
    try:
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except NotADirectoryError:
                if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise OSError(errno.ELOOP, "a symbolic link is not followed", path) from None
                raise
            os.close(fd)
            fd = next_fd
        last = parts[-1] if parts else "."
        opened = os.open(last, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)
        if stat.S_ISLNK(os.fstat(opened).st_mode):  # O_PATH | O_NOFOLLOW opens the link
            os.close(opened)
            raise OSError(errno.ELOOP, "a symbolic link is not followed", path)
        return opened
    finally:
        os.close(fd)


class Workspace:
    """A directory tools may touch."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    # Paths

    def relative_path(self, path: str) -> str:
        """`path` (relative to the root, or absolute inside it) relative to the root; "."
        for the root. Checks the spelling only: opening it is what follows links."""
        if not path:
            raise ToolError("path must not be empty")
        if "\x00" in path:
            raise ToolError("path must not contain NUL characters")
        candidate = Path(path)
        if candidate.is_absolute():
            normal = Path(os.path.normpath(candidate))
            if normal != self.root and not normal.is_relative_to(self.root):
                raise ToolError(f"path {path!r} is outside the workspace {self.root}")
            return normal.relative_to(self.root).as_posix() or "."
        normal_text = os.path.normpath(path)
        if normal_text == ".." or normal_text.startswith("../"):
            raise ToolError(f"path {path!r} is outside the workspace {self.root}")
        return normal_text

    def resolve(self, path: str) -> Path:
        """The absolute path for `path`, for showing and recording. Raises ToolError when it,
        or a symlink on the way, leads outside the workspace now (the file operations below
        check again, atomically, when they open it)."""
        rel = self.relative_path(path)
        try:
            resolved = (self.root / rel).resolve()
        except OSError as e:  # a link swapped for a file while it was being read
            raise ToolError(f"path {path!r} changed while it was resolved: {e.strerror}") from None
        if resolved != self.root and not resolved.is_relative_to(self.root):
            raise ToolError(f"path {path!r} is outside the workspace {self.root}")
        return resolved

    def relative(self, path: Path) -> str:
        """`path` relative to the root, with "/" separators ("." for the root itself)."""
        return path.relative_to(self.root).as_posix() or "."

    # Race-free file operations

    @contextlib.contextmanager
    def _root_fd(self) -> Iterator[int]:
        fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        """A file descriptor for `path`, opened beneath the root; ToolError when the path
        leads out of the workspace. Other OSErrors (ENOENT, EISDIR, …) pass through."""
        global _openat2_works
        rel = self.relative_path(path)
        with self._root_fd() as root:
            try:
                if _openat2_works:
                    try:
                        return _openat2(root, rel, flags, mode)
                    except OSError as e:
                        if e.errno != errno.ENOSYS:
                            raise
                        _openat2_works = False
                return _walk_open(root, rel, flags, mode)
            except OSError as e:
                if e.errno in (errno.EXDEV, errno.ELOOP):
                    raise ToolError(
                        f"path {path!r} leads outside the workspace {self.root} (through a "
                        "symbolic link or '..'); refused"
                    ) from None
                raise

    def stat(self, path: str) -> os.stat_result | None:
        """What `path` is (links inside the workspace followed), None when it is missing."""
        try:
            fd = self.open(path, os.O_PATH)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def is_dir(self, path: str) -> bool:
        st = self.stat(path)
        return st is not None and stat.S_ISDIR(st.st_mode)

    @staticmethod
    def _check_single_link(st: os.stat_result, shown: str) -> None:
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            raise ToolError(
                f"{shown} has {st.st_nlink} hard links; a hard link may name a file outside "
                "the workspace, so it is refused"
            )

    def read_bytes(self, path: str, limit: int) -> bytes:
        """The content of the regular file `path`; ToolError when it is missing, not a
        regular file, hard-linked, or larger than `limit` bytes."""
        try:
            fd = self.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise ToolError(f"{path}: no such file") from None
        except NotADirectoryError:
            raise ToolError(f"{path}: no such file") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            if stat.S_ISDIR(st.st_mode):
                raise ToolError(f"{path} is a directory; use list_dir")
            raise ToolError(f"{path} is not a regular file")
        with os.fdopen(fd, "rb") as f:
            self._check_single_link(st, path)
            if st.st_size > limit:
                raise ToolError(f"{path} is larger than {limit} bytes")
            return f.read(limit + 1)[:limit]

    def _make_parents(self, rel: str) -> None:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            st = self.stat(prefix)
            if st is not None:
                if not stat.S_ISDIR(st.st_mode):
                    raise ToolError(f"{prefix} is not a directory")
                continue
            parent = "/".join(parts[: i - 1]) or "."
            fd = self.open(parent, os.O_PATH | os.O_DIRECTORY)
            try:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(parts[i - 1], 0o755, dir_fd=fd)
            finally:
                os.close(fd)

    def make_parents(self, path: str) -> None:
        """Creates the missing directories above `path`, beneath the root."""
        self._make_parents(self.relative_path(path))

    def write_bytes(self, path: str, data: bytes) -> bool:
        """Creates or overwrites the regular file `path` (parents created); True when it
        existed. ToolError for a directory, a hard-linked file or a path leading out."""
        rel = self.relative_path(path)
        if rel == ".":
            raise ToolError(f"{path} is a directory")
        self._make_parents(rel)
        flags = os.O_WRONLY | os.O_NONBLOCK
        try:
            try:
                fd, existed = self.open(rel, flags | os.O_CREAT | os.O_EXCL, 0o644), False
            except FileExistsError:
                fd, existed = self.open(rel, flags), True
        except IsADirectoryError:
            raise ToolError(f"{path} is a directory") from None
        with os.fdopen(fd, "wb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ToolError(f"{path} is not a regular file")
            self._check_single_link(st, path)
            os.ftruncate(f.fileno(), 0)
            f.write(data)
        return existed

    def unlink(self, path: str) -> None:
        """Deletes the file (or symlink) `path` itself; ToolError for a directory or a
        missing file."""
        rel = self.relative_path(path)
        parent, _, name = rel.rpartition("/")
        if name in ("", ".", ".."):
            raise ToolError(f"{path} is a directory; delete_file removes files only")
        try:
            fd = self.open(parent or ".", os.O_PATH | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            raise ToolError(f"{path}: no such file") from None
        try:
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                raise ToolError(f"{path}: no such file") from None
            if stat.S_ISDIR(st.st_mode):
                raise ToolError(f"{path} is a directory; delete_file removes files only")
            os.unlink(name, dir_fd=fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def directory(self, path: str) -> Iterator[int]:
        """A descriptor of the directory `path` (for scandir / fwalk); ToolError when it is
        not one."""
        try:
            fd = self.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            raise ToolError(f"{path} is not a directory") from None
        try:
            yield fd
        finally:
            os.close(fd)


def read_regular(dir_fd: int, name: str, limit: int) -> bytes | None:
    """The content of `name` in `dir_fd` when it is a regular, singly linked file of at most
    `limit` bytes — never through a symlink; None otherwise (for walking tools)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)  # fmt: skip
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1 or st.st_size > limit:
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read(limit + 1)[:limit]
