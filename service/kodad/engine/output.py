"""Structured output: a turn whose final answer must be JSON valid against a JSON Schema
(`StartTurn.output_schema_json`), checked with the jsonschema validator, asked again once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError, ValidationError

from kodad.domain import jsontext
from kodad.domain.errors import InvalidArgument
from kodad.providers import ProviderError

MAX_SCHEMA_BYTES = 64 * 1024


def parse_schema(text: str) -> dict[str, Any]:
    """The schema of `output_schema_json`; INVALID_ARGUMENT unless it is a JSON Schema."""
    if len(text.encode()) > MAX_SCHEMA_BYTES:
        raise InvalidArgument(f"start_turn.output_schema_json is over {MAX_SCHEMA_BYTES} bytes")
    try:
        schema = jsontext.loads(text)
    except (ValueError, jsontext.TooDeep) as e:
        raise InvalidArgument(f"start_turn.output_schema_json is not JSON: {e}") from None
    if not isinstance(schema, dict):
        raise InvalidArgument("start_turn.output_schema_json must be a JSON object (a schema)")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except SchemaError as e:
        raise InvalidArgument(
            f"start_turn.output_schema_json is not a valid JSON Schema: {e.message}"
        ) from None
    return schema


def _candidates(text: str) -> list[str]:
    """Where the JSON may be in an answer: all of it, a fenced block, or the span from the
    first opening bracket to the last closing one (models wrap JSON in prose)."""
    stripped = text.strip()
    found = [stripped]
    if "```" in stripped:
        inner = stripped.split("```")[1]
        found.append(inner.removeprefix("json").strip())
    found.append(stripped[stripped.rfind("\n") + 1 :])  # a last line of its own
    for opening, closing in (("{", "}"), ("[", "]")):
        start, end = stripped.find(opening), stripped.rfind(closing)
        if 0 <= start < end:
            found.append(stripped[start : end + 1])
    return found


def _described(error: ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "the top level"
    return f"at {where}: {error.message}"


@dataclass
class OutputContract:
    """The schema a turn's answer must match, and how the turn has fared against it."""

    schema: dict[str, Any]
    output_json: str = ""  # the valid answer, once there is one
    repairs: int = field(default=0)

    def __post_init__(self) -> None:
        self._validator = jsonschema.validators.validator_for(self.schema)(self.schema)

    @classmethod
    def of(cls, schema_json: str) -> OutputContract | None:
        return cls(parse_schema(schema_json)) if schema_json else None

    def instruction(self) -> str:
        """What the system prompt tells the model."""
        schema = json.dumps(self.schema, ensure_ascii=False)
        return (
            "When you are done, give your final answer as one JSON value that validates "
            f"against this JSON Schema, and nothing else: {schema}"
        )

    def check(self, answer: str) -> str | None:
        """None when `answer` holds valid JSON (kept as `output_json`); else the message that
        asks the model again, once. A second invalid answer fails the turn."""
        error = "it is not JSON"
        for candidate in _candidates(answer):
            try:
                value = json.loads(candidate)
            except ValueError:
                continue
            problems = sorted(self._validator.iter_errors(value), key=lambda e: list(e.path))
            if problems:
                error = "; ".join(_described(e) for e in problems[:3])
                continue
            self.output_json = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            return None
        if self.repairs:
            raise ProviderError(
                "output_invalid", f"the final answer does not match the schema: {error}"
            )
        self.repairs += 1
        return (
            f"Your final answer does not match the required JSON Schema ({error}). Answer "
            "again with only the corrected JSON value."
        )
