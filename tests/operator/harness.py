"""Running the real operator against the test cluster, and the means to watch it.

The operator runs as ``taskiq-fleet operator`` in a child process, with a kubeconfig
for the ServiceAccount that the chart's own RBAC binds: whatever the chart forgets to
grant, the operator cannot do, and the tests that need it fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis.asyncio
import yaml
from taskiq_redis import ListQueueBroker

from taskiq_fleet.contract import heartbeat, keys
from taskiq_fleet.redis_server import free_port
from tests.fixtures.kube import REPO_ROOT, KubeCluster

CHART = REPO_ROOT / "charts" / "taskiq-fleet"
#: Objects taken from the rendered chart: what the operator's identity is made of.
IDENTITY_KINDS = frozenset(
    {
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    }
)
OPERATOR_BIN = Path(sys.executable).parent / "taskiq-fleet"
#: Where the operators of the tests run: the chart's release namespace.
OPERATOR_NAMESPACE = "taskiq-fleet-system"

T = TypeVar("T")


def server_version(kube: KubeCluster) -> str:
    info = json.loads(kube.kubectl("version", "-o", "json").stdout)
    return str(info["serverVersion"]["gitVersion"]).lstrip("v")


def render_identity(
    kube: KubeCluster, *, release: str, namespace: str, watch: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """The chart's CRD, ServiceAccount and RBAC objects, as ``helm template`` renders them."""
    args = [
        "template", release, str(CHART), "--namespace", namespace, "--include-crds",
        "--kube-version", server_version(kube),
    ]  # fmt: skip
    watched = list(watch)
    if watched:
        args += ["--set", "watchNamespaces={" + ",".join(watched) + "}"]
    rendered = kube.helm(*args).stdout
    return [
        doc
        for doc in yaml.safe_load_all(rendered)
        if isinstance(doc, dict) and doc.get("kind") in IDENTITY_KINDS
    ]


def install_identity(kube: KubeCluster, objects: list[dict[str, Any]]) -> None:
    """Apply the objects as the cluster admin and wait for the CRD to serve."""
    kube.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                       "items": objects}))  # fmt: skip
    kube.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        f"crd/{keys.PLURAL}.{keys.API_GROUP}",
    )  # fmt: skip


def denied_lines(log: str) -> list[str]:
    """The log lines that say the API server refused the operator something."""
    return [line for line in log.splitlines() if "forbidden" in line.lower() or " 403" in line]


def ensure_namespace(kube: KubeCluster, name: str) -> None:
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))


