"""Reading the Redis URL (and CA) of a pool from its Secret, without ever showing it.

Secrets are read with ``get`` (never ``list`` or ``watch``, which would hand the operator
every Secret of a namespace) and kept for ``refresh_s``: a rotated password reaches the
probes within that time, and pools sharing a Secret share one read.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from kubernetes_asyncio import client

from taskiq_fleet.kube.errors import KubeError, call_api

DEFAULT_REFRESH_S: Final = 15.0


@dataclass(frozen=True, slots=True)
class _Entry:
    data: dict[str, str]
    read_at_s: float


class SecretReader:
    """Cached ``get`` of Secrets; concurrent readers of one Secret share one request."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        refresh_s: float = DEFAULT_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._core = client.CoreV1Api(api)
        self._refresh_s = refresh_s
        self._clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[_Entry]] = {}

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

    def invalidate(self, *, namespace: str, name: str) -> None:
        """Forget a Secret, so the next read asks the API (after a refused password)."""
        self._entries.pop((namespace, name), None)

    async def _entry(self, *, namespace: str, name: str, field: str) -> _Entry:
        slot = (namespace, name)
        entry = self._entries.get(slot)
        if entry is not None and self._clock() - entry.read_at_s < self._refresh_s:
            return entry
        pending = self._pending.get(slot)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._pending[slot] = pending
            try:
                fresh = await self._read(namespace=namespace, name=name, field=field)
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
        return await asyncio.shield(pending)

    async def _read(self, *, namespace: str, name: str, field: str) -> _Entry:
        try:
            secret = await call_api(
                self._core.read_namespaced_secret(name, namespace),
                action=f"reading Secret {namespace}/{name}",
            )
        except KubeError as exc:
            if exc.status != 404:
                raise
            raise KubeError(
                f"Secret {namespace}/{name} named by {field} does not exist",
                temporary=False,
                reason="SecretMissing",
                status=404,
            ) from None
        data: dict[str, str] = {}
        for key, encoded in (secret.data or {}).items():
            try:
                data[key] = base64.b64decode(encoded).decode()
            except (binascii.Error, UnicodeDecodeError):
                # Skips a binary key: no URL or PEM can be in it; naming it is enough.
                continue
        return _Entry(data=data, read_at_s=self._clock())
