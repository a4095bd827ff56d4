"""`kodad chat`: talk to a session in the terminal, answer its approvals with one key."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory
from rich.console import Console
from rich.markdown import Markdown
from rich.text import Text

from kodad.chat import transcript
from kodad.chat.asking import Asker, one_key
from kodad.chat.render import TurnView, call_label
from kodad.chat.rewinds import Rewinding
from kodad.chat.sessions import sessions_table
from kodad.chat.terminal import history_file, newline_keys, outcome
from kodad.client import Client, KodadError, Turn
from kodad.client.turn import respond
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.paths import user_dir

MODES = {
    "auto": spb.APPROVAL_MODE_AUTO,
    "confirm": spb.APPROVAL_MODE_CONFIRM,
    "read-only": spb.APPROVAL_MODE_READ_ONLY,
}
MODE_NAMES = {v: k for k, v in MODES.items()}
HELP = """\
/sessions [N]        list sessions, or switch to number N
/new [DIR]           start a new session (in DIR, default: this one's workspace)
/mode auto|confirm|read-only   how much the agent may do without asking
/model [NAME]        list the models, or switch to NAME
/fork                continue in a copy of this session
/files               files the agent created, changed or deleted
/diff                what the last turn changed in the workspace
/undo                take the last turn back: its file changes and its messages
/rewind [N]          list the turns, or go back to just before turn N
/redo                undo the last /undo or /rewind
/export [FILE]       write the conversation as Markdown (default: the data dir's exports)
/thinking            show the last turn's thinking in full
/help                this list
/quit                leave (the session stays; resume with --session ID)
Esc then Enter starts a new line; Up and Down go through earlier prompts (kept across runs).
Ctrl-C cancels a running turn; at the prompt, twice in a row, it exits."""


class Chat(Rewinding):
    def __init__(self, client: Client, session: spb.Session, console: Console) -> None:
        self.client = client
        self.session = session
        self.console = console
        self.prompt: PromptSession[str] = PromptSession(
            history=FileHistory(str(history_file())),
            key_bindings=newline_keys(),
        )
        self.last_thinking = ""
        self.context: epb.ContextUsage | None = None  # as the last turn's last round saw it

    def status(self) -> FormattedText:
        """The prompt, under its status line: mode, model, and how full the context is (as
        the last provider round saw it). Part of the prompt, so every terminal shows it."""
        s = self.session
        parts = [f"mode {MODE_NAMES.get(s.approval_mode, '?')}", s.provider.model or "-"]
        if self.context is not None and self.context.max_tokens > 0:
            used, window = self.context.used_tokens, self.context.max_tokens
            parts.append(f"context {used:,} / {window:,} tokens ({100 * used // window}%)")
        return FormattedText([("fg:ansibrightblack", " · ".join(parts) + "\n"), ("", "> ")])

    # Prompts

    async def key(self, message: str, keys: str) -> str:
        return await one_key(self.console, message, keys)

    # The conversation

    def header(self) -> None:
        s = self.session
        provider = spb.ProviderKind.Name(s.provider.kind).removeprefix("PROVIDER_KIND_").lower()
        model = f"{provider}{':' + s.provider.model if s.provider.model else ''}"
        self.console.print(
            Text.assemble(
                ("kodad chat", "bold"),
                f"  session {s.id} · {s.workspace} · ",
                f"mode {MODE_NAMES.get(s.approval_mode, '?')} · {model}",
                ("  /help", "dim"),
            )
        )

    async def history(self) -> None:
        """The session so far: prompts, answers, and each tool call with its outcome."""
        messages = await self.client.messages(self.session.id)
        results = {
            m.tool_result.call_id: m.tool_result for m in messages if m.HasField("tool_result")
        }
        for m in messages:
            if m.role == spb.MESSAGE_ROLE_USER:
                self.console.print(Text(f"> {m.text}", style="bold cyan"))
            elif m.role == spb.MESSAGE_ROLE_ASSISTANT:
                if m.text:
                    self.console.print(Markdown(m.text))
                for call in m.tool_calls:
                    label = call_label(call.tool_name, call.arguments_json)
                    mark, ended = outcome(results.get(call.call_id))
                    self.console.print(Text(f"{mark} {label} — {ended}", style="dim"))
            elif m.role == spb.MESSAGE_ROLE_SUMMARY:
                self.console.print(Text("(earlier messages summarised)", style="dim"))

    async def run(self) -> None:
        armed = False
        while True:
            try:
                text = await self.prompt.prompt_async(self.status)
            except KeyboardInterrupt:
                if armed:
                    return
                armed = True
                self.console.print(Text("(Ctrl-C again to exit)", style="dim"))
                continue
            except EOFError:
                return
            armed = False
            text = text.strip()
            if not text:
                continue
            try:
                if text.startswith("/"):
                    if not await self.command(text):
                        return
                else:
                    await self.turn(text)
            except KodadError as e:
                self.console.print(Text(f"error: {e}", style="red"))

    async def turn(self, text: str) -> None:
        view = TurnView(self.console)
        turn: Turn | None = None

        async def cancel() -> None:
            assert turn is not None
            await turn.cancel()

        asking = Asker(self.console, self.prompt, view, cancel).handlers()
        turn = self.client.run_turn(
            self.session.id, text, on_approval=asking.on_approval,
            on_loop_cap=asking.on_loop_cap, on_question=asking.on_question,
        )  # fmt: skip
        try:
            await self.show(turn, view, cancel)
        except KodadError as e:
            if e.reason != "TURN_ALREADY_RUNNING":
                raise
            self.console.print(
                Text("a turn started elsewhere is running here; following it, then yours", "dim")
            )
            await self.follow()
            await self.turn(text)

    async def follow(self) -> None:
        """Follows the session's running turn (started by another client) live to its end,
        asking here the questions it has open or asks; Ctrl-C cancels it."""
        session = await self.client.get_session(self.session.id)
        turn_id = session.active_turn_id
        if not turn_id:
            return
        view = TurnView(self.console)

        async def send(command: epb.EngineCommand) -> None:
            try:
                await self.client.submit(session.id, command, turn_id)
            except KodadError as e:  # answered elsewhere first, or the turn is over
                self.console.print(Text(f"(not sent: {e.message})", style="dim"))

        async def cancel() -> None:
            await send(epb.EngineCommand(cancel=epb.Cancel()))

        handlers = Asker(self.console, self.prompt, view, cancel).handlers()

        async def events() -> AsyncIterator[epb.EngineEvent]:
            async for event in self.client.watch(session.id, session.last_seq):
                if event.turn_id != turn_id:
                    continue
                yield event
                await respond(event, handlers, send)
                if event.HasField("turn_ended") and not event.subagent_session_id:
                    return

        self.console.print(Text("following the running turn (Ctrl-C cancels it)…", "dim"))
        await self.show(events(), view, cancel)

    async def show(
        self,
        events: AsyncIterable[epb.EngineEvent],
        view: TurnView,
        cancel: Callable[[], Awaitable[None]],
    ) -> None:
        """Draws a turn's events as they come; Ctrl-C cancels the turn."""
        loop = asyncio.get_running_loop()
        cancelling: list[asyncio.Task[None]] = []

        def interrupt() -> None:
            if not cancelling:
                view.pause()
                self.console.print(Text("cancelling…", style="yellow"))
                cancelling.append(asyncio.ensure_future(cancel()))

        loop.add_signal_handler(signal.SIGINT, interrupt)
        try:
            async for event in events:
                view.handle(event)
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            view.pause()
        self.last_thinking = view.thinking or self.last_thinking
        self.context = view.context or self.context

    # Slash commands

    async def command(self, line: str) -> bool:
        """Runs a slash command; False means leave."""
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        if name in ("/quit", "/exit"):
            return False
        if name == "/help":
            self.console.print(HELP)
        elif name == "/sessions":
            await self.list_sessions(rest)
        elif name == "/new":
            workspace = str(Path(rest).resolve()) if rest else self.session.workspace
            self.session = await self.client.create_session(
                workspace, approval_mode=self.session.approval_mode
            )
            self.header()
        elif name == "/mode":
            if not rest:
                current = MODE_NAMES.get(self.session.approval_mode, "?")
                self.console.print(f"mode: {current} (/mode auto|confirm|read-only changes it)")
            elif rest not in MODES:
                self.console.print("usage: /mode auto|confirm|read-only")
            else:
                change = spb.Session(id=self.session.id, approval_mode=MODES[rest])
                self.session = await self.client.update_session(change, ["approval_mode"])
                self.console.print(f"mode: {rest}")
        elif name == "/model":
            await self.model(rest)
        elif name == "/fork":
            self.session = await self.client.fork_session(self.session.id)
            self.console.print(f"now in the fork {self.session.id}")
        elif name == "/files":
            changes = await self.client.file_changes(self.session.id)
            if not changes:
                self.console.print("no files changed yet")
            for file_change in changes:
                kind = epb.FileChangeKind.Name(file_change.change).removeprefix("FILE_CHANGE_KIND_")
                self.console.print(f"  {kind.lower():<8} {file_change.path}")
        elif name == "/export":
            target = Path(rest) if rest else user_dir("data") / "exports" / f"{self.session.id}.md"
            messages = await self.client.messages(self.session.id)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(transcript.markdown(self.session, messages))
            self.console.print(f"wrote {target.resolve()}")
        elif name == "/diff":
            await self.diff()
        elif name in ("/undo", "/rewind"):
            await self.rewind(rest if name == "/rewind" else "last")
        elif name == "/redo":
            done = await self.client.unrewind(self.session.id)
            self.console.print(f"redone: {len(done.restored_files)} file(s) back")
        elif name == "/thinking":
            self.console.print(
                Text(self.last_thinking or "no thinking in the last turn", style="dim")
            )
        else:
            self.console.print(f"unknown command {name}; /help lists them")
        return True

    async def model(self, name: str) -> None:
        """/model: lists the provider's models (the session's marked); /model NAME switches
        to NAME, refused when the provider lists its models and NAME is not one of them."""
        try:
            models = await self.client.list_models(session_id=self.session.id)
        except KodadError as e:
            models = []
            if not name:
                self.console.print(Text(f"the provider's models are unknown: {e.message}", "dim"))
        ids = [m.id for m in models]
        if name:
            if ids and name not in ids:
                self.console.print(f"no model {name!r} here; /model lists them")
                return
            provider = spb.ProviderConfig()
            provider.CopyFrom(self.session.provider)
            provider.model = name
            change = spb.Session(id=self.session.id, provider=provider)
            self.session = await self.client.update_session(change, ["provider"])
        elif models:
            for m in models:
                mark = "*" if m.id == self.session.provider.model else " "
                window = f"  {m.context_window_tokens:,} tokens" if m.context_window_tokens else ""
                self.console.print(f" {mark} {m.id}{window}")
        kind = spb.ProviderKind.Name(self.session.provider.kind).removeprefix("PROVIDER_KIND_")
        self.console.print(f"model: {self.session.provider.model or '-'} ({kind.lower()})")

    async def list_sessions(self, pick: str = "") -> None:
        """/sessions lists the newest 50, numbered; /sessions N switches to number N."""
        found, _ = await self.client.sessions_page(page_size=50)
        found = [s for s in found if not s.parent_session_id]
        if pick:
            if not pick.isdigit() or not 0 < int(pick) <= len(found):
                self.console.print("no such session; /sessions lists them")
                return
            self.session = found[int(pick) - 1]
            self.header()
            await self.history()
            await self.follow()
            return
        self.console.print(sessions_table(found, self.session.id))
        self.console.print(Text("/sessions N switches to session N", style="dim"))


async def chat(
    target: str, token: str | None, session_id: str | None, workspace: str | None,
    mode: str | None,
) -> int:  # fmt: skip
    console = Console(highlight=False)
    if session_id and (workspace or mode):
        given = "--workspace" if workspace else "--mode"
        console.print(
            Text(f"{given} is for a new session; a resumed one keeps its own (use /mode)", "red")
        )
        return 2
    async with Client(target, token=token) as client:
        try:
            if session_id:
                session = await client.get_session(session_id)
            else:
                session = await client.create_session(
                    str(Path(workspace or ".").resolve()),
                    approval_mode=MODES[mode or "confirm"],
                )
        except KodadError as e:
            console.print(Text(f"error: {e}", style="red"))
            if e.code.name == "UNAVAILABLE":
                console.print(
                    f"is kodad serving at {target}? Start it with `kodad serve` (or `make "
                    "serve`), or give its address: --connect HOST:PORT or KODAD_CONNECT"
                )
            return 1
        app = Chat(client, session, console)
        app.header()
        if session_id:
            await app.history()
            await app.follow()
        await app.run()
        if not session_id and app.session.message_count == 0:
            current = await client.get_session(app.session.id)
            if current.message_count == 0:  # never used: not left behind
                await client.delete_session(current.id)
                return 0
        console.print(
            Text(
                f"session {app.session.id} kept; resume with --session {app.session.id}",
                style="dim",
            )
        )
    return 0
