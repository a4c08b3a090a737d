"""The operator's reaction time, and its cost with 500 pools, on a real control plane.

    uv run --frozen python bench/operator_bench.py [--pools 500] [--trials 12]

One run, one control plane (the tests' local one, or ``KUBECONFIG``'s), one Redis, one
``taskiq-fleet operator`` process with the chart's RBAC:

1. Reaction (first, with no other pool): a pool at zero replicas polled every 2 s;
   1000 real taskiq messages are LPUSHed in one command at a random moment of its poll
   cycle; measured is the time until the Deployment's ``spec.replicas`` is set (read
   every 20 ms). Baseline and target: one poll interval + 1 s.
2. Scale: ``--pools`` pools polled every 5 s, one in ten with work waiting. Over a
   ``--window`` the operator's decision lag (its histogram: delay from a poll's
   scheduled time to its applied decision), its RSS and its CPU are measured, against
   the same operator serving only the idle reaction pool (the baseline, same run). Targets: lag p99
   < 1 s, RSS < 250 MB, CPU < 0.5 core.

Writes bench/results/operator.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import psutil
import redis
from kubernetes_asyncio import client, config
from operator_cluster import (
    Usage,
    apply,
    cluster,
    histogram_quantile,
    install,
    operator,
    pool,
    secret,
    task_messages,
)

from taskiq_fleet.redis_server import LocalRedisServer
from tests.fixtures.kube import KubeCluster
from tests.operator.harness import OperatorProcess

RESULTS = Path(__file__).resolve().parent / "results"
REACT_NAMESPACE = "bench-react"
SCALE_NAMESPACE = "bench-scale"
REACT_POLL_S = 2.0
SCALE_POLL_S = 5.0
MB = 1024 * 1024
FAST = {
    "scaleUp": {"stabilizationWindowSeconds": 0},
    "scaleDown": {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
    },
}


async def replicas_of(apps: client.AppsV1Api, *, namespace: str, name: str) -> int | None:
    try:
        found = await apps.read_namespaced_deployment(name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return int(found.spec.replicas or 0)


async def wait_replicas(
    apps: client.AppsV1Api, *, namespace: str, name: str, want: int, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while await replicas_of(apps, namespace=namespace, name=name) != want:
        if time.monotonic() > deadline:
            raise TimeoutError(f"Deployment {namespace}/{name} never reached {want} replicas")
        await asyncio.sleep(0.1)


async def reaction(kube: KubeCluster, *, redis_url: str, trials: int) -> dict[str, Any]:
    """Seconds from 1000 tasks pushed into an idle pool to its Deployment scaled."""
    kube.kubectl("apply", "-f", "-", input=json.dumps(
        secret(name="redis", namespace=REACT_NAMESPACE, url=redis_url)))  # fmt: skip
    apply(kube, [pool(name="react", namespace=REACT_NAMESPACE, queue="react-q",
                      redis_ref="redis", poll_s=REACT_POLL_S, max_replicas=20, quiet_s=1,
                      behavior=FAST)])  # fmt: skip
    messages = task_messages(queue="react-q", count=1000)
    queue = redis.Redis.from_url(redis_url)
    api = await config.new_client_from_config(str(kube.kubeconfig))
    apps = client.AppsV1Api(api)
    seconds: list[float] = []
    scaled_to: list[int] = []
    try:
        await wait_replicas(apps, namespace=REACT_NAMESPACE, name="react", want=0, timeout_s=60)
        for _ in range(trials):
            # A random moment of the poll cycle: the figure covers every phase.
            await asyncio.sleep(random.uniform(0, REACT_POLL_S))
            started = time.monotonic()
            queue.lpush("react-q", *messages)
            while not (count := await replicas_of(apps, namespace=REACT_NAMESPACE, name="react")):
                if time.monotonic() - started > 30:
                    raise TimeoutError("the pool never scaled up")
                await asyncio.sleep(0.02)
            seconds.append(time.monotonic() - started)
            scaled_to.append(count)
            queue.delete("react-q")
            await wait_replicas(apps, namespace=REACT_NAMESPACE, name="react", want=0, timeout_s=60)
    finally:
        await api.close()
        queue.close()
    target_s = REACT_POLL_S + 1.0
    return {
        "poll_interval_s": REACT_POLL_S,
        "tasks": len(messages),
        "trials": trials,
        "seconds": [round(value, 3) for value in seconds],
        "median_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
        "first_replica_counts": sorted(set(scaled_to)),
        "baseline": "one poll interval + 1 s",
        "target_s": target_s,
        "max_over_target": round(max(seconds) / target_s, 3),
        "met": max(seconds) <= target_s,
    }


def window(operator_process: OperatorProcess, *, seconds: float) -> dict[str, Any]:
    """RSS, CPU and decision lag of the operator over ``seconds``."""
    assert operator_process.process is not None
    before = operator_process.metrics()
    with Usage(pid=operator_process.process.pid) as usage:
        time.sleep(seconds)
    after = operator_process.metrics()
    name = "taskiq_fleet_decision_lag_seconds"
    p99_bound, p99_estimate, polls = histogram_quantile(before, after, name=name, quantile=0.99)
    p50_bound, p50_estimate, _ = histogram_quantile(before, after, name=name, quantile=0.5)
    return {
        "window_s": seconds,
        "polls": polls,
        "polls_per_s": round(polls / seconds, 1),
        "decision_lag_p50_s": {"bucket_le": p50_bound, "estimate": round(p50_estimate, 4)},
        "decision_lag_p99_s": {"bucket_le": p99_bound, "estimate": round(p99_estimate, 4)},
        "rss_mb_max": round(max(usage.rss_bytes) / MB, 1),
        "rss_mb_mean": round(statistics.mean(usage.rss_bytes) / MB, 1),
        "cpu_cores": round(usage.cpu_cores, 3),
    }


def warm(kube: KubeCluster, *, pools: int, busy: list[str], timeout_s: float) -> float:
    """Seconds until every pool has a status and every busy pool has scaled."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        listed = json.loads(kube.kubectl("get", "twp", "-n", SCALE_NAMESPACE, "-o", "json",
                                         timeout_s=120).stdout)["items"]  # fmt: skip
        seen = [item for item in listed if (item.get("status") or {}).get("observedGeneration")]
        scaled = {
            item["metadata"]["name"]
            for item in seen
            if (item.get("status") or {}).get("replicas", 0) >= 2
        }
        if len(seen) == pools and scaled >= set(busy):
            return time.monotonic() - started
        time.sleep(2)
    raise TimeoutError(f"the {pools} pools did not all report within {timeout_s:.0f} s")


