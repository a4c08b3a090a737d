"""Secrets are read once per refresh period, and a stalled API server stalls no pool.

The reader's seam is its fetch function: here a scripted one whose answers are values,
API errors or a stall, on a fake clock. The last tests read real Secrets from the
test cluster's API server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client

from taskiq_fleet.kube.client import connect
from taskiq_fleet.kube.errors import KubeError
from taskiq_fleet.kube.secrets import SecretReader, api_fetch
from tests.fixtures.kube import KubeCluster
from tests.operator.conftest import Identity

FIELD = "spec.broker.redis.urlSecretRef"
PASSWORD = "s3cret-pw"


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


class ScriptedFetch:
    """The API as a script: each read takes the next answer, a URL or an error."""

    def __init__(self, *answers: str | KubeError) -> None:
        self.answers = list(answers)
        self.reads = 0
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def __call__(self, namespace: str, name: str) -> dict[str, str]:
        self.reads += 1
        await self.flowing.wait()
        answer = self.answers.pop(0)
        if isinstance(answer, KubeError):
            raise answer
        return {"url": answer}


def reader_of(fetch: ScriptedFetch, clock: FakeClock | None = None) -> SecretReader:
    return SecretReader(fetch, refresh_s=10.0, clock=clock or FakeClock())


async def settle() -> None:
    """Let background refreshes run to their end."""
    for _ in range(5):
        await asyncio.sleep(0)


async def read(reader: SecretReader) -> str:
    return await reader.value(namespace="shop", name="redis", key="url", field=FIELD)


def unreachable() -> KubeError:
    return KubeError("no answer; retrying", temporary=True, reason="ApiUnreachable")


def not_found() -> KubeError:
    return KubeError("reading Secret shop/redis: not found", temporary=True, reason="NotFound",
                     status=404)  # fmt: skip


async def test_pools_sharing_a_secret_share_one_read() -> None:
    fetch = ScriptedFetch("redis://a")
    reader = reader_of(fetch)

    values = await asyncio.gather(*(read(reader) for _ in range(20)))

    assert set(values) == {"redis://a"}
    assert fetch.reads == 1


async def test_a_value_is_reused_until_its_refresh_period_ends() -> None:
    clock = FakeClock()
    fetch = ScriptedFetch("redis://a", "redis://b")
    reader = reader_of(fetch, clock)
    await read(reader)

    clock.now_s += 9.9
    await read(reader)
    await settle()

    assert fetch.reads == 1


async def test_a_due_value_is_served_while_a_stalled_refresh_runs() -> None:
    clock = FakeClock()
    fetch = ScriptedFetch("redis://old", "redis://new")
    reader = reader_of(fetch, clock)
    assert await read(reader) == "redis://old"

    clock.now_s += 11
    fetch.flowing.clear()
    assert await asyncio.wait_for(read(reader), timeout=1) == "redis://old"
    assert await asyncio.wait_for(read(reader), timeout=1) == "redis://old"
    fetch.flowing.set()
    await settle()

    assert await read(reader) == "redis://new"
    assert fetch.reads == 2


async def test_an_unreachable_api_keeps_the_last_value_for_another_period() -> None:
    clock = FakeClock()
    fetch = ScriptedFetch("redis://a", unreachable(), "redis://b")
    reader = reader_of(fetch, clock)
    await read(reader)

    clock.now_s += 11
    await read(reader)
    await settle()
    clock.now_s += 5
    assert await read(reader) == "redis://a"
    await settle()
    assert fetch.reads == 2

    clock.now_s += 6
    await read(reader)
    await settle()
    assert await read(reader) == "redis://b"


async def test_a_deleted_secret_is_reported_at_the_next_read_naming_the_field() -> None:
    clock = FakeClock()
    fetch = ScriptedFetch("redis://a", not_found(), not_found())
    reader = reader_of(fetch, clock)
    await read(reader)

    clock.now_s += 11
    await read(reader)
    await settle()

    with pytest.raises(KubeError) as missing:
        await read(reader)
    assert missing.value.reason == "SecretMissing"
    assert str(missing.value) == f"Secret shop/redis named by {FIELD} does not exist"


async def test_a_missing_key_names_the_field_and_the_keys_there_are() -> None:
    reader = reader_of(ScriptedFetch("redis://a"))

    with pytest.raises(KubeError) as missing:
        await reader.value(namespace="shop", name="redis", key="uri", field=FIELD)

    assert missing.value.reason == "SecretKeyMissing"
    assert FIELD in str(missing.value)
    assert "it has: url" in str(missing.value)
    assert "redis://a" not in str(missing.value)


async def test_an_expired_secret_is_read_again_at_its_next_use() -> None:
    fetch = ScriptedFetch("redis://old", "redis://new")
    reader = reader_of(fetch)
    await read(reader)

    reader.expire(namespace="shop", name="redis")

    assert await read(reader) == "redis://old"
    await settle()
    assert await read(reader) == "redis://new"


async def test_closing_ends_a_stalled_refresh_and_starts_no_other() -> None:
    clock = FakeClock()
    fetch = ScriptedFetch("redis://a", "redis://b", "redis://c")
    reader = reader_of(fetch, clock)
    await read(reader)
    clock.now_s += 11
    fetch.flowing.clear()
    await read(reader)
    await settle()
    assert fetch.reads == 2

    await asyncio.wait_for(reader.aclose(), timeout=1)
    fetch.flowing.set()
    clock.now_s += 11

    assert await read(reader) == "redis://a"
    await settle()
    assert fetch.reads == 2
    assert not [task for task in asyncio.all_tasks() if "Secret" in task.get_name()]


async def test_failed_refreshes_log_no_value(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="taskiq_fleet")
    clock = FakeClock()
    url = f"redis://fleet:{PASSWORD}@redis:6379/0"
    fetch = ScriptedFetch(url, unreachable(), not_found(), not_found())
    reader = reader_of(fetch, clock)
    await read(reader)

    for _ in range(2):
        clock.now_s += 11
        await read(reader)
        await settle()
    with pytest.raises(KubeError) as missing:
        await read(reader)

    assert "refreshing Secret shop/redis failed" in caplog.text
    assert PASSWORD not in caplog.text
    assert PASSWORD not in str(missing.value)


# --- against the test cluster's API server ----------------------------------------------


@pytest.fixture
async def admin_api(kube: KubeCluster) -> AsyncIterator[client.ApiClient]:
    api = await connect(kubeconfig=str(kube.kubeconfig))
    yield api
    await api.close()


@pytest.mark.e2e
async def test_real_secrets_are_decoded_and_followed_as_they_change(
    kube: KubeCluster, fleet_identity: Identity, admin_api: client.ApiClient
) -> None:
    namespace = fleet_identity.pools_namespace
    url = f"redis://fleet:{PASSWORD}@redis:6379/0"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "reader-redis", "namespace": namespace},
        "data": {
            "url": base64.b64encode(url.encode()).decode(),
            "blob": base64.b64encode(b"\xff\xfe\x00").decode(),
        },
    }
    kube.kubectl("apply", "-f", "-", input=json.dumps(secret))
    clock = FakeClock()
    reader = SecretReader(api_fetch(admin_api), refresh_s=10.0, clock=clock)
    try:
        value = await reader.value(namespace=namespace, name="reader-redis", key="url",
                                   field=FIELD)  # fmt: skip
        assert value == url
        with pytest.raises(KubeError, match=r"it has: url$"):
            await reader.value(namespace=namespace, name="reader-redis", key="blob", field=FIELD)

        moved = base64.b64encode(url.replace("/0", "/1").encode()).decode()
        kube.kubectl("patch", "secret", "reader-redis", "-n", namespace,
                     "-p", json.dumps({"data": {"url": moved}}))  # fmt: skip
        clock.now_s += 11
        await reader.value(namespace=namespace, name="reader-redis", key="url", field=FIELD)
        for _ in range(100):
            await asyncio.sleep(0.05)
            value = await reader.value(
                namespace=namespace, name="reader-redis", key="url", field=FIELD
            )
            if value.endswith("/1"):
                break
        assert value == url.replace("/0", "/1")
    finally:
        await reader.aclose()
        kube.kubectl("delete", "secret", "reader-redis", "-n", namespace, "--ignore-not-found")


@pytest.mark.e2e
async def test_a_real_missing_secret_names_the_pool_field(
    fleet_identity: Identity, admin_api: client.ApiClient
) -> None:
    reader = SecretReader(api_fetch(admin_api))

    with pytest.raises(KubeError) as missing:
        await reader.value(
            namespace=fleet_identity.pools_namespace, name="no-such-secret", key="url", field=FIELD
        )

    assert missing.value.reason == "SecretMissing"
    assert missing.value.temporary is False
    assert FIELD in str(missing.value)
