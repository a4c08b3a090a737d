"""What the operator benchmarks stand on: a control plane, Redis, the operator process.

The control plane is the tests' own (``tests/fixtures/kube.py``): etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok on loopback, or the cluster that
``KUBECONFIG`` names. The operator runs as ``taskiq-fleet operator`` in a child process
with the chart's ServiceAccount and RBAC, exactly as in the end-to-end tests, so its
CPU and memory are its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from taskiq import TaskiqMessage
from taskiq.formatters.json_formatter import JSONFormatter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from taskiq_fleet.contract import keys  # noqa: E402
from tests.fixtures.kube import (  # noqa: E402
    KubeCluster,
    _external_cluster,
    _start_local,
    control_plane_bin_dir,
)
from tests.kube.local_cluster import Processes  # noqa: E402
from tests.operator.harness import (  # noqa: E402
    OperatorProcess,
    ensure_namespace,
    install_identity,
    render_identity,
)

OPERATOR_NAMESPACE = "taskiq-fleet-system"


@contextlib.contextmanager
def cluster() -> Iterator[KubeCluster]:
    """The local test control plane (or KUBECONFIG's cluster) for the whole run."""
    work_dir = Path(tempfile.mkdtemp(prefix="operator-bench-kube-"))
    try:
        if os.environ.get("KUBECONFIG"):
            yield _external_cluster(work_dir=work_dir, kubeconfig_env=os.environ["KUBECONFIG"])
            return
        bin_dir = control_plane_bin_dir()
        processes = Processes(bin_dir=bin_dir, log_dir=work_dir / "logs")
        try:
            yield _start_local(work_dir=work_dir, bin_dir=bin_dir, processes=processes)
        finally:
            processes.stop()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def install(kube: KubeCluster, *, namespaces: Sequence[str]) -> Path:
    """CRD, ServiceAccount and RBAC from the chart; returns the account's kubeconfig."""
    ensure_namespace(kube, OPERATOR_NAMESPACE)
    for namespace in namespaces:
        ensure_namespace(kube, namespace)
    objects = render_identity(kube, release="bench", namespace=OPERATOR_NAMESPACE, watch=namespaces)
    install_identity(kube, objects)
    account = next(obj for obj in objects if obj["kind"] == "ServiceAccount")["metadata"]["name"]
    return kube.service_account_kubeconfig(namespace=OPERATOR_NAMESPACE, name=account)


def operator(kube: KubeCluster, *, kubeconfig: Path, namespaces: Sequence[str]) -> OperatorProcess:
    log = Path(tempfile.mkdtemp(prefix="operator-bench-")) / "operator.log"
    return OperatorProcess(
        kube=kube, kubeconfig=kubeconfig, namespaces=tuple(namespaces), log_path=log
    )


def apply(kube: KubeCluster, objects: list[dict[str, Any]]) -> None:
    """Apply many objects in chunks (one kubectl call per chunk)."""
    for start in range(0, len(objects), 100):
        chunk = {"apiVersion": "v1", "kind": "List", "items": objects[start : start + 100]}
        kube.kubectl("apply", "-f", "-", input=json.dumps(chunk), timeout_s=300)


def secret(*, name: str, namespace: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"url": url},
    }


def pool(
    *,
    name: str,
    namespace: str,
    queue: str,
    redis_ref: str,
    poll_s: float,
    max_replicas: int,
    quiet_s: float,
    behavior: dict[str, Any] | None = None,
) -> dict[str, Any]:
    scaling: dict[str, Any] = {
        "minReplicas": 0,
        "maxReplicas": max_replicas,
        "targetPerReplica": 10,
        "pollIntervalSeconds": poll_s,
        "scaleToZeroAfterSeconds": quiet_s,
    }
    if behavior is not None:
        scaling["behavior"] = behavior
    return {
        "apiVersion": f"{keys.API_GROUP}/{keys.API_VERSION}",
        "kind": keys.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "broker": {
                "queues": [{"name": queue}],
                "redis": {"urlSecretRef": {"name": redis_ref, "key": "url"}},
            },
            "worker": {
                "concurrency": 10,
                "template": {
                    "spec": {"containers": [{"name": "worker", "image": "registry.invalid/w:1"}]}
                },
            },
            "scaling": scaling,
        },
    }


def task_messages(*, queue: str, count: int) -> list[bytes]:
    """``count`` real taskiq messages, as taskiq-redis's list broker would LPUSH them."""
    formatter = JSONFormatter()
    now_ms = str(time.time_ns() // 1_000_000)
    return [
        formatter.dumps(
            TaskiqMessage(
                task_id=uuid.uuid4().hex,
                task_name="bench.work",
                labels={"queue_name": queue, keys.LABEL_ENQUEUED_MS: now_ms},
                labels_types={keys.LABEL_ENQUEUED_MS: 1},
                args=[number],
                kwargs={},
            )
        ).message
        for number in range(count)
    ]


@dataclass
class Usage:
    """CPU and memory of one process, sampled in a thread while a window is open."""

    pid: int
    interval_s: float = 0.5
    rss_bytes: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _cpu_start_s: float = 0.0
    _wall_start_s: float = 0.0
    cpu_cores: float = 0.0

    def __enter__(self) -> Usage:
        process = psutil.Process(self.pid)
        times = process.cpu_times()
        self._cpu_start_s = times.user + times.system
        self._wall_start_s = time.monotonic()
        self._thread = threading.Thread(target=self._sample, args=(process,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        times = psutil.Process(self.pid).cpu_times()
        wall_s = time.monotonic() - self._wall_start_s
        self.cpu_cores = (times.user + times.system - self._cpu_start_s) / wall_s

    def _sample(self, process: psutil.Process) -> None:
        while not self._stop.wait(self.interval_s):
            self.rss_bytes.append(process.memory_info().rss)


_SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>[-+0-9.eEinfNa]+)$")


def scrape(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric ``name`` in a Prometheus text exposition."""
    found = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or match["name"] != name:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
        found.append((labels, float(match["value"])))
    return found


def histogram_quantile(
    before: str, after: str, *, name: str, quantile: float
) -> tuple[float, float, int]:
    """Quantile of a histogram over a window, from two scrapes.

    Returns (upper bound of the bucket holding the quantile, linear estimate within it,
    observations in the window), the way Prometheus' ``histogram_quantile`` reads buckets.
    """

    def buckets(text: str) -> dict[float, float]:
        return {float(labels["le"]): value for labels, value in scrape(text, f"{name}_bucket")}

    start, end = buckets(before), buckets(after)
    counts = sorted((bound, end[bound] - start.get(bound, 0.0)) for bound in end)
    total = counts[-1][1]
    rank = quantile * total
    lower, previous = 0.0, 0.0
    for bound, cumulative in counts:
        if cumulative >= rank:
            inside = cumulative - previous
            share = (rank - previous) / inside if inside else 1.0
            estimate = lower + (bound - lower) * share if bound != float("inf") else lower
            return bound, estimate, int(total)
        lower, previous = bound, cumulative
    return float("inf"), lower, int(total)
