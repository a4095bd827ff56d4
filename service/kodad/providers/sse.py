"""Server-sent events parsing (the WHATWG event-stream format) over the text of a response body.

Events come in batches: every event one network read completes, together. A provider that
keeps up reads one event per read; one that fell behind (a busy server, a burst) finds many
waiting and can merge their deltas into one, so the work per token falls as the load rises.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str


@dataclass
class _Parser:
    """The event-stream state across reads: the partial line, and the event being built."""

    pending: str = ""
    event: str = ""
    data: list[str] = field(default_factory=list)

    def feed(self, text: str, out: list[ServerSentEvent]) -> None:
        text = self.pending + text
        # A "\r" at the very end may be the first half of "\r\n": keep it for the next read.
        cut = len(text) - 1 if text.endswith("\r") else len(text)
        text, self.pending = text[:cut], text[cut:]
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self.pending = lines.pop() + self.pending  # the last line is not complete yet
        for line in lines:
            self.line(line, out)

    def line(self, line: str, out: list[ServerSentEvent]) -> None:
        if not line:
            if self.data:
                out.append(ServerSentEvent(self.event or "message", "\n".join(self.data)))
            self.event, self.data = "", []
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value

    def finish(self, out: list[ServerSentEvent]) -> None:
        """The stream ended: its last line, and the event it was building, are complete."""
        pending, self.pending = self.pending.rstrip("\r"), ""
        if pending:
            self.line(pending, out)
        self.line("", out)


async def iter_sse_batches(texts: AsyncIterator[str]) -> AsyncIterator[list[ServerSentEvent]]:
    """Yields, per read of `texts`, the events it completed (reads that complete none yield
    nothing); `event` is "message" when the stream names none."""
    parser = _Parser()
    async for text in texts:
        batch: list[ServerSentEvent] = []
        parser.feed(text, batch)
        if batch:
            yield batch
    batch = []
    parser.finish(batch)
    if batch:
        yield batch


async def iter_sse(texts: AsyncIterator[str]) -> AsyncIterator[ServerSentEvent]:
    """Yields each dispatched event, one by one."""
    async for batch in iter_sse_batches(texts):
        for event in batch:
            yield event
