"""kodad as an installed command: the wheel carries everything, and the `kodad` command runs
outside the repository with its data under the XDG directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def test_the_wheels_carry_the_generated_code_and_the_command(tmp_path: Path) -> None:
    for project in (REPOSITORY, REPOSITORY / "clients/python"):
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--wheel-dir", str(tmp_path), str(project)],
            check=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
    (server,) = tmp_path.glob("kodad-*.whl")
    (client,) = tmp_path.glob("kodad_client-*.whl")
    names = zipfile.ZipFile(server).namelist()
    assert "kodad/server.py" in names and "kodad/py.typed" in names
    assert not [n for n in names if n.startswith(("kodad/client/", "kodad/gen/"))]  # the client's
    client_names = zipfile.ZipFile(client).namelist()
    for needed in ("kodad/gen/koda/v1/session_service_pb2_grpc.py", "kodad/client/py.typed",
                   "kodad/gen/koda/v1/engine_pb2.pyi", "kodad/gen/koda/v1/koda.binpb",
                   "kodad/client/turn.py"):  # fmt: skip
        assert needed in client_names, needed
    assert "kodad/__init__.py" not in client_names  # a portion of the kodad namespace
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "kodad = kodad.__main__:main" in zipfile.ZipFile(server).read(entry_points).decode()


def test_the_command_runs_anywhere_with_xdg_data(tmp_path: Path) -> None:
    kodad = Path(sys.executable).parent / "kodad"
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KODAD_", "XDG_"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(tmp_path / "xdg-data"))
    child = subprocess.Popen(
        [str(kodad), "serve", "--listen", "127.0.0.1:0", "--ready-json", "--exit-with-parent"],
        cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    ready = json.loads(child.stdout.readline())
    assert ready["version"]
    child.stdin.close()
    assert child.wait(timeout=30) == 0
    assert (tmp_path / "xdg-data" / "kodad" / "kodad.db").is_file()