def scale(
    kube: KubeCluster,
    operator_process: OperatorProcess,
    *,
    redis_url: str,
    pools: int,
    window_s: float,
) -> dict[str, Any]:
    """The operator nearly idle, then serving ``pools`` more pools at a 5 s interval."""
    baseline = window(operator_process, seconds=min(window_s, 30.0))

    names = [f"pool-{number:04d}" for number in range(pools)]
    objects = [secret(name="redis", namespace=SCALE_NAMESPACE, url=redis_url)]
    objects += [
        pool(name=name, namespace=SCALE_NAMESPACE, queue=f"{name}-q", redis_ref="redis",
             poll_s=SCALE_POLL_S, max_replicas=3, quiet_s=300)
        for name in names
    ]  # fmt: skip
    busy = names[::10]
    queue = redis.Redis.from_url(redis_url)
    for name in busy:
        queue.lpush(f"{name}-q", *task_messages(queue=f"{name}-q", count=15))
    queue.close()
    created = time.monotonic()
    apply(kube, objects)
    warm_s = warm(kube, pools=pools, busy=busy, timeout_s=600)
    created_s = time.monotonic() - created
    time.sleep(2 * SCALE_POLL_S)

    loaded = window(operator_process, seconds=window_s)
    targets = {"decision_lag_p99_s": 1.0, "rss_mb": 250.0, "cpu_cores": 0.5}
    return {
        "pools": pools,
        "busy_pools": len(busy),
        "poll_interval_s": SCALE_POLL_S,
        "seconds_until_all_pools_reported": round(created_s, 1),
        "seconds_to_warm_after_apply": round(warm_s, 1),
        "baseline_no_pools": baseline,
        "loaded": loaded,
        "targets": targets,
        "met": {
            "decision_lag_p99": loaded["decision_lag_p99_s"]["bucket_le"] <= 1.0,
            "rss": loaded["rss_mb_max"] < targets["rss_mb"],
            "cpu": loaded["cpu_cores"] < targets["cpu_cores"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pools", type=int, default=500)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()

    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
            "python": platform.python_version(),
            "operator_event_loop": "uvloop" if find_spec("uvloop") else "asyncio",
        },
        "note": "control plane, Redis, kwok and the operator share the machine",
    }
    with cluster() as kube, LocalRedisServer() as server:
        kubeconfig = install(kube, namespaces=[REACT_NAMESPACE, SCALE_NAMESPACE])
        process = operator(
            kube, kubeconfig=kubeconfig, namespaces=[REACT_NAMESPACE, SCALE_NAMESPACE]
        )
        process.start()
        try:
            results["reaction"] = asyncio.run(
                reaction(kube, redis_url=server.url, trials=args.trials)
            )
            print(json.dumps(results["reaction"], indent=2), flush=True)
            results["scale"] = scale(
                kube, process, redis_url=server.url, pools=args.pools, window_s=args.window
            )
            print(json.dumps(results["scale"], indent=2), flush=True)
        finally:
            process.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "operator.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS / 'operator.json'}")


if __name__ == "__main__":
    main()
