"""The one place where domain errors become gRPC statuses: a status code, the message, and
a google.rpc.ErrorInfo (domain "kodad", a reason, metadata) in the status details."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from kodad.domain.errors import KINDS, KodaError

DOMAIN = "kodad"
# The trailing metadata key of the google.rpc.Status a status carries (gRPC's convention).
DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class _Status(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, bytes], ...]


_CODES: dict[str, grpc.StatusCode] = {
    kind.code: getattr(grpc.StatusCode, kind.code) for kind in KINDS
}


def status_code(error: KodaError) -> grpc.StatusCode:
    return _CODES.get(error.code, grpc.StatusCode.INTERNAL)


def status(error: KodaError) -> grpc.Status:
    """The status of `error`, its ErrorInfo in the details; reason: the error's own, else
    its code (INVALID_ARGUMENT, NOT_FOUND, ...)."""
    code = status_code(error)
    info = error_details_pb2.ErrorInfo(
        reason=error.reason or error.code, domain=DOMAIN, metadata=error.metadata
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    message = str(error)
    proto = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return _Status(code, message, ((DETAILS_KEY, proto.SerializeToString()),))


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: KodaError) -> None:
    """Ends the call with `error`'s status (raises)."""
    result = status(error)
    await context.abort(result.code, result.details, result.trailing_metadata)
