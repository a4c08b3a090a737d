"""What an agent run writes to its session's event stream, and how to read it back.

Each agent session has one Redis stream (``keys.session_events_key(session_id)``).
A run appends ``run.started``, one ``step`` per agent step, and exactly one terminal
event: ``run.completed``, ``run.failed`` or ``run.cancelled``. A command whose
``dedup_key`` was seen before appends ``run.deduplicated`` instead of running.

Every entry has the fields ``type``, ``task_id`` and ``ms`` (milliseconds since the
epoch, worker clock); the others depend on the type and are listed with it below.
All values are strings on the wire, as Redis streams keep them.

The demo and the tests read these to count completed, lost and duplicated runs and
the time a command waited: ``started_ms - enqueued_ms`` of ``run.started``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from taskiq_fleet.contract import keys

#: ``task_id``, ``worker``, ``dedup_key``, ``steps`` (planned), ``started_ms`` and
#: ``enqueued_ms`` (empty when the producer sent no enqueue stamp).
RUN_STARTED: Final = "run.started"
#: ``step`` (0-based index), ``output`` (JSON text the agent step returned).
STEP: Final = "step"
#: ``worker``, ``steps`` (steps run), ``finished_ms``.
RUN_COMPLETED: Final = "run.completed"
#: ``worker``, ``error`` (one line), ``finished_ms``. The run's claim is released, so a
#: retry of the same command may run it again.
RUN_FAILED: Final = "run.failed"
#: ``worker``, ``steps`` (steps run before the cancel was seen), ``finished_ms``.
RUN_CANCELLED: Final = "run.cancelled"
#: ``worker``, ``dedup_key``, ``holder`` (the task id that ran or runs the command).
RUN_DEDUPLICATED: Final = "run.deduplicated"

#: A run ends with exactly one of these.
TERMINAL: Final = frozenset({RUN_COMPLETED, RUN_FAILED, RUN_CANCELLED})
ALL: Final = frozenset({RUN_STARTED, STEP, *TERMINAL, RUN_DEDUPLICATED})

# Field names, shared by the writer (the agent runtime) and every reader.
F_TYPE: Final = "type"
F_TASK_ID: Final = "task_id"
F_MS: Final = "ms"
F_WORKER: Final = "worker"
F_DEDUP_KEY: Final = "dedup_key"
F_STEPS: Final = "steps"
F_STEP: Final = "step"
F_OUTPUT: Final = "output"
F_ENQUEUED_MS: Final = "enqueued_ms"
F_STARTED_MS: Final = "started_ms"
F_FINISHED_MS: Final = "finished_ms"
F_ERROR: Final = "error"
F_HOLDER: Final = "holder"


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One entry of a session's event stream."""

    entry_id: str
    type: str
    task_id: str
    ms: int
    fields: Mapping[str, str] = field(default_factory=dict)

    def int_field(self, name: str) -> int | None:
        """A numeric field, or ``None`` when it is absent or empty."""
        raw = self.fields.get(name, "")
        return int(raw) if raw.lstrip("-").isdigit() else None


class MalformedEventError(ValueError):
    """A stream entry that is not a session event of this contract."""


def parse(entry_id: bytes | str, raw: Mapping[bytes | str, bytes | str]) -> SessionEvent:
    """Decode one ``XRANGE`` entry; raises :class:`MalformedEventError` naming the field."""
    decoded = {_text(k): _text(v) for k, v in raw.items()}
    shown_id = _text(entry_id)
    for required in (F_TYPE, F_TASK_ID, F_MS):
        if not decoded.get(required):
            raise MalformedEventError(f"session event {shown_id} has no {required!r} field")
    if not decoded[F_MS].isdigit():
        raise MalformedEventError(
            f"session event {shown_id} has field 'ms' = {decoded[F_MS]!r}; it must be an integer"
        )
    return SessionEvent(
        entry_id=shown_id,
        type=decoded[F_TYPE],
        task_id=decoded[F_TASK_ID],
        ms=int(decoded[F_MS]),
        fields=decoded,
    )


class _AsyncStreamReader(Protocol):
    async def xrange(
        self, name: str, min: str = "-", max: str = "+", count: int | None = None
    ) -> Sequence[tuple[bytes | str, Mapping[bytes | str, bytes | str]]]: ...


async def read_session(client: _AsyncStreamReader, *, session_id: str) -> list[SessionEvent]:
    """All events of one session, oldest first. Entries that do not parse are skipped."""
    entries = await client.xrange(keys.session_events_key(session_id))
    events: list[SessionEvent] = []
    for entry_id, raw in entries:
        try:
            events.append(parse(entry_id, raw))
        except MalformedEventError:
            # Holds: a foreign entry in the stream must not hide the run's own events.
            continue
    return events


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
