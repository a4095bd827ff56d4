"""The Python client of kodad: a thin async layer over the generated koda.v1 stubs.

    async with Client("127.0.0.1:50051") as kodad:
        session = await kodad.create_session("/path/to/repo", approval_mode=ApprovalMode.AUTO)
        async for event in kodad.run_turn(session.id, "add a README"):
            if event.HasField("text_delta"):
                print(event.text_delta.text, end="")

Approvals and loop-cap questions are answered by callbacks (default: reject / stop); RPC
failures raise KodadError carrying the gRPC status code.
"""

from kodad.client.connection import (
    CONTRACT_VERSION,
    ApprovalMode,
    Client,
    Decision,
    EngineEvent,
    LoopAction,
    Message,
    ProviderConfig,
    ProviderKind,
    Session,
    TurnEndReason,
    WhenBusy,
)
from kodad.client.errors import KodadError
from kodad.client.sidecar import SidecarError, spawn_sidecar
from kodad.client.turn import NO_ANSWER, Answer, LoopAnswer, QuestionHandler, Turn, output_of

__all__ = [
    "CONTRACT_VERSION",
    "NO_ANSWER",
    "Answer",
    "ApprovalMode",
    "Client",
    "Decision",
    "EngineEvent",
    "KodadError",
    "LoopAction",
    "LoopAnswer",
    "Message",
    "ProviderConfig",
    "ProviderKind",
    "QuestionHandler",
    "Session",
    "SidecarError",
    "Turn",
    "TurnEndReason",
    "WhenBusy",
    "output_of",
    "spawn_sidecar",
]
