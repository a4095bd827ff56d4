"""Domain types of sessions and messages, shared by every layer. No protobuf here: api/
translates."""

from __future__ import annotations

import dataclasses
import enum
import functools
import time
from dataclasses import dataclass, field


def now_us() -> int:
    """Wall-clock time in microseconds since the epoch, the unit of every stored time."""
    return time.time_ns() // 1000


class ProviderKind(enum.Enum):
    SCRIPTED = "scripted"
    OPENAI_COMPATIBLE = "openai_compatible"
    ANTHROPIC = "anthropic"


class ApprovalRisk(enum.Enum):
    UNSPECIFIED = "unspecified"
    NORMAL = "normal"
    HIGH = "high"


class ApprovalMode(enum.Enum):
    AUTO = "auto"
    CONFIRM = "confirm"
    READ_ONLY = "read_only"


class SandboxPolicy(enum.Enum):
    """What the processes a session starts may touch (see tools/sandbox.py)."""

    READ_ONLY = "read_only"  # the workspace is mounted read-only
    WORKSPACE_WRITE = "workspace_write"  # approved commands may write the workspace
    FULL_ACCESS = "full_access"  # approved commands run unconfined (admin, server flag)


@dataclass(frozen=True)
class SandboxSettings:
    """A session's sandbox: its policy and whether its processes may use the network."""

    policy: SandboxPolicy = SandboxPolicy.WORKSPACE_WRITE
    network: bool = False


class Role(enum.Enum):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    SUMMARY = "summary"


class DisconnectPolicy(enum.Enum):
    CANCEL = "cancel"
    CONTINUE = "continue"


class WhenBusy(enum.Enum):
    """What starting a turn does when the session runs one."""

    REJECT = "reject"
    ENQUEUE = "enqueue"
    INTERRUPT = "interrupt"
    STEER = "steer"


class Decision(enum.Enum):
    APPROVE = "approve"
    APPROVE_ALWAYS = "approve_always"
    REJECT = "reject"
    REJECT_ALWAYS = "reject_always"

    @property
    def rejects(self) -> bool:
        return self in (Decision.REJECT, Decision.REJECT_ALWAYS)

    @property
    def adds_rule(self) -> bool:
        return self in (Decision.APPROVE_ALWAYS, Decision.REJECT_ALWAYS)


class LoopAction(enum.Enum):
    CONTINUE = "continue"
    STOP = "stop"


class TurnEndReason(enum.Enum):
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    STOPPED_AT_LOOP_CAP = "stopped_at_loop_cap"
    BUDGET_EXHAUSTED = "budget_exhausted"


class FileChangeKind(enum.Enum):
    CREATED = "created"
    MODIFIED = "modified"
    DELETED = "deleted"


