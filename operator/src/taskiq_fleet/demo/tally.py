"""Counting what happened to every command the demo sent, from the runs' own events.

The load generator writes one JSON line per command it sent; each agent run writes its
events to the session's stream. A command is *completed* when its session holds a
terminal event, *duplicated* when it was started more than once, and *lost* when it
finished nowhere and is not waiting in the queue either.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from pathlib import Path

from taskiq_fleet.contract import events


@dataclass(frozen=True, slots=True)
class SentCommand:
    """One line of the load generator's ``--out`` file."""

    session_id: str
    dedup_key: str
    task_id: str
    sent_ms: int


@dataclass(frozen=True, slots=True)
class Tally:
    """Outcome counts over all sent commands; waits are in seconds."""

    sent: int
    completed: int
    failed: int
    cancelled: int
    unfinished: int
    duplicated: int
    deduplicated: int
    queued_at_end: int
    lost: int
    waits_s: tuple[float, ...]

    @property
    def wait_p50_s(self) -> float | None:
        return percentile(self.waits_s, 50)

    @property
    def wait_p95_s(self) -> float | None:
        return percentile(self.waits_s, 95)

    @property
    def wait_max_s(self) -> float | None:
        return max(self.waits_s) if self.waits_s else None


def read_sent(paths: Iterable[Path]) -> list[SentCommand]:
    """Every command the load generators reported; a torn last line is skipped."""
    sent: list[SentCommand] = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                sent.append(
                    SentCommand(
                        session_id=str(row["session_id"]),
                        dedup_key=str(row.get("dedup_key", "")),
                        task_id=str(row.get("task_id", "")),
                        sent_ms=int(row.get("sent_ms", 0)),
                    )
                )
            except (ValueError, KeyError, TypeError):
                # Holds: a generator killed mid-write leaves half a line; count the rest.
                continue
    return sent


def tally(
    *,
    sent: Sequence[SentCommand],
    sessions: Mapping[str, Sequence[events.SessionEvent]],
    queued: Set[str],
) -> Tally:
    """Count outcomes; ``sessions`` maps a session id to its events, oldest first, and
    ``queued`` holds the session ids found in messages still waiting in the queue."""
    counts = {"completed": 0, "failed": 0, "cancelled": 0, "unfinished": 0}
    duplicated = deduplicated = queued_at_end = lost = 0
    waits: list[float] = []
    for command in sent:
        session = sessions.get(command.session_id, ())
        starts = [e for e in session if e.type == events.RUN_STARTED]
        terminal = [e.type for e in session if e.type in events.TERMINAL]
        deduplicated += sum(1 for e in session if e.type == events.RUN_DEDUPLICATED)
        if len(starts) > 1:
            duplicated += 1
        if events.RUN_COMPLETED in terminal:
            counts["completed"] += 1
        elif events.RUN_FAILED in terminal:
            counts["failed"] += 1
        elif events.RUN_CANCELLED in terminal:
            counts["cancelled"] += 1
        else:
            counts["unfinished"] += 1
            if command.session_id in queued:
                queued_at_end += 1
            else:
                lost += 1
        if starts:
            waits.append(_wait_s(starts[0], sent_ms=command.sent_ms))
    return Tally(
        sent=len(sent),
        duplicated=duplicated,
        deduplicated=deduplicated,
        queued_at_end=queued_at_end,
        lost=lost,
        waits_s=tuple(waits),
        **counts,
    )


def _wait_s(started: events.SessionEvent, *, sent_ms: int) -> float:
    """From enqueue (the producer's stamp, else the load line) to the run's start."""
    start_ms = started.int_field(events.F_STARTED_MS) or started.ms
    enqueued_ms = started.int_field(events.F_ENQUEUED_MS) or sent_ms
    return max(0.0, (start_ms - enqueued_ms) / 1000)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The nearest-rank percentile; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def session_ids_in(messages: Iterable[bytes | str]) -> set[str]:
    """Every session id mentioned in raw queued messages, whatever their encoding.

    Read as text, not parsed: the message format is the broker's and the worker's,
    and a session id is a UUID wherever it sits in the body.
    """
    found: set[str] = set()
    for message in messages:
        raw = message.encode() if isinstance(message, str) else message
        found.update(match.decode() for match in _UUID.findall(raw.lower()))
    return found
