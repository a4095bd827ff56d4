"""Protobuf <-> domain translation of events and of the commands for a running turn."""

from __future__ import annotations

from typing import assert_never

from google.protobuf.duration_pb2 import Duration

from kodad.api.convert import (
    CHANGES,
    DECISIONS_TO_PB,
    LEVELS,
    REASONS,
    RISKS_TO_PB,
    approval_rule,
    decision,
    disconnect_policy,
    images,
    loop_action,
    timestamp,
    todos,
    usage,
)
from kodad.domain import events as ev
from kodad.domain.errors import InvalidArgument
from kodad.domain.model import WhenBusy
from kodad.engine.control import AnswerQuestion, Approve, Cancel, DecideLoop, Steer, TurnCommand
from kodad.engine.inputs import TurnInput
from kodad.engine.pending import ApprovalAnswer, LoopAnswer
from kodad.gen.koda.v1 import engine_pb2 as epb


def event(e: ev.Event) -> epb.EngineEvent:
    pb = epb.EngineEvent(
        session_id=e.session_id,
        turn_id=e.turn_id,
        seq=e.seq,
        create_time=timestamp(e.create_time),
        subagent_session_id=e.subagent_session_id,
        parent_call_id=e.parent_call_id,
    )
    p = e.payload
    match p:
        case ev.TextDelta():
            pb.text_delta.text = p.text
        case ev.ThinkingDelta():
            pb.thinking_delta.text = p.text
        case ev.TurnStarted():
            pb.turn_started.CopyFrom(epb.TurnStarted(text=p.text, image_count=p.image_count))
        case ev.ToolCallStarted():
            pb.tool_call_started.CopyFrom(
                epb.ToolCallStarted(
                    call_id=p.call_id, tool_name=p.tool_name, arguments_json=p.arguments_json
                )
            )
        case ev.ToolCallOutput():
            pb.tool_call_output.CopyFrom(
                epb.ToolCallOutput(call_id=p.call_id, chunk=p.chunk, omitted_chars=p.omitted)
            )
        case ev.ToolCallFinished():
            pb.tool_call_finished.CopyFrom(
                epb.ToolCallFinished(
                    call_id=p.call_id, output=p.output, is_error=p.is_error, truncated=p.truncated
                )
            )
        case ev.ApprovalRequested():
            pb.approval_requested.CopyFrom(
                epb.ApprovalRequested(
                    request_id=p.request_id,
                    call_id=p.call_id,
                    tool_name=p.tool_name,
                    arguments_json=p.arguments_json,
                    summary=p.summary,
                    preview=p.preview,
                    risk=RISKS_TO_PB[p.risk],
                )
            )
        case ev.ApprovalResolved():
            resolved = pb.approval_resolved
            resolved.request_id, resolved.call_id = p.request_id, p.call_id
            resolved.decision = DECISIONS_TO_PB[p.decision]
            if p.rule is not None:
                resolved.rule.CopyFrom(approval_rule(p.rule))
        case ev.LoopCapReached():
            pb.loop_cap_reached.CopyFrom(epb.LoopCapReached(iterations=p.iterations, cap=p.cap))
        case ev.UsageReported():
            pb.usage.CopyFrom(usage(p.usage))
        case ev.FileChanged():
            pb.file_changed.CopyFrom(epb.FileChanged(path=p.path, change=CHANGES[p.change]))
        case ev.Notice():
            pb.notice.CopyFrom(epb.Notice(level=LEVELS[p.level], text=p.text))
            if p.retry_attempt:
                delay = Duration()
                delay.FromMilliseconds(p.retry_delay_ms)
                pb.notice.retry.CopyFrom(
                    epb.RetryInfo(
                        attempt=p.retry_attempt,
                        max_attempts=p.retry_max_attempts,
                        delay=delay,
                        reason=p.retry_reason,
                    )
                )
        case ev.RateLimits():
            pb.rate_limits.CopyFrom(
                epb.RateLimits(
                    limits=[
                        epb.RateLimit(
                            name=r.name, limit=r.limit, remaining=r.remaining, reset=r.reset
                        )
                        for r in p.limits
                    ]
                )
            )
        case ev.ContextUsage():
            pb.context_usage.CopyFrom(
                epb.ContextUsage(used_tokens=p.used_tokens, max_tokens=p.max_tokens)
            )
        case ev.UserQuestion():
            pb.user_question.CopyFrom(
                epb.UserQuestion(
                    request_id=p.request_id,
                    call_id=p.call_id,
                    question=p.question,
                    choices=list(p.choices),
                )
            )
        case ev.TodosUpdated():
            pb.todos_updated.CopyFrom(epb.TodosUpdated(todos=todos(p.todos)))
        case ev.TurnEnded():
            pb.turn_ended.CopyFrom(
                epb.TurnEnded(
                    reason=REASONS[p.reason],
                    error_code=p.error_code,
                    error_message=p.error_message,
                    usage=usage(p.usage),
                    output_json=p.output_json,
                )
            )
        case ev.UserInputAdded():
            pb.user_input_added.CopyFrom(epb.UserInputAdded(text=p.text, image_count=p.image_count))
        case ev.TurnQueued():
            pb.turn_queued.CopyFrom(
                epb.TurnQueued(text=p.text, image_count=p.image_count, position=p.position)
            )
        case ev.QueuedTurnRemoved():
            pb.queued_turn_removed.CopyFrom(
                epb.QueuedTurnRemoved(reason=p.reason, message=p.message)
            )
        case ev.CheckpointTaken():
            pb.checkpoint_taken.CopyFrom(
                epb.CheckpointTaken(
                    checkpoint_id=p.checkpoint_id,
                    call_id=p.call_id,
                    files_changed=p.files_changed,
                    skipped_paths=list(p.skipped_paths),
                )
            )
        case ev.TurnDiff():
            pb.turn_diff.CopyFrom(epb.TurnDiff(files=[file_diff(f) for f in p.files]))
        case ev.SessionRewound():
            pb.session_rewound.CopyFrom(session_rewound(p))
        case _:  # a payload without a case here would go out empty
            assert_never(p)
    return pb


