"""Token and cost budgets of a turn and of its session, and the price table costs come from
(`kodad serve --prices FILE`: prices per million tokens by model, never built in)."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from kodad.domain import errors
from kodad.domain.errors import ConfigError, FailedPrecondition, InvalidArgument
from kodad.domain.model import SessionRecord, Usage

_PRICE_KEYS = ("input", "output", "cache_read", "cache_write")


@dataclass(frozen=True)
class Price:
    """What a million tokens of each kind cost."""

    input: float
    output: float
    cache_read: float = 0.0
    cache_write: float = 0.0

    def cost(self, usage: Usage) -> float:
        """`input_tokens` include the cached ones, which have prices of their own."""
        fresh = max(0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens)
        return (
            fresh * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
        ) / 1_000_000


@dataclass(frozen=True)
class PriceTable:
    currency: str = ""
    models: dict[str, Price] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> PriceTable:
        """`currency = "USD"` and `[models."name"]` tables of per-million prices: input and
        output (required), cache_read and cache_write."""
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"--prices {path}: {e}") from None
        models: dict[str, Price] = {}
        for name, entry in (data.get("models") or {}).items():
            if not isinstance(entry, dict) or not {"input", "output"} <= set(entry):
                raise ConfigError(f"--prices {path}: model {name!r} needs input and output")
            unknown = set(entry) - set(_PRICE_KEYS)
            values = [entry.get(k, 0.0) for k in _PRICE_KEYS]
            if unknown or not all(
                isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in values
            ):
                raise ConfigError(
                    f"--prices {path}: model {name!r} takes non-negative {', '.join(_PRICE_KEYS)}"
                )
            models[str(name)] = Price(*(float(v) for v in values))
        return cls(str(data.get("currency", "")), models)

    def priced(self, model: str, usage: Usage) -> Usage:
        """`usage` with its cost, when the table prices `model`."""
        price = self.models.get(model)
        return replace(usage, cost=price.cost(usage)) if price is not None else usage


def check_limits(tokens: float, cost: float, what: str) -> None:
    if tokens < 0 or not math.isfinite(cost) or cost < 0:
        raise InvalidArgument(f"{what} budgets must be non-negative numbers")


class BudgetSpent(Exception):
    """A turn's budget (or its session's) is spent: it ends BUDGET_EXHAUSTED."""


@dataclass(frozen=True)
class Budget:
    """What a turn may spend: its own limits and what is left of its session's."""

    turn_tokens: int = 0
    turn_cost: float = 0.0
    session: SessionRecord | None = None

    def check_start(self, prices: PriceTable, model: str) -> None:
        """Refuses a turn whose session budget is spent, or whose cost cannot be known."""
        session = self.session
        if (self.turn_cost or (session and session.cost_budget)) and model not in prices.models:
            raise InvalidArgument(
                f"a cost budget needs a price for the model {model!r}: give it in the price"
                " table (kodad serve --prices)"
            )
        if session is not None:
            budget, why = self._session_spent(Usage())
            if why:
                raise FailedPrecondition(
                    why,
                    reason=errors.BUDGET_EXHAUSTED,
                    metadata={"session_id": session.id, "budget": budget},
                )

    def _session_spent(self, turn: Usage) -> tuple[str, str]:
        """(the budget, why) when the session's is spent with `turn` on top; else ("", "")."""
        session = self.session
        if session is None:
            return "", ""
        total = session.usage + turn
        if session.token_budget and total.tokens >= session.token_budget:
            spent = f"{total.tokens} tokens used"
            return (
                "tokens",
                f"the session's token budget ({session.token_budget}) is spent: {spent}",
            )
        if session.cost_budget and total.cost >= session.cost_budget:
            spent = f"{total.cost:g} used"
            return "cost", f"the session's cost budget ({session.cost_budget:g}) is spent: {spent}"
        return "", ""

    def spent(self, turn: Usage) -> str:
        """Which budget `turn` (the turn's usage so far) has spent; "" while none is."""
        if self.turn_tokens and turn.tokens >= self.turn_tokens:
            return f"the turn's token budget ({self.turn_tokens}) is spent: {turn.tokens} used"
        if self.turn_cost and turn.cost >= self.turn_cost:
            return f"the turn's cost budget ({self.turn_cost:g}) is spent: {turn.cost:g} used"
        return self._session_spent(turn)[1]
