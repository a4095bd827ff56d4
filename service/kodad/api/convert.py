"""Protobuf <-> domain translation of sessions, messages and their parts (convert_events.py:
events and commands)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from kodad.domain import model as m
from kodad.domain.errors import InvalidArgument
from kodad.engine.profiles import AgentProfile
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb

T = TypeVar("T")

_PROVIDER_KINDS = {
    spb.PROVIDER_KIND_SCRIPTED: m.ProviderKind.SCRIPTED,
    spb.PROVIDER_KIND_OPENAI_COMPATIBLE: m.ProviderKind.OPENAI_COMPATIBLE,
    spb.PROVIDER_KIND_ANTHROPIC: m.ProviderKind.ANTHROPIC,
}
_APPROVAL_MODES = {
    spb.APPROVAL_MODE_AUTO: m.ApprovalMode.AUTO,
    spb.APPROVAL_MODE_CONFIRM: m.ApprovalMode.CONFIRM,
    spb.APPROVAL_MODE_READ_ONLY: m.ApprovalMode.READ_ONLY,
}
_SANDBOX_POLICIES = {
    spb.SANDBOX_POLICY_READ_ONLY: m.SandboxPolicy.READ_ONLY,
    spb.SANDBOX_POLICY_WORKSPACE_WRITE: m.SandboxPolicy.WORKSPACE_WRITE,
    spb.SANDBOX_POLICY_FULL_ACCESS: m.SandboxPolicy.FULL_ACCESS,
}
_ROLES = {
    m.Role.USER: spb.MESSAGE_ROLE_USER,
    m.Role.ASSISTANT: spb.MESSAGE_ROLE_ASSISTANT,
    m.Role.TOOL: spb.MESSAGE_ROLE_TOOL,
    m.Role.SUMMARY: spb.MESSAGE_ROLE_SUMMARY,
}
_DECISIONS = {
    epb.DECISION_APPROVE: m.Decision.APPROVE,
    epb.DECISION_APPROVE_ALWAYS: m.Decision.APPROVE_ALWAYS,
    epb.DECISION_REJECT: m.Decision.REJECT,
    epb.DECISION_REJECT_ALWAYS: m.Decision.REJECT_ALWAYS,
}
_LOOP_ACTIONS = {
    epb.LOOP_ACTION_CONTINUE: m.LoopAction.CONTINUE,
    epb.LOOP_ACTION_STOP: m.LoopAction.STOP,
}
_DISCONNECT = {
    epb.DISCONNECT_POLICY_UNSPECIFIED: m.DisconnectPolicy.CANCEL,
    epb.DISCONNECT_POLICY_CANCEL: m.DisconnectPolicy.CANCEL,
    epb.DISCONNECT_POLICY_CONTINUE: m.DisconnectPolicy.CONTINUE,
}
REASONS = {
    m.TurnEndReason.COMPLETED: epb.TURN_END_REASON_COMPLETED,
    m.TurnEndReason.CANCELLED: epb.TURN_END_REASON_CANCELLED,
    m.TurnEndReason.FAILED: epb.TURN_END_REASON_FAILED,
    m.TurnEndReason.STOPPED_AT_LOOP_CAP: epb.TURN_END_REASON_STOPPED_AT_LOOP_CAP,
    m.TurnEndReason.BUDGET_EXHAUSTED: epb.TURN_END_REASON_BUDGET_EXHAUSTED,
}
CHANGES = {
    m.FileChangeKind.CREATED: epb.FILE_CHANGE_KIND_CREATED,
    m.FileChangeKind.MODIFIED: epb.FILE_CHANGE_KIND_MODIFIED,
    m.FileChangeKind.DELETED: epb.FILE_CHANGE_KIND_DELETED,
}
LEVELS = {
    m.NoticeLevel.INFO: epb.NOTICE_LEVEL_INFO,
    m.NoticeLevel.WARNING: epb.NOTICE_LEVEL_WARNING,
    m.NoticeLevel.ERROR: epb.NOTICE_LEVEL_ERROR,
}

RISKS_TO_PB = {
    m.ApprovalRisk.UNSPECIFIED: epb.APPROVAL_RISK_UNSPECIFIED,
    m.ApprovalRisk.NORMAL: epb.APPROVAL_RISK_NORMAL,
    m.ApprovalRisk.HIGH: epb.APPROVAL_RISK_HIGH,
}

PROVIDER_KIND_TO_PB = {v: k for k, v in _PROVIDER_KINDS.items()}
_APPROVAL_MODES_TO_PB = {v: k for k, v in _APPROVAL_MODES.items()}
_SANDBOX_POLICIES_TO_PB = {v: k for k, v in _SANDBOX_POLICIES.items()}
DECISIONS_TO_PB = {v: k for k, v in _DECISIONS.items()}


def timestamp(micros: int) -> Timestamp:
    ts = Timestamp()
    ts.FromMicroseconds(micros)
    return ts


def _enum(table: Mapping[Any, T], value: int, field: str) -> T:
    try:
        return table[value]
    except KeyError:
        raise InvalidArgument(f"{field} has an unknown value {value}") from None


# Into the domain


def provider_config(pb: spb.ProviderConfig) -> m.ProviderConfig:
    kind = m.ProviderKind.SCRIPTED
    if pb.kind != spb.PROVIDER_KIND_UNSPECIFIED:
        kind = _enum(_PROVIDER_KINDS, pb.kind, "session.provider.kind")
    return m.ProviderConfig(
        kind=kind,
        model=pb.model,
        base_url=pb.base_url,
        api_key_env=pb.api_key_env,
        script_json=pb.script_json,
        max_output_tokens=pb.max_output_tokens,
        thinking_budget_tokens=pb.thinking_budget_tokens,
        context_window_tokens=pb.context_window_tokens,
        max_tokens_field=pb.max_tokens_field,
        disable_prompt_caching=pb.disable_prompt_caching,
    )


def approval_mode(value: int) -> m.ApprovalMode:
    if value == spb.APPROVAL_MODE_UNSPECIFIED:
        return m.ApprovalMode.CONFIRM
    return _enum(_APPROVAL_MODES, value, "session.approval_mode")


def sandbox_settings(pb: spb.Sandbox) -> m.SandboxSettings:
    if pb.policy == spb.SANDBOX_POLICY_UNSPECIFIED:
        policy = m.SandboxPolicy.WORKSPACE_WRITE
    else:
        policy = _enum(_SANDBOX_POLICIES, pb.policy, "session.sandbox.policy")
    return m.SandboxSettings(policy, pb.network)


def sandbox(s: m.SandboxSettings) -> spb.Sandbox:
    return spb.Sandbox(policy=_SANDBOX_POLICIES_TO_PB[s.policy], network=s.network)


def session_spec(pb: spb.Session) -> m.SessionRecord:
    """The client-settable fields of a Session (output-only fields are ignored)."""
    return m.SessionRecord(
        id=pb.id,
        workspace=pb.workspace,
        title=pb.title,
        provider=provider_config(pb.provider),
        approval_mode=approval_mode(pb.approval_mode),
        loop_cap=pb.loop_cap,
        system_prompt=pb.system_prompt,
        labels=dict(pb.labels),
        approval_timeout_ms=pb.approval_timeout.ToMilliseconds(),
        approval_rules=approval_rules(list(pb.approval_rules)),
        profile=pb.profile or "default",
        mcp_servers=tuple(mcp_server_spec(s) for s in pb.mcp_servers),
        sandbox=sandbox_settings(pb.sandbox),
        token_budget=pb.token_budget,
        cost_budget=pb.cost_budget,
    )


def mcp_server_spec(pb: spb.McpServer) -> m.McpServerSpec:
    return m.McpServerSpec(
        pb.name,
        tuple(pb.command),
        pb.url,
        pb.trusted,
        tuple(sorted(pb.header_env.items())),
        tuple(sorted(pb.env_from.items())),
    )


def mcp_server(spec: m.McpServerSpec) -> spb.McpServer:
    return spb.McpServer(
        name=spec.name,
        command=list(spec.command),
        url=spec.url,
        trusted=spec.trusted,
        header_env=dict(spec.header_env),
        env_from=dict(spec.env_from),
    )


def agent_profile(p: AgentProfile) -> spb.AgentProfile:
    return spb.AgentProfile(
        name=p.name,
        description=p.description,
        system_prompt=p.system_prompt,
        model=p.model,
        allowed_tools=list(p.allowed_tools),
        disallowed_tools=list(p.disallowed_tools),
        loop_cap=p.loop_cap,
        memory=p.memory,
        source=p.source,
        mcp_servers=[mcp_server(s) for s in p.mcp_servers],
    )


def approval_rules(pbs: list[spb.ApprovalRule]) -> tuple[m.ApprovalRule, ...]:
    return tuple(m.ApprovalRule(r.tool_name, r.command_prefix, r.reject) for r in pbs)


def approval_rule(r: m.ApprovalRule) -> spb.ApprovalRule:
    return spb.ApprovalRule(tool_name=r.tool_name, command_prefix=r.command_prefix, reject=r.reject)


def images(pbs: list[spb.Image]) -> tuple[m.Image, ...]:
    return tuple(m.Image(i.mime_type, i.data) for i in pbs)


def decision(value: int) -> m.Decision:
    return _enum(_DECISIONS, value, "approval_decision.decision")


def loop_action(value: int) -> m.LoopAction:
    return _enum(_LOOP_ACTIONS, value, "loop_decision.action")


def disconnect_policy(value: int) -> m.DisconnectPolicy:
    return _enum(_DISCONNECT, value, "start_turn.on_disconnect")


# Out of the domain


def usage(u: m.Usage) -> spb.Usage:
    return spb.Usage(
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens,
        cost=u.cost,
    )


def provider(p: m.ProviderConfig) -> spb.ProviderConfig:
    return spb.ProviderConfig(
        kind=PROVIDER_KIND_TO_PB[p.kind],
        model=p.model,
        base_url=p.base_url,
        api_key_env=p.api_key_env,
        script_json=p.script_json,
        max_output_tokens=p.max_output_tokens,
        thinking_budget_tokens=p.thinking_budget_tokens,
        context_window_tokens=p.context_window_tokens,
        max_tokens_field=p.max_tokens_field,
        disable_prompt_caching=p.disable_prompt_caching,
    )


def session(r: m.SessionRecord) -> spb.Session:
    return spb.Session(
        id=r.id,
        title=r.title,
        workspace=r.workspace,
        provider=provider(r.provider),
        approval_mode=_APPROVAL_MODES_TO_PB[r.approval_mode],
        loop_cap=r.loop_cap,
        system_prompt=r.system_prompt,
        labels=r.labels,
        state=spb.SESSION_STATE_RUNNING if r.active_turn_id else spb.SESSION_STATE_IDLE,
        active_turn_id=r.active_turn_id,
        usage=usage(r.usage),
        create_time=timestamp(r.create_time),
        update_time=timestamp(r.update_time),
        last_seq=r.last_seq,
        message_count=r.message_count,
        tenant=r.tenant,
        todos=todos(r.todos),
        profile=r.profile,
        parent_session_id=r.parent_session_id,
        mcp_servers=[mcp_server(s) for s in r.mcp_servers],
        sandbox=sandbox(r.sandbox),
        approval_timeout=Duration(
            seconds=r.approval_timeout_ms // 1000, nanos=r.approval_timeout_ms % 1000 * 1_000_000
        ),
        token_budget=r.token_budget,
        cost_budget=r.cost_budget,
        queued_turns=[
            spb.QueuedTurn(
                turn_id=q.turn_id,
                text=q.text,
                image_count=len(q.images),
                create_time=timestamp(q.create_time),
            )
            for q in r.queued_turns
        ],
        approval_rules=[approval_rule(a) for a in r.approval_rules],
    )


def model(info: m.ModelInfo) -> spb.Model:
    return spb.Model(
        id=info.id,
        display_name=info.display_name,
        context_window_tokens=info.context_window_tokens,
        max_output_tokens=info.max_output_tokens,
    )


def file_change(c: m.FileChange) -> epb.FileChange:
    return epb.FileChange(
        path=c.path,
        change=CHANGES[c.change],
        turn_id=c.turn_id,
        create_time=timestamp(c.create_time),
    )


def message(msg: m.Message) -> spb.Message:
    pb = spb.Message(
        index=msg.index,
        turn_id=msg.turn_id,
        role=_ROLES[msg.role],
        text=msg.text,
        thinking=msg.thinking,
        images=[spb.Image(mime_type=i.mime_type, data=i.data) for i in msg.images],
        tool_calls=[
            spb.ToolCall(call_id=c.call_id, tool_name=c.tool_name, arguments_json=c.arguments_json)
            for c in msg.tool_calls
        ],
        create_time=timestamp(msg.create_time),
        summarized_through=msg.summarized_through,
    )
    if msg.tool_result is not None:
        r = msg.tool_result
        pb.tool_result.CopyFrom(
            spb.ToolResult(
                call_id=r.call_id, output=r.output, is_error=r.is_error, truncated=r.truncated
            )
        )
    if msg.usage is not None:
        pb.usage.CopyFrom(usage(msg.usage))
    return pb


_TODO_STATUSES = {
    m.TodoStatus.PENDING: spb.TODO_STATUS_PENDING,
    m.TodoStatus.IN_PROGRESS: spb.TODO_STATUS_IN_PROGRESS,
    m.TodoStatus.COMPLETED: spb.TODO_STATUS_COMPLETED,
}


def todos(items: tuple[m.Todo, ...]) -> list[spb.Todo]:
    return [spb.Todo(content=t.content, status=_TODO_STATUSES[t.status]) for t in items]
