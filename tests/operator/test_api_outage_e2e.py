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
from tests.operator.conftest import FleetRedis, Identity
from tests.operator.harness import (
    OPERATOR_NAMESPACE,
    OperatorProcess,
    condition,
    denied_lines,
    get_json,
    own_operator,
    pool_manifest,
    push_tasks,
    render_identity,
    wait_for,
    without_crd,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

NAMESPACE = "fleet-e2e-outage"
OUTAGE_S = 15


class _ProxiedKubeconfig:
    """Rewrites a kubeconfig so that its API calls go through a proxy the test can cut."""

    def __init__(self) -> None:
        self.proxy: TcpProxy | None = None

    def __call__(self, kubeconfig: Path) -> Path:
        config = json.loads(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        server = urlsplit(cluster["server"])
        assert server.hostname is not None
        assert server.port is not None
        self.proxy = TcpProxy(upstream_host=server.hostname, upstream_port=server.port).start()
        if server.hostname not in {"127.0.0.1", "localhost"}:
            # The certificate names the server, not the proxy.
            cluster["tls-server-name"] = server.hostname
        cluster["server"] = f"https://127.0.0.1:{self.proxy.port}"
        path = kubeconfig.with_name(f"proxied-{kubeconfig.name}")
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        return path

    def reconnect(self) -> None:
        """Undo a cut the test left behind: the clean-up needs the API server."""
        if self.proxy is not None and not self.proxy.listening:
            self.proxy.restore()

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()


@pytest.fixture(scope="module")
def proxied_operator(
    kube: KubeCluster, fleet_identity: Identity, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OperatorProcess, TcpProxy]]:
    objects = without_crd(
        render_identity(kube, release="outage", namespace=OPERATOR_NAMESPACE, watch=[NAMESPACE])
    )
    route = _ProxiedKubeconfig()
    try:
        with own_operator(
            kube, namespace=NAMESPACE, objects=objects, kubeconfig=route,
            before_cleanup=route.reconnect, log_dir=tmp_path_factory.mktemp("outage"),
        ) as process:  # fmt: skip
            assert route.proxy is not None
            yield process, route.proxy
    finally:
        route.close()
    denied = denied_lines(process.log())
    assert denied == [], "the chart's RBAC refused the operator:\n" + "\n".join(denied[:10])


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
        value = _replicas_or_none(kube)
        assert value is not None, "the pool's Deployment is gone"
        if not seen or seen[-1] != value:
            seen.append(value)
        time.sleep(0.5)
    return seen
