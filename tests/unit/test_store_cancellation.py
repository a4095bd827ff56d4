"""A write the caller cancels still completes whole; the store stays usable."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from kodad.domain.model import Message, Role, SessionRecord
from kodad.store import Store


async def test_cancelled_writes_finish_and_the_cancellation_arrives_afterwards(
    tmp_path: Path, store: Store
) -> None:
    await store.create_session(SessionRecord(id="s_1", workspace=str(tmp_path)))
    seen: list[int] = []

    async def writer() -> None:
        for i in range(200):
            stored = await store.append_message("s_1", Message(Role.USER, "t", text=str(i)))
            seen.append(stored.index)

    # Cancel the writer at many different points of its writes.
    for _ in range(20):
        task = asyncio.create_task(writer())
        for _ in range(len(seen) % 7 + 1):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    messages = await store.list_messages("s_1")
    # Every stored message was seen returned by its writer (a cancelled write still
    # returns before the cancellation lands), indexes are gap-free, and nothing
    # half-done is left behind: the next write works.
    assert [m.index for m in messages] == seen == list(range(1, len(seen) + 1))
    await store.append_message("s_1", Message(Role.USER, "t", text="after"))
