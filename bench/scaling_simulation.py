"""Replays arrival traces through taskiq-fleet's engine and through KEDA + HPA.

Both scalers drive the same simulated pool (``scaling_model``): the same tasks with the
same service times, the same pod start delays, the same seed. Our side runs with the
defaults of a TaskiqWorkerPool spec that sets only ``maxReplicas`` and ``concurrency``;
KEDA's side with KEDA's and HPA's defaults and ``listLength`` equal to our target.

    uv run --frozen python bench/scaling_simulation.py

Prints, per trace and scaler: time to first scale-up, time to reach the needed replicas,
p95 queue wait, replica-seconds and the number of replica changes (the mean over
``REPEATS`` runs whose poll phases and draws differ). Writes
bench/results/scaling_simulation.json and bench/results/scaling_simulation.png.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).parent))
from scaling_model import FleetScaler, KedaHpaScaler, Pool, Task

from taskiq_fleet.spec import PoolSpec

SEED = 20_260_101
REPEATS = 5
STEP_S = 0.2
CONCURRENCY = 10
MAX_REPLICAS = 20
START_DELAY_S = (5.0, 10.0)
MEAN_SERVICE_S = 3.0
RESULTS = Path(__file__).parent / "results"

SPEC = PoolSpec.parse(
    {
        "broker": {"redis": {"urlSecretRef": {"name": "redis", "key": "url"}}},
        "worker": {"concurrency": CONCURRENCY},
        "scaling": {"maxReplicas": MAX_REPLICAS},
    }
)

#: Not our defaults: the same engine with the HPA's own default behavior written into the
#: spec, as a user who copies an HPA's settings would. It shows what the queue-tuned
#: defaults change; the targets are judged on the defaults.
HPA_BEHAVIOR = "taskiq-fleet with the HPA's default behavior"
HPA_BEHAVIOR_SPEC = PoolSpec.parse(
    {
        **SPEC.model_dump(exclude_none=True),
        "scaling": {
            "maxReplicas": MAX_REPLICAS,
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "selectPolicy": "Max",
                    "policies": [
                        {"type": "Pods", "value": 4, "periodSeconds": 15},
                        {"type": "Percent", "value": 100, "periodSeconds": 15},
                    ],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
                },
            },
        },
    }
)


# --- traces ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    name: str
    duration_s: float
    arrivals: Callable[[random.Random], list[float]]


def _burst(rng: random.Random) -> list[float]:
    """1000 tasks at once into a pool at zero."""
    return [60.0] * 1000


def _poisson(rng: random.Random, *, rate: Callable[[float], float], end_s: float, peak: float):
    """Arrivals of an inhomogeneous Poisson process (thinning)."""
    times, t = [], 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= end_s:
            return times
        if rng.random() * peak <= rate(t):
            times.append(t)


def _wave(rng: random.Random) -> list[float]:
    """A day compressed into an hour: quiet night, a morning rise, a peak, an evening fall."""
    peak = 15.0
    return _poisson(
        rng, rate=lambda t: peak * math.sin(math.pi * t / 3600) ** 4, end_s=3600, peak=peak
    )


def _spiky(rng: random.Random) -> list[float]:
    """A trickle with bursts of 100-300 tasks every 3 to 8 minutes."""
    times = _poisson(rng, rate=lambda t: 0.3, end_s=3600, peak=0.3)
    t = rng.uniform(60, 180)
    while t < 3300:
        start = t
        times.extend(start + rng.uniform(0, 5) for _ in range(rng.randint(100, 300)))
        t += rng.uniform(180, 480)
    return sorted(times)


TRACES = (
    Trace("burst", 1200, _burst),
    Trace("wave", 4200, _wave),
    Trace("spiky", 4200, _spiky),
)


# --- one run --------------------------------------------------------------------------


@dataclass
class Run:
    scaler: str
    tasks: list[Task]
    changes: list[tuple[float, int]]
    samples: list[tuple[float, int, int, int, int]]  # time, replicas, ready, waiting, in flight
    replica_seconds: float


def simulate(trace: Trace, *, scaler_name: str, seed: int) -> Run:
    rng = random.Random(seed)
    arrivals = sorted(trace.arrivals(rng))
    tasks = [
        Task(arrival_s=a, service_s=rng.lognormvariate(math.log(MEAN_SERVICE_S) - 0.18, 0.6))
        for a in arrivals
    ]

    # Poll phases differ per run, the same for both scalers' draws below.
    phases = random.Random(seed + 1)
    fleet_phase_s = phases.uniform(0, SPEC.scaling.poll_interval_seconds)
    keda_phase_s, hpa_phase_s = phases.uniform(0, 30), phases.uniform(0, 15)
    pool = Pool(concurrency=CONCURRENCY, start_delay_s=START_DELAY_S, rng=random.Random(seed + 2))
    scaler: FleetScaler | KedaHpaScaler
    if scaler_name in (FleetScaler.name, HPA_BEHAVIOR):
        scaler = FleetScaler(
            policy=(SPEC if scaler_name == FleetScaler.name else HPA_BEHAVIOR_SPEC).to_policy(),
            poll_interval_s=SPEC.scaling.poll_interval_seconds,
            phase_s=fleet_phase_s,
        )
    else:
        scaler = KedaHpaScaler(
            target=SPEC.target_per_replica,
            max_replicas=MAX_REPLICAS,
            keda_phase_s=keda_phase_s,
            hpa_phase_s=hpa_phase_s,
        )

    queue: list[Task] = []
    head = arrived = 0
    replica_seconds = 0.0
    samples = []
    steps = int(trace.duration_s / STEP_S)
    for n in range(steps):
        now_s = n * STEP_S
        while arrived < len(tasks) and tasks[arrived].arrival_s <= now_s:
            queue.append(tasks[arrived])
            arrived += 1
        scaler.tick(now_s=now_s, pool=pool, waiting=len(queue) - head)
        head = pool.step(now_s=now_s, queue=queue, head=head)
        replica_seconds += len(pool.pods) * STEP_S
        if n % int(1 / STEP_S) == 0:
            ready = pool.ready_count(now_s)
            samples.append((now_s, pool.replicas, ready, len(queue) - head, pool.in_flight()))
    return Run(
        scaler=scaler_name,
        tasks=tasks,
        changes=pool.changes,
        samples=samples,
        replica_seconds=replica_seconds,
    )


# --- figures --------------------------------------------------------------------------


def needed_replicas(tasks: list[Task]) -> tuple[int, float]:
    """Replicas to run at once all work arriving within one mean service time, capped.

    Returns that count and when the busiest such window starts.
    """
    times = [t.arrival_s for t in tasks]
    best, best_start, j = 0, times[0], 0
    for i, start in enumerate(times):
        while j < len(times) and times[j] < start + MEAN_SERVICE_S:
            j += 1
        if j - i > best:
            best, best_start = j - i, start
    return _replicas_for(best), best_start


def _replicas_for(work: int) -> int:
    return min(MAX_REPLICAS, math.ceil(work / SPEC.target_per_replica))


def figures(run: Run) -> dict[str, Any]:
    """The figures of one run.

    ``time_to_needed_s``: from the start of the busiest window (``needed_replicas``) until
    the ready replicas first cover the work then present (waiting plus in flight, per
    target, capped at maxReplicas): how long the pool stays behind its load.
    """
    first_arrival_s = min(t.arrival_s for t in run.tasks)
    before = [0, *[r for _, r in run.changes]]
    ups = [t for (t, r), prev in zip(run.changes, before[:-1], strict=True) if r > prev]
    first_up = next((t for t in ups if t >= first_arrival_s), None)
    needed, peak_start_s = needed_replicas(run.tasks)
    reached = next(
        (
            t
            for t, _, ready, waiting, in_flight in run.samples
            if t >= peak_start_s and ready >= _replicas_for(waiting + in_flight)
        ),
        None,
    )
    end_s = run.samples[-1][0]
    waits = sorted((t.start_s if t.start_s is not None else end_s) - t.arrival_s for t in run.tasks)
    return {
        "first_scale_up_s": None if first_up is None else round(first_up - first_arrival_s, 1),
        "needed_replicas": needed,
        "time_to_needed_s": None if reached is None else round(reached - peak_start_s, 1),
        "p95_wait_s": round(waits[int(0.95 * (len(waits) - 1))], 1),
        "replica_seconds": round(run.replica_seconds),
        "replica_changes": len(run.changes),
        "unfinished_tasks": sum(1 for t in run.tasks if t.start_s is None),
    }


def mean_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        if any(v is None for v in values):
            out[key] = None
        else:
            out[key] = round(statistics.fmean(values), 1)
    return out


# --- main -----------------------------------------------------------------------------


def main() -> int:
    scalers = (FleetScaler.name, KedaHpaScaler.name, HPA_BEHAVIOR)
    results: dict[str, Any] = {
        "seed": SEED,
        "repeats": REPEATS,
        "pool": {
            "concurrency": CONCURRENCY,
            "max_replicas": MAX_REPLICAS,
            "target_per_replica": SPEC.target_per_replica,
            "poll_interval_s": SPEC.scaling.poll_interval_seconds,
            "pod_start_delay_s": list(START_DELAY_S),
            "mean_service_s": MEAN_SERVICE_S,
        },
        "traces": {},
    }
    curves: dict[str, dict[str, Run]] = {}
    for trace in TRACES:
        per_scaler: dict[str, Any] = {}
        for name in scalers:
            runs = [simulate(trace, scaler_name=name, seed=SEED + k) for k in range(REPEATS)]
            rows = [figures(run) for run in runs]
            per_scaler[name] = {"mean": mean_of(rows), "runs": rows}
            curves.setdefault(trace.name, {})[name] = runs[0]
        results["traces"][trace.name] = per_scaler
    results["targets"] = check_targets(results["traces"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scaling_simulation.json").write_text(json.dumps(results, indent=2) + "\n")
    draw(curves, RESULTS / "scaling_simulation.png")
    report(results)
    return 0


def check_targets(traces: dict[str, Any]) -> dict[str, Any]:
    ours = {t: traces[t][FleetScaler.name]["mean"] for t in traces}
    keda = {t: traces[t][KedaHpaScaler.name]["mean"] for t in traces}
    burst_ratio = keda["burst"]["first_scale_up_s"] / max(ours["burst"]["first_scale_up_s"], 0.1)
    burst_wait_ratio = ours["burst"]["p95_wait_s"] / keda["burst"]["p95_wait_s"]
    return {
        "burst_first_scale_up_within_one_poll": ours["burst"]["first_scale_up_s"]
        <= SPEC.scaling.poll_interval_seconds,
        "burst_first_scale_up_ratio": round(burst_ratio, 1),
        "burst_first_scale_up_10x_sooner": burst_ratio >= 10,
        "burst_p95_wait_ratio": round(burst_wait_ratio, 2),
        "burst_p95_wait_at_most_half": burst_wait_ratio <= 0.5,
        "burst_replica_seconds_ratio": round(
            ours["burst"]["replica_seconds"] / keda["burst"]["replica_seconds"], 2
        ),
        "burst_replica_seconds_not_more": ours["burst"]["replica_seconds"]
        <= keda["burst"]["replica_seconds"],
        "spiky_changes_not_more": ours["spiky"]["replica_changes"]
        <= keda["spiky"]["replica_changes"],
        "spiky_replica_seconds_ratio": round(
            ours["spiky"]["replica_seconds"] / keda["spiky"]["replica_seconds"], 2
        ),
        "spiky_replica_seconds_not_more": ours["spiky"]["replica_seconds"]
        <= keda["spiky"]["replica_seconds"],
    }


def report(results: dict[str, Any]) -> None:
    header = (
        f"{'trace':<7} {'scaler':<46} {'1st up s':>8} {'needed':>6} {'to needed s':>11} "
        f"{'p95 wait s':>10} {'replica-s':>9} {'changes':>7}"
    )
    print(header)
    print("-" * len(header))
    for trace, per_scaler in results["traces"].items():
        for name, data in per_scaler.items():
            m = data["mean"]
            print(
                f"{trace:<7} {name:<46} {_fmt(m['first_scale_up_s']):>8} "
                f"{_fmt(m['needed_replicas']):>6} {_fmt(m['time_to_needed_s']):>11} "
                f"{_fmt(m['p95_wait_s']):>10} {_fmt(m['replica_seconds']):>9} "
                f"{_fmt(m['replica_changes']):>7}"
            )
    print()
    for key, value in results["targets"].items():
        print(f"{key}: {value}")


def _fmt(value: float | None) -> str:
    return "never" if value is None else f"{value:g}"


def draw(curves: dict[str, dict[str, Run]], path: Path) -> None:
    fig, axes = plt.subplots(len(curves), 2, figsize=(13, 3.2 * len(curves)), squeeze=False)
    colors = {FleetScaler.name: "tab:blue", KedaHpaScaler.name: "tab:orange"}
    for row, (trace, runs) in enumerate(curves.items()):
        left, right = axes[row]
        # KEDA first, so that our curve is drawn on top where the two coincide.
        for name in (KedaHpaScaler.name, FleetScaler.name):
            run = runs[name]
            t = [s[0] for s in run.samples]
            left.step(t, [s[1] for s in run.samples], where="post", color=colors[name], label=name)
            right.plot(t, [s[3] for s in run.samples], color=colors[name], label=name)
        left.set_title(f"{trace}: replicas")
        right.set_title(f"{trace}: tasks waiting")
        for ax in (left, right):
            ax.set_xlabel("seconds")
            ax.grid(alpha=0.3)
            ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    # No options: the traces, pool and seed are fixed, so every run prints the same figures.
    argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    sys.exit(main())
