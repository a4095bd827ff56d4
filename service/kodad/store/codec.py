"""JSON encoding of domain values for stores: event payloads, message bodies, configs."""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import typing
from collections.abc import Sequence
from typing import Any

from kodad.domain.events import (
    PAYLOAD_TYPES,
    Event,
    EventPayload,
    FileDiffStat,
    RateLimit,
    TurnEnded,
    TurnStarted,
)
from kodad.domain.model import (
    ApprovalMode,
    ApprovalRule,
    FileChangeKind,
    Image,
    McpServerSpec,
    Message,
    ProviderConfig,
    ProviderKind,
    Role,
    SandboxPolicy,
    SandboxSettings,
    SessionRecord,
    Todo,
    TodoStatus,
    ToolCall,
    ToolResult,
    Usage,
)
from kodad.store.base import TurnRecord

dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Usage | ApprovalRule):
        return dataclasses.asdict(value)
    if isinstance(value, tuple) and all(isinstance(t, Todo) for t in value):
        return _todo_list(value)
    if isinstance(value, tuple) and all(isinstance(r, RateLimit) for r in value):
        return [dataclasses.asdict(r) for r in value]
    if isinstance(value, tuple) and all(isinstance(f, FileDiffStat) for f in value):
        return [{**dataclasses.asdict(f), "change": f.change.value} for f in value]
    return value


def _todo_list(todos: tuple[Todo, ...]) -> list[dict[str, str]]:
    return [{"content": t.content, "status": t.status.value} for t in todos]


def encode_todos(todos: tuple[Todo, ...]) -> str:
    return dumps(_todo_list(todos))


def decode_todos(value: str | list[dict[str, str]]) -> tuple[Todo, ...]:
    items = json.loads(value) if isinstance(value, str) else value
    return tuple(Todo(t["content"], TodoStatus(t["status"])) for t in items)


def encode_mcp_servers(servers: tuple[McpServerSpec, ...]) -> str:
    return dumps([dataclasses.asdict(s) for s in servers])


def encode_sandbox(sandbox: SandboxSettings) -> str:
    return dumps({"policy": sandbox.policy.value, "network": sandbox.network})


def decode_sandbox(value: str) -> SandboxSettings:
    if not value:  # stored before sessions had a sandbox: the default
        return SandboxSettings()
    data = json.loads(value)
    return SandboxSettings(SandboxPolicy(data["policy"]), bool(data["network"]))


def decode_mcp_servers(value: str) -> tuple[McpServerSpec, ...]:
    return tuple(
        McpServerSpec(
            s["name"],
            tuple(s["command"]),
            s["url"],
            s["trusted"],
            tuple((k, v) for k, v in s.get("header_env", [])),
            tuple((k, v) for k, v in s.get("env_from", [])),
        )
        for s in json.loads(value)
    )


_DECODERS: dict[type, dict[str, Any]] = {}
# Payload fields by name whose stored JSON needs more than the constructor.
_BY_NAME: dict[str, Any] = {
    "todos": decode_todos,
    "choices": tuple,
    "skipped_paths": tuple,
    "restored_files": tuple,
    "limits": lambda items: tuple(RateLimit(**i) for i in items),
    "rule": lambda d: ApprovalRule(**d) if d else None,
    "files": lambda items: tuple(
        FileDiffStat(**{**i, "change": FileChangeKind(i["change"])}) for i in items
    ),
}


def _field_decoders(cls: type) -> dict[str, Any]:
    if cls in _DECODERS:
        return _DECODERS[cls]
    hints = typing.get_type_hints(cls)
    decoders: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            decoders[f.name] = hint
        elif hint is Usage:
            decoders[f.name] = lambda d: Usage(**d)
        elif f.name in _BY_NAME:
            decoders[f.name] = _BY_NAME[f.name]
    _DECODERS[cls] = decoders
    return decoders


def encode_payload(payload: EventPayload) -> str:
    body = {f.name: _plain(getattr(payload, f.name)) for f in dataclasses.fields(payload)}
    body["k"] = payload.kind
    return dumps(body)


def decode_payload(text: str) -> EventPayload:
    body = json.loads(text)
    cls = PAYLOAD_TYPES[body.pop("k")]
    for name, decode in _field_decoders(cls).items():
        if name in body:
            body[name] = decode(body[name])
    return cls(**body)


def encode_rules(rules: tuple[ApprovalRule, ...]) -> str:
    return dumps([dataclasses.asdict(r) for r in rules])


