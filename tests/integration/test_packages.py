"""Every SDK as its users get it: packed the way it is published, installed into a fresh
project outside the repository, type-checked, and its README quickstart (each SDK's own tests
check that the README shows exactly that program) run against a live service."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kodad_process import KodadProcess

REPOSITORY = Path(__file__).resolve().parents[2]
CLIENTS = REPOSITORY / "clients"
VERSION = (REPOSITORY / "VERSION").read_text().strip()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KodadProcess]:
    process = KodadProcess(tmp_path_factory.mktemp("data"))
    yield process
    process.close()


def run(*command: str | Path, cwd: Path, timeout: float = 600) -> str:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "npm_config_update_notifier": "false"},
    )  # fmt: skip
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def project(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A fresh project directory and a workspace, both outside the repository."""
    root, workspace = tmp_path / name, tmp_path / "workspace"
    root.mkdir()
    workspace.mkdir()
    assert not root.is_relative_to(REPOSITORY)
    return root, workspace


def test_typescript_from_npm_pack(service: KodadProcess, tmp_path: Path) -> None:
    packed = json.loads(run("npm", "pack", "--json", "--pack-destination", tmp_path,
                            cwd=CLIENTS / "typescript"))  # fmt: skip
    files = {f["path"] for f in packed[0]["files"]}
    assert {"dist/index.js", "dist/index.d.ts", "LICENSE", "package.json"} <= files
    assert not any(f.startswith(("dist/test", "src/", "test/", "build/")) for f in files)
    root, workspace = project(tmp_path, "ts-app")
    (root / "package.json").write_text(json.dumps({"name": "app", "private": True,
                                                   "type": "module"}))  # fmt: skip
    tarball = tmp_path / packed[0]["filename"]
    run("npm", "install", "--no-audit", "--no-fund", "--loglevel=error", tarball,
        "typescript@5.9.3", "@types/node@20.19.43", cwd=root)  # fmt: skip
    program = (CLIENTS / "typescript/examples/quickstart.ts").read_text()
    (root / "quickstart.ts").write_text(program.replace('"../src/index.js"', '"@kodad/client"'))
    (root / "tsconfig.json").write_text(json.dumps({"compilerOptions": {
        "target": "ES2023", "module": "NodeNext", "moduleResolution": "NodeNext",
        "strict": True, "types": ["node"]}, "files": ["quickstart.ts"]}))  # fmt: skip
    run("npx", "tsc", "-p", ".", cwd=root)
    out = run("node", "quickstart.js", service.address, workspace, cwd=root, timeout=60)
    assert "You said: hello from TypeScript" in out


def test_go_module_with_a_replace(service: KodadProcess, tmp_path: Path) -> None:
    root, workspace = project(tmp_path, "go-app")
    module = "github.com/kodad/kodad/clients/go"
    run("go", "mod", "init", "example.com/app", cwd=root)
    run("go", "mod", "edit", f"-require={module}@v{VERSION}",
        f"-replace={module}={CLIENTS / 'go'}", cwd=root)  # fmt: skip
    shutil.copy(CLIENTS / "go/examples/quickstart/main.go", root / "main.go")
    run("go", "mod", "tidy", cwd=root)
    run("go", "vet", "./...", cwd=root)
    out = run("go", "run", ".", service.address, workspace, cwd=root, timeout=300)
    assert "You said: hello from Go" in out


def test_rust_crate_from_cargo_package(service: KodadProcess, tmp_path: Path) -> None:
    crate_dir = CLIENTS / "rust"
    run("cargo", "package", "--locked", "--allow-dirty", "--no-verify", cwd=crate_dir)
    crate = crate_dir / f"target/package/kodad-client-{VERSION}.crate"
    with tarfile.open(crate) as archive:
        names = archive.getnames()
        assert f"kodad-client-{VERSION}/LICENSE" in names
        archive.extractall(tmp_path, filter="data")
    root, workspace = project(tmp_path, "rust-app")
    (root / "src").mkdir()
    (root / "Cargo.toml").write_text(
        '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n'
        f'kodad-client = {{ path = "{tmp_path / f"kodad-client-{VERSION}"}" }}\n'
        'futures-util = "0.3"\n'
        'tokio = { version = "1", features = ["macros", "rt-multi-thread"] }\n'
    )
    shutil.copy(crate_dir / "examples/quickstart.rs", root / "src/main.rs")
    shutil.copy(
        crate_dir / "Cargo.lock", root / "Cargo.lock"
    )  # the versions the crate is tested with
    target = crate_dir / "target/package-test"  # kept between runs: the dependencies build once
    out = run("cargo", "run", "--quiet", "--target-dir", target, "--", service.address,
              workspace, cwd=root, timeout=900)  # fmt: skip
    assert "You said: hello from Rust" in out


