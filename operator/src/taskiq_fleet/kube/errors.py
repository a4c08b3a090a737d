"""API failures, sorted into the ones worth retrying and the ones that need a person."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Final, TypeVar

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from taskiq_fleet.control import TargetError

T = TypeVar("T")

#: Longest wait for one API request. The client's own default is no limit at all, which
#: would let a vanished API server stall a pool's loop for good.
REQUEST_TIMEOUT_S: Final = 15.0

#: HTTP statuses that pass by themselves: conflicts, throttling, a server restarting.
_TEMPORARY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})

#: Exceptions of the transport: the API server did not answer or went away.
TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


class KubeError(TargetError):
    """A Kubernetes API call that failed.

    ``reason`` is a CamelCase word for a status condition; ``status`` the HTTP status
    (0 when the server was not reached). The message names the object and what the
    operator does next; it never carries a token or a Secret's value.
    """

    def __init__(self, message: str, *, temporary: bool, reason: str, status: int = 0) -> None:
        super().__init__(message, temporary=temporary)
        self.reason = reason
        self.status = status


async def call_api(request: Awaitable[T], *, action: str) -> T:
    """Await one API request within ``REQUEST_TIMEOUT_S``; failures become :class:`KubeError`.

    ``action`` says what was attempted ("scaling Deployment ns/name to 3"), for the message.
    """
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            return await request
    except (ApiException, *TRANSPORT_ERRORS) as exc:
        # Gives up on this request: the caller decides whether the next poll retries.
        raise api_error(exc, action=action) from None


def api_error(exc: BaseException, *, action: str) -> KubeError:
    """Turn a failed call into a :class:`KubeError`; ``action`` says what was attempted."""
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        detail = _server_message(exc)
        if status == 404:
            return KubeError(f"{action}: not found", temporary=True, reason="NotFound", status=404)
        if status in (401, 403):
            return KubeError(
                f"{action}: access denied ({detail}); the operator's RBAC rules must allow it",
                temporary=False,
                reason="Forbidden",
                status=status,
            )
        if status == 422:
            return KubeError(
                f"{action}: refused by the API server: {detail}",
                temporary=False,
                reason="Invalid",
                status=status,
            )
        temporary = status in _TEMPORARY_STATUSES
        then = "retrying" if temporary else "giving up until the pool changes"
        return KubeError(
            f"{action}: HTTP {status} ({detail}); {then}",
            temporary=temporary,
            reason="ApiError",
            status=status,
        )
    kind = type(exc).__name__
    return KubeError(
        f"{action}: the API server did not answer ({kind}); retrying",
        temporary=True,
        reason="ApiUnreachable",
    )


def _server_message(exc: ApiException) -> str:
    """The API server's own explanation (a Status object's message), else the reason."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        # Not a Status object (a proxy's HTML page, an empty body): the reason phrase will do.
        return str(exc.reason or "no detail")
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.reason or "no detail")