def decode_rules(text: str) -> tuple[ApprovalRule, ...]:
    return tuple(ApprovalRule(**r) for r in json.loads(text))


def encode_usage(usage: Usage) -> str:
    return dumps(dataclasses.asdict(usage))


def decode_usage(text: str) -> Usage:
    return Usage(**json.loads(text))


def encode_provider(config: ProviderConfig) -> str:
    return dumps({f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)})


def decode_provider(text: str) -> ProviderConfig:
    body = json.loads(text)
    body["kind"] = ProviderKind(body["kind"])
    return ProviderConfig(**body)


def encode_message_body(message: Message) -> str:
    plain = ("text", "thinking", "thinking_signature", "summarized_through")
    body: dict[str, Any] = {k: getattr(message, k) for k in plain if getattr(message, k)}
    if message.images:
        body["images"] = encode_images(message.images)
    if message.tool_calls:
        body["tool_calls"] = [dataclasses.asdict(c) for c in message.tool_calls]
    if message.tool_result is not None:
        body["tool_result"] = dataclasses.asdict(message.tool_result)
    if message.usage is not None:
        body["usage"] = dataclasses.asdict(message.usage)
    return dumps(body)


def encode_images(images: tuple[Image, ...]) -> list[dict[str, str]]:
    return [{"mime_type": i.mime_type, "data": base64.b64encode(i.data).decode()} for i in images]


def decode_images(items: list[dict[str, str]]) -> tuple[Image, ...]:
    return tuple(Image(i["mime_type"], base64.b64decode(i["data"])) for i in items)


def decode_message(*, index: int, turn_id: str, role: str, body: str, create_time: int) -> Message:
    data = json.loads(body)
    result = data.get("tool_result")
    usage = data.get("usage")
    return Message(
        role=Role(role),
        turn_id=turn_id,
        text=data.get("text", ""),
        thinking=data.get("thinking", ""),
        thinking_signature=data.get("thinking_signature", ""),
        summarized_through=data.get("summarized_through", 0),
        images=decode_images(data.get("images", [])),
        tool_calls=tuple(ToolCall(**c) for c in data.get("tool_calls", ())),
        tool_result=ToolResult(**result) if result is not None else None,
        usage=Usage(**usage) if usage is not None else None,
        index=index,
        create_time=create_time,
    )


SESSION_COLUMNS = (
    "id, title, workspace, provider, approval_mode, loop_cap, system_prompt, usage,"
    " create_time, update_time, last_seq, message_count, active_turn_id,"
    " approval_timeout_ms, approval_rules, tenant, todos, profile, parent_session_id, mcp_servers,"
    " sandbox, budget"
)


def session_from_row(row: Sequence[object]) -> SessionRecord:
    (sid, title, workspace, provider, mode, loop_cap, prompt, usage, ctime, utime,
     last_seq, message_count, active, timeout_ms, rules, tenant, todos, profile,
     parent, mcp_servers, sandbox, budget, labels) = row  # fmt: skip
    budgets = json.loads(str(budget))
    return SessionRecord(
        id=str(sid),
        title=str(title),
        workspace=str(workspace),
        provider=decode_provider(str(provider)),
        approval_mode=ApprovalMode(mode),
        loop_cap=int(loop_cap),  # type: ignore[call-overload]
        system_prompt=str(prompt),
        usage=decode_usage(str(usage)),
        create_time=int(ctime),  # type: ignore[call-overload]
        update_time=int(utime),  # type: ignore[call-overload]
        last_seq=int(last_seq),  # type: ignore[call-overload]
        message_count=int(message_count),  # type: ignore[call-overload]
        active_turn_id=str(active),
        approval_timeout_ms=int(timeout_ms),  # type: ignore[call-overload]
        approval_rules=decode_rules(str(rules)),
        labels=json.loads(str(labels)) if labels else {},
        tenant=str(tenant),
        todos=decode_todos(str(todos)),
        profile=str(profile),
        parent_session_id=str(parent),
        mcp_servers=decode_mcp_servers(str(mcp_servers)),
        sandbox=decode_sandbox(str(sandbox)),
        token_budget=int(budgets.get("tokens", 0)),
        cost_budget=float(budgets.get("cost", 0.0)),
    )


def encode_budget(r: SessionRecord) -> str:
    budget: dict[str, float] = {}
    if r.token_budget:
        budget["tokens"] = r.token_budget
    if r.cost_budget:
        budget["cost"] = r.cost_budget
    return dumps(budget)


