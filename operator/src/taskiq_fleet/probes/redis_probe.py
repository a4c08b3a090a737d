"""One probe per Redis server; every pool on that server is read in one round trip.

Pools poll on their own timers, yet their reads land close together. A ``read`` joins
the batch that is being gathered (for ``batch_window_s``) and waits; the batch then
goes out as one pipeline holding each key once, and every caller gets its own
``PoolReading`` from the shared replies. A bad key fails only the pools that name it;
a broken connection fails every caller of the batch.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from taskiq_fleet.contract.redis_url import InvalidRedisURLError, RedisURL
from taskiq_fleet.probes import reading
from taskiq_fleet.probes.types import PoolReading, ProbeError, QueueRef

logger = logging.getLogger(__name__)

#: How long the first caller of a batch waits for others to join. Short against any
#: poll interval, long enough for pools whose timers fired in the same tick.
DEFAULT_BATCH_WINDOW_S: Final = 0.005


@dataclass(slots=True)
class _Batch:
    callers: list[tuple[tuple[QueueRef, ...], asyncio.Future[PoolReading]]] = field(
        default_factory=list
    )


class RedisProbe:
    """Reads queue depth, in-flight work and task age from one Redis server.

    ``url`` may carry an ACL user, a password and a db index; ``rediss://`` uses TLS,
    verified against ``ca_file`` when given (else the system's trust store). The
    password never appears in an error, a log line or this object's ``repr``.
    """

    def __init__(
        self,
        url: str,
        *,
        ca_file: str | None = None,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 2.0,
        batch_window_s: float = DEFAULT_BATCH_WINDOW_S,
    ) -> None:
        try:
            self._url = RedisURL.parse(url, what="Redis URL")
        except InvalidRedisURLError as exc:
            # Gives up: a malformed URL needs a person; the message is already redacted.
            raise ProbeError(str(exc), temporary=False) from None
        self._password = _password_of(self._url.secret)
        self._timeout_s = connect_timeout_s + read_timeout_s
        self._batch_window_s = batch_window_s
        self._batch: _Batch | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._closed = False
        self._client = redis.asyncio.Redis(
            host=self._url.host,
            port=self._url.port,
            db=self._url.db,
            username=self._url.username,
            password=self._password,
            ssl=self._url.tls,
            ssl_ca_certs=ca_file,
            socket_connect_timeout=connect_timeout_s,
            socket_timeout=read_timeout_s,
            # One quick retry rides over a pooled connection that a server restart broke;
            # anything longer is the next poll's job, while the engine holds.
            retry=Retry(NoBackoff(), 1),
            max_connections=4,
        )

    def __repr__(self) -> str:
        return f"RedisProbe({str(self._url)!r})"

    @property
    def url(self) -> str:
        """The server's URL with the password replaced by ``***``."""
        return str(self._url)

    async def read(self, queues: Sequence[QueueRef]) -> PoolReading:
        """Read ``queues`` together with every other pool asking at the same moment."""
        if self._closed:
            raise ProbeError(f"the probe of {self._url} is closed", temporary=False)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[PoolReading] = loop.create_future()
        batch = self._batch
        if batch is None:
            batch = self._batch = _Batch()
            task = asyncio.create_task(self._flush(batch), name=f"redis-probe {self}")
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        batch.callers.append((tuple(queues), future))
        return await future

    async def aclose(self) -> None:
        """Fail reads still waiting, and close the connections."""
        self._closed = True
        for task in list(self._flushes):
            task.cancel()
        await asyncio.gather(*self._flushes, return_exceptions=True)
        await self._client.aclose()

    async def _flush(self, batch: _Batch) -> None:
        try:
            await asyncio.sleep(self._batch_window_s)

            # Callers arriving from here on start the next batch.
            self._batch = None
            replies, plan = await self._round_trip(batch)
        except BaseException as exc:
            # Gives up on this batch only: every caller gets the error, the next poll retries.
            if self._batch is batch:
                self._batch = None
            self._fail(batch, self._probe_error(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for refs, future in batch.callers:
            if not future.done():
                _settle(future, refs=refs, plan=plan, replies=replies)

    def _fail(self, batch: _Batch, error: ProbeError) -> None:
        for _, future in batch.callers:
            if not future.done():
                future.set_exception(error)

    async def _round_trip(self, batch: _Batch) -> tuple[list[Any], reading.Plan]:
        refs = [ref for queues, _ in batch.callers for ref in queues]
        async with asyncio.timeout(self._timeout_s):
            async with self._client.pipeline(transaction=False) as pipe:
                plan = reading.plan_commands(pipe, refs)
                replies: list[Any] = await pipe.execute(raise_on_error=False)
        logger.debug(
            "read %d queues for %d pools from %s in one round trip",
            len(refs),
            len(batch.callers),
            self,
        )
        return replies, plan

    def _probe_error(self, exc: BaseException) -> ProbeError:
        if isinstance(exc, ProbeError):
            return exc
        if isinstance(exc, asyncio.CancelledError):
            return ProbeError(f"read from {self._url} cancelled: the probe closed", temporary=True)
        text = self._scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        where = f"Redis at {self._url}"
        if isinstance(
            exc, redis.exceptions.AuthenticationError | redis.exceptions.NoPermissionError
        ):
            return ProbeError(
                f"{where} refused the credentials ({text}); fix the user or password in the URL",
                temporary=False,
            )
        if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
            return ProbeError(
                f"{where}: the server's TLS certificate is not trusted ({text}); "
                "check the CA bundle it is verified against",
                temporary=False,
            )
        if isinstance(exc, TimeoutError):
            return ProbeError(f"{where} did not answer within {self._timeout_s:g}s", temporary=True)
        return ProbeError(f"{where} could not be read ({text}); retrying next poll", temporary=True)

    def _scrub(self, text: str) -> str:
        if self._password:
            text = text.replace(self._password, "***")
        return text.replace(self._url.secret, str(self._url))


def _settle(
    future: asyncio.Future[PoolReading],
    *,
    refs: tuple[QueueRef, ...],
    plan: reading.Plan,
    replies: Sequence[Any],
) -> None:
    try:
        now_ms = reading.server_time_ms(replies, plan)
        queues = tuple(
            reading.read_queue(ref, plan=plan, replies=replies, now_ms=now_ms) for ref in refs
        )
    except ProbeError as exc:
        # Gives up for this pool only: other pools in the batch keep their readings.
        future.set_exception(exc)
        return
    except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        # Gives up for this pool only, as above: a reply of a shape no Redis we know sends.
        names = ", ".join(repr(ref.name) for ref in refs)
        future.set_exception(
            ProbeError(
                f"unexpected reply reading {names} ({type(exc).__name__}); retrying next poll",
                temporary=True,
            )
        )
        return
    future.set_result(PoolReading(queues=queues))


def _password_of(url: str) -> str | None:
    """The URL's password, from its user info or, as redis-py also reads it, its query."""
    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    in_query = parse_qs(parts.query).get("password")
    return in_query[0] if in_query else None
