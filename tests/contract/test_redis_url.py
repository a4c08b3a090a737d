"""Redis URLs: what is accepted, and how a URL is shown so that no password leaks."""

from __future__ import annotations

import pytest

from taskiq_fleet.contract.redis_url import InvalidRedisURLError, RedisURL, redact

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://app:{SECRET}@redis:6379/0", "redis://app:***@redis:6379/0"),
        (f"rediss://:{SECRET}@redis/2", "rediss://:***@redis/2"),
        (f"redis://default:ab/{SECRET}@redis:6379/0", "redis://default:***@redis:6379/0"),
        (f"redis://default:ab#{SECRET}@redis/0", "redis://default:***@redis/0"),
        (f"redis://default:ab?{SECRET}@redis/0", "redis://default:***@redis/0"),
        (f"redis://redis:6379/0?password={SECRET}&db=1", "redis://redis:6379/0?password=***&db=1"),
        ("redis://app@redis:6379/0", "redis://app@redis:6379/0"),
        (SECRET, "<not a URL>"),
    ],
)
def test_a_shown_url_never_holds_the_password(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        f"redis://default:ab/{SECRET}@redis:6379/0",
        f"redis://default:ab#{SECRET}@redis/0",
        f"redis://default:{SECRET}@redis:6379/one",
        f"http://default:{SECRET}@redis:6379/0",
        SECRET,
        f"redis://default:{SECRET}@:6379/0",
    ],
)
def test_a_refused_url_is_named_without_its_password(url: str) -> None:
    with pytest.raises(InvalidRedisURLError) as caught:
        RedisURL.parse(url, what="Secret shop/redis key url")

    message = str(caught.value)
    assert message.startswith("Secret shop/redis key url ")
    assert SECRET not in message
    assert SECRET not in repr(caught.value)


def test_a_reserved_character_in_the_password_asks_for_percent_encoding() -> None:
    with pytest.raises(InvalidRedisURLError, match="percent-encode them"):
        RedisURL.parse(f"redis://default:ab/{SECRET}@redis:6379/0")

    encoded = RedisURL.parse(f"redis://default:ab%2F{SECRET}@redis:6379/3")
    assert (encoded.host, encoded.port, encoded.db, encoded.username) == (
        "redis",
        6379,
        3,
        "default",
    )
    assert SECRET not in str(encoded)
    assert SECRET not in repr(encoded)
