"""Domain errors of the engine. api/errors.py maps each kind to one gRPC status code."""


class ConfigError(ValueError):
    """The environment, flags or an operator's file are inconsistent; the message says which
    setting. Raised at start, never to a caller."""


class KodaError(Exception):
    """Base of every error the engine reports to a caller."""


class InvalidArgument(KodaError):
    """The request is malformed; the message names the field."""


class NotFound(KodaError):
    """The session (or request) does not exist."""


class FailedPrecondition(KodaError):
    """The request is valid but the session is not in a state to accept it."""


class OutOfRange(KodaError):
    """A position past the end, e.g. an after_seq the session's log has not reached."""


class ResourceExhausted(KodaError):
    """A configured limit was hit; the message names it."""


class Unauthenticated(KodaError):
    """The call carries no valid credentials."""


class PermissionDenied(KodaError):
    """The caller is known but may not do this (e.g. a workspace outside its roots)."""


class Aborted(KodaError):
    """The call was cut off by a conflict, e.g. another replica took the session over."""


class Unavailable(KodaError):
    """A part of the service needed for the call did not answer; retry."""


class TurnAlreadyRunning(FailedPrecondition):
    """A session runs one turn at a time."""

    def __init__(self, session_id: str, turn_id: str) -> None:
        super().__init__(f"session {session_id} is already running turn {turn_id}")
        self.turn_id = turn_id
