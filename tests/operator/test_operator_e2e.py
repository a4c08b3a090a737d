"""The operator end to end: a real API server, kwok Pods, real Redis, the chart's RBAC.

Worker Pods run on kwok Nodes, where no container really starts; what their fleet
middleware would report is played by publishing real heartbeats for their Pod names.
Pools poll every second and count 5 quiet seconds before going to zero.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis.asyncio

from taskiq_fleet.contract import keys
from tests.fixtures.kube import KubeCluster
from tests.operator.conftest import FleetRedis, Identity
from tests.operator.harness import (
    Heartbeats,
    OperatorProcess,
    condition,
    get_json,
    pool_manifest,
    push_tasks,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

QUIET_S = 5

PoolFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def make_pool(
    kube: KubeCluster, fleet_identity: Identity, fleet_redis: FleetRedis, operator: OperatorProcess
) -> Iterator[PoolFactory]:
    """Create pools (each with a Secret holding its Redis URL); delete them afterwards."""
    namespace = fleet_identity.pools_namespace
    made: list[str] = []

    def make(name: str, *, db: int = 0, url: str | None = None, **options: Any) -> dict[str, Any]:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{name}-redis", "namespace": namespace},
            "stringData": {"url": url or fleet_redis.fleet_url(db=db)},
        }
        manifest = pool_manifest(
            name, namespace=namespace, queue=f"{name}-q", secret=f"{name}-redis", **options
        )
        kube.kubectl("apply", "-f", "-", input=json.dumps(secret))
        kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        made.append(name)
        return manifest

    yield make
    for name in made:
        kube.kubectl("delete", f"{keys.PLURAL}/{name}", "-n", namespace, "--wait=true",
                     "--ignore-not-found", timeout_s=60)  # fmt: skip
        kube.kubectl("delete", "secret", f"{name}-redis", "-n", namespace, "--ignore-not-found")


@pytest.fixture
async def redis_admin(fleet_redis: FleetRedis) -> Any:
    client = redis.asyncio.Redis.from_url(fleet_redis.admin_url)
    yield client
    await client.aclose()


def deployment(kube: KubeCluster, namespace: str, name: str) -> dict[str, Any] | None:
    return get_json(kube, "deployment", name, "-n", namespace)


def replicas(kube: KubeCluster, namespace: str, name: str) -> int | None:
    found = deployment(kube, namespace, name)
    return None if found is None else int(found["spec"].get("replicas", 1))


def running_pods(kube: KubeCluster, namespace: str, name: str) -> list[str]:
    listed = get_json(kube, "pods", "-n", namespace, "-l", f"{keys.LABEL_POOL}={name}")
    return sorted(
        pod["metadata"]["name"]
        for pod in (listed or {}).get("items", [])
        if pod["status"].get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")
    )


def pool(kube: KubeCluster, namespace: str, name: str) -> dict[str, Any] | None:
    return get_json(kube, keys.PLURAL, name, "-n", namespace)


async def scaled_to(
    kube: KubeCluster, operator: OperatorProcess, namespace: str, name: str, count: int
) -> None:
    await wait_for(
        f"Deployment {namespace}/{name} at {count} replicas with {count} Pods Running",
        lambda: (
            replicas(kube, namespace, name) == count
            and len(running_pods(kube, namespace, name)) == count
        ),
        timeout_s=30,
        operator=operator,
    )


async def test_a_new_pool_gets_an_owned_deployment_whose_pods_run(
    kube: KubeCluster, operator: OperatorProcess, fleet_identity: Identity, make_pool: PoolFactory
) -> None:
    namespace = fleet_identity.pools_namespace
    make_pool("steady", min_replicas=2)

    await scaled_to(kube, operator, namespace, "steady", 2)

    owned = deployment(kube, namespace, "steady")
    assert owned is not None
    twp = pool(kube, namespace, "steady")
    assert twp is not None
    (owner,) = owned["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == (keys.KIND, twp["metadata"]["uid"])
    pod_spec = owned["spec"]["template"]["spec"]
    assert pod_spec["terminationGracePeriodSeconds"] > 20
    env = {entry["name"]: entry for entry in pod_spec["containers"][0]["env"]}
    assert env[keys.ENV_REDIS_URL]["valueFrom"]["secretKeyRef"] == {
        "name": "steady-redis",
        "key": "url",
    }
    assert env[keys.ENV_CAPACITY]["value"] == "10"
    assert env[keys.ENV_DEFAULT_QUEUE]["value"] == "steady-q"
    await wait_for(
        "status Ready=True and BrokerReachable=True",
        lambda: (
            condition(pool(kube, namespace, "steady"), "Ready").get("status") == "True"
            and condition(pool(kube, namespace, "steady"), "BrokerReachable").get("status")
            == "True"
        ),
        timeout_s=10,
        operator=operator,
    )


async def test_waiting_tasks_raise_replicas_to_the_computed_number(
    kube: KubeCluster,
    operator: OperatorProcess,
    fleet_identity: Identity,
    fleet_redis: FleetRedis,
    make_pool: PoolFactory,
) -> None:
    namespace = fleet_identity.pools_namespace
    make_pool("burst")
    await wait_for("the Deployment", lambda: deployment(kube, namespace, "burst"), timeout_s=15)
    assert replicas(kube, namespace, "burst") == 0

    await push_tasks(fleet_redis.admin_url, queue="burst-q", count=35)

    # ceil(35 waiting / 10 per replica) = 4, and it stays there while the work does.
    await scaled_to(kube, operator, namespace, "burst", 4)
    for _ in range(6):
        await asyncio.sleep(0.5)
        assert replicas(kube, namespace, "burst") == 4
    status = (pool(kube, namespace, "burst") or {}).get("status", {})
    assert status["desiredReplicas"] == 4
    assert status["queueDepth"] == 35


async def test_a_drained_pool_keeps_busy_pods_and_reaches_zero_only_after_the_quiet_period(
    *,
    kube: KubeCluster,
    operator: OperatorProcess,
    fleet_identity: Identity,
    fleet_redis: FleetRedis,
    make_pool: PoolFactory,
    redis_admin: redis.asyncio.Redis,
) -> None:
    namespace = fleet_identity.pools_namespace
    make_pool("drain", quiet_s=QUIET_S)
    await wait_for("the Deployment", lambda: deployment(kube, namespace, "drain"), timeout_s=15)
    await push_tasks(fleet_redis.admin_url, queue="drain-q", count=35)
    await scaled_to(kube, operator, namespace, "drain", 4)
    pods = running_pods(kube, namespace, "drain")
    busy = pods[1:3]

    async with Heartbeats(redis_admin, queue="drain-q") as beats:
        # Two Pods hold 6 tasks each, the queue empties: 12 in flight need 2 replicas,
        # and the ReplicaSet must remove the idle Pods, not the busy ones.
        await beats.set({pod: 6 for pod in busy} | {pod: 0 for pod in pods if pod not in busy})
        await redis_admin.delete("drain-q")
        await scaled_to(kube, operator, namespace, "drain", 2)
        assert running_pods(kube, namespace, "drain") == busy

        # Work in flight keeps its replicas for longer than the quiet period.
        held_until = time.monotonic() + QUIET_S + 2
        while time.monotonic() < held_until:
            assert replicas(kube, namespace, "drain") == 2
            await asyncio.sleep(0.5)

        await beats.set({pod: 0 for pod in busy})
        idle_since = time.monotonic()
        await wait_for(
            "the pool at zero",
            lambda: replicas(kube, namespace, "drain") == 0,
            timeout_s=QUIET_S + 15,
            operator=operator,
        )
        quiet_s = time.monotonic() - idle_since

    # The last poll that saw work may precede the heartbeats' change by one interval.
    assert quiet_s >= QUIET_S - 1, f"reached zero {quiet_s:.1f} s after the work ended"


async def test_the_replicas_hold_while_redis_is_down_and_the_pool_recovers(
    kube: KubeCluster,
    operator: OperatorProcess,
    fleet_identity: Identity,
    fleet_redis: FleetRedis,
    make_pool: PoolFactory,
) -> None:
    namespace = fleet_identity.pools_namespace
    make_pool("outage")
    await wait_for("the Deployment", lambda: deployment(kube, namespace, "outage"), timeout_s=15)
    await push_tasks(fleet_redis.admin_url, queue="outage-q", count=25)
    await scaled_to(kube, operator, namespace, "outage", 3)

    fleet_redis.server.stop()
    try:
        broken = await wait_for(
            "BrokerReachable=False",
            lambda: (
                condition(pool(kube, namespace, "outage"), "BrokerReachable").get("status")
                == "False"
                and condition(pool(kube, namespace, "outage"), "BrokerReachable")
            ),
            timeout_s=15,
            operator=operator,
        )
        assert broken["reason"] == "ProbeFailed"
        assert "Redis at redis://fleet:***@127.0.0.1" in broken["message"]
        assert fleet_redis.password not in json.dumps(pool(kube, namespace, "outage"))
        for _ in range(8):
            assert replicas(kube, namespace, "outage") == 3
            await asyncio.sleep(0.5)
    finally:
        fleet_redis.server.start()
        fleet_redis.grant()

    await wait_for(
        "BrokerReachable=True again",
        lambda: (
            condition(pool(kube, namespace, "outage"), "BrokerReachable").get("status") == "True"
        ),
        timeout_s=20,
        operator=operator,
    )
    events = kube.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    reasons = {
        (event["involvedObject"]["name"], event["reason"]) for event in json.loads(events)["items"]
    }
    assert {("outage", "BrokerUnreachable"), ("outage", "BrokerReachable")} <= reasons
    assert fleet_redis.password not in events


async def test_an_operator_restart_changes_no_replicas(
    kube: KubeCluster,
    operator: OperatorProcess,
    fleet_identity: Identity,
    fleet_redis: FleetRedis,
    make_pool: PoolFactory,
) -> None:
    namespace = fleet_identity.pools_namespace
    make_pool("restart", quiet_s=300)
    make_pool("floor", min_replicas=2)
    await wait_for("the Deployment", lambda: deployment(kube, namespace, "restart"), timeout_s=15)
    await push_tasks(fleet_redis.admin_url, queue="restart-q", count=25)
    await scaled_to(kube, operator, namespace, "restart", 3)
    await scaled_to(kube, operator, namespace, "floor", 2)
    before = {
        name: (found["metadata"]["generation"], found["spec"]["replicas"])
        for name in ("restart", "floor")
        if (found := deployment(kube, namespace, name))
    }

    operator.stop()
    offset = len(operator.log())
    operator.start()
    await wait_for(
        "the restarted operator's polls of both pools",
        lambda: all(
            f'pool="{name}"' in _last_poll_lines(operator) for name in ("restart", "floor")
        ),
        timeout_s=20,
        operator=operator,
    )
    await asyncio.sleep(4)

    after = {
        name: (found["metadata"]["generation"], found["spec"]["replicas"])
        for name in ("restart", "floor")
        if (found := deployment(kube, namespace, name))
    }
    assert after == before
    restarted_log = operator.log()[offset:]
    assert "scale pool=" not in restarted_log
    assert "change=updated" not in restarted_log


def _last_poll_lines(operator: OperatorProcess) -> str:
    return "\n".join(
        line
        for line in operator.metrics().splitlines()
        if line.startswith("taskiq_fleet_pool_last_poll_timestamp_seconds{")
    )


async def test_kubectl_shows_the_pools_columns_and_their_scaling_events(
    kube: KubeCluster,
    operator: OperatorProcess,
    fleet_identity: Identity,
    fleet_redis: FleetRedis,
    make_pool: PoolFactory,
) -> None:
    namespace = fleet_identity.pools_namespace
    make_pool("columns")
    await wait_for("the Deployment", lambda: deployment(kube, namespace, "columns"), timeout_s=15)
    await push_tasks(fleet_redis.admin_url, queue="columns-q", count=15)
    await scaled_to(kube, operator, namespace, "columns", 2)

    def row() -> list[str] | None:
        listed = kube.kubectl("get", "twp", "-n", namespace).stdout.splitlines()
        header, rows = listed[0].split(), [line.split() for line in listed[1:]]
        assert header == ["NAME", "QUEUE", "DEPTH", "IN", "FLIGHT", "DESIRED", "READY", "AGE"]
        found = next((cells for cells in rows if cells[0] == "columns"), None)
        return found if found and found[1:6] == ["columns-q", "15", "0", "2", "2"] else None

    await wait_for("a `kubectl get twp` row for the pool", row, timeout_s=15, operator=operator)
    described = kube.kubectl("describe", "twp", "columns", "-n", namespace).stdout
    assert "ScaledUp" in described
    assert "0 -> 2 replicas" in described
    metrics = operator.metrics()
    desired = f'taskiq_fleet_pool_replicas{{kind="desired",namespace="{namespace}",pool="columns"}}'
    assert f"{desired} 2.0" in metrics


async def test_a_rotated_secret_is_followed(
    kube: KubeCluster,
    operator: OperatorProcess,
    fleet_identity: Identity,
    fleet_redis: FleetRedis,
    make_pool: PoolFactory,
) -> None:
    namespace = fleet_identity.pools_namespace
    make_pool("rotate", db=0)
    await wait_for("the Deployment", lambda: deployment(kube, namespace, "rotate"), timeout_s=15)
    await push_tasks(fleet_redis.server.url.rsplit("/", 1)[0] + "/1", queue="rotate-q", count=15)
    await asyncio.sleep(2)
    assert replicas(kube, namespace, "rotate") == 0

    moved = base64.b64encode(fleet_redis.fleet_url(db=1).encode()).decode()
    patch = json.dumps({"data": {"url": moved}})
    kube.kubectl("patch", "secret", "rotate-redis", "-n", namespace, "-p", patch)

    await scaled_to(kube, operator, namespace, "rotate", 2)


async def test_a_password_rotated_in_redis_and_then_in_the_secret_is_followed(
    *,
    kube: KubeCluster,
    operator: OperatorProcess,
    fleet_identity: Identity,
    fleet_redis: FleetRedis,
    make_pool: PoolFactory,
    redis_admin: redis.asyncio.Redis,
) -> None:
    namespace = fleet_identity.pools_namespace
    port = fleet_redis.server.port
    old, new = f"old-{fleet_redis.password}", f"new-{fleet_redis.password}"
    await redis_admin.execute_command(
        "ACL", "SETUSER", "rotor", "reset", "on", f">{old}", "~*", "&*", "+@all"
    )
    make_pool("rotor", url=f"redis://rotor:{old}@127.0.0.1:{port}/0")
    await wait_for(
        "BrokerReachable=True with the first password",
        lambda: (
            condition(pool(kube, namespace, "rotor"), "BrokerReachable").get("status") == "True"
        ),
        timeout_s=15,
        operator=operator,
    )

    # Redis takes the new password first and drops the sessions of the old one.
    await redis_admin.execute_command("ACL", "SETUSER", "rotor", "resetpass", f">{new}")
    await redis_admin.execute_command("CLIENT", "KILL", "USER", "rotor")
    refused = await wait_for(
        "BrokerReachable=False: the old password refused",
        lambda: (
            condition(pool(kube, namespace, "rotor"), "BrokerReachable").get("reason")
            == "ProbeRefused"
            and condition(pool(kube, namespace, "rotor"), "BrokerReachable")
        ),
        timeout_s=15,
        operator=operator,
    )
    assert "refused the credentials" in refused["message"]

    # Then the Secret: the next polls use the new password, and scale again.
    moved = base64.b64encode(f"redis://rotor:{new}@127.0.0.1:{port}/0".encode()).decode()
    kube.kubectl("patch", "secret", "rotor-redis", "-n", namespace,
                 "-p", json.dumps({"data": {"url": moved}}))  # fmt: skip
    await wait_for(
        "BrokerReachable=True with the new password",
        lambda: (
            condition(pool(kube, namespace, "rotor"), "BrokerReachable").get("status") == "True"
        ),
        timeout_s=15,
        operator=operator,
    )
    await push_tasks(fleet_redis.admin_url, queue="rotor-q", count=15)
    await scaled_to(kube, operator, namespace, "rotor", 2)

    shown = (
        json.dumps(pool(kube, namespace, "rotor"))
        + kube.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
        + operator.log()
    )
    assert old not in shown
    assert new not in shown


async def test_deleting_a_pool_garbage_collects_its_deployment(
    kube: KubeCluster, operator: OperatorProcess, fleet_identity: Identity, make_pool: PoolFactory
) -> None:
    namespace = fleet_identity.pools_namespace
    make_pool("doomed", min_replicas=1)
    await scaled_to(kube, operator, namespace, "doomed", 1)

    kube.kubectl("delete", "twp", "doomed", "-n", namespace, "--wait=true", timeout_s=60)

    await wait_for(
        "the Deployment garbage-collected",
        lambda: deployment(kube, namespace, "doomed") is None,
        timeout_s=30,
        operator=operator,
    )


def test_the_operator_logs_json_lines_and_never_the_password(
    operator: OperatorProcess, fleet_redis: FleetRedis
) -> None:
    lines = [line for line in operator.log().splitlines() if line.strip()]
    assert lines, "the operator logged nothing"
    records = [json.loads(line) for line in lines]
    assert all(isinstance(record, dict) and "message" in record for record in records)
    assert fleet_redis.password not in operator.log()