def file_diff(f: ev.FileDiffStat) -> epb.FileDiffStat:
    return epb.FileDiffStat(
        path=f.path,
        change=CHANGES[f.change],
        lines_added=f.lines_added,
        lines_removed=f.lines_removed,
        binary=f.binary,
    )


def session_rewound(p: ev.SessionRewound) -> epb.SessionRewound:
    return epb.SessionRewound(
        to_turn_id=p.to_turn_id,
        to_seq=p.to_seq,
        restored_files=list(p.restored_files),
        messages_removed=p.messages_removed,
        undone=p.undone,
        checkpoint_id=p.checkpoint_id,
        undo_checkpoint_id=p.undo_checkpoint_id,
    )


def turn_command(pb: epb.EngineCommand) -> TurnCommand:
    """A command for a running turn (anything but start_turn)."""
    which = pb.WhichOneof("command")
    if which == "approval_decision":
        d = pb.approval_decision
        if not d.request_id:
            raise InvalidArgument("approval_decision.request_id is required")
        return Approve(d.request_id, ApprovalAnswer(decision(d.decision), d.feedback))
    if which == "loop_decision":
        ld = pb.loop_decision
        if ld.extra_iterations < 0:
            raise InvalidArgument("loop_decision.extra_iterations must not be negative")
        return DecideLoop(LoopAnswer(loop_action(ld.action), ld.extra_iterations))
    if which == "cancel":
        return Cancel()
    if which == "steer":
        st = pb.steer
        return Steer(TurnInput(st.text, images(list(st.images))), st.expected_turn_id)
    if which == "user_answer":
        ua = pb.user_answer
        if not ua.request_id:
            raise InvalidArgument("user_answer.request_id is required")
        if not ua.text.strip():
            raise InvalidArgument("user_answer.text must not be empty")
        return AnswerQuestion(ua.request_id, ua.text)
    if which == "start_turn":
        raise InvalidArgument("start_turn is only valid as the first command of RunTurn")
    raise InvalidArgument(
        "command must set one of approval_decision, loop_decision, user_answer, cancel"
    )


_WHEN_BUSY = {
    epb.WHEN_BUSY_UNSPECIFIED: WhenBusy.REJECT,
    epb.WHEN_BUSY_REJECT: WhenBusy.REJECT,
    epb.WHEN_BUSY_ENQUEUE: WhenBusy.ENQUEUE,
    epb.WHEN_BUSY_INTERRUPT: WhenBusy.INTERRUPT,
    epb.WHEN_BUSY_STEER: WhenBusy.STEER,
}


def turn_input(pb: epb.StartTurn) -> TurnInput:
    if pb.when_busy not in _WHEN_BUSY:
        raise InvalidArgument(f"start_turn.when_busy {pb.when_busy} is not a WhenBusy value")
    return TurnInput(
        pb.text,
        images(list(pb.images)),
        disconnect_policy(pb.on_disconnect),
        when_busy=_WHEN_BUSY[pb.when_busy],
        output_schema=pb.output_schema_json,
        max_total_tokens=pb.max_total_tokens,
        max_cost=pb.max_cost,
    )
