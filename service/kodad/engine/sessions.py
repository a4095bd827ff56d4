"""Sessions: creating, reading, listing, changing, forking and deleting them."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from kodad.domain import errors
from kodad.domain.access import Caller
from kodad.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
)
from kodad.domain.ids import new_id
from kodad.domain.model import (
    FileChange,
    Message,
    SandboxPolicy,
    SandboxSettings,
    SessionRecord,
    now_us,
)
from kodad.engine import validation
from kodad.engine.budget import check_limits
from kodad.engine.live import Core

T = TypeVar("T")

UPDATABLE_FIELDS = frozenset(
    {
        "title",
        "labels",
        "approval_mode",
        "provider",
        "loop_cap",
        "system_prompt",
        "approval_timeout",
        "approval_rules",
        "profile",
        "mcp_servers",
        "sandbox",
        "token_budget",
        "cost_budget",
    }
)


async def page(
    size: int,
    page_token: str,
    scope: str,
    fetch: Callable[[str | int | None, int], Awaitable[list[T]]],
    position: Callable[[T], str | int],
) -> tuple[list[T], str]:
    """One page of `size` (validated) of a listing: `fetch(after, limit)` from the position the
    token names (None: the start), and the token of the next page ("" at the end). Tokens are
    bound to `scope`."""
    after = validation.decode_page_token(page_token, scope)
    items = await fetch(after, size + 1)
    if len(items) <= size:
        return items, ""
    items = items[:size]
    return items, validation.encode_page_token(position(items[-1]), scope)


class Sessions:
    def __init__(self, core: Core) -> None:
        self._core = core
        # Creating sessions of one tenant one at a time keeps its session limit exact.
        self._creating: dict[str, asyncio.Lock] = {}

    async def create(
        self, spec: SessionRecord, *, default_provider: bool, caller: Caller
    ) -> SessionRecord:
        """Creates a session of `caller`'s tenant from the client-settable fields of `spec`;
        with `default_provider` it gets the server's provider instead of `spec.provider`."""
        core = self._core
        workspace = validation.workspace(spec.workspace)
        caller.check_workspace(workspace)
        profile = core.profiles.get(spec.profile, workspace).name
        created = now_us()
        provider = core.settings.default_provider if default_provider else spec.provider
        record = SessionRecord(
            id=new_id("s"),
            workspace=workspace,
            title=validation.title(spec.title),
            provider=validation.provider(provider),
            approval_mode=spec.approval_mode,
            loop_cap=validation.loop_cap(spec.loop_cap),
            system_prompt=validation.system_prompt(spec.system_prompt),
            labels=validation.labels(spec.labels),
            approval_timeout_ms=validation.approval_timeout_ms(spec.approval_timeout_ms),
            approval_rules=validation.approval_rules(spec.approval_rules, core.tools.names),
            create_time=created,
            update_time=created,
            tenant=caller.tenant,
            profile=profile,
            mcp_servers=validation.mcp_servers(spec.mcp_servers),
            sandbox=self._sandbox(spec.sandbox, caller),
            token_budget=spec.token_budget,
            cost_budget=spec.cost_budget,
        )
        check_limits(record.token_budget, record.cost_budget, "session")
        core.keys.check(record.provider)
        async with self._creating_lock(caller.tenant):
            await self._check_session_limit(caller.tenant)
            await core.store.create_session(record)
        return record

    def _creating_lock(self, tenant: str) -> asyncio.Lock:
        """Held from counting a tenant's sessions to storing a new one, so concurrent
        creates cannot all pass the limit (within this replica)."""
        return self._creating.setdefault(tenant, asyncio.Lock())

    def _sandbox(self, sandbox: SandboxSettings, caller: Caller) -> SandboxSettings:
        """PermissionDenied for FULL_ACCESS unless an admin asks on a server allowing it."""
        if sandbox.policy is SandboxPolicy.FULL_ACCESS:
            if not self._core.settings.allow_full_access:
                raise PermissionDenied(
                    "session.sandbox.policy FULL_ACCESS is not allowed on this server (start "
                    "it with --allow-full-access)"
                )
            if not caller.admin:
                raise PermissionDenied("session.sandbox.policy FULL_ACCESS needs an admin caller")
        return sandbox

    async def _check_session_limit(self, tenant: str) -> None:
        limit = self._core.settings.limits.sessions_per_tenant
        if limit and await self._core.store.count_sessions(tenant) >= limit:
            raise errors.limit_reached(
                "sessions_per_tenant",
                limit,
                f"the tenant has {limit} sessions, the sessions_per_tenant limit; delete some",
            )

    async def get(self, session_id: str, *, caller: Caller) -> SessionRecord:
        """The session, with its queue of turns."""
        live = self._core.live
        record = live.view(await live.record(session_id, caller))
        queued = tuple(await self._core.store.queued_turns(session_id))
        return dataclasses.replace(record, queued_turns=queued) if queued else record

    async def list_sessions(
        self, *, page_size: int, page_token: str, labels: Mapping[str, str], caller: Caller
    ) -> tuple[list[SessionRecord], str]:
        size = validation.page_size(page_size)
        labels = validation.label_filter(labels)
        scope = "sessions:" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

        def fetch(before: str | int | None, limit: int) -> Awaitable[list[SessionRecord]]:
            return self._core.store.list_sessions(
                limit=limit,
                before_id=None if before is None else str(before),
                labels=labels,
                tenant=None if caller.admin else caller.tenant,
            )

        records, token = await page(size, page_token, scope, fetch, lambda r: r.id)
        return [self._core.live.view(r) for r in records], token

    async def update(
        self, changes: SessionRecord, paths: list[str], *, caller: Caller
    ) -> SessionRecord:
        core = self._core
        if not paths:
            raise InvalidArgument("update_mask must name at least one field")
        unknown = sorted(set(paths) - UPDATABLE_FIELDS)
        if unknown:
            raise InvalidArgument(
                f"update_mask paths {unknown} cannot be updated; allowed: "
                + ", ".join(sorted(UPDATABLE_FIELDS))
            )
        record = await core.live.record(changes.id, caller)
        if "title" in paths:
            record.title = validation.title(changes.title)
        if "labels" in paths:
            record.labels = validation.labels(changes.labels)
        if "approval_mode" in paths:
            record.approval_mode = changes.approval_mode
        if "provider" in paths:
            record.provider = validation.provider(changes.provider)
            core.keys.check(record.provider)
        if "loop_cap" in paths:
            record.loop_cap = validation.loop_cap(changes.loop_cap)
        if "system_prompt" in paths:
            record.system_prompt = validation.system_prompt(changes.system_prompt)
        if "approval_timeout" in paths:
            record.approval_timeout_ms = validation.approval_timeout_ms(changes.approval_timeout_ms)
        if "approval_rules" in paths:
            record.approval_rules = validation.approval_rules(
                changes.approval_rules, core.tools.names
            )
        if "profile" in paths:
            record.profile = core.profiles.get(changes.profile, record.workspace).name
        if "mcp_servers" in paths:
            record.mcp_servers = validation.mcp_servers(changes.mcp_servers)
        if "sandbox" in paths:
            record.sandbox = self._sandbox(changes.sandbox, caller)
        if "token_budget" in paths or "cost_budget" in paths:
            check_limits(changes.token_budget, changes.cost_budget, "session")
            if "token_budget" in paths:
                record.token_budget = changes.token_budget
            if "cost_budget" in paths:
                record.cost_budget = changes.cost_budget
        record.update_time = now_us()
        await core.store.update_session(record)
        return core.live.view(record)

    async def delete(self, session_id: str, *, caller: Caller) -> None:
        core = self._core
        record = await core.live.record(session_id, caller)
        live = core.live.get(session_id)
        if running := core.live.running_turn_id(record):
            raise FailedPrecondition(
                f"session {session_id} is running turn {running}; cancel it first"
            )
        if live is not None:
            await live.log.flush()
        if not await core.store.delete_session(session_id):
            raise errors.session_not_found(session_id)
        live = core.live.pop(session_id)
        if live is not None:
            live.log.close()
            if live.mcp is not None:
                await live.mcp.aclose()

    async def fork(
        self, session_id: str, title: str, *, caller: Caller, workspace: str = ""
    ) -> SessionRecord:
        core = self._core
        source = await core.live.record(session_id, caller)
        if running := core.live.running_turn_id(source):
            raise FailedPrecondition(
                f"session {session_id} is running turn {running}; fork it when idle"
            )
        created = now_us()
        record = dataclasses.replace(
            source.copy(),
            id=new_id("s"),
            title=validation.title(title or f"{source.title or source.id} (fork)"),
            create_time=created,
            update_time=created,
            last_seq=0,
            active_turn_id="",
            parent_session_id="",
            workspace=workspace or source.workspace,
        )
        async with self._creating_lock(record.tenant):
            await self._check_session_limit(record.tenant)
            await core.store.fork_session(session_id, record)
        return record

    async def messages(
        self, session_id: str, *, page_size: int, page_token: str, caller: Caller
    ) -> tuple[list[Message], str]:
        size = validation.page_size(page_size)
        await self._core.live.record(session_id, caller)

        def fetch(after: str | int | None, limit: int) -> Awaitable[list[Message]]:
            return self._core.store.list_messages(
                session_id, after_index=int(after or 0), limit=limit
            )

        scope = f"messages:{session_id}"
        return await page(size, page_token, scope, fetch, lambda m: m.index)

    async def file_changes(
        self, session_id: str, *, turn_id: str, page_size: int, page_token: str, caller: Caller
    ) -> tuple[list[FileChange], str]:
        size = validation.page_size(page_size)
        await self._core.live.record(session_id, caller)

        def fetch(after: str | int | None, limit: int) -> Awaitable[list[tuple[int, FileChange]]]:
            return self._core.store.list_file_changes(
                session_id, turn_id=turn_id, after=int(after or 0), limit=limit
            )

        scope = f"files:{session_id}:{turn_id}"
        rows, token = await page(size, page_token, scope, fetch, lambda row: row[0])
        return [change for _, change in rows], token
