"""The chat's turn view: a sub-agent's work shows as indented lines, not as answer text."""

from __future__ import annotations

from rich.console import Console

from kodad.chat.render import TurnView
from kodad.gen.koda.v1 import engine_pb2 as epb


def test_sub_agent_events_are_indented_lines_and_their_text_is_not_the_answer() -> None:
    console = Console(record=True, width=100, force_terminal=False)
    view = TurnView(console)
    child = {"subagent_session_id": "s_child", "parent_call_id": "a"}
    for event in [
        epb.EngineEvent(
            tool_call_started=epb.ToolCallStarted(
                call_id="a", tool_name="invoke_agent", arguments_json='{"agent": "reviewer"}'
            )
        ),
        epb.EngineEvent(text_delta=epb.TextDelta(text="child thinking aloud"), **child),
        epb.EngineEvent(
            tool_call_started=epb.ToolCallStarted(
                call_id="r", tool_name="read_file", arguments_json='{"path": "a.txt"}'
            ),
            **child,
        ),
        epb.EngineEvent(
            tool_call_finished=epb.ToolCallFinished(call_id="r", output="hi\n"), **child
        ),
        epb.EngineEvent(tool_call_finished=epb.ToolCallFinished(call_id="a", output="looks fine")),
        epb.EngineEvent(text_delta=epb.TextDelta(text="The reviewer is happy.\n\n")),
    ]:
        view.handle(event)
    view.pause()
    out = console.export_text()
    assert "    ↳ ✓ read_file a.txt" in out
    assert "child thinking aloud" not in out
    assert "✓ invoke_agent" in out and "The reviewer is happy." in out
    assert out.index("↳ ✓ read_file") < out.index("✓ invoke_agent")


def test_a_turn_stopped_by_its_budget_says_which() -> None:
    console = Console(record=True, width=120, force_terminal=False)
    view = TurnView(console)
    ended = epb.TurnEnded(
        reason=epb.TURN_END_REASON_BUDGET_EXHAUSTED,
        error_message="the turn's token budget (1000) is spent: 1100 used",
    )
    view.handle(epb.EngineEvent(turn_ended=ended))
    out = console.export_text()
    assert "stopped: budget spent (the turn's token budget (1000) is spent: 1100 used)" in out
