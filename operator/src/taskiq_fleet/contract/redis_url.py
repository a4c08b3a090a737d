"""Redis URLs as both sides accept them, and how they are shown to people.

Accepted: ``redis://`` and ``rediss://`` (TLS), an optional ACL user and password, a db
index in the path (``/2``) or as ``?db=2``. A URL may carry a password, so it is never
printed as given: :func:`redact` is what goes into a log line, an error, a status or
an Event, and :class:`RedisURL` keeps the secret out of its ``repr``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

SCHEMES = ("redis", "rediss")
#: redis-py also takes the password as a query parameter.
_PASSWORD_QUERY = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


class InvalidRedisURLError(ValueError):
    """A Redis URL that cannot be used; the message never contains the password."""


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``; safe to log, even when malformed.

    Read from the text itself, not from a URL parser: a password with an unescaped
    ``/``, ``?`` or ``#`` splits the URL in the wrong place, and a parser would then
    see no password at all and hand the URL back whole.
    """
    if "://" not in url:
        # Not a URL at all: perhaps a bare password put where the URL belongs.
        return "<not a URL>"
    userinfo = _userinfo(url)
    shown = url
    if userinfo is not None:
        prefix, info, rest = userinfo
        user, colon, _password = info.partition(":")
        shown = f"{prefix}{user}:***@{rest}" if colon else url
    return _PASSWORD_QUERY.sub(r"\1***", shown)


def _userinfo(url: str) -> tuple[str, str, str] | None:
    """``(scheme://, user[:password], the rest)``, split at the last ``@``; or None."""
    scheme, sep, tail = url.partition("://")
    at = tail.rfind("@")
    if not sep or at < 0:
        return None
    return scheme + sep, tail[:at], tail[at + 1 :]


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
        userinfo = _userinfo(url.strip())
        if userinfo is not None and any(ch in userinfo[1] for ch in "/?#"):
            raise InvalidRedisURLError(
                f"{what} {shown!r}: its user or password holds '/', '?' or '#'; "
                "percent-encode them (%2F, %3F, %23)"
            )
        try:
            parts = urlsplit(url.strip())
            port = parts.port or 6379
        except ValueError as exc:
            # Gives up: the caller reports the object and field; nothing can be guessed.
            raise InvalidRedisURLError(f"{what} {shown!r} is not a valid URL: {exc}") from None
        if parts.scheme not in SCHEMES:
            given = f"{parts.scheme}://" if parts.scheme else "no scheme"
            raise InvalidRedisURLError(
                f"{what} {shown!r} must start with redis:// or rediss://, not {given}"
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
