"""ask_user: the model asks the user a clarifying question and waits for the answer."""

from __future__ import annotations

from typing import Any, ClassVar

from kodad.tools.base import Args, BuiltinTool, Description, ToolContext, ToolKind, ToolOutcome
from kodad.tools.errors import ToolError
from kodad.tools.workspace import Workspace

MAX_QUESTION = 4000
MAX_CHOICES = 20


class AskUser(BuiltinTool):
    name: ClassVar[str] = "ask_user"
    # It changes nothing: the question itself is the human's involvement.
    kind: ClassVar[ToolKind] = ToolKind.READ_ONLY
    description: ClassVar[str] = (
        "Ask the user a clarifying question when the task is ambiguous and you cannot decide "
        "yourself; optionally offer choices. The answer is the result. Use it sparingly."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "question": {"type": "string"},
            "choices": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["question"],
    }

    @staticmethod
    def _question(args: Args) -> tuple[str, tuple[str, ...]]:
        question = args.string("question").strip()
        if not question:
            raise ToolError("question must not be empty")
        if len(question) > MAX_QUESTION:
            raise ToolError(f"question is longer than {MAX_QUESTION} characters")
        choices = args.raw_value("choices") or []
        if not isinstance(choices, list) or not all(isinstance(c, str) and c for c in choices):
            raise ToolError("choices must be a list of non-empty strings")
        if len(choices) > MAX_CHOICES:
            raise ToolError(f"at most {MAX_CHOICES} choices")
        return question, tuple(choices)

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        question, choices = self._question(args)
        if ctx.ask is None:
            raise ToolError("nobody can be asked here")
        return ToolOutcome(await ctx.ask(question, choices))

    def describe(self, args: Args, workspace: Workspace) -> Description:
        return Description(f"Ask: {self._question(args)[0]}")
