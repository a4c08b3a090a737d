"""The API server out of the operator's reach for a while: replicas held, then caught up.

The operator talks to the API server through a TCP proxy that the test cuts: its
watches break, its scale writes and status patches are refused, and new connections
fail, as when the API server restarts or the network between them goes away. The rest
of the cluster carries on. Meanwhile more work arrives. The operator must keep
running, leave the replicas where they are, and once the API server is back, set the
replicas the queue needs in one step, with no flapping on the way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from taskiq_fleet.contract import keys
from tests.fixtures.kube import KubeCluster
from tests.fixtures.tcp_proxy import TcpProxy
from tests.operator.conftest import OPERATOR_NAMESPACE, FleetRedis, Identity
from tests.operator.harness import (
    OperatorProcess,
    condition,
    denied_lines,
    ensure_namespace,
    get_json,
    install_identity,
    pool_manifest,
    push_tasks,
    render_identity,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

NAMESPACE = "fleet-e2e-outage"
OUTAGE_S = 15


def _through_proxy(kubeconfig: Path) -> tuple[Path, TcpProxy]:
    """A copy of ``kubeconfig`` whose server is a proxy to the real one."""
    config = json.loads(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    server = urlsplit(cluster["server"])
    assert server.hostname is not None
    assert server.port is not None
    proxy = TcpProxy(upstream_host=server.hostname, upstream_port=server.port).start()
    if server.hostname not in {"127.0.0.1", "localhost"}:
        # The certificate names the server, not the proxy.
        cluster["tls-server-name"] = server.hostname
    cluster["server"] = f"https://127.0.0.1:{proxy.port}"
    path = kubeconfig.with_name(f"proxied-{kubeconfig.name}")
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path, proxy


@pytest.fixture(scope="module")
def proxied_operator(
    kube: KubeCluster, fleet_identity: Identity, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OperatorProcess, TcpProxy]]:
    ensure_namespace(kube, NAMESPACE)
    objects = [
        obj
        for obj in render_identity(
            kube, release="outage", namespace=OPERATOR_NAMESPACE, watch=[NAMESPACE]
        )
        if obj["kind"] != "CustomResourceDefinition"
    ]
    install_identity(kube, objects)
    account = next(obj for obj in objects if obj["kind"] == "ServiceAccount")["metadata"]["name"]
    kubeconfig, proxy = _through_proxy(
        kube.service_account_kubeconfig(namespace=OPERATOR_NAMESPACE, name=account)
    )
    process = OperatorProcess(
        kube=kube,
        kubeconfig=kubeconfig,
        namespaces=(NAMESPACE,),
        log_path=tmp_path_factory.mktemp("outage-operator") / "operator.log",
        extra_args=("--log-format=json", "--status-figures-interval=1"),
    )
    try:
        process.start()
        yield process, proxy
        # The pools go while their operator runs and reaches the API: it holds their finalizer.
        if not proxy.listening:
            proxy.restore()
        kube.kubectl("delete", keys.PLURAL, "--all", "-n", NAMESPACE, "--wait=true", timeout_s=60)
    finally:
        process.stop()
        proxy.close()
        kube.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
        listed = {"apiVersion": "v1", "kind": "List", "items": objects}
        kube.kubectl("delete", "-f", "-", "--ignore-not-found", input=json.dumps(listed))
    denied = denied_lines(process.log())
    assert denied == [], "the chart's RBAC refused the operator:\n" + "\n".join(denied[:10])


def _replicas(kube: KubeCluster) -> int:
    deployment = get_json(kube, "deployment", "outage", "-n", NAMESPACE)
    assert deployment is not None, "the pool's Deployment is gone"
    return int(deployment["spec"]["replicas"])


async def test_replicas_hold_while_the_api_server_is_unreachable_then_catch_up_once(
    kube: KubeCluster, proxied_operator: tuple[OperatorProcess, TcpProxy], fleet_redis: FleetRedis
) -> None:
    operator, proxy = proxied_operator
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "outage-redis", "namespace": NAMESPACE},
        "stringData": {"url": fleet_redis.fleet_url()},
    }
    kube.kubectl("apply", "-f", "-", input=json.dumps(secret))
    manifest = pool_manifest("outage", namespace=NAMESPACE, queue="outage-q", secret="outage-redis")
    kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    await push_tasks(fleet_redis.admin_url, queue="outage-q", count=25)
    await wait_for(
        "3 replicas for 25 tasks", lambda: _replicas_or_none(kube) == 3, timeout_s=30,
        operator=operator,
    )  # fmt: skip

    # Out of reach: the queue grows to 65 tasks, which would need 7 replicas.
    proxy.cut()
    await push_tasks(fleet_redis.admin_url, queue="outage-q", count=40)
    seen_during = _sample_replicas(kube, seconds=OUTAGE_S)
    assert operator.process is not None
    assert operator.process.poll() is None, f"the operator exited:\n{operator.tail()}"
    assert operator.healthy(), "the liveness probe failed: a kubelet would restart it"
    assert "the API server did not answer" in operator.log()
    assert seen_during == [3], "replicas changed while the operator could not see them"

    # Back: one step to what the queue needs, and nothing in between or after.
    proxy.restore()
    await wait_for(
        "7 replicas once the API server is back", lambda: _replicas_or_none(kube) == 7,
        timeout_s=60, operator=operator,
    )  # fmt: skip
    seen_after = _sample_replicas(kube, seconds=5)
    assert seen_after == [7], f"replicas moved after recovery: {seen_after}"
    pool = await wait_for(
        "the pool's status written again after the outage",
        lambda: (
            (body := get_json(kube, keys.PLURAL, "outage", "-n", NAMESPACE))
            and (body.get("status") or {}).get("desiredReplicas") == 7
            and body
        ),
        timeout_s=30,
        operator=operator,
    )
    assert condition(pool, "BrokerReachable").get("status") == "True"
    assert operator.process.poll() is None
    assert fleet_redis.password not in operator.log()


def _replicas_or_none(kube: KubeCluster) -> int | None:
    deployment = get_json(kube, "deployment", "outage", "-n", NAMESPACE)
    return None if deployment is None else int(deployment["spec"]["replicas"])


def _sample_replicas(kube: KubeCluster, *, seconds: float) -> list[int]:
    """The distinct replica counts the Deployment showed over ``seconds``, in order."""
    seen: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = _replicas(kube)
        if not seen or seen[-1] != value:
            seen.append(value)
        time.sleep(0.5)
    return seen
