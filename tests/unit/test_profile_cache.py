"""Agent profiles are parsed again only when their files change (a turn's start stats them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kodad.domain.errors import NotFound
from kodad.engine import profiles
from kodad.engine.profiles import ProfileCatalog


def profile(path: Path, prompt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'name = "{path.stem}"\nsystem_prompt = "{prompt}"\n')


def test_a_changed_file_is_read_again_and_an_unchanged_one_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profiles, "_RECENT_NS", 0)  # no file counts as just written
    server, workspace = tmp_path / "profiles", tmp_path / "ws"
    profile(server / "ops.toml", "one")
    profile(workspace / ".kodad/agents/local.toml", "mine")
    catalog = ProfileCatalog(server)
    assert catalog.get("ops").system_prompt == "one"
    assert catalog.get("local", str(workspace)).system_prompt == "mine"

    parsed: list[Path] = []
    real = profiles.parse
    monkeypatch.setattr(
        profiles, "parse", lambda path, *a, **k: parsed.append(path) or real(path, *a, **k)
    )
    reads: list[str] = []
    real_read = Path.read_text
    monkeypatch.setattr(
        Path, "read_text", lambda self, *a, **k: reads.append(self.name) or real_read(self, *a, **k)
    )
    catalog.get("ops")
    catalog.get("local", str(workspace))
    assert reads == [] and parsed == []  # both kept: stamps unchanged

    profile(server / "ops.toml", "two, longer")  # another size and mtime
    assert catalog.get("ops").system_prompt == "two, longer"
    assert reads == ["ops.toml"]
    os.replace(workspace / ".kodad/agents/local.toml", tmp_path / "old.toml")
    profile(workspace / ".kodad/agents/local.toml", "mine")  # same text, another inode
    assert catalog.get("local", str(workspace)).system_prompt == "mine"


def test_a_file_written_just_now_is_never_taken_from_the_cache(tmp_path: Path) -> None:
    server = tmp_path / "profiles"
    catalog = ProfileCatalog(server)
    for prompt in ("aaa", "bbb", "ccc"):  # same size, maybe the same mtime tick
        profile(server / "ops.toml", prompt)
        assert catalog.get("ops").system_prompt == prompt


def test_a_kept_profile_swapped_for_a_hard_link_out_of_the_workspace_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profiles, "_RECENT_NS", 0)  # the cache is used from the first read
    workspace, outside = tmp_path / "ws", tmp_path / "secret.toml"
    agents = workspace / ".kodad/agents"
    profile(agents / "local.toml", "mine")
    catalog = ProfileCatalog(tmp_path / "none")
    assert catalog.get("local", str(workspace)).system_prompt == "mine"  # now kept
    outside.write_text('name = "local"\nsystem_prompt = "the host\'s secret"\n')
    (agents / "local.toml").unlink()
    os.link(outside, agents / "local.toml")  # an attacker's swap: a link to a file outside
    with pytest.raises(NotFound):  # neither the kept text nor the linked file is used
        catalog.get("local", str(workspace))


@pytest.mark.parametrize("link", [".kodad", ".kodad/agents"])
def test_profiles_behind_a_symlink_out_of_the_workspace_are_not_read(
    tmp_path: Path, link: str
) -> None:
    workspace, outside = tmp_path / "ws", tmp_path / "outside"
    target = outside / "agents" if link == ".kodad" else outside
    profile(target / "planted.toml", "obey the file")
    (workspace / link).parent.mkdir(parents=True, exist_ok=True)
    (workspace / link).symlink_to(outside)
    # A plain lookup finds the directory; reading beneath the workspace refuses the link.
    assert (workspace / ".kodad/agents/planted.toml").is_file()
    with pytest.raises(NotFound):
        ProfileCatalog(None).get("planted", str(workspace))
