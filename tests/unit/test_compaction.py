from kodad.domain.model import Message, Role, ToolCall, ToolResult
from kodad.engine.compaction import context, plan_cut, transcript


def numbered(*messages: Message) -> list[Message]:
    return [Message(**{**m.__dict__, "index": i}) for i, m in enumerate(messages, 1)]


HISTORY = numbered(
    Message(Role.USER, "t1", text="first"),
    Message(Role.ASSISTANT, "t1", text="x" * 5000, tool_calls=(ToolCall("c", "bash", "{}"),)),
    Message(Role.TOOL, "t1", tool_result=ToolResult("c", "y" * 5000)),
    Message(Role.ASSISTANT, "t1", text="ok"),
    Message(Role.USER, "t2", text="second"),
    Message(Role.ASSISTANT, "t2", text="z" * 400),
    Message(Role.USER, "t3", text="third"),
)


def test_cut_falls_on_a_user_message_and_keeps_what_fits() -> None:
    assert plan_cut(HISTORY, window=4000) == 5  # turn 2 and 3 fit in 40 %; turn 1 does not
    assert plan_cut(HISTORY, window=200) == 7  # only the current turn
    assert plan_cut(HISTORY[:4], window=400) is None  # nothing before the current turn


def test_context_is_the_newest_summary_and_what_follows_it() -> None:
    summary = Message(Role.SUMMARY, "t3", text="s", summarized_through=4, index=8)
    assert [m.index for m in context([*HISTORY, summary])] == [8, 5, 6, 7]
    assert context(HISTORY) == HISTORY


def test_transcript_clips_long_items() -> None:
    text = transcript(HISTORY[:3])
    assert text.startswith("[User]\nfirst\n\n[Assistant]\n")
    assert "-> bash({})" in text and "[…" in text
