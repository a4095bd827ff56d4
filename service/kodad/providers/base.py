"""The LlmProvider protocol and the events a provider streams."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kodad.domain.events import RateLimit
from kodad.domain.model import Message, ModelInfo, ToolCall, Usage


@dataclass(frozen=True)
class ToolSpec:
    """A tool as offered to the model: name, description, JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ProviderRequest:
    model: str
    system_prompt: str
    messages: Sequence[Message]
    tools: Sequence[ToolSpec] = ()
    max_output_tokens: int = 0
    thinking_budget_tokens: int = 0
    # Provider calls already made in the session (its assistant messages), whatever part of
    # the history `messages` holds; "summary" marks a call that summarises the history.
    prior_rounds: int = 0
    purpose: str = "turn"
    # The agent profile of a sub-agent's session ("" for a session a client created).
    subagent: str = ""
    # The JSON Schema the final answer must match (StartTurn.output_schema_json), and
    # whether this request must give it now (the turn asks again after an invalid one).
    output_schema: Mapping[str, Any] | None = None
    force_output: bool = False


@dataclass(frozen=True)
class TextChunk:
    text: str


@dataclass(frozen=True)
class ThinkingChunk:
    text: str


@dataclass(frozen=True)
class ThinkingSignature:
    """The signature that must accompany this round's thinking when it is sent back."""

    signature: str


@dataclass(frozen=True)
class ToolCallReady:
    """A complete tool call (providers assemble streamed argument fragments). `cut_off`:
    the output token limit ended the response inside it, so its arguments are incomplete
    (the turn answers it with an error saying so instead of running it)."""

    call: ToolCall
    cut_off: bool = False


@dataclass(frozen=True)
class UsageReport:
    usage: Usage


@dataclass(frozen=True)
class Retry:
    """A failed request about to be tried again."""

    attempt: int  # the next attempt, from 2
    attempts: int  # in all
    delay_s: float
    reason: str  # the failure's error code


@dataclass(frozen=True)
class ProviderNotice:
    """Something worth telling the user, e.g. a retried request or a cut-off answer."""

    text: str
    warning: bool = True
    retry: Retry | None = None


@dataclass(frozen=True)
class RateLimitReport:
    """The rate limits the provider's response headers state."""

    limits: tuple[RateLimit, ...]


@dataclass(frozen=True)
class StreamFinished:
    stop_reason: str = ""


ProviderEvent = (
    TextChunk
    | ThinkingChunk
    | ThinkingSignature
    | ToolCallReady
    | UsageReport
    | ProviderNotice
    | RateLimitReport
    | StreamFinished
)


@dataclass
class ProviderError(Exception):
    """A provider call failed. `code` is stable ("auth", "rate_limited", "bad_request",
    "overloaded", "timeout", "connect", "provider_error", "script_exhausted", ...)."""

    code: str
    message: str
    status: int = 0
    retry_after: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class LlmProvider(Protocol):
    """Streams one model response. Raises ProviderError; cancellation stops the stream."""

    def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]: ...

    async def list_models(self) -> list[ModelInfo]:
        """The models the provider serves (ProviderError when it cannot say)."""
        ...

    async def aclose(self) -> None: ...
