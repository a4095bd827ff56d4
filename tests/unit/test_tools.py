"""The tools, each against a real temporary workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kodad.domain.model import FileChangeKind
from kodad.tools import ToolContext, ToolError, ToolOutcome, Workspace, default_registry
from kodad.tools.base import Args
from kodad.tools.shell import command_env
from tests.helpers import exits

TOOLS = default_registry()


def context(root: Path, limit: int = 10_000) -> tuple[ToolContext, list[str]]:
    chunks: list[str] = []
    return ToolContext(
        Workspace(root), output_limit=limit, emit_output=lambda chunk, omitted: chunks.append(chunk)
    ), chunks


async def run(
    root: Path, tool: str, output_limit: int = 10_000, **args: Any
) -> tuple[ToolOutcome, ToolContext, list[str]]:
    ctx, chunks = context(root, output_limit)
    found = TOOLS.get(tool)
    assert found is not None
    return await found.run(Args(json.dumps(args)), ctx), ctx, chunks


async def fails(root: Path, tool: str, fragment: str, **args: Any) -> None:
    with pytest.raises(ToolError, match=fragment):
        await run(root, tool, **args)


class TestWorkspace:
    def test_relative_and_inside_absolute_paths_resolve(self, tmp_path: Path) -> None:
        ws = Workspace(tmp_path)
        assert ws.resolve("a/b.txt") == tmp_path.resolve() / "a" / "b.txt"
        assert ws.resolve(str(tmp_path / "c")) == tmp_path.resolve() / "c"
        assert ws.resolve(".") == tmp_path.resolve()

    @pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "/"])
    def test_escapes_are_refused(self, tmp_path: Path, path: str) -> None:
        with pytest.raises(ToolError, match="outside the workspace"):
            Workspace(tmp_path / "ws").resolve(path)

    def test_symlink_leading_out_is_refused(self, tmp_path: Path) -> None:
        root = tmp_path / "ws"
        root.mkdir()
        (tmp_path / "secret").write_text("s")
        (root / "link").symlink_to(tmp_path / "secret")
        (root / "dirlink").symlink_to(tmp_path)
        ws = Workspace(root)
        for path in ("link", "dirlink/secret"):
            with pytest.raises(ToolError, match="outside the workspace"):
                ws.resolve(path)

    def test_empty_and_nul_paths(self, tmp_path: Path) -> None:
        with pytest.raises(ToolError, match="must not be empty"):
            Workspace(tmp_path).resolve("")
        with pytest.raises(ToolError, match="NUL"):
            Workspace(tmp_path).resolve("a\x00b")


class TestFiles:
    async def test_read_file_with_offset_and_limit(self, tmp_path: Path) -> None:
        (tmp_path / "f.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
        out, _, _ = await run(tmp_path, "read_file", path="f.txt")
        assert out.output.startswith("line 1\n") and not out.truncated
        out, _, _ = await run(tmp_path, "read_file", path="f.txt", offset=3, limit=2)
        assert out.output == "line 3\nline 4\n\n[6 more lines; read on with offset=5]"
        assert out.truncated

    async def test_read_file_errors(self, tmp_path: Path) -> None:
        (tmp_path / "bin").write_bytes(b"\x00\x01")
        (tmp_path / "d").mkdir()
        await fails(tmp_path, "read_file", "no such file", path="missing")
        await fails(tmp_path, "read_file", "binary", path="bin")
        await fails(tmp_path, "read_file", "is a directory", path="d")
        await fails(tmp_path, "read_file", "missing required argument 'path'")
        await fails(tmp_path, "read_file", "must be an integer", path="d", offset="x")
        await fails(tmp_path, "read_file", "at least 1", path="d", offset=0)

    async def test_write_file_creates_then_modifies(self, tmp_path: Path) -> None:
        out, ctx, _ = await run(tmp_path, "write_file", path="new/dir/a.txt", content="héllo")
        assert out.output == "Created new/dir/a.txt (6 bytes)"
        assert ctx.changes == [("new/dir/a.txt", FileChangeKind.CREATED)]
        out, ctx, _ = await run(tmp_path, "write_file", path="new/dir/a.txt", content="bye")
        assert ctx.changes == [("new/dir/a.txt", FileChangeKind.MODIFIED)]
        out, ctx, _ = await run(tmp_path, "write_file", path="new/dir/a.txt", content="bye")
        assert ctx.changes == [] and "nothing written" in out.output
        assert (tmp_path / "new/dir/a.txt").read_text() == "bye"

    async def test_edit_file_needs_a_unique_match(self, tmp_path: Path) -> None:
        f = tmp_path / "e.py"
        f.write_text("a = 1\nb = 1\n")
        await fails(
            tmp_path, "edit_file", "occurs 2 times", path="e.py", old_string="1", new_string="2"
        )
        await fails(
            tmp_path, "edit_file", "was not found", path="e.py", old_string="zzz", new_string="2"
        )
        await fails(
            tmp_path, "edit_file", "must not be empty", path="e.py", old_string="", new_string="2"
        )
        out, ctx, _ = await run(
            tmp_path, "edit_file", path="e.py", old_string="a = 1", new_string="a = 3"
        )
        assert f.read_text() == "a = 3\nb = 1\n"
        assert ctx.changes == [("e.py", FileChangeKind.MODIFIED)]
        out, _, _ = await run(
            tmp_path, "edit_file", path="e.py", old_string=" = ", new_string="=", replace_all=True
        )
        assert out.output == "Replaced 2 occurrences in e.py"
        assert f.read_text() == "a=3\nb=1\n"

    async def test_delete_file(self, tmp_path: Path) -> None:
        (tmp_path / "x").write_text("x")
        (tmp_path / "d").mkdir()
        _, ctx, _ = await run(tmp_path, "delete_file", path="x")
        assert not (tmp_path / "x").exists()
        assert ctx.changes == [("x", FileChangeKind.DELETED)]
        await fails(tmp_path, "delete_file", "no such file", path="x")
        await fails(tmp_path, "delete_file", "is a directory", path="d")

    async def test_list_dir(self, tmp_path: Path) -> None:
        (tmp_path / "b.txt").write_text("")
        (tmp_path / "a").mkdir()
        out, _, _ = await run(tmp_path, "list_dir")
        assert out.output == "a/\nb.txt"
        out, _, _ = await run(tmp_path, "list_dir", path="a")
        assert out.output == "(empty directory)"
        await fails(tmp_path, "list_dir", "not a directory", path="b.txt")


class TestSearch:
    @pytest.fixture
    def tree(self, tmp_path: Path) -> Path:
        for rel, text in {
            "src/main.py": "def main():\n    return 42\n",
            "src/util/helpers.py": "def helper():\n    pass\n",
            "README.md": "# main project\n",
            ".git/config": "def main(): secret\n",
        }.items():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text(text)
        return tmp_path

    async def test_glob(self, tree: Path) -> None:
        out, _, _ = await run(tree, "glob", pattern="**/*.py")
        assert out.output == "src/main.py\nsrc/util/helpers.py"
        out, _, _ = await run(tree, "glob", pattern="*.md")
        assert out.output == "README.md"
        out, _, _ = await run(tree, "glob", pattern="*.rs")
        assert out.output == "no files match"
        await fails(tree, "glob", "without '..'", pattern="../*")

    async def test_grep(self, tree: Path) -> None:
        out, _, _ = await run(tree, "grep", pattern=r"def \w+")
        assert out.output == "src/main.py:1: def main():\nsrc/util/helpers.py:1: def helper():"
        out, _, _ = await run(tree, "grep", pattern="main", include="*.md")
        assert out.output == "README.md:1: # main project"
        out, _, _ = await run(tree, "grep", pattern="return", path="src/main.py")
        assert out.output == "src/main.py:2:     return 42"
        await fails(tree, "grep", "invalid regular expression", pattern="(")
        await fails(tree, "grep", "outside the workspace", pattern="x", path="..")


class TestBash:
    async def test_output_is_streamed_and_returned(self, tmp_path: Path) -> None:
        out, _, chunks = await run(tmp_path, "bash", command="echo one; echo two >&2; pwd")
        assert out.output == f"one\ntwo\n{tmp_path.resolve()}\n"
        assert "".join(chunks) == out.output
        assert not out.is_error

    async def test_exit_code_is_an_error(self, tmp_path: Path) -> None:
        out, _, _ = await run(tmp_path, "bash", command="echo bad; exit 3")
        assert out.is_error and out.output == "bad\n\n[exit code 3]"

    async def test_output_cap_truncates_but_streams_all(self, tmp_path: Path) -> None:
        out, _, chunks = await run(
            tmp_path, "bash", output_limit=100, command="head -c 5000 /dev/zero | tr '\\0' x"
        )
        assert out.truncated and out.output == "x" * 100
        assert len("".join(chunks)) == 5000

    async def test_past_the_stream_limit_only_the_tail_streams(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from kodad.tools import base

        monkeypatch.setattr(base, "STREAM_TAIL", 300)
        streamed: list[tuple[str, int]] = []
        ctx = ToolContext(
            Workspace(tmp_path),
            output_limit=100,
            stream_limit=1000,
            emit_output=lambda chunk, omitted: streamed.append((chunk, omitted)),
        )
        bash = TOOLS.get("bash")
        assert bash is not None
        command = "seq 1 100000"  # 588,895 characters
        out = await bash.run(Args(json.dumps({"command": command})), ctx)
        full = "".join(f"{i}\n" for i in range(1, 100_001))
        assert out.truncated and out.output == full[:100]  # what the model gets is unchanged
        head = "".join(chunk for chunk, _ in streamed[:-1])
        tail, omitted = streamed[-1]
        assert head == full[:1000] and all(o == 0 for _, o in streamed[:-1])
        assert tail == full[-300:] and omitted == len(full) - 1300

    async def test_timeout_kills_the_process_group(self, tmp_path: Path) -> None:
        pidfile = tmp_path / "child"
        out, _, _ = await run(
            tmp_path, "bash", timeout_s=1, command=f"sleep 300 & echo $! > {pidfile}; wait"
        )
        assert out.is_error and "[killed after 1 s timeout]" in out.output
        assert exits(int(pidfile.read_text()))

    async def test_background_children_do_not_outlive_the_call(self, tmp_path: Path) -> None:
        pidfile = tmp_path / "child"
        out, _, _ = await run(
            tmp_path, "bash", command=f"sleep 300 >/dev/null 2>&1 & echo $! > {pidfile}"
        )
        assert not out.is_error
        assert exits(int(pidfile.read_text()))

    async def test_bad_arguments(self, tmp_path: Path) -> None:
        await fails(tmp_path, "bash", "must not be empty", command="  ")
        await fails(tmp_path, "bash", "timeout_s must be between", command="true", timeout_s=0)

    def test_secrets_are_not_passed_to_commands(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
        monkeypatch.setenv("GITHUB_TOKEN", "t")
        monkeypatch.setenv("HARMLESS", "h")
        env = command_env()
        assert "OPENAI_API_KEY" not in env and "GITHUB_TOKEN" not in env
        assert env["HARMLESS"] == "h"


def test_args_reject_non_objects() -> None:
    with pytest.raises(ToolError, match="must be a JSON object"):
        Args("[1]")
    with pytest.raises(ToolError, match="must be a boolean"):
        Args('{"x": 1}').boolean("x", False)
