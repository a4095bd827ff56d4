"""The README's Python example, run as a file (as a reader would) against a live service."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import readme_transcript
from tests.kodad_process import KodadProcess

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[KodadProcess]:
    process = KodadProcess(tmp_path / "data")
    yield process
    process.close()


def test_the_python_example_runs_as_a_file(service: KodadProcess, tmp_path: Path) -> None:
    section = README.read_text().split("## Python client", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S)
    assert example, "the README's Python client section has no python block"
    code = example.group(1).replace("127.0.0.1:50051", service.address)
    script = tmp_path / "example.py"
    script.write_text(code)
    workspace = tmp_path / "repo"
    workspace.mkdir()
    done = subprocess.run(
        [sys.executable, str(script)], cwd=workspace, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "You said: add a README"  # the offline echo provider


def test_the_grpcurl_transcript_is_a_real_run(service: KodadProcess, tmp_path: Path) -> None:
    readme = README.read_text()
    workspace = tmp_path / "demo"
    workspace.mkdir()
    ran = asyncio.run(readme_transcript.transcript(service.address, workspace, readme))
    assert (workspace / "hello.txt").read_text() == "hi\n"  # what the README says it does
    shown = readme_transcript.documented(readme)
    assert readme_transcript.comparable(shown) == readme_transcript.comparable(ran), (
        "the README's RunTurn transcript is not what the service sends; regenerate it with "
        "`python -m tests.readme_transcript`:\n" + "\n".join(ran)
    )
