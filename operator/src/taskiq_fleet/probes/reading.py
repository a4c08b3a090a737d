"""What to ask Redis for a set of queues, and how to turn the answers into readings.

Split from the connection handling so the rules for each broker read in one place:

- list: ``LLEN`` is waiting; in-flight, capacity and workers come from live heartbeats;
  the oldest task's age from the enqueue label of the message at the list's tail.
- stream: the consumer group's ``lag`` is waiting (counted by a script when Redis does
  not know it), its pending entries are in flight, and the oldest task's age comes from
  the oldest pending entry id, else the first entry not yet delivered.

Every command for every queue of every pool goes into one pipeline, each key once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from redis.exceptions import NoPermissionError

from taskiq_fleet.contract import heartbeat, keys
from taskiq_fleet.probes.scripts import STREAM_GROUP_LUA
from taskiq_fleet.probes.types import BrokerKind, ProbeError, QueueReading, QueueRef

#: Entries counted one by one when a stream group's lag is unknown. Above it the
#: reading says "at least this many", which is plenty to scale on.
LAG_COUNT_CAP: Final = 10_000


@dataclass(slots=True)
class Plan:
    """Where each command's reply sits in the pipeline's list of replies."""

    time_at: int = -1
    heartbeats_at: dict[str, int] = field(default_factory=dict)
    lists_at: dict[str, int] = field(default_factory=dict)
    streams_at: dict[tuple[str, str], int] = field(default_factory=dict)


def plan_commands(pipe: Any, refs: Iterable[QueueRef]) -> Plan:
    """Queue the commands for ``refs`` on ``pipe`` (a redis-py pipeline), each key once."""
    plan = Plan()
    count = 0

    def add(command: str, *args: object) -> int:
        nonlocal count
        getattr(pipe, command)(*args)
        count += 1
        return count - 1

    # The server's clock, read in the same round trip, judges which heartbeats are live.
    plan.time_at = add("time")
    for ref in refs:
        if ref.name not in plan.heartbeats_at:
            plan.heartbeats_at[ref.name] = add("hgetall", keys.heartbeat_key(ref.name))
        if ref.kind is BrokerKind.LIST and ref.name not in plan.lists_at:
            plan.lists_at[ref.name] = add("type", ref.name)
            add("llen", ref.name)
            add("lindex", ref.name, -1)
        elif (
            ref.kind is BrokerKind.STREAM and (ref.name, ref.consumer_group) not in plan.streams_at
        ):
            plan.streams_at[(ref.name, ref.consumer_group)] = add(
                "eval", STREAM_GROUP_LUA, 1, ref.name, ref.consumer_group, str(LAG_COUNT_CAP)
            )
    return plan


def server_time_ms(replies: Sequence[Any], plan: Plan) -> int:
    seconds, micros = _ok(replies[plan.time_at], what="TIME")
    return int(seconds) * 1000 + int(micros) // 1000


def read_queue(ref: QueueRef, *, plan: Plan, replies: Sequence[Any], now_ms: int) -> QueueReading:
    """One queue's reading from the pipeline's replies. Raises ProbeError for a bad key."""
    beats = _live_heartbeats(ref, plan=plan, replies=replies, now_ms=now_ms)
    if ref.kind is BrokerKind.LIST:
        return _read_list(ref, plan=plan, replies=replies, now_ms=now_ms, beats=beats)
    return _read_stream(ref, plan=plan, replies=replies, now_ms=now_ms, beats=beats)


@dataclass(frozen=True, slots=True)
class _Beats:
    in_flight: int
    capacity: int
    workers: int
    warnings: tuple[str, ...]


def _live_heartbeats(ref: QueueRef, *, plan: Plan, replies: Sequence[Any], now_ms: int) -> _Beats:
    key = keys.heartbeat_key(ref.name)
    raw = replies[plan.heartbeats_at[ref.name]]
    if isinstance(raw, Exception):
        raise _key_error(key, raw, expected="hash")
    beats, bad = heartbeat.parse_all(raw)
    live = [b for b in beats if b.alive_at(now_ms)]
    warnings = tuple(f"heartbeat {worker!r} in {key!r} could not be decoded" for worker in bad)
    return _Beats(
        in_flight=sum(b.in_flight for b in live),
        capacity=sum(b.capacity for b in live),
        workers=len(live),
        warnings=warnings,
    )


def _read_list(
    ref: QueueRef, *, plan: Plan, replies: Sequence[Any], now_ms: int, beats: _Beats
) -> QueueReading:
    # Known shortcoming: a list worker's in-flight tasks are known only from its
    # heartbeats, so workers without the fleet middleware (or whose heartbeats cannot be
    # written) read as holding nothing, and an idle-looking pool may be scaled in under
    # them; their drain on SIGTERM is then all that protects those tasks. Comparing the
    # ready replicas with the live heartbeats, and holding when they disagree, removes it.
    at = plan.lists_at[ref.name]
    kind, length, tail = replies[at], replies[at + 1], replies[at + 2]
    kind = _ok(kind, what=f"TYPE {ref.name!r}")
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind not in ("list", "none"):
        raise ProbeError(_wrong_type(ref.name, found=kind, expected="list"), temporary=False)
    warnings = list(beats.warnings)
    age_s: float | None = None
    if kind == "none" and beats.workers == 0:
        # An empty list does not exist in Redis; only say so when no worker serves it either.
        warnings.append(f"list {ref.name!r} does not exist and no worker serves it; reading 0")
    if kind == "list":
        age_s, warning = _message_age_s(tail, now_ms=now_ms, queue=ref.name)
        if warning:
            warnings.append(warning)
    return QueueReading(
        queue=ref,
        waiting=int(length) if kind == "list" else 0,
        in_flight=beats.in_flight,
        oldest_age_s=age_s,
        workers=beats.workers,
        capacity=beats.capacity,
        warnings=tuple(warnings),
    )


def _message_age_s(raw: object, *, now_ms: int, queue: str) -> tuple[float | None, str | None]:
    """Age of a taskiq message from its enqueue label; ``None`` and a warning if unreadable."""
    if raw is None:
        return None, None
    try:
        labels = json.loads(raw)["labels"]  # type: ignore[arg-type]
        stamp = labels.get(keys.LABEL_ENQUEUED_MS)
    except (ValueError, KeyError, TypeError, AttributeError):
        # Holds: the depth still counts; only the age of this message is unknown.
        return None, f"oldest message in {queue!r} is not a taskiq JSON message; age unknown"
    if stamp is None:
        return None, (
            f"oldest message in {queue!r} has no {keys.LABEL_ENQUEUED_MS!r} label "
            "(sent without the fleet middleware); age unknown"
        )
    try:
        enqueued_ms = float(stamp)
    except (ValueError, TypeError):
        # Holds, as above: a foreign label value only costs the age.
        return None, f"oldest message in {queue!r} has an unreadable enqueue stamp; age unknown"
    return max(0.0, (now_ms - enqueued_ms) / 1000), None


def _read_stream(
    ref: QueueRef, *, plan: Plan, replies: Sequence[Any], now_ms: int, beats: _Beats
) -> QueueReading:
    raw = replies[plan.streams_at[(ref.name, ref.consumer_group)]]
    if isinstance(raw, Exception):
        raise _key_error(ref.name, raw, expected="stream")
    status = _text(raw[0])
    warnings = list(beats.warnings)
    waiting = pending = 0
    age_s: float | None = None
    if status == "wrongtype":
        raise ProbeError(
            _wrong_type(ref.name, found=_text(raw[1]), expected="stream"), temporary=False
        )
    if status == "none":
        warnings.append(f"stream {ref.name!r} does not exist yet; reading 0")
    elif status == "nogroup":
        warnings.append(
            f"consumer group {ref.consumer_group!r} of stream {ref.name!r} does not exist "
            f"yet; reading 0 (the stream holds {int(raw[1])} entries, none delivered)"
        )
    else:
        waiting, source, pending = int(raw[1]), _text(raw[2]), int(raw[3])
        if source == "counted" and waiting > LAG_COUNT_CAP:
            waiting = LAG_COUNT_CAP
            warnings.append(
                f"stream {ref.name!r} has no lag for group {ref.consumer_group!r}; "
                f"counted at least {LAG_COUNT_CAP} undelivered entries"
            )
        oldest_id = _text(raw[4]) or _text(raw[5])
        if oldest_id:
            age_s = max(0.0, (now_ms - int(oldest_id.split("-", 1)[0])) / 1000)
    return QueueReading(
        queue=ref,
        waiting=waiting,
        in_flight=pending,
        oldest_age_s=age_s,
        workers=beats.workers,
        capacity=beats.capacity,
        warnings=tuple(warnings),
    )


def _ok(reply: Any, *, what: str) -> Any:
    if isinstance(reply, Exception):
        raise ProbeError(f"{what} failed: {reply}", temporary=not _refused(reply))
    return reply


def _refused(exc: Exception) -> bool:
    """An ACL refusal: it will not pass by itself, a person must grant the access."""
    return isinstance(exc, NoPermissionError) or str(exc).startswith("NOPERM")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _wrong_type(key: str, *, found: str, expected: str) -> str:
    return (
        f"key {key!r} holds a {found}, not a {expected}: check the queue name and broker "
        "kind; this pool is not scaled until it is fixed"
    )


def _key_error(key: str, exc: Exception, *, expected: str) -> ProbeError:
    if "WRONGTYPE" in str(exc):
        return ProbeError(
            _wrong_type(key, found="value of another type", expected=expected), temporary=False
        )
    return ProbeError(f"reading {key!r} failed: {exc}", temporary=not _refused(exc))