def test_java_artifact_from_mvn_install(service: KodadProcess, tmp_path: Path) -> None:
    mvn = ("mvn", "-B", "-q", "--no-transfer-progress")
    run(*mvn, "install", "-DskipTests", cwd=CLIENTS / "java")  # into the local repository
    installed = Path.home() / f".m2/repository/dev/kodad/kodad-client/{VERSION}"
    for suffix in ("", "-sources", "-javadoc"):
        jar = installed / f"kodad-client-{VERSION}{suffix}.jar"
        assert jar.is_file(), jar
    assert (
        "dev/kodad/client/KodadClient.java"
        in zipfile.ZipFile(installed / f"kodad-client-{VERSION}-sources.jar").namelist()
    )
    root, workspace = project(tmp_path, "java-app")
    (root / "pom.xml").write_text(f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>example</groupId><artifactId>app</artifactId><version>1</version>
  <dependencies><dependency>
    <groupId>dev.kodad</groupId><artifactId>kodad-client</artifactId><version>{VERSION}</version>
  </dependency></dependencies>
</project>
""")
    run(*mvn, "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:build-classpath",
        "-Dmdep.outputFile=classpath.txt", cwd=root)  # fmt: skip
    classpath = (root / "classpath.txt").read_text().strip()
    source = (CLIENTS / "java/src/test/java/dev/kodad/client/Quickstart.java").read_text()
    source = source.replace(
        "package dev.kodad.client;",
        "package example;\n\nimport dev.kodad.client.Handlers;\n"
        "import dev.kodad.client.KodadClient;\nimport dev.kodad.client.Turn;",
    )
    (root / "Quickstart.java").write_text(source)
    run("javac", "-Xlint:all", "-Werror", "-cp", classpath, "-d", root / "out",
        root / "Quickstart.java", cwd=root)  # fmt: skip
    out = run("java", "-cp", f"{root / 'out'}:{classpath}", "example.Quickstart",
              service.address, workspace, cwd=root, timeout=120)  # fmt: skip
    assert "You said: hello from Java" in out


def python_example(address: str) -> str:
    readme = (REPOSITORY / "README.md").read_text().split("## Python client", 1)[1]
    return readme.split("```python\n", 1)[1].split("```", 1)[0].replace("127.0.0.1:50051", address)


def test_python_client_alone_in_a_fresh_virtualenv(service: KodadProcess, tmp_path: Path) -> None:
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", tmp_path,
        REPOSITORY / "clients/python", cwd=tmp_path)  # fmt: skip
    (wheel,) = tmp_path.glob("kodad_client-*.whl")
    root, workspace = project(tmp_path, "py-app")
    run(sys.executable, "-m", "venv", root / "venv", cwd=root)
    python = root / "venv/bin/python"
    run(python, "-m", "pip", "install", "--quiet", wheel, cwd=root)
    installed = json.loads(run(python, "-m", "pip", "list", "--format=json", cwd=root))
    names = {p["name"].lower().replace("_", "-") for p in installed} - {"pip", "setuptools"}
    light = {"kodad-client", "grpcio", "protobuf", "googleapis-common-protos", "typing-extensions"}
    assert "kodad-client" in names and names <= light, names  # nothing of the server
    (root / "example.py").write_text(python_example(service.address))
    out = run(python, root / "example.py", cwd=workspace, timeout=120)
    assert out.strip() == "You said: add a README"


def test_python_service_wheel_with_its_client(tmp_path: Path) -> None:
    for where in (REPOSITORY, REPOSITORY / "clients/python"):
        run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
            tmp_path, where, cwd=tmp_path)  # fmt: skip
    root, workspace = project(tmp_path, "py-service")
    run(sys.executable, "-m", "venv", root / "venv", cwd=root)
    python = root / "venv/bin/python"
    run(python, "-m", "pip", "install", "--quiet", *tmp_path.glob("*.whl"), cwd=root)
    service = KodadProcess(tmp_path / "data", python=str(python))
    try:
        (root / "example.py").write_text(python_example(service.address))
        out = run(python, root / "example.py", cwd=workspace, timeout=120)
    finally:
        service.close()
    assert out.strip() == "You said: add a README"