class NoticeLevel(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class McpServerSpec:
    """An MCP server a session's model may use: a stdio command or a streamable-HTTP URL."""

    name: str
    command: tuple[str, ...] = ()
    url: str = ""
    trusted: bool = False
    # Header name -> host variable (url servers); server variable -> host variable (command).
    header_env: tuple[tuple[str, str], ...] = ()
    env_from: tuple[tuple[str, str], ...] = ()
    # Declared by a workspace's profile (untrusted content): asks before it first starts.
    from_workspace: bool = False


@dataclass(frozen=True)
class ProviderConfig:
    """Where a session's model lives. `api_key_env` names an env var; keys are never stored."""

    kind: ProviderKind = ProviderKind.SCRIPTED
    model: str = ""
    base_url: str = ""
    api_key_env: str = ""
    script_json: str = ""
    max_output_tokens: int = 0
    thinking_budget_tokens: int = 0
    context_window_tokens: int = 0
    # OPENAI_COMPATIBLE: the request field for max_output_tokens ("" = by host, see proto).
    max_tokens_field: str = ""
    # ANTHROPIC: no cache_control marks on the prompt.
    disable_prompt_caching: bool = False


@dataclass(frozen=True)
class ModelInfo:
    """A model a provider serves, with its limits where the server states them (0: not)."""

    id: str
    display_name: str = ""
    context_window_tokens: int = 0
    max_output_tokens: int = 0


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost: float = 0.0  # in the price table's currency; 0 without a price

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cost + other.cost,
        )

    @property
    def tokens(self) -> int:
        """Input and output tokens together (what token budgets count)."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class ApprovalRule:
    """Lets matching calls run without asking in CONFIRM mode, or with `reject` refuses
    them without asking (see engine/approvals.py)."""

    tool_name: str
    command_prefix: str = ""
    reject: bool = False


@dataclass
class SessionRecord:
    """A session as stored. `active_turn_id` is set while a turn runs (and after a crash)."""

    id: str
    workspace: str
    title: str = ""
    provider: ProviderConfig = field(default_factory=ProviderConfig)
    approval_mode: ApprovalMode = ApprovalMode.CONFIRM
    loop_cap: int = 0
    system_prompt: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    approval_timeout_ms: int = 0
    approval_rules: tuple[ApprovalRule, ...] = ()
    usage: Usage = field(default_factory=Usage)
    create_time: int = 0
    update_time: int = 0
    last_seq: int = 0
    message_count: int = 0
    active_turn_id: str = ""
    tenant: str = ""
    todos: tuple[Todo, ...] = ()
    profile: str = "default"
    # A sub-agent's session: the session whose invoke_agent call created it.
    parent_session_id: str = ""
    mcp_servers: tuple[McpServerSpec, ...] = ()
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    # Inputs waiting to run as turns, next first (read by get_session only).
    queued_turns: tuple[QueuedTurn, ...] = ()
    # What all its turns together may spend (0: no budget).
    token_budget: int = 0
    cost_budget: float = 0.0

    def copy(self) -> SessionRecord:
        return dataclasses.replace(self, labels=dict(self.labels))


@dataclass(frozen=True)
class FileChange:
    """A workspace file a tool of the session changed, as the file tracker records it."""

    path: str
    change: FileChangeKind
    turn_id: str
    create_time: int


@dataclass(frozen=True)
class Image:
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class QueuedTurn:
    """An input waiting in a session's queue to run as the turn `turn_id`."""

    turn_id: str
    text: str
    images: tuple[Image, ...] = ()
    create_time: int = 0
    # The workspace roots of the caller who queued it: the turn starts under them.
    workspace_roots: tuple[str, ...] = ()
    output_schema: str = ""  # StartTurn.output_schema_json


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    tool_name: str
    arguments_json: str


@dataclass(frozen=True)
class ToolResult:
    call_id: str
    output: str
    is_error: bool = False
    truncated: bool = False


# The tokens an image is estimated to take in a model's context.
IMAGE_TOKENS = 1500


@dataclass(frozen=True)
class Message:
    """One history entry. `index` is its 1-based position, assigned by the store."""

    role: Role
    turn_id: str
    text: str = ""
    thinking: str = ""
    thinking_signature: str = ""  # opaque; some providers need it to accept thinking back
    images: tuple[Image, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_result: ToolResult | None = None
    usage: Usage | None = None
    summarized_through: int = 0  # SUMMARY: the last message index the summary stands for
    index: int = 0
    create_time: int = 0

    @functools.cached_property
    def size(self) -> int:
        """The characters a model reads of it: text, thinking, calls and result (computed
        once: a turn estimates its whole context every round)."""
        size = len(self.text) + len(self.thinking)
        size += sum(len(c.tool_name) + len(c.arguments_json) for c in self.tool_calls)
        return size + (len(self.tool_result.output) if self.tool_result is not None else 0)

    @functools.cached_property
    def tokens(self) -> int:
        """The provider-independent estimate of the tokens it takes: about four characters
        a token, a few for its framing, IMAGE_TOKENS an image (computed once)."""
        return self.size // 4 + 4 + IMAGE_TOKENS * len(self.images)


class TodoStatus(enum.Enum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


@dataclass(frozen=True)
class Todo:
    """One item of a session's task list, kept by the model with todo_write."""

    content: str
    status: TodoStatus = TodoStatus.PENDING
