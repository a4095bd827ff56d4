"""What the Python package promises its users: importing it changes nothing in the host
process, and one version names the contract, the service and every SDK."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import kodad
from kodad.client import CONTRACT_VERSION

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_client_leaves_the_environment_alone() -> None:
    code = (
        "import os; before = dict(os.environ); import kodad, kodad.client; "
        "print(dict(os.environ) == before)"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "True", done.stderr


def test_one_version_for_the_contract_the_service_and_every_sdk() -> None:
    version = (ROOT / "VERSION").read_text().strip()
    clients = ROOT / "clients"
    found = {
        "kodad.__version__": kodad.__version__,
        "kodad.client.CONTRACT_VERSION": CONTRACT_VERSION,
        "kodad-client": tomllib.loads((clients / "python/pyproject.toml").read_text())["project"][
            "version"
        ],
        "kodad's kodad-client": next(
            d.split("==")[1]
            for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
            if d.startswith("kodad-client==")
        ),
        "typescript": json.loads((clients / "typescript/package.json").read_text())["version"],
        "rust": tomllib.loads((clients / "rust/Cargo.toml").read_text())["package"]["version"],
        "java": re.search(
            r"<artifactId>kodad-client</artifactId>\s*<version>([^<]+)</version>",
            (clients / "java/pom.xml").read_text(),
        ).group(1),  # type: ignore[union-attr]
        "go": re.search(
            r'const ContractVersion = "([^"]+)"', (clients / "go/kodad.go").read_text()
        ).group(1),  # type: ignore[union-attr]
    }
    constants = {
        "typescript": (clients / "typescript/src/index.ts", r'CONTRACT_VERSION = "([^"]+)"'),
        "rust": (clients / "rust/src/lib.rs", r'CONTRACT_VERSION: &str = "([^"]+)"'),
        "java": (
            clients / "java/src/main/java/dev/kodad/client/KodadClient.java",
            r'CONTRACT_VERSION = "([^"]+)"',
        ),
    }
    for sdk, (path, pattern) in constants.items():
        found[f"{sdk} CONTRACT_VERSION"] = re.search(pattern, path.read_text()).group(1)  # type: ignore[union-attr]
    assert found == dict.fromkeys(found, version)
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {version}" in changelog, "CHANGELOG.md has no section for this version"