@dataclass
class OperatorProcess:
    """``taskiq-fleet operator`` as a child process; its log is kept for assertions."""

    kube: KubeCluster
    kubeconfig: Path
    namespaces: tuple[str, ...]
    log_path: Path
    extra_args: tuple[str, ...] = ()
    metrics_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            str(OPERATOR_BIN), "operator", "--standalone",
            *(f"--namespace={namespace}" for namespace in self.namespaces),
            f"--metrics-port={self.metrics_port}", "--metrics-host=127.0.0.1",
            f"--liveness=http://127.0.0.1:{self.health_port}/healthz",
            *self.extra_args,
        ]  # fmt: skip
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self.healthy():
            if self.process.poll() is not None:
                pytest.fail(f"the operator exited with {self.process.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the operator did not become healthy in 30 s:\n{self.tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"the operator ignored SIGTERM for 30 s:\n{self.tail()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            # Not listening yet: the operator is still starting.
            return False


@contextlib.contextmanager
def own_operator(
    kube: KubeCluster,
    *,
    namespace: str,
    objects: list[dict[str, Any]],
    log_dir: Path,
    all_namespaces: bool = False,
    kubeconfig: Callable[[Path], Path] = lambda path: path,
    before_cleanup: Callable[[], None] = lambda: None,
) -> Iterator[OperatorProcess]:
    """An operator of a test module's own, as the ServiceAccount that ``objects`` bind.

    ``objects`` (rendered by :func:`render_identity`, perhaps changed) are installed,
    the operator serves ``namespace`` (or every namespace), and at the end the pools
    of ``namespace`` are deleted while it still runs (it holds their finalizers), then
    it stops and its namespace and objects go. ``kubeconfig`` may route its API calls;
    ``before_cleanup`` undoes whatever a test left broken.
    """
    ensure_namespace(kube, namespace)
    install_identity(kube, objects)
    account = next(obj for obj in objects if obj["kind"] == "ServiceAccount")["metadata"]["name"]
    service_account = kube.service_account_kubeconfig(namespace=OPERATOR_NAMESPACE, name=account)
    process = OperatorProcess(
        kube=kube,
        kubeconfig=kubeconfig(service_account),
        namespaces=() if all_namespaces else (namespace,),
        log_path=log_dir / "operator.log",
        extra_args=(
            *(("--all-namespaces",) if all_namespaces else ()),
            "--log-format=json",
            "--status-figures-interval=1",
        ),
    )
    try:
        process.start()
        yield process
        before_cleanup()
        kube.kubectl("delete", keys.PLURAL, "--all", "-n", namespace, "--wait=true", timeout_s=60)
    finally:
        process.stop()
        kube.kubectl("delete", "namespace", namespace, "--wait=false")
        listed = {"apiVersion": "v1", "kind": "List", "items": objects}
        kube.kubectl("delete", "-f", "-", "--ignore-not-found", input=json.dumps(listed))


def without_crd(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Identity objects for a second release: the session has installed the CRD."""
    return [obj for obj in objects if obj["kind"] != "CustomResourceDefinition"]


async def wait_for(
    what: str,
    probe: Callable[[], T | None] | Callable[[], Awaitable[T | None]],
    *,
    timeout_s: float,
    operator: OperatorProcess | None = None,
    interval_s: float = 0.25,
) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        result = probe()
        last = await result if asyncio.iscoroutine(result) else result
        if last:
            return last  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            tail = f"\noperator log:\n{operator.tail()}" if operator else ""
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}{tail}")
        await asyncio.sleep(interval_s)


def get_json(kube: KubeCluster, *args: str) -> dict[str, Any] | None:
    """``kubectl get ... -o json``, or None when the object does not exist."""
    result = kube.kubectl("get", *args, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        pytest.fail(f"kubectl get {' '.join(args)} failed: {result.stderr}")
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def condition(pool: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for entry in ((pool or {}).get("status") or {}).get("conditions") or []:
        if entry.get("type") == kind:
            return dict(entry)
    return {}


def pool_manifest(
    name: str,
    *,
    namespace: str,
    queue: str,
    secret: str,
    min_replicas: int = 0,
    max_replicas: int = 10,
    target: int = 10,
    quiet_s: int = 5,
) -> dict[str, Any]:
    """A pool with short intervals: polls every second, scales freely, quiet for 5 s."""
    free = {"stabilizationWindowSeconds": 0, "policies": [
        {"type": "Pods", "value": 100, "periodSeconds": 1},
        {"type": "Percent", "value": 1000, "periodSeconds": 1}]}  # fmt: skip
    return {
        "apiVersion": f"{keys.API_GROUP}/{keys.API_VERSION}",
        "kind": keys.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "broker": {
                "kind": "list",
                "queues": [{"name": queue}],
                "redis": {"urlSecretRef": {"name": secret, "key": "url"}},
            },
            "worker": {
                "concurrency": target,
                "drainTimeoutSeconds": 20,
                "template": {
                    "metadata": {"labels": {"suite": "operator-e2e"}},
                    "spec": {
                        "containers": [
                            {"name": "worker", "image": "registry.invalid/taskiq-worker:e2e"}
                        ]
                    },
                },
            },
            "scaling": {
                "minReplicas": min_replicas,
                "maxReplicas": max_replicas,
                "targetPerReplica": target,
                "pollIntervalSeconds": 1,
                "scaleToZeroAfterSeconds": quiet_s,
                "behavior": {"scaleUp": free, "scaleDown": free},
            },
        },
    }


async def push_tasks(url: str, *, queue: str, count: int) -> None:
    """Send ``count`` real taskiq messages through taskiq-redis's list broker."""
    broker = ListQueueBroker(url, queue_name=queue)

    @broker.task(task_name="e2e.work")
    async def work(number: int) -> None:
        """Never runs: the Pods on kwok Nodes run no code."""

    await broker.startup()
    try:
        for number in range(count):
            await work.kiq(number)
    finally:
        await broker.shutdown()


class Heartbeats:
    """Plays the fleet middleware of worker Pods: publishes their in-flight counts."""

    def __init__(self, client: redis.asyncio.Redis, *, queue: str) -> None:
        self._client = client
        self._queue = queue
        self.in_flight: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Heartbeats:
        await self._beat_once()
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for pod in self.in_flight:
            await heartbeat.withdraw(self._client, queue=self._queue, worker_id=pod)

    async def set(self, in_flight: dict[str, int]) -> None:
        self.in_flight = dict(in_flight)
        await self._beat_once()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await self._beat_once()

    async def _beat_once(self) -> None:
        for pod, count in self.in_flight.items():
            beat = heartbeat.Heartbeat(
                worker_id=pod, pod=pod, pid=1, in_flight=count, capacity=10, ttl_ms=6000
            )
            await heartbeat.publish(self._client, queue=self._queue, heartbeat=beat)
