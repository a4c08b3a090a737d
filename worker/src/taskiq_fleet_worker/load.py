"""Load for demos and tests: many ``run`` commands on a schedule, each one recorded.

Patterns (``rate`` is in commands per second):

- ``burst``: all at once, as fast as Redis takes them;
- ``steady``: ``rate`` per second, evenly spaced;
- ``wave``: a rate that swings from 0 to ``2 * rate`` and back every ``period_s``.

Every command sent is written as one JSON line (``session_id``, ``dedup_key``,
``task_id``, ``sent_ms``) and flushed at once, so whoever checks the outcome knows
exactly what was sent, even of a load that was stopped: ``stop`` ends the sending, and
the commands already on their way are recorded before :func:`run_load` returns.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal

Pattern = Literal["burst", "steady", "wave"]
PATTERNS: tuple[Pattern, ...] = ("burst", "steady", "wave")

#: Commands in flight to Redis at once while sending a burst.
BURST_CONCURRENCY = 64


@dataclass(frozen=True, slots=True)
class Sent:
    """One command that reached the queue."""

    session_id: str
    dedup_key: str
    task_id: str
    sent_ms: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "session_id": self.session_id,
                "dedup_key": self.dedup_key,
                "task_id": self.task_id,
                "sent_ms": self.sent_ms,
            },
            separators=(",", ":"),
        )


def send_offsets_s(
    *, count: int, pattern: Pattern, rate: float, period_s: float = 20.0
) -> Iterator[float]:
    """When (seconds after the start) each of ``count`` commands is due."""
    if pattern == "burst":
        yield from (0.0 for _ in range(count))
        return
    if rate <= 0:
        raise ValueError(f"--rate must be above 0 for the {pattern} pattern, not {rate}")
    if pattern == "steady":
        yield from (index / rate for index in range(count))
        return

    # The wave's rate is rate * (1 - cos(2 pi t / P)); walk its integral in small steps.
    tick_s = min(0.01, period_s / 100)
    sent = 0
    elapsed_s = 0.0
    owed = 0.0
    while sent < count:
        owed += rate * (1 - math.cos(2 * math.pi * elapsed_s / period_s)) * tick_s
        while owed >= 1 and sent < count:
            owed -= 1
            sent += 1
            yield elapsed_s
        elapsed_s += tick_s


#: Sends one command with its dedup key and returns the task id.
Enqueue = Callable[[dict[str, Any], str], Awaitable[str]]


async def run_load(
    *,
    enqueue: Enqueue,
    count: int,
    pattern: Pattern,
    rate: float,
    command: dict[str, Any],
    out: IO[str],
    period_s: float = 20.0,
    stop: asyncio.Event | None = None,
) -> int:
    """Send ``count`` copies of ``command`` (each with its own session and dedup key);
    returns how many were sent, fewer than ``count`` when ``stop`` was set."""
    stop = stop or asyncio.Event()
    start_s = time.monotonic()
    limit = asyncio.Semaphore(BURST_CONCURRENCY)
    tasks: list[asyncio.Task[None]] = []
    failed = asyncio.Event()

    async def send_one() -> None:
        async with limit:
            session_id = str(uuid.uuid4())
            dedup_key = f"load-{uuid.uuid4().hex}"
            try:
                task_id = await enqueue({**command, "session_id": session_id}, dedup_key)
            except Exception:
                # Gives up on the whole load: the error surfaces from gather() below.
                failed.set()
                raise
            sent = Sent(session_id, dedup_key, task_id, time.time_ns() // 1_000_000)
            # Flushed line by line: a load stopped or killed keeps the record of each send.
            out.write(sent.to_json() + "\n")
            out.flush()

    for offset_s in send_offsets_s(count=count, pattern=pattern, rate=rate, period_s=period_s):
        delay_s = start_s + offset_s - time.monotonic()
        if delay_s > 0 and await _stopped_within(stop, delay_s):
            break
        # Wait for a free sender, so a burst does not become thousands of tasks at once.
        await limit.acquire()
        limit.release()
        if failed.is_set() or stop.is_set():
            break
        tasks.append(asyncio.create_task(send_one()))
    await asyncio.gather(*tasks)
    return len(tasks)


async def _stopped_within(stop: asyncio.Event, delay_s: float) -> bool:
    """Wait ``delay_s``; ``True`` as soon as ``stop`` is set."""
    try:
        await asyncio.wait_for(stop.wait(), delay_s)
    except TimeoutError:
        return False
    return True
