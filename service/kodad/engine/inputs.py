"""What a turn is started with: its input, its limits and its collaborators."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from kodad.domain.events import Event, EventPayload
from kodad.domain.model import DisconnectPolicy, Image, Message, SessionRecord, WhenBusy
from kodad.engine.budget import Budget, PriceTable
from kodad.engine.checkpoints import Snapshots
from kodad.engine.eventlog import EventLog
from kodad.engine.gate import WorkspaceServers
from kodad.engine.pending import PendingRequests
from kodad.providers import LlmProvider
from kodad.store.base import Store
from kodad.tools import ToolOutcome, ToolRegistry


@dataclass(frozen=True)
class TurnInput:
    text: str
    images: tuple[Image, ...] = ()
    on_disconnect: DisconnectPolicy = DisconnectPolicy.CANCEL
    # A compaction turn (CompactSession): summarise all but the last turn, ask nothing.
    compact: bool = False
    when_busy: WhenBusy = WhenBusy.REJECT
    # A JSON Schema (JSON text) the final answer must match; "" for free text.
    output_schema: str = ""
    # What the turn may spend (0: no limit of its own).
    max_total_tokens: int = 0
    max_cost: float = 0.0


@dataclass(frozen=True)
class TurnLimits:
    loop_cap: int
    tool_output_limit: int
    system_prompt: str
    context_window: int = 128_000
    # How much of a call's output streams and is stored before only its tail does.
    tool_stream_limit: int = 1024 * 1024
    # At the loop cap, one last round without tools asks for the answer (sub-agents)
    # instead of asking a human whether to go on.
    final_round: bool = False
    budget: Budget = field(default_factory=Budget)
    prices: PriceTable = field(default_factory=PriceTable)


FINAL_ROUND_PROMPT = (
    "You have used your budget of {cap} tool rounds. Do not call tools any more: give your "
    "final answer now, with what you did, what you found and what is left to do."
)


class ParentTurn(Protocol):
    """What a sub-agent's launch needs of the turn that invokes it."""

    id: str
    session: SessionRecord
    pending: PendingRequests


# Runs a sub-agent for a turn: (parent turn, invoke_agent call id, agent profile, task).
SubagentRunner = Callable[[ParentTurn, str, str, str], Awaitable[ToolOutcome]]
# Relays an event of a sub-agent's turn into its parent's log; returns the parent's event.
Relay = Callable[[EventPayload], Event]


@dataclass(frozen=True)
class TurnDeps:
    """What a turn works with, given by whoever launches it."""

    log: EventLog
    store: Store
    provider: LlmProvider
    tools: ToolRegistry
    limits: TurnLimits
    # Called with the turn's id once it no longer occupies its session (before turn_ended).
    on_finished: Callable[[str], None]
    # Runs invoke_agent's sub-agents; None where a turn may not start one (a sub-agent).
    subagents: SubagentRunner | None = None
    # A sub-agent's: relays its events into the parent's log.
    relay: Relay | None = None
    # A sub-agent shares its parent's open questions, so the parent's stream answers them.
    pending: PendingRequests | None = None
    # Warnings to emit after turn_started.
    notices: tuple[str, ...] = ()
    workspace_servers: WorkspaceServers | None = None
    # The session's history, when the engine kept it (else the turn reads it), and where the
    # turn hands the history it read.
    history: list[Message] | None = None
    keep_history: Callable[[list[Message]], None] = lambda history: None
    # Where the turn's checkpoints go; None: none (sub-agents: their parent's cover them).
    snapshots: Snapshots | None = None


class TurnPhase(enum.Enum):
    """Where a turn is in its life: a cancel interrupts only a RUNNING turn."""

    STARTING = "starting"  # until the task runs
    RUNNING = "running"
    ENDING = "ending"  # while the end is stored
