"""URLs, credentials, timeouts and failures: the probe's errors never show the password."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis.asyncio

from taskiq_fleet.probes import BrokerKind, ProbeError, QueueRef, RedisProbe
from taskiq_fleet.redis_server import free_port
from tests.fixtures.redis import RedisHandle

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-Passw0rd"
QUEUE = QueueRef(kind=BrokerKind.LIST, name="orders")


def _assert_no_secret(*texts: object) -> None:
    for text in texts:
        assert SECRET not in str(text)
        assert SECRET not in repr(text)


async def _failure(probe: RedisProbe) -> ProbeError:
    try:
        with pytest.raises(ProbeError) as caught:
            await probe.read([QUEUE])
    finally:
        await probe.aclose()
    return caught.value


@pytest.fixture
async def acl_server(own_redis_server: RedisHandle) -> RedisHandle:
    """A private server with an ACL user ``fleet`` who may read and write everything."""
    admin = redis.asyncio.Redis.from_url(own_redis_server.url)
    await admin.acl_setuser(
        "fleet", enabled=True, passwords=[f"+{SECRET}"], keys=["*"], commands=["+@all"]
    )
    await admin.select(3)
    await admin.lpush("orders", "a", "b", "c")
    await admin.aclose()
    return own_redis_server


def _url(server: RedisHandle, *, user: str = "fleet", password: str = SECRET, db: int = 3) -> str:
    return server.url.replace("redis://", f"redis://{user}:{password}@").rsplit("/", 1)[0] + (
        f"/{db}"
    )


async def test_an_acl_user_with_a_password_reads_the_named_database(
    acl_server: RedisHandle,
) -> None:
    probe = RedisProbe(_url(acl_server))
    try:
        reading = await probe.read([QUEUE])
    finally:
        await probe.aclose()
    assert reading.waiting == 3


async def test_the_db_index_may_come_as_a_query_parameter(acl_server: RedisHandle) -> None:
    url = _url(acl_server, db=0).rsplit("/", 1)[0] + "/?db=3"
    probe = RedisProbe(url)
    try:
        assert (await probe.read([QUEUE])).waiting == 3
    finally:
        await probe.aclose()


async def test_the_password_may_come_as_a_query_parameter(acl_server: RedisHandle) -> None:
    url = acl_server.url.replace("redis://", "redis://fleet@").rsplit("/", 1)[0]
    probe = RedisProbe(f"{url}/3?password={SECRET}")
    try:
        assert (await probe.read([QUEUE])).waiting == 3
        assert SECRET not in probe.url + repr(probe)
    finally:
        await probe.aclose()


async def test_a_wrong_password_is_a_permanent_error_without_the_password(
    acl_server: RedisHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    probe = RedisProbe(_url(acl_server, password=SECRET + "-wrong"))
    error = await _failure(probe)
    assert not error.temporary
    assert "refused the credentials" in str(error)
    _assert_no_secret(error, error.args, error.__cause__, error.__context__, caplog.text)


async def test_a_refused_connection_is_a_temporary_error_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"redis://fleet:{SECRET}@127.0.0.1:{free_port()}/0"
    probe = RedisProbe(url, connect_timeout_s=1)
    _assert_no_secret(probe)
    error = await _failure(probe)
    assert error.temporary
    assert "fleet:***@127.0.0.1" in str(error)
    _assert_no_secret(error, error.args, error.__cause__, error.__context__, caplog.text)


async def test_a_server_that_never_answers_times_out_within_the_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = RedisProbe(
        f"redis://:{SECRET}@127.0.0.1:{port}/0", connect_timeout_s=0.3, read_timeout_s=0.3
    )
    started = time.monotonic()
    try:
        error = await _failure(probe)
    finally:
        server.close()
        await server.wait_closed()
    assert time.monotonic() - started < 2.5
    assert error.temporary
    _assert_no_secret(error)


def test_a_malformed_url_is_a_permanent_error_without_the_password() -> None:
    with pytest.raises(ProbeError) as caught:
        RedisProbe(f"http://fleet:{SECRET}@host/0")
    assert not caught.value.temporary
    assert "must start with redis:// or rediss://" in str(caught.value)
    _assert_no_secret(caught.value)


def test_the_probe_shows_its_url_with_the_password_hidden() -> None:
    probe = RedisProbe(f"rediss://fleet:{SECRET}@redis.example:6380/2")
    assert repr(probe) == "RedisProbe('rediss://fleet:***@redis.example:6380/2')"
    assert probe.url == "rediss://fleet:***@redis.example:6380/2"
    _assert_no_secret(probe, probe.url)


async def test_a_probe_reads_again_after_the_server_restarts(
    own_redis_server: RedisHandle,
) -> None:
    probe = RedisProbe(own_redis_server.url, connect_timeout_s=0.5, read_timeout_s=0.5)
    try:
        assert (await probe.read([QUEUE])).waiting == 0
        own_redis_server.stop()
        with pytest.raises(ProbeError) as caught:
            await probe.read([QUEUE])
        assert caught.value.temporary
        own_redis_server.start()
        assert (await probe.read([QUEUE])).waiting == 0
    finally:
        await probe.aclose()


async def test_a_closed_probe_refuses_to_read(redis_url: str) -> None:
    probe = RedisProbe(redis_url)
    await probe.aclose()
    with pytest.raises(ProbeError, match="is closed"):
        await probe.read([QUEUE])


async def test_a_user_not_allowed_to_read_a_queue_gets_a_permanent_error(
    acl_server: RedisHandle,
) -> None:
    admin = redis.asyncio.Redis.from_url(acl_server.url)
    await admin.acl_setuser(
        "narrow",
        enabled=True,
        passwords=[f"+{SECRET}"],
        keys=["other:*"],
        commands=["+@all"],
    )
    await admin.aclose()
    probe = RedisProbe(_url(acl_server, user="narrow"))
    error = await _failure(probe)
    assert not error.temporary
    assert "orders" in str(error)
    _assert_no_secret(error)