def session_row(r: SessionRecord) -> tuple[object, ...]:
    """The values of SESSION_COLUMNS for `r`, in that order."""
    return (
        r.id,
        r.title,
        r.workspace,
        encode_provider(r.provider),
        r.approval_mode.value,
        r.loop_cap,
        r.system_prompt,
        encode_usage(r.usage),
        r.create_time,
        r.update_time,
        r.last_seq,
        r.message_count,
        r.active_turn_id,
        r.approval_timeout_ms,
        encode_rules(r.approval_rules),
        r.tenant,
        encode_todos(r.todos),
        r.profile,
        r.parent_session_id,
        encode_mcp_servers(r.mcp_servers),
        encode_sandbox(r.sandbox),
        encode_budget(r),
    )


# The columns UpdateSession writes, in settings_row's order.
SESSION_SETTINGS = (
    "title", "provider", "approval_mode", "loop_cap", "system_prompt", "approval_timeout_ms",
    "approval_rules", "update_time", "profile", "mcp_servers", "sandbox", "budget",
)  # fmt: skip


def settings_row(r: SessionRecord) -> tuple[object, ...]:
    """The values of SESSION_SETTINGS for `r`, in that order."""
    return (
        r.title,
        encode_provider(r.provider),
        r.approval_mode.value,
        r.loop_cap,
        r.system_prompt,
        r.approval_timeout_ms,
        encode_rules(r.approval_rules),
        r.update_time,
        r.profile,
        encode_mcp_servers(r.mcp_servers),
        encode_sandbox(r.sandbox),
        encode_budget(r),
    )


def turn_bounds(events: Sequence[Event]) -> list[Event]:
    """The turn_started and turn_ended events of sessions' own turns, in order (a relayed
    sub-agent event is not): the store writes each with its turn row, in one transaction,
    so a crash never leaves a turn whose row and log disagree."""
    return [
        e
        for e in events
        if isinstance(e.payload, TurnStarted | TurnEnded) and not e.subagent_session_id
    ]


def end_row(turn: TurnRecord) -> tuple[object, ...]:
    """(end_time, reason, error_code, error_message, usage, session_id, turn_id) of an
    ended turn, for the statement that ends its row."""
    assert turn.reason is not None
    usage = encode_usage(turn.usage)
    return (turn.end_time, turn.reason.value, turn.error_code, turn.error_message, usage,
            turn.session_id, turn.turn_id)  # fmt: skip


def turn_end(ended: Event) -> TurnRecord:
    """The end of the turn a turn_ended event ends."""
    p = ended.payload
    assert isinstance(p, TurnEnded)
    return TurnRecord(
        ended.session_id, ended.turn_id, 0, ended.create_time, p.reason, p.error_code,
        p.error_message, p.usage,
    )  # fmt: skip


def turn_row(started: Event) -> tuple[object, ...]:
    """(session_id, turn_id, start_time, usage) of the turn a turn_started event begins."""
    return (started.session_id, started.turn_id, started.create_time, encode_usage(Usage()))


# The columns event_from_row reads, in its order (what event_row writes, without session_id).
EVENT_COLUMNS = "seq, turn_id, create_time, payload, subagent_session_id, parent_call_id"


def event_row(e: Event) -> tuple[object, ...]:
    """(session_id, seq, turn_id, create_time, payload, subagent_session_id, parent_call_id)."""
    return (
        e.session_id,
        e.seq,
        e.turn_id,
        e.create_time,
        encode_payload(e.payload),
        e.subagent_session_id,
        e.parent_call_id,
    )


def event_from_row(session_id: str, row: Sequence[object]) -> Event:
    """An event of `session_id` from the values of EVENT_COLUMNS."""
    seq, turn_id, create_time, payload, child, call = row
    return Event(
        session_id,
        str(turn_id),
        int(seq),  # type: ignore[call-overload]
        int(create_time),  # type: ignore[call-overload]
        decode_payload(str(payload)),
        str(child),
        str(call),
    )


def message_from_row(row: Sequence[object]) -> Message:
    """A message from (idx, turn_id, role, body, create_time)."""
    index, turn_id, role, body, create_time = row
    return decode_message(
        index=int(index),  # type: ignore[call-overload]
        turn_id=str(turn_id),
        role=str(role),
        body=str(body),
        create_time=int(create_time),  # type: ignore[call-overload]
    )
