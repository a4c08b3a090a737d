"""Fixtures of the operator's end-to-end tests: the chart's identity, Redis, the operator."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from taskiq_fleet.redis_server import LocalRedisServer
from tests.fixtures.kube import KubeCluster
from tests.operator.harness import (
    OPERATOR_NAMESPACE,
    OperatorProcess,
    denied_lines,
    ensure_namespace,
    install_identity,
    render_identity,
)

POOLS_NAMESPACE = "fleet-e2e"
RELEASE = "fleet"


@dataclass(frozen=True)
class Identity:
    """The operator's ServiceAccount, bound by the chart's RBAC to the pools namespace."""

    kubeconfig: Path
    service_account: str
    pools_namespace: str


@pytest.fixture(scope="session")
def fleet_identity(kube: KubeCluster) -> Identity:
    ensure_namespace(kube, OPERATOR_NAMESPACE)
    ensure_namespace(kube, POOLS_NAMESPACE)
    objects = render_identity(
        kube, release=RELEASE, namespace=OPERATOR_NAMESPACE, watch=[POOLS_NAMESPACE]
    )
    kinds = {obj["kind"] for obj in objects}
    assert {"CustomResourceDefinition", "ServiceAccount", "Role", "RoleBinding"} <= kinds
    install_identity(kube, objects)
    account = next(obj for obj in objects if obj["kind"] == "ServiceAccount")["metadata"]["name"]
    kubeconfig = kube.service_account_kubeconfig(namespace=OPERATOR_NAMESPACE, name=account)
    return Identity(kubeconfig=kubeconfig, service_account=account, pools_namespace=POOLS_NAMESPACE)


@dataclass
class FleetRedis:
    """A Redis of the module's own, with an ACL user whose password must never leak."""

    server: LocalRedisServer
    password: str

    @property
    def admin_url(self) -> str:
        return self.server.url

    def fleet_url(self, *, db: int = 0) -> str:
        return f"redis://fleet:{self.password}@127.0.0.1:{self.server.port}/{db}"

    def grant(self) -> None:
        """(Re)create the ACL user; a restarted server has forgotten it."""
        client = redis.Redis.from_url(self.admin_url)
        try:
            client.execute_command(
                "ACL", "SETUSER", "fleet", "reset", "on", f">{self.password}", "~*", "&*", "+@all"
            )
        finally:
            client.close()


@pytest.fixture(scope="module")
def fleet_redis() -> Iterator[FleetRedis]:
    with LocalRedisServer() as server:
        fleet = FleetRedis(server=server, password=f"pw-{secrets.token_hex(12)}")
        fleet.grant()
        yield fleet


@pytest.fixture(scope="module")
def operator(
    kube: KubeCluster, fleet_identity: Identity, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator for the module, as the chart's ServiceAccount, logging JSON."""
    process = OperatorProcess(
        kube=kube,
        kubeconfig=fleet_identity.kubeconfig,
        namespaces=(fleet_identity.pools_namespace,),
        log_path=tmp_path_factory.mktemp("operator") / "operator.log",
        extra_args=("--log-format=json", "--secret-refresh=1", "--status-figures-interval=1"),
    )
    process.start()
    yield process
    process.stop()

    # Every API call the operator made was allowed by the chart's RBAC.
    denied = denied_lines(process.log())
    assert denied == [], "the chart's RBAC refused the operator:\n" + "\n".join(denied[:10])
