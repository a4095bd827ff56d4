"""The chat's /diff, /undo, /rewind: what a turn changed, and taking turns back."""

from __future__ import annotations

import contextlib

from rich.console import Console
from rich.syntax import Syntax
from rich.text import Text

from kodad.client import Client, KodadError
from kodad.gen.koda.v1 import session_pb2 as spb


class Rewinding:
    """Part of Chat: it provides the client, the session, the console and `key`."""

    client: Client
    session: spb.Session
    console: Console

    async def key(self, message: str, keys: str) -> str:
        raise NotImplementedError

    async def turns(self) -> list[tuple[str, str]]:
        """The session's turns, oldest first: (turn id, the input that started it)."""
        seen: dict[str, str] = {}
        for message in await self.client.messages(self.session.id):
            if message.role == spb.MESSAGE_ROLE_USER and message.turn_id not in seen:
                seen[message.turn_id] = message.text
        return list(seen.items())

    async def diff(self) -> None:
        turns = await self.turns()
        if not turns:
            self.console.print("no turn yet")
            return
        try:
            diff = await self.client.turn_diff(self.session.id, turns[-1][0])
        except KodadError as e:
            self.console.print(Text(e.message, style="dim"))
            return
        self.console.print(Syntax(diff.unified_diff, "diff", theme="ansi_dark", word_wrap=True))

    async def rewind(self, which: str) -> None:
        """/undo ("last") and /rewind N: back to just before a turn, files and history,
        after saying which files change and asking."""
        turns = await self.turns()
        if not which:
            for number, (_, text) in enumerate(turns, 1):
                self.console.print(f"  {number:>3}  {text.splitlines()[0][:70] if text else ''}")
            self.console.print("/rewind N goes back to just before turn N")
            return
        valid = which == "last" or (which.isdigit() and 0 < int(which) <= len(turns))
        if not turns or not valid:
            self.console.print("no such turn; /rewind lists them")
            return
        turn_id = turns[-1 if which == "last" else int(which) - 1][0]
        files: list[str] = []
        start = [t[0] for t in turns].index(turn_id)
        for later, _ in turns[start:]:  # what that turn and the ones after it changed
            with contextlib.suppress(KodadError):
                changed = await self.client.turn_diff(self.session.id, later)
                files += [f.path for f in changed.files]
        shown = ", ".join(sorted(set(files))) or "no file"
        question = f"take back the messages from that turn on, and {shown}? [y/n] "
        answer = await self.key(question, "yn")
        if answer != "y":
            return
        try:
            done = await self.client.rewind(self.session.id, turn_id)
        except KodadError as e:
            self.console.print(Text(e.message, style="red"))
            return
        self.console.print(
            f"back to before that turn: {len(done.restored_files)} file(s) restored, "
            f"{done.messages_removed} message(s) taken back (/redo undoes it)"
        )
