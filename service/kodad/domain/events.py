"""Event payloads and the event envelope of a session's log. No protobuf here: api/
translates."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import ClassVar

from kodad.domain.model import (
    ApprovalRisk,
    ApprovalRule,
    Decision,
    FileChangeKind,
    NoticeLevel,
    Todo,
    TurnEndReason,
    Usage,
)

# Event payloads. Each has a stable `kind`, used by the store's codec.


@dataclass(frozen=True)
class TurnStarted:
    kind: ClassVar[str] = "turn_started"
    text: str
    image_count: int = 0


@dataclass(frozen=True)
class TextDelta:
    kind: ClassVar[str] = "text_delta"
    text: str


@dataclass(frozen=True)
class ThinkingDelta:
    kind: ClassVar[str] = "thinking_delta"
    text: str


@dataclass(frozen=True)
class ToolCallStarted:
    kind: ClassVar[str] = "tool_call_started"
    call_id: str
    tool_name: str
    arguments_json: str


@dataclass(frozen=True)
class ToolCallOutput:
    kind: ClassVar[str] = "tool_call_output"
    call_id: str
    chunk: str
    # Characters of the output left out before this chunk (past the stream limit only the
    # output's tail streams): set on the tail's first chunk.
    omitted: int = 0


@dataclass(frozen=True)
class ToolCallFinished:
    kind: ClassVar[str] = "tool_call_finished"
    call_id: str
    output: str
    is_error: bool = False
    truncated: bool = False


@dataclass(frozen=True)
class ApprovalRequested:
    kind: ClassVar[str] = "approval_requested"
    request_id: str
    call_id: str
    tool_name: str
    arguments_json: str
    summary: str
    preview: str
    risk: ApprovalRisk = ApprovalRisk.UNSPECIFIED


@dataclass(frozen=True)
class ApprovalResolved:
    """A call's approval decided: by a human answering `request_id`, or (request_id empty)
    by the session's `rule`, without asking."""

    kind: ClassVar[str] = "approval_resolved"
    request_id: str
    decision: Decision
    call_id: str = ""
    rule: ApprovalRule | None = None


@dataclass(frozen=True)
class LoopCapReached:
    kind: ClassVar[str] = "loop_cap_reached"
    iterations: int
    cap: int


@dataclass(frozen=True)
class UsageReported:
    kind: ClassVar[str] = "usage"
    usage: Usage


@dataclass(frozen=True)
class FileChanged:
    kind: ClassVar[str] = "file_changed"
    path: str
    change: FileChangeKind


@dataclass(frozen=True)
class ContextUsage:
    kind: ClassVar[str] = "context_usage"
    used_tokens: int
    max_tokens: int


@dataclass(frozen=True)
class UserQuestion:
    kind: ClassVar[str] = "user_question"
    request_id: str
    call_id: str
    question: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class TodosUpdated:
    kind: ClassVar[str] = "todos_updated"
    todos: tuple[Todo, ...]


@dataclass(frozen=True)
class Notice:
    kind: ClassVar[str] = "notice"
    level: NoticeLevel
    text: str
    # A provider request about to be retried: the next attempt (from 2; 0: not a retry), of
    # how many, in how long, and the code of the failure.
    retry_attempt: int = 0
    retry_max_attempts: int = 0
    retry_delay_ms: int = 0
    retry_reason: str = ""


@dataclass(frozen=True)
class RateLimit:
    """One limited quantity as a provider's headers state it."""

    name: str  # requests, tokens, input_tokens, output_tokens
    limit: int = 0  # 0: not stated
    remaining: int = -1  # -1: not stated
    reset: str = ""  # as the provider wrote it


@dataclass(frozen=True)
class RateLimits:
    kind: ClassVar[str] = "rate_limits"
    limits: tuple[RateLimit, ...]


@dataclass(frozen=True)
class TurnEnded:
    kind: ClassVar[str] = "turn_ended"
    reason: TurnEndReason
    error_code: str = ""
    error_message: str = ""
    usage: Usage = field(default_factory=Usage)
    output_json: str = ""  # the answer, when the turn had an output schema


@dataclass(frozen=True)
class UserInputAdded:
    """A steer the running turn took, stored as a user message right before this event."""

    kind: ClassVar[str] = "user_input_added"
    text: str
    image_count: int = 0


@dataclass(frozen=True)
class TurnQueued:
    """An input queued as the turn this event's turn_id names."""

    kind: ClassVar[str] = "turn_queued"
    text: str
    image_count: int = 0
    position: int = 1


@dataclass(frozen=True)
class QueuedTurnRemoved:
    """A queued turn left the queue without running."""

    kind: ClassVar[str] = "queued_turn_removed"
    reason: str  # "removed", "cancelled" or "failed"
    message: str = ""


@dataclass(frozen=True)
class CheckpointTaken:
    """The workspace was captured (see engine/snapshots.py)."""

    kind: ClassVar[str] = "checkpoint_taken"
    checkpoint_id: str
    call_id: str = ""  # "" for the turn's first: the state before it
    files_changed: int = 0
    skipped_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileDiffStat:
    path: str
    change: FileChangeKind
    lines_added: int = 0
    lines_removed: int = 0
    binary: bool = False


@dataclass(frozen=True)
class TurnDiff:
    kind: ClassVar[str] = "turn_diff"
    files: tuple[FileDiffStat, ...] = ()


@dataclass(frozen=True)
class SessionRewound:
    kind: ClassVar[str] = "session_rewound"
    to_turn_id: str = ""
    to_seq: int = 0
    restored_files: tuple[str, ...] = ()
    messages_removed: int = 0
    undone: bool = False
    checkpoint_id: str = ""  # the state the workspace is in now
    undo_checkpoint_id: str = ""  # the state before the rewind
    history_blob: str = ""  # the messages taken off, kept in the snapshot store


EventPayload = (
    TurnStarted
    | TextDelta
    | ThinkingDelta
    | ToolCallStarted
    | ToolCallOutput
    | ToolCallFinished
    | ApprovalRequested
    | ApprovalResolved
    | LoopCapReached
    | UsageReported
    | FileChanged
    | Notice
    | TurnEnded
    | ContextUsage
    | TodosUpdated
    | UserQuestion
    | RateLimits
    | UserInputAdded
    | TurnQueued
    | QueuedTurnRemoved
    | CheckpointTaken
    | TurnDiff
    | SessionRewound
)

# Every payload by its kind, derived from the union.
PAYLOAD_TYPES: dict[str, type[EventPayload]] = {
    cls.kind: cls for cls in typing.get_args(EventPayload)
}


@dataclass(frozen=True)
class Event:
    """One entry of a session's event log; `seq` is gap-free per session, from 1."""

    session_id: str
    turn_id: str
    seq: int
    create_time: int
    payload: EventPayload
    # Set on an event a sub-agent emitted, as relayed into its parent's log: the child
    # session that emitted it and the parent's invoke_agent call running that child.
    subagent_session_id: str = ""
    parent_call_id: str = ""
