"""The scripted provider: plays a JSON script, offline and deterministic.

Script: {"rounds": [[step, ...], ...], "agents": {name: {"rounds": [...]}}}. The Nth call of
a session (N = assistant messages already in its history) plays round N; a sub-agent's
session plays the rounds under its profile's name in "agents". A call that summarises the
history gets a fixed one-line summary. Steps: {"text": s}, {"thinking": s},
{"tool_call": {"name": s, "arguments": {...} | s, "id": s}}, {"usage": {...}},
{"error": {"code": s, "message": s}}, {"delay_ms": n}, {"repeat": n, "text": s}.
With no script it echoes the user's last input.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

from kodad.domain import jsontext
from kodad.domain.model import ModelInfo, Role, ToolCall, Usage
from kodad.providers.base import (
    ProviderError,
    ProviderEvent,
    ProviderRequest,
    StreamFinished,
    TextChunk,
    ThinkingChunk,
    ToolCallReady,
    UsageReport,
)
from kodad.providers.transport import LoopLag, loop_lag

MAX_SCRIPT_BYTES = 1024 * 1024
MAX_REPEAT = 100_000  # deltas of one "repeat" step
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


class ScriptError(ValueError):
    """The script is malformed; the message says where."""


Rounds = list[list[dict[str, Any]]]


def parse_script(text: str) -> tuple[Rounds, dict[str, Rounds]]:
    """Validates a script and returns its rounds and those of each sub-agent."""
    if len(text.encode()) > MAX_SCRIPT_BYTES:
        raise ScriptError(f"script is larger than {MAX_SCRIPT_BYTES} bytes")
    try:
        body = jsontext.loads(text)
    except jsontext.TooDeep as e:
        raise ScriptError(f"script is {e}") from None
    except json.JSONDecodeError as e:
        raise ScriptError(f"script is not valid JSON: {e}") from None
    rounds = _rounds(body, "script")
    agents = body.get("agents", {})
    if not isinstance(agents, dict):
        raise ScriptError('"agents" must map agent names to scripts')
    return rounds, {name: _rounds(a, f"agent {name!r}") for name, a in agents.items()}


def _rounds(body: Any, where: str) -> Rounds:
    if not isinstance(body, dict) or not isinstance(body.get("rounds"), list):
        raise ScriptError(f'{where} must be an object with a "rounds" list')
    rounds: Rounds = body["rounds"]
    for r, steps in enumerate(rounds):
        if not isinstance(steps, list):
            raise ScriptError(f"{where}: round {r} must be a list of steps")
        for s, step in enumerate(steps):
            _check_step(step, f"{where}: round {r} step {s}")
    return rounds


def _check_step(step: Any, where: str) -> None:
    if not isinstance(step, dict):
        raise ScriptError(f"{where} must be an object")
    if "repeat" in step:
        if not isinstance(step["repeat"], int) or not isinstance(step.get("text"), str):
            raise ScriptError(f'{where}: "repeat" needs an integer and a "text" string')
        if not 0 <= step["repeat"] <= MAX_REPEAT:
            raise ScriptError(f'{where}: "repeat" must be between 0 and {MAX_REPEAT}')
    elif "text" in step or "thinking" in step:
        if not isinstance(step.get("text", step.get("thinking")), str):
            raise ScriptError(f"{where}: text must be a string")
    elif "tool_call" in step:
        call = step["tool_call"]
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise ScriptError(f'{where}: "tool_call" needs a "name"')
    elif "usage" in step:
        usage = step["usage"]
        if not isinstance(usage, dict) or any(k not in _USAGE_KEYS for k in usage):
            raise ScriptError(f'{where}: "usage" keys are {", ".join(_USAGE_KEYS)}')
    elif "error" in step:
        if not isinstance(step["error"], dict):
            raise ScriptError(f'{where}: "error" must be an object')
    elif "delay_ms" in step:
        if not isinstance(step["delay_ms"], int) or step["delay_ms"] < 0:
            raise ScriptError(f'{where}: "delay_ms" must be a non-negative integer')
    else:
        raise ScriptError(f"{where}: unknown step {sorted(step)}")


async def _play(steps: list[dict[str, Any]], number: int) -> AsyncGenerator[ProviderEvent, None]:
    """The events of round `number`'s steps. Delays are a schedule from the round's start,
    as a model's stream is, and waits are paced as an HTTP provider's reads are: while the
    loop keeps up each step is its own event on time; once it runs late the text that came
    due meanwhile goes out as one chunk (as one network read returns all that arrived),
    not one wake-up and one event per step."""
    lag = loop_lag()
    lag.enter()
    try:
        async for event in _steps(steps, number, lag):
            yield event
    finally:
        lag.leave()


async def _steps(
    steps: list[dict[str, Any]], number: int, lag: LoopLag
) -> AsyncGenerator[ProviderEvent, None]:
    loop = asyncio.get_running_loop()
    due = loop.time()
    late = False  # the last delay had passed already: the text due since merges
    held: TextChunk | ThinkingChunk | None = None  # the last chunk, until the next step
    for i, step in enumerate(steps):
        if "delay_ms" in step:
            due += step["delay_ms"] / 1000
            late = loop.time() >= due
            if not late:
                if held is not None:
                    yield held
                    held = None
                await asyncio.sleep(max(due, loop.time() + lag.pause_s()) - loop.time())
            continue
        if "repeat" not in step and ("text" in step or "thinking" in step):
            chunk = TextChunk(step["text"]) if "text" in step else ThinkingChunk(step["thinking"])
            if late and held is not None and type(held) is type(chunk):
                held = type(chunk)(held.text + chunk.text)
                continue
            if held is not None:
                yield held
            held = chunk
            continue
        if held is not None:
            yield held
            held = None
        late = False
        if "repeat" in step:
            for n in range(step["repeat"]):
                yield TextChunk(step["text"])
                if n % 64 == 63:
                    await asyncio.sleep(0)  # let the event loop deliver what was emitted
        elif "tool_call" in step:
            call = step["tool_call"]
            arguments = call.get("arguments", {})
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False)
            call_id = call.get("id") or f"call_{number + 1}_{i + 1}"
            yield ToolCallReady(ToolCall(call_id, call["name"], arguments))
        elif "usage" in step:
            yield UsageReport(Usage(**step["usage"]))
        elif "error" in step:
            error = step["error"]
            raise ProviderError(
                str(error.get("code", "provider_error")),
                str(error.get("message", "scripted error")),
            )
    if held is not None:
        yield held


class ScriptedProvider:
    """Plays `script_json` (validated with parse_script) or echoes input when empty."""

    def __init__(self, script_json: str) -> None:
        self._rounds: Rounds | None = None
        self._agents: dict[str, Rounds] = {}
        if script_json:
            self._rounds, self._agents = parse_script(script_json)

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("scripted", "Scripted: plays script_json, or echoes the input")]

    async def aclose(self) -> None:
        return None

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        if request.purpose == "summary":
            text = request.messages[-1].text if request.messages else ""
            yield TextChunk(f"{len(text.split())} words of earlier conversation.")
            yield StreamFinished("end_turn")
            return
        if self._rounds is None:
            async for event in self._echo(request):
                yield event
            return
        rounds = self._rounds
        if request.subagent:
            if request.subagent not in self._agents:
                raise ProviderError(
                    "script_exhausted", f'the script has no "agents" entry {request.subagent!r}'
                )
            rounds = self._agents[request.subagent]
        number = request.prior_rounds
        if number >= len(rounds):
            raise ProviderError(
                "script_exhausted",
                f"the script has {len(rounds)} rounds and round {number + 1} was asked for",
            )
        async for event in _play(rounds[number], number):
            yield event
        yield StreamFinished("end_turn")

    async def _echo(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        last = next((m for m in reversed(request.messages) if m.role is Role.USER), None)
        text = last.text if last is not None else ""
        words = f"You said: {text}".split(" ")
        for i, word in enumerate(words):
            yield TextChunk(word if i == 0 else " " + word)
        yield UsageReport(Usage(input_tokens=len(text.split()), output_tokens=len(words)))
        yield StreamFinished("end_turn")
