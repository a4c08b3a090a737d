"""rediss:// with a private certificate authority, and what happens without it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio

from taskiq_fleet.probes import BrokerKind, ProbeError, QueueRef, RedisProbe
from tests.probes.tls import Authority, TLSFront, make_authority

pytestmark = pytest.mark.integration

SECRET = "tls-Passw0rd"
QUEUE = QueueRef(kind=BrokerKind.LIST, name="orders")


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return make_authority(tmp_path / "ca")


@pytest.fixture
async def tls_front(authority: Authority, redis_url: str) -> AsyncIterator[TLSFront]:
    client = redis.asyncio.Redis.from_url(redis_url)
    await client.lpush("orders", "a", "b")
    await client.aclose()
    port = int(redis_url.rsplit(":", 1)[1].split("/", 1)[0])
    front = TLSFront(authority, backend_port=port)
    await front.start()
    try:
        yield front
    finally:
        await front.stop()


def _url(front: TLSFront, *, host: str = "127.0.0.1", password: str | None = None) -> str:
    credentials = f"default:{password}@" if password else ""
    return f"rediss://{credentials}{host}:{front.port}/0"


async def test_rediss_with_the_private_ca_reads_over_tls(
    tls_front: TLSFront, authority: Authority
) -> None:
    probe = RedisProbe(_url(tls_front), ca_file=str(authority.ca_file))
    try:
        reading = await probe.read([QUEUE])
    finally:
        await probe.aclose()
    assert reading.waiting == 2
    assert tls_front.handshakes == 1


async def test_the_host_name_is_checked_against_the_certificate(
    tls_front: TLSFront, authority: Authority
) -> None:
    probe = RedisProbe(
        _url(tls_front, host="localhost"),
        ca_file=str(authority.ca_file),
    )
    try:
        assert (await probe.read([QUEUE])).waiting == 2
    finally:
        await probe.aclose()


async def test_without_the_private_ca_the_server_is_not_trusted(tls_front: TLSFront) -> None:
    probe = RedisProbe(_url(tls_front, password=SECRET))
    try:
        with pytest.raises(ProbeError) as caught:
            await probe.read([QUEUE])
    finally:
        await probe.aclose()
    assert not caught.value.temporary
    assert "TLS certificate is not trusted" in str(caught.value)
    assert SECRET not in str(caught.value)


async def test_a_different_ca_is_not_trusted_either(tls_front: TLSFront, tmp_path: Path) -> None:
    stranger = make_authority(tmp_path / "other", name="some other CA")
    probe = RedisProbe(_url(tls_front, password=SECRET), ca_file=str(stranger.ca_file))
    try:
        with pytest.raises(ProbeError, match="not trusted") as caught:
            await probe.read([QUEUE])
    finally:
        await probe.aclose()
    assert SECRET not in repr(caught.value)
