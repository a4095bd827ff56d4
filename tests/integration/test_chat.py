"""`kodad chat` driven in a pseudo-terminal against a live service: approve, approve
always, reject with feedback, cancel a turn with Ctrl-C, slash commands, resume, exit."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from kodad.client import Client
from kodad.gen.koda.v1 import session_pb2 as spb
from tests.kodad_process import KodadProcess


def screen(text: str) -> str:
    """A pattern for `text` as it appears on the terminal: escape codes may stand between
    its words (styles, cursor moves)."""
    codes = r"(?:\x1b\[[0-9;?]*[a-zA-Z]|\s)+"
    return codes.join(re.escape(word) for word in text.split())


# prompt_toolkit switches bracketed paste on when a prompt is ready for input.
PROMPT = "\x1b\\[\\?2004h"


def write(path: str, content: str) -> dict[str, object]:
    return {"tool_call": {"name": "write_file", "arguments": {"path": path, "content": content}}}


SCRIPT = {
    "rounds": [
        [
            {"thinking": "Plan: write the file."},
            {"text": "Creating **notes.md**.\n\n"},
            write("notes.md", "# Notes\n"),
        ],
        [write("more.md", "more\n")],
        [{"tool_call": {"name": "bash", "arguments": {"command": "rm notes.md"}}}],
        [
            {"text": "Understood, I kept notes.md."},
            {"usage": {"input_tokens": 321, "output_tokens": 12}},
        ],
        [{"text": "Thinking hard"}, {"delay_ms": 600000}],
        [{"text": "Here again."}],
    ]
}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[KodadProcess]:
    process = KodadProcess(tmp_path / "data")
    yield process
    process.close()


def call(address: str, work: object) -> object:
    async def run() -> object:
        async with Client(address) as client:
            return await work(client)  # type: ignore[operator]

    return asyncio.run(run())


def scripted_session(
    address: str, workspace: Path, script: object, **kwargs: object
) -> spb.Session:
    """A session on `workspace` whose scripted provider plays `script`."""
    provider = spb.ProviderConfig(kind=spb.PROVIDER_KIND_SCRIPTED, script_json=json.dumps(script))
    session = call(address, lambda c: c.create_session(str(workspace), provider=provider, **kwargs))
    assert isinstance(session, spb.Session)
    return session


def spawn(address: str, *args: str, cwd: Path) -> pexpect.spawn:
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "XDG_DATA_HOME": str(cwd / "xdg-data"),
    }  # the prompt history, exports: the test's
    return pexpect.spawn(
        sys.executable, ["-m", "kodad", "chat", "--connect", address, *args],
        cwd=str(cwd), env=env, encoding="utf-8", timeout=30, dimensions=(40, 120),
    )  # fmt: skip


def test_chat_approvals_cancel_and_resume(service: KodadProcess, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    session = scripted_session(service.address, workspace, SCRIPT)

    chat = spawn(service.address, "--session", session.id, cwd=tmp_path)
    chat.expect(screen(f"session {session.id}"))
    chat.expect(PROMPT)
    chat.sendline("write some notes")
    chat.expect(screen("✻ Plan: write the file. (1 line; /thinking shows it all)"))
    chat.expect(screen("Creating"))  # the thinking in its place, before the answer
    chat.expect(screen("approve? Create notes.md (1 line)"))
    chat.expect(screen("+# Notes"))  # the diff preview
    chat.expect(screen("[y] approve"))
    chat.send("a")  # approve always: the second write_file runs without asking
    chat.expect(screen("✓ write_file notes.md"))
    chat.expect(screen("✓ write_file more.md"))
    chat.expect(screen("allowed by rule: write_file"))  # nobody was asked: marked so
    chat.expect(screen("approve? Run rm notes.md"))
    chat.expect(screen("[y] approve"))
    chat.send("n")
    chat.expect(screen("feedback for the agent"))
    chat.sendline("keep notes.md, it is needed")
    chat.expect(screen("✗ bash rm notes.md"))
    chat.expect(screen("Understood, I kept notes.md."))
    chat.expect(screen("files changed:"))
    chat.expect(screen("created  notes.md"))
    chat.expect(screen("tokens: 321 in"))
    chat.expect(PROMPT)
    chat.expect(r"context(?:\x1b\[[0-9;?]*[a-zA-Z]|\s)+[0-9,]+ / 128,000 tokens")  # status line

    chat.sendline("think about it")
    chat.expect(screen("Thinking hard"))
    chat.sendcontrol("c")  # cancels the turn, not the program
    chat.expect(screen("turn cancelled"))
    chat.expect(PROMPT)
    chat.sendline("/files")
    chat.expect(screen("created  more.md"))
    chat.sendline("/mode auto")
    chat.expect(screen("mode: auto"))
    chat.sendline("again")
    chat.expect(screen("Here again."))
    chat.expect(PROMPT)
    chat.sendcontrol("c")
    chat.expect(screen("Ctrl-C again to exit"))
    chat.sendcontrol("c")
    chat.expect(screen(f"resume with --session {session.id}"))
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0

    assert (workspace / "notes.md").read_text() == "# Notes\n"
    history = call(service.address, lambda c: c.messages(session.id))
    assert isinstance(history, list)
    rejected = next(
        m for m in history if m.role == spb.MESSAGE_ROLE_TOOL and m.tool_result.is_error
    )
    assert rejected.tool_result.output == "rejected by the user: keep notes.md, it is needed"
    assert [m.text for m in history if m.role == spb.MESSAGE_ROLE_ASSISTANT][-2:] == [
        "Thinking hard",
        "Here again.",
    ]
    stored = call(service.address, lambda c: c.get_session(session.id))
    assert isinstance(stored, spb.Session)
    assert stored.approval_mode == spb.APPROVAL_MODE_AUTO
    assert [(r.tool_name, r.command_prefix) for r in stored.approval_rules] == [("write_file", "")]

    resumed = spawn(service.address, "--session", session.id, cwd=tmp_path)
    resumed.expect(screen("> write some notes"))  # the history is shown on resume
    resumed.expect(screen("✓ write_file notes.md — done"))  # each call with its outcome
    resumed.expect(screen("✗ bash rm notes.md — rejected"))
    resumed.expect(screen("Here again."))
    resumed.expect(PROMPT)
    resumed.sendline("/export transcript.md")
    resumed.expect(screen(f"wrote {tmp_path / 'transcript.md'}"))  # where, in full
    resumed.sendline("/quit")
    resumed.expect(pexpect.EOF)
    assert "## You\n\nwrite some notes" in (tmp_path / "transcript.md").read_text()


def test_sessions_command_for_scripts(service: KodadProcess, tmp_path: Path) -> None:
    session = call(service.address, lambda c: c.create_session(str(tmp_path), title="scripted"))
    assert isinstance(session, spb.Session)
    listed = pexpect.run(
        f"{sys.executable} -m kodad sessions list --json --connect {service.address}",
        encoding="utf-8",
    )
    assert json.loads(listed)[0]["id"] == session.id
    output, status = pexpect.run(
        f"{sys.executable} -m kodad sessions delete {session.id} --connect {service.address}",
        encoding="utf-8", withexitstatus=True,
    )  # fmt: skip
    assert status == 0 and f"deleted {session.id}" in output
    output, status = pexpect.run(
        f"{sys.executable} -m kodad sessions show {session.id} --connect {service.address}",
        encoding="utf-8", withexitstatus=True,
    )  # fmt: skip
    assert status == 1 and "NOT_FOUND" in output


def test_model_command_lists_the_providers_models_and_refuses_an_unknown_one(
    service: KodadProcess, tmp_path: Path
) -> None:
    chat = spawn(service.address, cwd=tmp_path)
    chat.expect(PROMPT)
    chat.sendline("/model")
    chat.expect(screen("scripted"))
    chat.expect(screen("model: - (scripted)"))
    chat.sendline("/model gpt-nonexistent")
    chat.expect(screen("no model 'gpt-nonexistent' here; /model lists them"))
    chat.sendline("/model scripted")
    chat.expect(screen("model: scripted (scripted)"))
    chat.sendline("/quit")
    chat.expect(pexpect.EOF)


def test_diff_undo_and_redo_of_the_last_turn(service: KodadProcess, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "keep.txt").write_text("kept\n")
    script = {
        "rounds": [
            [write("plan.md", "# Plan\n")],
            [{"tool_call": {"name": "bash", "arguments": {"command": "rm keep.txt"}}}],
            [{"text": "Planned."}],
        ]
    }
    session = scripted_session(
        service.address, workspace, script, approval_mode=spb.APPROVAL_MODE_AUTO
    )
    chat = spawn(service.address, "--session", session.id, cwd=tmp_path)
    chat.expect(PROMPT)
    chat.sendline("make a plan")
    chat.expect(screen("Planned."))
    chat.expect(PROMPT)
    chat.sendline("/diff")
    chat.expect(screen("+# Plan"))
    chat.expect(PROMPT)
    assert not (workspace / "keep.txt").exists()
    chat.sendline("/undo")
    chat.expect(screen("take back the messages from that turn on, and keep.txt, plan.md? [y/n]"))
    chat.send("y")
    chat.expect(screen("back to before that turn: 2 file(s) restored, 6 message(s) taken back"))
    chat.expect(PROMPT)
    assert (workspace / "keep.txt").read_text() == "kept\n"
    assert not (workspace / "plan.md").exists()
    chat.sendline("/redo")
    chat.expect(screen("redone: 2 file(s) back"))
    chat.expect(PROMPT)
    assert (workspace / "plan.md").read_text() == "# Plan\n"
    chat.sendline("/rewind")
    chat.expect(screen("1  make a plan"))
    chat.sendline("/quit")
    chat.expect(pexpect.EOF)


def test_keys_typed_ahead_never_answer_an_approval_and_high_risk_needs_yes(
    service: KodadProcess, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    (workspace / "build").mkdir(parents=True)
    rm = {"tool_call": {"name": "bash", "arguments": {"command": "rm -rf build"}}}
    script = {
        "rounds": [
            [{"text": "Cleaning up now."}, {"delay_ms": 1500}, rm],
            [rm],
            [{"text": "Left it."}],
            [rm],
        ]
    }
    session = scripted_session(service.address, workspace, script)
    chat = spawn(service.address, "--session", session.id, cwd=tmp_path)
    chat.expect(PROMPT)
    chat.sendline("clean up")
    chat.expect(screen("Cleaning up now."))
    chat.send("yes")  # typed while the answer streams, before any question
    chat.expect(screen("approve? Run rm -rf build [risk: HIGH]"))
    chat.expect(screen("type yes to approve, no to reject"))
    chat.sendline("")  # Enter alone: the typed-ahead "yes" was dropped, so this rejects
    chat.expect(screen("feedback for the agent"))
    chat.sendline("")
    chat.expect(screen("approve? Run rm -rf build [risk: HIGH]"))
    chat.expect(screen("type yes to approve, no to reject"))
    chat.sendline("y")  # not "yes": rejected too
    chat.expect(screen("feedback for the agent"))
    chat.sendline("")
    chat.expect(screen("Left it."))
    chat.expect(PROMPT)
    assert (workspace / "build").is_dir()
    chat.sendline("once more")
    chat.expect(screen("type yes to approve, no to reject"))
    chat.sendcontrol("c")  # at the question: cancels the turn, and says nothing else
    chat.expect(screen("turn cancelled"))
    shown = chat.before
    chat.expect(PROMPT)
    assert "ignored" not in shown + chat.before
    assert (workspace / "build").is_dir()
    chat.sendline("/quit")
    chat.expect(pexpect.EOF)


def test_ask_user_shows_the_question_and_takes_a_choice_or_free_text(
    service: KodadProcess, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    ask = {
        "name": "ask_user",
        "arguments": {"question": "Which colour?", "choices": ["red", "blue"]},
    }
    free = {"name": "ask_user", "arguments": {"question": "And the name?"}}
    script = {"rounds": [[{"tool_call": ask}], [{"tool_call": free}], [{"text": "Got both."}]]}
    session = scripted_session(service.address, workspace, script)
    chat = spawn(service.address, "--session", session.id, cwd=tmp_path)
    chat.expect(PROMPT)
    chat.sendline("pick")
    chat.expect(screen("? Which colour?"))
    chat.expect(screen("2. blue"))
    chat.expect(screen("a number or your own answer (Ctrl-C cancels)"))
    chat.sendline("2")
    chat.expect(screen("? And the name?"))
    chat.sendline("Ada")
    chat.expect(screen("Got both."))
    chat.expect(PROMPT)
    history = call(service.address, lambda c: c.messages(session.id))
    assert isinstance(history, list)
    answers = [m.tool_result.output for m in history if m.role == spb.MESSAGE_ROLE_TOOL]
    assert answers == ["blue", "Ada"]
    chat.sendline("/quit")
    chat.expect(pexpect.EOF)


def test_connection_hints_options_that_cannot_apply_and_no_empty_sessions_left(
    service: KodadProcess, tmp_path: Path
) -> None:
    refused = spawn("127.0.0.1:9", cwd=tmp_path)  # nothing serves on the discard port
    refused.expect(screen("is kodad serving at 127.0.0.1:9? Start it with `kodad serve`"))
    refused.expect(pexpect.EOF)
    refused.close()
    assert refused.exitstatus == 1

    session = call(service.address, lambda c: c.create_session(str(tmp_path)))
    assert isinstance(session, spb.Session)
    both = spawn(service.address, "--session", session.id, "--mode", "auto", cwd=tmp_path)
    both.expect(screen("--mode is for a new session; a resumed one keeps its own (use /mode)"))
    both.expect(pexpect.EOF)
    both.close()
    assert both.exitstatus == 2

    # KODAD_LISTEN (what `kodad serve` listens on) is followed when KODAD_CONNECT is unset.
    env = {**os.environ, "TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1",
           "KODAD_LISTEN": service.address, "XDG_DATA_HOME": str(tmp_path / "xdg")}  # fmt: skip
    env.pop("KODAD_CONNECT", None)
    chat = pexpect.spawn(sys.executable, ["-m", "kodad", "chat"], cwd=str(tmp_path), env=env,
                         encoding="utf-8", timeout=30, dimensions=(40, 120))  # fmt: skip
    chat.expect(PROMPT)
    chat.sendline("/quit")
    chat.expect(pexpect.EOF)
    listed = call(service.address, lambda c: c.sessions_page())
    assert isinstance(listed, tuple)
    assert [s.id for s in listed[0]] == [session.id]  # the unused new session is gone


def test_sessions_are_titled_by_their_first_prompt_listed_as_a_table_and_switched(
    service: KodadProcess, tmp_path: Path
) -> None:
    first = call(service.address, lambda c: c.create_session(str(tmp_path)))
    second = call(service.address, lambda c: c.create_session(str(tmp_path)))
    assert isinstance(first, spb.Session) and isinstance(second, spb.Session)
    prompt = "Refactor the parser so that tokens carry their source spans and errors point at them"
    chat = spawn(service.address, "--session", first.id, cwd=tmp_path)
    chat.expect(PROMPT)
    chat.sendline(prompt)
    chat.expect(screen("You said:"))
    chat.expect(PROMPT)
    titled = call(service.address, lambda c: c.get_session(first.id))
    assert isinstance(titled, spb.Session)
    assert titled.title == "Refactor the parser so that tokens carry their source spans…"
    chat.sendline("/sessions")
    chat.expect(screen("# title state updated messages id workspace"))
    chat.expect(screen("(untitled) idle"))
    chat.expect(screen("/sessions N switches to session N"))
    chat.sendline("/sessions 1")  # the newest: the second session
    chat.expect(screen(f"session {second.id}"))
    chat.sendline("/quit")
    chat.expect(pexpect.EOF)
    listed = pexpect.run(
        f"{sys.executable} -m kodad sessions list --connect {service.address}", encoding="utf-8"
    )
    assert re.search(screen("# title state updated messages id workspace"), listed)
    assert "Refactor" in listed and "spans…" in listed and "(untitled)" in listed  # wrapped


def test_prompt_history_across_runs_multi_line_input_and_export_to_a_stated_place(
    service: KodadProcess, tmp_path: Path
) -> None:
    session = call(service.address, lambda c: c.create_session(str(tmp_path)))
    assert isinstance(session, spb.Session)
    chat = spawn(service.address, "--session", session.id, cwd=tmp_path)
    chat.expect(PROMPT)
    chat.send("first line")
    chat.send("\x1b\r")  # Esc, Enter: a new line, not sent
    chat.sendline("second line")
    chat.expect(screen("You said: first line"))
    chat.expect(PROMPT)
    chat.sendline("/export")
    exported = tmp_path / "xdg-data" / "kodad" / "exports" / f"{session.id}.md"
    chat.expect(screen(f"wrote {exported}"))
    chat.sendline("/quit")
    chat.expect(pexpect.EOF)
    assert "first line" in exported.read_text()
    history = call(service.address, lambda c: c.messages(session.id))
    assert isinstance(history, list) and history[0].text == "first line\nsecond line"

    again = spawn(service.address, "--session", session.id, cwd=tmp_path)
    again.expect(PROMPT)
    again.send("\x1b[A\x1b[A\x1b[A")  # Up three times: /quit, /export, then the two lines
    again.send("\r")  # sent again as it was, from the earlier run's history
    again.expect(screen("You said: first line"))
    again.expect(PROMPT)
    again.sendline("/quit")
    again.expect(pexpect.EOF)
    texts = call(service.address, lambda c: c.messages(session.id))
    assert isinstance(texts, list)
    assert [m.text for m in texts if m.role == spb.MESSAGE_ROLE_USER] == [
        "first line\nsecond line", "first line\nsecond line",
    ]  # fmt: skip


def test_live_command_output_a_moving_spinner_todos_true_sizes_and_the_mode(
    service: KodadProcess, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    slow = "for i in 1 2 3; do echo step $i; sleep 0.4; done"
    todos = [{"content": "write the plan", "status": "completed"},
             {"content": "test it", "status": "in_progress"}]  # fmt: skip
    script = {
        "rounds": [
            [{"tool_call": {"name": "todo_write", "arguments": {"todos": todos}}}],
            [write("plan.md", "# Plan\n\nline\n")],
            [{"tool_call": {"name": "bash", "arguments": {"command": slow}}}],
            [{"text": "All done."}],
        ]
    }
    session = scripted_session(
        service.address, workspace, script, approval_mode=spb.APPROVAL_MODE_AUTO
    )
    chat = spawn(service.address, "--session", session.id, cwd=tmp_path)
    chat.expect(PROMPT)
    chat.sendline("/mode")
    chat.expect(screen("mode: auto (/mode auto|confirm|read-only changes it)"))
    chat.sendline("go")
    chat.expect(screen("☑ write the plan"))
    chat.expect(screen("◐ test it"))
    chat.expect(screen("✓ write_file plan.md — 13 bytes written"))  # the file's, not the reply's
    chat.expect("step 1")  # the command's output, while it runs
    chat.expect(["⠙", "⠹", "⠸"])  # the spinner moves on from its first frame
    chat.expect(screen("✓ bash"))
    chat.expect(screen("All done."))
    chat.expect(PROMPT)
    chat.sendline("/quit")
    chat.expect(pexpect.EOF)


RUN_ELSEWHERE = """
import asyncio, sys
from kodad.client import Client

