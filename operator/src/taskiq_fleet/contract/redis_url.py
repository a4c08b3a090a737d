"""Redis URLs as both sides accept them, and how they are shown to people.

Accepted: ``redis://`` and ``rediss://`` (TLS), an optional ACL user and password, a db
index in the path (``/2``) or as ``?db=2``. A URL may carry a password, so it is never
printed as given: :func:`redact` is what goes into a log line, an error, a status or
an Event, and :class:`RedisURL` keeps the secret out of its ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit, urlunsplit

SCHEMES = ("redis", "rediss")


class InvalidRedisURLError(ValueError):
    """A Redis URL that cannot be used; the message never contains the password."""


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``; safe to log, even when malformed."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        # A URL too broken to split may still hold a secret: show nothing of it.
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True, slots=True)
class RedisURL:
    """A validated Redis URL. ``str()`` and ``repr()`` are redacted; ``secret`` is not."""

    secret: str = field(repr=False)
    tls: bool
    host: str
    port: int
    db: int
    username: str | None

    @classmethod
    def parse(cls, url: str, *, what: str = "Redis URL") -> RedisURL:
        """Validate ``url``; ``what`` names where it came from in the error message."""
        shown = redact(url)
        try:
            parts = urlsplit(url.strip())
            port = parts.port or 6379
        except ValueError as exc:
            # Gives up: the caller reports the object and field; nothing can be guessed.
            raise InvalidRedisURLError(f"{what} {shown!r} is not a valid URL: {exc}") from None
        if parts.scheme not in SCHEMES:
            raise InvalidRedisURLError(
                f"{what} {shown!r} must start with redis:// or rediss://, not {parts.scheme}://"
            )
        if not parts.hostname:
            raise InvalidRedisURLError(f"{what} {shown!r} names no host")
        db = _db_index(parts.path, parse_qs(parts.query).get("db"), what=what, shown=shown)
        return cls(
            secret=url.strip(),
            tls=parts.scheme == "rediss",
            host=parts.hostname,
            port=port,
            db=db,
            username=parts.username or None,
        )

    def __str__(self) -> str:
        return redact(self.secret)


def _db_index(path: str, query_db: list[str] | None, *, what: str, shown: str) -> int:
    raw = path.lstrip("/") or (query_db[0] if query_db else "0")
    if not raw.isdigit():
        raise InvalidRedisURLError(f"{what} {shown!r} has db index {raw!r}; it must be a number")
    return int(raw)
