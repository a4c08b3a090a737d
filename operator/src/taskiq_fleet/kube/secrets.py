"""Reading the Redis URL (and CA) of a pool from its Secret, without ever showing it.

Secrets are read with ``get`` (never ``list`` or ``watch``, which would hand the operator
every Secret of a namespace) and kept for ``refresh_s``: a rotated password reaches the
probes about that long after the change, and pools sharing a Secret share one read.
A value due for refresh is still served while the refresh runs in the background, so
an API server that stalls never stalls a pool's polls of a Redis that still answers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from kubernetes_asyncio import client

from taskiq_fleet.kube.errors import KubeError, call_api

logger = logging.getLogger(__name__)

DEFAULT_REFRESH_S: Final = 15.0

#: Reads one Secret: ``(namespace, name)`` to its keys and their text. Raises
#: :class:`KubeError`, with status 404 when the Secret does not exist.
SecretFetch = Callable[[str, str], Awaitable[dict[str, str]]]

_Slot = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Entry:
    # Kept out of the repr: a logged or printed entry must not show the URL.
    data: dict[str, str] = field(repr=False)
    read_at_s: float


def api_fetch(api: client.ApiClient) -> SecretFetch:
    """The :data:`SecretFetch` of the operator: a ``get`` on the API server."""
    core = client.CoreV1Api(api)

    async def fetch(namespace: str, name: str) -> dict[str, str]:
        secret = await call_api(
            core.read_namespaced_secret(name, namespace),
            action=f"reading Secret {namespace}/{name}",
        )
        data: dict[str, str] = {}
        for key, encoded in (secret.data or {}).items():
            try:
                data[key] = base64.b64decode(encoded).decode()
            except (binascii.Error, UnicodeDecodeError):
                # Skips a binary key: no URL or PEM can be in it; naming it is enough.
                continue
        return data

    return fetch


class SecretReader:
    """Cached reads of Secrets; concurrent readers of one Secret share one request.

    The reader owns the background refreshes it starts; :meth:`aclose` ends them.
    """

    def __init__(
        self,
        fetch: SecretFetch,
        *,
        refresh_s: float = DEFAULT_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._refresh_s = refresh_s
        self._clock = clock
        self._entries: dict[_Slot, _Entry] = {}
        self._pending: dict[_Slot, asyncio.Future[_Entry]] = {}
        self._refreshing: dict[_Slot, asyncio.Task[None]] = {}
        self._closed = False

    async def value(self, *, namespace: str, name: str, key: str, field: str) -> str:
        """The text under ``key`` of Secret ``namespace/name``; ``field`` names the spec
        field that points at it, for the error message. Raises :class:`KubeError`."""
        entry = await self._entry(namespace=namespace, name=name, field=field)
        if key not in entry.data:
            raise KubeError(
                f"Secret {namespace}/{name} (from {field}) has no key {key!r}; "
                f"it has: {', '.join(sorted(entry.data)) or 'no keys'}",
                temporary=False,
                reason="SecretKeyMissing",
            )
        return entry.data[key]

    def expire(self, *, namespace: str, name: str) -> None:
        """Make a Secret due for a read at its next use (Redis refused what it holds).

        The value held is still served while that read runs, as for any refresh.
        """
        slot = (namespace, name)
        entry = self._entries.get(slot)
        if entry is not None:
            self._entries[slot] = _Entry(data=entry.data, read_at_s=-math.inf)

    async def aclose(self) -> None:
        """End the refreshes in flight; later reads are served without starting any."""
        self._closed = True
        tasks = list(self._refreshing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._refreshing.clear()

    async def _entry(self, *, namespace: str, name: str, field: str) -> _Entry:
        slot = (namespace, name)
        entry = self._entries.get(slot)
        if entry is not None:
            due = self._clock() - entry.read_at_s >= self._refresh_s
            if due and slot not in self._refreshing and not self._closed:
                self._refreshing[slot] = asyncio.create_task(
                    self._refresh(slot, field=field, held=entry),
                    name=f"refresh Secret {namespace}/{name}",
                )
            return entry
        pending = self._pending.get(slot)
        if pending is not None:
            return await asyncio.shield(pending)

        pending = asyncio.get_running_loop().create_future()
        self._pending[slot] = pending
        try:
            fresh = await self._read(slot, field=field)
        except KubeError as exc:
            # Gives up for now: every waiter gets the error; the next poll asks again.
            pending.set_exception(exc)
            pending.exception()  # marks it retrieved when nobody else waits
            raise
        finally:
            del self._pending[slot]
        self._entries[slot] = fresh
        pending.set_result(fresh)
        return fresh

    async def _refresh(self, slot: _Slot, *, field: str, held: _Entry) -> None:
        """Replace ``held`` by a fresh read, unless another read replaced it meanwhile."""
        try:
            fresh = await self._read(slot, field=field)
        except KubeError as exc:
            # Holds on a passing failure: the value held stays in use for another period.
            # Gives up on it when the Secret is gone or access is denied: the next reader
            # waits for a read of its own and reports why it failed.
            logger.debug("refreshing Secret %s/%s failed: %s", *slot, exc)
            if self._entries.get(slot) is held:
                if exc.temporary:
                    self._entries[slot] = _Entry(data=held.data, read_at_s=self._clock())
                else:
                    del self._entries[slot]
        else:
            if self._entries.get(slot) in (held, None):
                self._entries[slot] = fresh
        finally:
            self._refreshing.pop(slot, None)

    async def _read(self, slot: _Slot, *, field: str) -> _Entry:
        namespace, name = slot
        try:
            data = await self._fetch(namespace, name)
        except KubeError as exc:
            if exc.status != 404:
                raise
            raise KubeError(
                f"Secret {namespace}/{name} named by {field} does not exist",
                temporary=False,
                reason="SecretMissing",
                status=404,
            ) from None
        return _Entry(data=data, read_at_s=self._clock())
