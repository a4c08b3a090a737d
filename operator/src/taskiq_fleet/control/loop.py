"""Polling a pool on a fixed period until told to stop.

The local supervisor runs this as-is; the operator may call
:meth:`~taskiq_fleet.control.controller.PoolController.poll` from its own timers
instead. Polls are scheduled on a fixed grid, not "interval after the last one
finished", so a slow probe does not stretch the period the engine's windows assume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from taskiq_fleet.control.controller import PollOutcome, PoolController

logger = logging.getLogger("taskiq_fleet.control")

OutcomeHook = Callable[[PollOutcome], Awaitable[None]]


async def run_polls(
    controller: PoolController,
    *,
    interval_s: float,
    stop: asyncio.Event,
    on_outcome: OutcomeHook | None = None,
    paused: Callable[[], bool] = lambda: False,
) -> None:
    """Poll every ``interval_s`` until ``stop`` is set; returns promptly once it is."""
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while not stop.is_set():
        scheduled = controller.clock() - max(0.0, loop.time() - next_at)
        try:
            outcome = await controller.poll(paused=paused(), scheduled_at_s=scheduled)
        except Exception:
            # Retries on the next poll: one bad poll (a bug, an unexpected reply) must not
            # end the loop and leave the pool unmanaged.
            logger.exception("poll failed pool=%s", controller.name)
            controller.metrics.errors.labels(
                controller.key.namespace, controller.key.pool, "poll"
            ).inc()
        else:
            if on_outcome is not None:
                await on_outcome(outcome)

        # The next slot on the grid; skip slots missed while a poll ran long.
        next_at += interval_s
        now = loop.time()
        next_at = max(next_at, now)
        with contextlib.suppress(TimeoutError):
            # Not an error: the timeout is the normal way to wake for the next poll.
            await asyncio.wait_for(stop.wait(), timeout=next_at - now)
