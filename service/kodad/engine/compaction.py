"""Fitting a long history into the model's context window.

When a provider call would not fit, the older turns are summarised by the session's own
provider into a SUMMARY message; later calls send that summary and the turns after it. The
messages themselves stay stored (ListMessages still returns all of them).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence

from kodad.domain.model import Message, Role

# Compact when a call would use more than this share of the window (room for the answer).
TRIGGER_SHARE = 0.75
# After compacting, the verbatim turns kept should use at most this share.
KEEP_SHARE = 0.4
_TRANSCRIPT_ITEM_LIMIT = 4000

SUMMARY_PROMPT = """\
You are summarising the earlier part of a coding session so that the work can continue \
without it. Write a concise summary: the user's goals and requests, decisions taken, files \
read, created or changed (with paths), commands run and their outcomes, the current state, \
and anything still open. Do not invent details. Answer with the summary only."""


def estimate_tokens(text: str) -> int:
    """A provider-independent estimate: about four characters per token."""
    return len(text) // 4 + 1


_role: Callable[[Message], Role] = operator.attrgetter("role")
_tokens: Callable[[Message], int] = operator.attrgetter("tokens")


def context(history: Sequence[Message]) -> list[Message]:
    """What a provider call sends: the newest summary, then every message after what it
    covers (other summaries left out). Every round asks it of the whole history: without
    a summary (most sessions) that is one pass in C."""
    roles = list(map(_role, history))
    if Role.SUMMARY not in roles:
        return list(history)
    summary = history[len(roles) - 1 - roles[::-1].index(Role.SUMMARY)]
    return [summary] + [
        m for m in history if m.index > summary.summarized_through and m.role is not Role.SUMMARY
    ]


def rounds(history: Sequence[Message]) -> int:
    """The provider rounds (assistant messages) of a history, in one pass in C."""
    return list(map(_role, history)).count(Role.ASSISTANT)


def context_tokens(system_tokens: int, messages: Sequence[Message]) -> int:
    """What a provider call would use: the system prompt and tools, and the messages."""
    return system_tokens + sum(map(_tokens, messages))


def needs_compaction(used_tokens: int, window: int) -> bool:
    return used_tokens > window * TRIGGER_SHARE


def plan_cut(
    messages: Sequence[Message], window: int, keep_share: float = KEEP_SHARE
) -> int | None:
    """Index of the first message to keep verbatim — a user message, so no tool call is
    separated from its result — or None when nothing before it could be summarised.

    `messages` is the current context (a leading summary is summarised again)."""
    starts = [i for i, m in enumerate(messages) if m.role is Role.USER]
    if not starts:
        return None
    budget = window * keep_share
    chosen = starts[-1]  # the current turn is always kept
    for position in reversed(starts[:-1]):
        if sum(map(_tokens, messages[position:])) > budget:
            break
        chosen = position
    if chosen == 0:
        return None
    return messages[chosen].index


def transcript(messages: Sequence[Message]) -> str:
    """The messages to summarise, as plain text for the summarising call."""
    lines: list[str] = []

    def clip(text: str) -> str:
        if len(text) <= _TRANSCRIPT_ITEM_LIMIT:
            return text
        return text[:_TRANSCRIPT_ITEM_LIMIT] + f" […{len(text) - _TRANSCRIPT_ITEM_LIMIT} more]"

    for m in messages:
        if m.role is Role.SUMMARY:
            lines.append(f"[Earlier summary]\n{m.text}")
        elif m.role is Role.USER:
            images = f" [{len(m.images)} image(s)]" if m.images else ""
            lines.append(f"[User]{images}\n{clip(m.text)}")
        elif m.role is Role.ASSISTANT:
            parts = [clip(m.text)] if m.text else []
            parts += [f"-> {c.tool_name}({clip(c.arguments_json)})" for c in m.tool_calls]
            lines.append("[Assistant]\n" + "\n".join(parts))
        elif m.tool_result is not None:
            status = "error" if m.tool_result.is_error else "result"
            lines.append(f"[Tool {status}]\n{clip(m.tool_result.output)}")
    return "\n\n".join(lines)


def summary_text(summary: str, through: int) -> str:
    return f"Summary of the conversation up to message {through}:\n{summary.strip()}"


def tools_tokens(tool_schemas: Sequence[object]) -> int:
    return estimate_tokens(json.dumps(tool_schemas, default=str))
