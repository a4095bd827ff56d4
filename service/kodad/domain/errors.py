"""Domain errors. Each kind has a stable code (api/errors.py maps it to one gRPC status
code); an error may carry a machine-readable reason and metadata (google.rpc.ErrorInfo on
the wire)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class ConfigError(ValueError):
    """The environment, flags or an operator's file are inconsistent; the message says which
    setting. Raised at start, never to a caller."""


class KodaError(Exception):
    """Base of every error the engine reports to a caller."""

    code: ClassVar[str] = "INTERNAL"

    def __init__(
        self, message: str, *, reason: str = "", metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        # UPPER_SNAKE_CASE, stable: what a client may branch on (empty: only the code).
        self.reason = reason
        self.metadata = dict(metadata or {})


class InvalidArgument(KodaError):
    """The request is malformed; the message names the field."""

    code = "INVALID_ARGUMENT"


class NotFound(KodaError):
    """The session (or request) does not exist."""

    code = "NOT_FOUND"


class FailedPrecondition(KodaError):
    """The request is valid but the session is not in a state to accept it."""

    code = "FAILED_PRECONDITION"


class OutOfRange(KodaError):
    """A position past the end, e.g. an after_seq the session's log has not reached."""

    code = "OUT_OF_RANGE"


class ResourceExhausted(KodaError):
    """A configured limit was hit; the message names it."""

    code = "RESOURCE_EXHAUSTED"


class Unauthenticated(KodaError):
    """The call carries no valid credentials."""

    code = "UNAUTHENTICATED"


class PermissionDenied(KodaError):
    """The caller is known but may not do this (e.g. a workspace outside its roots)."""

    code = "PERMISSION_DENIED"


class Aborted(KodaError):
    """The call was cut off by a conflict, e.g. another replica took the session over."""

    code = "ABORTED"


class Unavailable(KodaError):
    """A part of the service needed for the call did not answer; retry."""

    code = "UNAVAILABLE"


KINDS: tuple[type[KodaError], ...] = (
    InvalidArgument,
    NotFound,
    FailedPrecondition,
    OutOfRange,
    ResourceExhausted,
    Unauthenticated,
    PermissionDenied,
    Aborted,
    Unavailable,
)


def from_code(code: str, message: str, reason: str = "", **metadata: str) -> KodaError:
    """The error of kind `code` (as another replica reported it); UNAVAILABLE if unknown."""
    kind = next((k for k in KINDS if k.code == code), Unavailable)
    return kind(message, reason=reason, metadata=metadata)


# Reasons (google.rpc.ErrorInfo.reason) the contract documents; an error without one of
# these has its code as its reason.
TURN_ALREADY_RUNNING = "TURN_ALREADY_RUNNING"  # metadata: session_id, turn_id
NO_RUNNING_TURN = "NO_RUNNING_TURN"  # metadata: session_id
TURN_NOT_RUNNING = "TURN_NOT_RUNNING"  # metadata: session_id, turn_id, running_turn_id
SESSION_NOT_FOUND = "SESSION_NOT_FOUND"  # metadata: session_id
LIMIT_REACHED = "LIMIT_REACHED"  # metadata: limit (its name), value
REQUEST_ANSWERED = "REQUEST_ALREADY_ANSWERED"  # metadata: request_id
REQUEST_NOT_FOUND = "REQUEST_NOT_FOUND"  # metadata: request_id
LEASE_LOST = "LEASE_LOST"  # metadata: session_id
CHECKPOINT_CONFLICT = "CHECKPOINT_CONFLICT"  # metadata: session_id, paths (comma-separated)
BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"  # metadata: session_id, budget ("tokens" or "cost")


def session_not_found(session_id: str) -> NotFound:
    return NotFound(
        f"session {session_id} not found",
        reason=SESSION_NOT_FOUND,
        metadata={"session_id": session_id},
    )


def limit_reached(limit: str, value: int, message: str) -> ResourceExhausted:
    """A configured limit (by its name, e.g. turns_per_tenant) was hit."""
    return ResourceExhausted(
        message, reason=LIMIT_REACHED, metadata={"limit": limit, "value": str(value)}
    )


class TurnAlreadyRunning(FailedPrecondition):
    """A session runs one turn at a time."""

    def __init__(self, session_id: str, turn_id: str, message: str = "") -> None:
        super().__init__(
            message or f"session {session_id} is already running turn {turn_id}",
            reason=TURN_ALREADY_RUNNING,
            metadata={"session_id": session_id, "turn_id": turn_id},
        )
        self.turn_id = turn_id
