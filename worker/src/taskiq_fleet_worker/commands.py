"""The commands the agent runtime accepts, validated where they enter the worker.

A command is a JSON object (a dict once Taskiq has decoded it)::

    {
        "command": "run",
        "session_id": "<uuid>",
        "dedup_key": "...",
        "steps": 3,
        "work_ms": 100,
        "input": {...},
    }
    {"command": "cancel", "session_id": "<uuid>"}

Anything else is refused with a :class:`CommandError` (a ``ValueError``) that names
the field; an unknown ``command`` says ``invalid command type``. A refused command is
a permanent failure: running it again cannot succeed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

#: Longest dedup key accepted; keys are ids, not payloads.
MAX_DEDUP_KEY_LENGTH = 200
_CANONICAL_UUID_LENGTH = 36


class CommandError(ValueError):
    """A command the runtime cannot accept; the message names the field."""


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    #: In its canonical form (lowercase, hyphenated): the session's event stream is keyed
    #: by it, so a producer reads the events under the very id it sent.
    session_id: UUID

    @field_validator("session_id", mode="before")
    @classmethod
    def _canonical(cls, value: object) -> object:
        if isinstance(value, str) and value != value.strip().lower():
            raise ValueError("must be a UUID in lowercase (the events stream is keyed by it)")
        if isinstance(value, str) and len(value) != _CANONICAL_UUID_LENGTH:
            raise ValueError("must be a UUID written as 8-4-4-4-12 hexadecimal digits")
        return value


class RunCommand(_Command):
    """Run the agent for one session."""

    command: Literal["run"]
    #: Commands with the same key run at most once; defaults to the task id.
    dedup_key: str | None = Field(default=None, min_length=1, max_length=MAX_DEDUP_KEY_LENGTH)
    #: Steps of this run; the worker's ``AGENT_STEPS`` when absent.
    steps: int | None = Field(default=None, ge=1, le=1000, strict=True)
    #: Work time of this run for the deterministic agent; ``AGENT_WORK_MS`` when absent.
    work_ms: int | None = Field(default=None, ge=0, le=3_600_000, strict=True)
    #: Free-form input handed to the agent step.
    input: dict[str, Any] = Field(default_factory=dict)


class CancelCommand(_Command):
    """Ask the session's current (or next) run to stop at its next step boundary."""

    command: Literal["cancel"]


Command = Annotated[RunCommand | CancelCommand, Field(discriminator="command")]
_ADAPTER: TypeAdapter[RunCommand | CancelCommand] = TypeAdapter(Command)
COMMAND_TYPES = ("run", "cancel")


def parse_command(raw: Mapping[str, Any] | str | bytes) -> RunCommand | CancelCommand:
    """Validate one command; raises :class:`CommandError` naming what is wrong."""
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            # Gives up: a command that is not JSON cannot be repaired here.
            raise CommandError(f"command is not valid JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise CommandError(f"command must be a JSON object, not {type(raw).__name__}")
    kind = raw.get("command")
    if kind not in COMMAND_TYPES:
        raise CommandError(
            f"invalid command type {kind!r}: field 'command' must be one of {list(COMMAND_TYPES)}"
        )
    try:
        return _ADAPTER.validate_python(dict(raw))
    except ValidationError as exc:
        # Gives up: the message lists every field at fault, without echoing values.
        raise CommandError(_describe(exc, kind=str(kind))) from None


def _describe(exc: ValidationError, *, kind: str) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        # The first element of `loc` is the union tag ("run"/"cancel"); drop it.
        location = [str(part) for part in error["loc"] if str(part) != kind]
        field = ".".join(location) or "command"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(f"field {field!r}: {message}")
    return f"invalid {kind} command: " + "; ".join(problems)
