"""taskiq-redis's list and stream brokers, hardened for workers that come and go.

Both keep their upstream class and API (``FleetListBroker`` *is* a ``ListQueueBroker``)
and change what a fleet needs:

- connections that block on the queue have no socket timeout (redis-py's 5 s default
  made an idle worker crash in a loop) and TCP keepalive;
- a worker waits for an unreachable Redis at startup instead of exiting, and its
  listen loop rides out a Redis restart (upstream catches the builtin
  ``ConnectionError``, which redis-py's is not, and the worker died with its tasks);
- a message read from the queue just as the worker stops goes back to the queue
  instead of vanishing with the process.

The stream broker adds what at-least-once needs: the consumer group starts at the
stream's first entry, orphaned deliveries are reclaimed on a timer rather than only
after new traffic, and acknowledged history is trimmed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Final

import redis.exceptions
from redis.asyncio import Redis
from taskiq import AckableMessage
from taskiq_redis import ListQueueBroker, RedisStreamBroker

from taskiq_fleet.contract.redis_url import redact
from taskiq_fleet_worker.connection import (
    TEMPORARY_ERRORS,
    Backoff,
    connection_options,
    describe,
    retrying,
    wait_until_reachable,
)

logger = logging.getLogger("taskiq_fleet_worker.broker")

#: Server-side timeout of one blocking read. Bounds how long a stopping worker waits
#: for a read in flight; an idle worker costs Redis one cheap command per period.
BLOCK_S: Final = 1.0
#: Maximum delay between retries of a failed listen loop.
LISTEN_BACKOFF_CAP_S: Final = 5.0


class _Hardened:
    """What both brokers share: the shown URL, startup waiting, the listen retry loop."""

    connection_pool: Any
    is_worker_process: bool
    queue_name: str
    shown_url: str
    _redis: Redis | None = None

    @property
    def redis(self) -> Redis:
        """A client on the broker's pool; each command borrows a pooled connection."""
        if self._redis is None:
            self._redis = Redis(connection_pool=self.connection_pool)
        return self._redis

    async def _wait_for_redis(self) -> None:
        # Only workers wait: a producer should fail fast and say so.
        if self.is_worker_process:
            await wait_until_reachable(self.redis, shown_url=self.shown_url)

    async def _listen_forever(
        self, session: Callable[[], AsyncGenerator[Any, None]]
    ) -> AsyncGenerator[Any, None]:
        backoff = Backoff(cap_s=LISTEN_BACKOFF_CAP_S)
        while True:
            try:
                async for message in session():
                    backoff.reset()
                    yield message
            except TEMPORARY_ERRORS as exc:
                # Retries: Redis restarts or fails over; tasks in flight carry on meanwhile.
                delay_s = backoff.next_delay_s()
                logger.warning(
                    "lost Redis at %s while reading queue %r (%s); retrying in %.1f s",
                    self.shown_url,
                    self.queue_name,
                    describe(exc),
                    delay_s,
                )
                await asyncio.sleep(delay_s)


async def _finish_read_then_return(
    read: asyncio.Future[Any], give_back: Callable[[Any], Awaitable[None]], *, queue: str
) -> None:
    """The worker stops while a blocking read is in flight: let the read end (within
    its server-side timeout) and give back whatever it took, so nothing is lost."""
    try:
        reply = await read
        if reply:
            await retrying(lambda: give_back(reply), what="returning a message", window_s=10)
    except (redis.exceptions.RedisError, OSError) as exc:
        # Gives up: Redis is gone too; a list message read in this instant is lost,
        # a stream delivery stays pending and is reclaimed by another worker.
        logger.error("could not return a message read from %r while stopping: %s", queue, exc)


