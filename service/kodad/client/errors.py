"""How the Python client reports a failed call."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2

T = TypeVar("T")


class KodadError(Exception):
    """An RPC failed; `code` is its gRPC status code, `message` the service's explanation,
    `reason` and `metadata` its google.rpc.ErrorInfo (e.g. TURN_ALREADY_RUNNING with the
    running turn's id in metadata["turn_id"]; empty when the failure did not come from
    kodad, e.g. a refused connection)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        reason: str = "",
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}

    @classmethod
    def of(cls, error: grpc.aio.AioRpcError) -> KodadError:
        """The error of a failed call, with the ErrorInfo of its status details."""
        reason, metadata = "", dict[str, str]()
        trailing = error.trailing_metadata()
        if isinstance(trailing, grpc.aio.Metadata):
            for value in trailing.get_all("grpc-status-details-bin"):
                if not isinstance(value, bytes):
                    continue
                for detail in status_pb2.Status.FromString(value).details:
                    info = error_details_pb2.ErrorInfo()
                    if detail.Unpack(info):
                        reason, metadata = info.reason, dict(info.metadata)
        return cls(error.code(), error.details() or "", reason, metadata)


async def call(awaitable: Awaitable[T]) -> T:
    """Awaits an RPC; its failure becomes a KodadError."""
    try:
        return await awaitable
    except grpc.aio.AioRpcError as e:
        raise KodadError.of(e) from None