async def main():
    async with Client(sys.argv[1]) as client:  # answers nothing: the chat has to
        turn = client.run_turn(sys.argv[2], sys.argv[3], on_approval=lambda request: None)
        async for event in turn:
            if event.HasField("turn_ended"):
                print("ended", event.turn_ended.reason, flush=True)

asyncio.run(main())
"""


def run_elsewhere(address: str, session_id: str, text: str) -> subprocess.Popen[str]:
    """A turn started by another client, which leaves its approvals to others; returns once
    that turn waits for an approval."""
    other = subprocess.Popen(
        [sys.executable, "-c", RUN_ELSEWHERE, address, session_id, text],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip

    async def asked(client: Client) -> None:
        async for event in client.watch(session_id):
            if not event.HasField("approval_requested"):
                continue
            if (await client.get_session(session_id)).active_turn_id == event.turn_id:
                return  # the running turn's, not an earlier one's

    call(address, asked)
    return other


def test_resume_follows_a_turn_running_elsewhere_and_answers_its_approval(
    service: KodadProcess, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    touch = {"tool_call": {"name": "bash", "arguments": {"command": "touch first"}}}
    again = {"tool_call": {"name": "bash", "arguments": {"command": "touch second"}}}
    script = {
        "rounds": [
            [touch], [{"text": "First is done."}],
            [again], [{"text": "Second is done."}],
            [{"text": "Mine now."}],
        ]
    }  # fmt: skip
    session = scripted_session(service.address, workspace, script)
    other = run_elsewhere(service.address, session.id, "make the first")

    chat = spawn(service.address, "--session", session.id, cwd=tmp_path)
    chat.expect(screen("following the running turn"))
    chat.expect(screen("approve? Run touch first"))  # asked before the chat came
    chat.expect(screen("[y] approve"))
    chat.send("y")
    chat.expect(screen("✓ bash touch first"))
    chat.expect(screen("First is done."))
    chat.expect(PROMPT)
    assert other.communicate(timeout=30)[0].split() == ["ended", "1"]  # COMPLETED
    assert (workspace / "first").exists()

    other = run_elsewhere(service.address, session.id, "make the second")
    chat.sendline("and mine")  # busy: the chat follows that turn, then runs this one
    chat.expect(screen("a turn started elsewhere is running here"))
    chat.expect(screen("approve? Run touch second"))
    chat.send("y")
    chat.expect(screen("Second is done."))
    chat.expect(screen("Mine now."))
    chat.expect(PROMPT)
    assert other.communicate(timeout=30)[0].split() == ["ended", "1"]
    chat.sendline("/quit")
    chat.expect(pexpect.EOF)
    history = call(service.address, lambda c: c.messages(session.id))
    assert isinstance(history, list)
    prompts = [m.text for m in history if m.role == spb.MESSAGE_ROLE_USER]
    assert prompts == ["make the first", "make the second", "and mine"]