class FleetListBroker(_Hardened, ListQueueBroker):
    """``ListQueueBroker``: LPUSH to send, BRPOP to receive, at most once."""

    def __init__(self, url: str, *, queue_name: str, **kwargs: Any) -> None:
        super().__init__(url, queue_name=queue_name, **(connection_options(blocking=True) | kwargs))
        self.shown_url = redact(url)

    async def startup(self) -> None:
        await self._wait_for_redis()
        await super().startup()

    async def listen(self) -> AsyncGenerator[bytes, None]:
        async for message in self._listen_forever(self._session):
            yield message

    async def _session(self) -> AsyncGenerator[bytes, None]:
        conn = self.redis
        while True:
            read = asyncio.ensure_future(conn.brpop([self.queue_name], timeout=BLOCK_S))
            try:
                reply = await asyncio.shield(read)
            except asyncio.CancelledError:
                # RPUSH puts it back at the end BRPOP takes from: first in line again.

                async def put_back(got: Any) -> None:
                    await conn.rpush(self.queue_name, got[1])

                await _finish_read_then_return(read, put_back, queue=self.queue_name)
                raise
            if reply:
                message: Any = reply[1]
                yield message


class FleetStreamBroker(_Hardened, RedisStreamBroker):
    """``RedisStreamBroker``: XADD to send, XREADGROUP to receive, XACK when the result is
    saved, at least once. Each worker process is its own consumer in the group."""

    def __init__(
        self,
        url: str,
        *,
        queue_name: str,
        consumer_group_name: str,
        idle_timeout_s: float,
        reclaim_interval_s: float | None = None,
        trim_interval_s: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            url,
            queue_name=queue_name,
            consumer_group_name=consumer_group_name,
            # A group created at "$" skips entries sent before the first worker came up.
            consumer_id="0",
            mkstream=True,
            xread_block=int(BLOCK_S * 1000),
            # No MAXLEN on send: it drops entries whether acknowledged or not. Acked
            # history is trimmed by MINID below instead.
            maxlen=None,
            idle_timeout=int(idle_timeout_s * 1000),
            # One entry per read: an entry read but waiting for a free slot would age
            # towards the reclaim time while nobody runs it.
            xread_count=1,
            **(connection_options(blocking=True) | kwargs),
        )
        self.shown_url = redact(url)
        self.reclaim_interval_s = reclaim_interval_s or max(0.5, min(10.0, idle_timeout_s / 4))
        self.trim_interval_s = trim_interval_s
        self._next_reclaim_s = 0.0
        self._next_trim_s = 0.0

    async def startup(self) -> None:
        await self._wait_for_redis()
        await super().startup()

    async def _declare_consumer_group(self) -> None:
        """Create the group at the stream's start (idempotent); refuse a non-stream key."""
        await declare_group(self.redis, stream=self.queue_name, group=self.consumer_group_name)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        async for message in self._listen_forever(self._session):
            yield message

    async def _session(self) -> AsyncGenerator[AckableMessage, None]:
        conn = self.redis
        self._next_reclaim_s = 0.0
        self._next_trim_s = time.monotonic() + self.trim_interval_s
        while True:
            try:
                batch = await self._next_batch(conn)
            except redis.exceptions.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # Retries at once: Redis lost the group (a restart without persistence).
                logger.warning("consumer group of %r is gone; creating it again", self.queue_name)
                await declare_group(conn, stream=self.queue_name, group=self.consumer_group_name)
                continue
            for message in batch:
                yield message

    async def _next_batch(self, conn: Redis) -> list[AckableMessage]:
        now_s = time.monotonic()

        # Take over one orphaned delivery at a time, and only when we have a free slot
        # (the receiver asks for the next message only then); with no new traffic at
        # all, this timer is what brings a dead worker's tasks back.
        if now_s >= self._next_reclaim_s:
            orphan = await self._reclaim_one(conn)
            if orphan is not None:
                return [orphan]
            self._next_reclaim_s = now_s + self.reclaim_interval_s
        if now_s >= self._next_trim_s:
            await trim_acknowledged(conn, stream=self.queue_name)
            self._next_trim_s = now_s + self.trim_interval_s
        return await self._read(conn)

    async def _read(self, conn: Redis) -> list[AckableMessage]:
        read = asyncio.ensure_future(
            conn.xreadgroup(
                self.consumer_group_name,
                self.consumer_name,
                {self.queue_name: ">"},
                block=self.block,
                count=self.count,
            )
        )
        try:
            reply: Any = await asyncio.shield(read)
        except asyncio.CancelledError:
            await _finish_read_then_return(
                read, lambda got: self._give_back(conn, got), queue=self.queue_name
            )
            raise
        messages = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                if b"data" not in (fields or {}):
                    await self._skip(conn, entry_id)
                    continue
                messages.append(self._message(conn, entry_id, fields))
        return messages

    async def _skip(self, conn: Redis, entry_id: bytes) -> None:
        # Gives up on the entry: written by something other than a Taskiq producer, it
        # holds no task. Acknowledged, it is neither run, nor reclaimed, nor a crash.
        logger.warning(
            "skipped entry %s of %r: it has no 'data' field, so it is not a Taskiq message",
            entry_id.decode(),
            self.queue_name,
        )
        await conn.xack(self.queue_name, self.consumer_group_name, entry_id)

    async def _reclaim_one(self, conn: Redis) -> AckableMessage | None:
        reply: Any = await conn.xautoclaim(
            self.queue_name,
            self.consumer_group_name,
            self.consumer_name,
            min_idle_time=self.idle_timeout,
            start_id="0-0",
            count=1,
        )
        for entry_id, fields in reply[1]:
            if not fields or b"data" not in fields:
                # Trimmed or deleted under us (Redis 6.2 shows these as empty): nothing
                # to run, so the delivery is settled.
                await conn.xack(self.queue_name, self.consumer_group_name, entry_id)
                continue
            logger.info(
                "reclaimed delivery %s of %r from a silent consumer", entry_id, self.queue_name
            )
            return self._message(conn, entry_id, fields)
        return None

    def _message(self, conn: Redis, entry_id: bytes, fields: dict[bytes, bytes]) -> AckableMessage:
        async def ack() -> None:
            # Retries: an unacked entry would be run again by whoever reclaims it.
            await retrying(
                lambda: conn.xack(self.queue_name, self.consumer_group_name, entry_id),
                what="acknowledging a message",
            )

        return AckableMessage(data=fields[b"data"], ack=ack)

    async def _give_back(self, conn: Redis, reply: Any) -> None:
        # A copy at the tail and the ack of the original, in one transaction.
        async with conn.pipeline(transaction=True) as pipe:
            for _stream, entries in reply:
                for entry_id, fields in entries:
                    pipe.xadd(self.queue_name, fields)
                    pipe.xack(self.queue_name, self.consumer_group_name, entry_id)
            await pipe.execute()


