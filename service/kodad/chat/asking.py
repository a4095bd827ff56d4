"""The chat's answers to a turn's questions: approvals (one key, or `yes` typed out for HIGH
risk), the loop cap, and ask_user; the same for a turn the chat runs and one it follows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prompt_toolkit import PromptSession
from prompt_toolkit.application import Application
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl
from rich.console import Console
from rich.text import Text

from kodad.chat.render import TurnView
from kodad.chat.terminal import discard_typed_ahead
from kodad.client import NO_ANSWER, Answer, LoopAnswer
from kodad.client.turn import Handlers
from kodad.gen.koda.v1 import engine_pb2 as epb


async def one_key(console: Console, message: str, keys: str) -> str:
    """Waits for one of `keys`; Ctrl-C raises KeyboardInterrupt."""
    bindings = KeyBindings()

    def choose(key: str) -> Callable[[KeyPressEvent], None]:
        return lambda event: event.app.exit(result=key)

    for key in keys:
        bindings.add(key)(choose(key))

    @bindings.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        event.app.exit(exception=KeyboardInterrupt())

    app: Application[str] = Application(
        layout=Layout(Window(FormattedTextControl(message), height=1)),
        key_bindings=bindings,
        full_screen=False,
    )
    answer = await app.run_async()
    console.print(Text(f"→ {answer}", style="dim"))
    return answer


class Asker:
    """Asks the human at the terminal; `cancel` stops the turn (Ctrl-C at a question)."""

    def __init__(
        self,
        console: Console,
        prompt: PromptSession[str],
        view: TurnView,
        cancel: Callable[[], Awaitable[object]],
    ) -> None:
        self.console = console
        self.prompt = prompt
        self.view = view
        self.cancel = cancel

    def handlers(self) -> Handlers:
        return Handlers(self.approve, self.loop_cap, self.question)

    async def approve(self, request: epb.ApprovalRequested) -> Answer | None:
        self.view.approval(request)
        discard_typed_ahead()  # keys typed while the answer streamed must not decide
        try:
            if request.risk == epb.APPROVAL_RISK_HIGH:  # typed out, never "always"
                typed = await self.prompt.prompt_async("type yes to approve, no to reject > ")
                choice = "y" if typed.strip().lower() == "yes" else "n"
            else:
                choice = await one_key(
                    self.console, "[y] approve  [a] always  [n] reject > ", "yan"
                )
            if choice == "y":
                return Answer(epb.DECISION_APPROVE)
            if choice == "a":
                return Answer(epb.DECISION_APPROVE_ALWAYS)
            feedback = await self.prompt.prompt_async("feedback for the agent (Enter: none) > ")
            return Answer(epb.DECISION_REJECT, feedback.strip())
        except KeyboardInterrupt:  # the cancel ends the request: nothing more to send
            await self.cancel()
            return None

    async def loop_cap(self, question: epb.LoopCapReached) -> LoopAnswer:
        self.view.pause()
        self.console.print(
            Text(
                f"the agent made {question.iterations} tool rounds (cap {question.cap})",
                style="yellow",
            )
        )
        try:
            choice = await one_key(self.console, "[c] continue  [s] stop > ", "cs")
        except KeyboardInterrupt:
            choice = "s"
        return LoopAnswer(epb.LOOP_ACTION_CONTINUE if choice == "c" else epb.LOOP_ACTION_STOP)

    async def question(self, asked: epb.UserQuestion) -> str | None:
        self.view.pause()
        self.console.print(Text(f"? {asked.question}", style="bold magenta"))
        for number, choice in enumerate(asked.choices, 1):
            self.console.print(f"  {number}. {choice}")
        discard_typed_ahead()
        hint = "a number or your own answer" if asked.choices else "your answer"
        try:
            typed = (await self.prompt.prompt_async(f"{hint} (Ctrl-C cancels) > ")).strip()
        except KeyboardInterrupt:
            await self.cancel()
            return None
        if typed.isdigit() and 0 < int(typed) <= len(asked.choices):
            return asked.choices[int(typed) - 1]
        return typed or NO_ANSWER
