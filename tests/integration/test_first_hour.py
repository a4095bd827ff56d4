"""A new user's first command: `make serve` on a fresh clone, with nothing but Python, make
and the system's tools on PATH (no Go, Node, Java or Rust), serves and answers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]
# Toolchains `make serve` must not need.
TOOLCHAINS = {
    "go", "gofmt", "node", "nodejs", "npm", "npx", "corepack", "java", "javac", "jar", "mvn",
    "cargo", "rustc", "rustup", "protoc", "buf",
}  # fmt: skip


def _python_only_path(bin_dir: Path) -> str:
    """A PATH of one directory: the system's programs without the toolchains, and Python."""
    bin_dir.mkdir()
    for system in (Path("/usr/bin"), Path("/bin")):
        for program in system.iterdir():
            link = bin_dir / program.name
            if program.name not in TOOLCHAINS and not link.exists():
                link.symlink_to(program)
    python = (
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    )
    for name in ("python3", "python"):
        (bin_dir / name).unlink(missing_ok=True)
        (bin_dir / name).symlink_to(python)
    return str(bin_dir)


@pytest.mark.timeout(600)
def test_make_serve_on_a_fresh_clone_needs_only_python(tmp_path: Path) -> None:
    clone = tmp_path / "kodad"
    if (REPO / ".git").exists():
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    else:  # a copy of a checkout: what it holds, without what set-up made
        made = shutil.ignore_patterns(
            ".venv", "node_modules", "target", "dist", "bin", "*.egg-info"
        )
        shutil.copytree(REPO, clone, ignore=made)
    env = {
        "PATH": _python_only_path(tmp_path / "bin"),
        "HOME": os.environ.get("HOME", str(tmp_path)),  # pip's cache
        "KODAD_LISTEN": "127.0.0.1:0",
        "KODAD_DATA_DIR": str(tmp_path / "data"),
        "LANG": "C.UTF-8",
    }
    serve = subprocess.Popen(
        ["make", "serve"], cwd=clone, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        output = []
        for line in serve.stdout:
            output.append(line)
            if match := re.search(r"serving on (\S+)", line):
                address = match.group(1)
                break
        else:
            raise AssertionError(f"make serve exited {serve.wait()}:\n{''.join(output)}")
        with grpc.insecure_channel(address) as channel:
            info = pb_grpc.SessionServiceStub(channel).GetServerInfo(pb.GetServerInfoRequest())
        assert info.version
        assert not (clone / "node_modules").exists() and not (clone / "tools" / "bin").exists()
    finally:
        serve.terminate()
        serve.wait(timeout=60)
