"""The system prompt a turn's model gets."""

from __future__ import annotations

from kodad.domain.model import SessionRecord
from kodad.engine.profiles import AgentProfile
from kodad.tools.memory import memory_prompt

BASE_SYSTEM_PROMPT = """\
You are kodad, a coding agent. You work in the workspace directory {workspace} through \
your tools: read and search before you change, make focused edits, run the project's \
checks with bash when useful, and answer briefly with what you did."""

SUBAGENT_PROMPT = """\
You are a sub-agent: another agent gave you the task below. Work on it alone (nobody \
answers follow-up questions in this conversation) and end with a final answer that stands \
on its own: it is all the other agent gets back."""


def system_prompt(record: SessionRecord, profile: AgentProfile, agents: list[AgentProfile]) -> str:
    """The base prompt, the profile's and session's, the `agents` invoke_agent may run
    (none: it is not offered) and the memory files."""
    prompt = BASE_SYSTEM_PROMPT.format(workspace=record.workspace)
    if record.parent_session_id:
        prompt += "\n\n" + SUBAGENT_PROMPT
    for extra in (profile.system_prompt, record.system_prompt):
        if extra:
            prompt += "\n\n" + extra
    if agents:
        prompt += "\n\nAgents you can delegate to with invoke_agent:\n" + "\n".join(
            f"- {a.name}: {a.description or 'no description'}" for a in agents
        )
    if profile.memory and (memory := memory_prompt(record.workspace, record.tenant)):
        prompt += "\n\n" + memory
    return prompt