async def declare_group(conn: Redis, *, stream: str, group: str) -> None:
    """Create ``group`` on ``stream`` at its first entry, creating the stream if needed."""
    try:
        await conn.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.exceptions.ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            return
        if "WRONGTYPE" in str(exc):
            # Gives up: reading a list as a stream can only fail; say what to change.
            raise RuntimeError(
                f"queue {stream!r} exists and is not a stream (TASKIQ_BROKER_KIND=stream); "
                "use another TASKIQ_DEFAULT_QUEUE or drain and delete the old key"
            ) from None
        raise


async def trim_acknowledged(conn: Redis, *, stream: str) -> None:
    """Drop entries every consumer group has been given and acknowledged.

    The lowest id still needed is, over all groups, the smaller of the oldest pending
    entry and the last delivered one; everything before it is history. ``~`` lets Redis
    trim whole nodes only, which is cheap and never cuts past that id.
    """
    try:
        groups = await conn.xinfo_groups(stream)
    except redis.exceptions.ResponseError:
        # Holds: no stream yet, nothing to trim.
        return
    keep: tuple[int, int] | None = None
    for info in groups:
        candidates = [_stream_id(info["last-delivered-id"])]
        if int(info["pending"]):
            summary = await conn.xpending(stream, info["name"])
            candidates.append(_stream_id(summary["min"]))
        lowest = min(candidates)
        keep = lowest if keep is None else min(keep, lowest)
    if keep is None or keep == (0, 0):
        return
    await conn.xtrim(stream, minid=f"{keep[0]}-{keep[1]}", approximate=True)


def _stream_id(raw: bytes | str) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    millis, _, seq = text.partition("-")
    return int(millis), int(seq or 0)
