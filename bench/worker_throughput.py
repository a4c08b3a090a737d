"""Throughput and memory of one Taskiq agent worker against a Celery prefork worker.

    uv run --frozen python bench/worker_throughput.py [--count 5000] [--rounds 5]

One local Redis-compatible server (``LocalRedisServer``) serves both, in one run. The
queue lives in database 0; results and agent sessions share database 1, as they do in
a worker left at its defaults (``TASKIQ_RESULT_BACKEND_URL`` falls back to
``REDIS_URL``). For each drain the queue is filled with ``--count`` tasks first, then
one worker is started and drains it. The clock starts at the first key the worker
writes (worker start-up is not counted) and stops when every task has written all of
its keys (the database's key count, read every 10 ms); memory is the peak RSS of the
worker's whole process tree (parent and children, as a pod would be charged).

- ``noop``: a task that does nothing. Same concurrency: 10 async slots in one Taskiq
  process against 10 prefork children.
- ``agent``: ``run_command_task`` with the default agent at zero work time (3 steps,
  session events, dedup claim, result), same concurrency as ``noop``; Celery runs the
  same runtime on an event loop per child.
- ``io``: a 50 ms wait (``await asyncio.sleep`` / blocking ``time.sleep``), one process
  each: one Taskiq process with Taskiq's default 100 slots against one prefork child.

A busy machine slows whichever drain it meets, so drains are interleaved: each of
``--rounds`` rounds drains Taskiq no-op, Taskiq agent, Celery no-op and Celery agent
back to back, and the medians count. The agent/no-op ratio is given twice: as the ratio
of the two medians, and as the median of each round's own ratio. ``io`` runs once:
Celery's single blocked child needs 50 ms a task, over four minutes for 5000.

Targets: no-op Taskiq/Celery >= 2, io Taskiq/Celery >= 10, agent/no-op (Taskiq) >= 0.6.
Writes bench/results/worker_throughput.json; worker output goes to a temporary folder,
kept (and named) only when a drain fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
import redis
from prometheus_client import CollectorRegistry

from taskiq_fleet.redis_server import LocalRedisServer
from taskiq_fleet_worker.app import build_broker
from taskiq_fleet_worker.results import RESULT_PREFIX
from taskiq_fleet_worker.settings import RedisSettings, Settings, TaskiqSettings, WorkerSettings

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
BIN = Path(sys.executable).parent
BROKER_DB, SHARED_DB = 0, 1
FRAMEWORKS = ("taskiq", "celery")


@dataclass(frozen=True)
class Scenario:
    name: str
    task_name: str
    taskiq_slots: int
    celery_processes: int
    #: Keys one finished task leaves in the shared database: its result, and for an
    #: agent run its dedup claim and its session's event stream.
    keys_per_task: int


NOOP = Scenario("noop", "bench.noop", taskiq_slots=10, celery_processes=10, keys_per_task=1)
AGENT = Scenario(
    "agent", "tasks.agent.run_command", taskiq_slots=10, celery_processes=10, keys_per_task=3
)
IO = Scenario("io", "bench.io", taskiq_slots=100, celery_processes=1, keys_per_task=1)
SCENARIOS = (NOOP, AGENT, IO)


@dataclass(frozen=True)
class Drain:
    framework: str
    scenario: str
    round: int
    concurrency: int
    count: int
    seconds: float
    tasks_per_s: float
    peak_rss_mib: float


class DrainFailedError(RuntimeError):
    """A worker exited or stalled before draining its queue."""


def _url(server: LocalRedisServer, db: int) -> str:
    return f"redis://127.0.0.1:{server.port}/{db}"


def _env(server: LocalRedisServer) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TASKIQ_", "AGENT_"))}
    return clean | {
        "PYTHONPATH": str(BENCH),
        "REDIS_URL": _url(server, SHARED_DB),
        "TASKIQ_BROKER_URL": _url(server, BROKER_DB),
        "BENCH_BROKER_URL": _url(server, BROKER_DB),
        "BENCH_RESULT_URL": _url(server, SHARED_DB),
        "AGENT_WORK_MS": "0",
        "WORKER_METRICS_PORT": "0",
    }


def _payloads(scenario: Scenario, count: int) -> list[tuple[Any, ...]]:
    if scenario is not AGENT:
        return [() for _ in range(count)]
    return [
        ({"command": "run", "session_id": str(uuid.uuid4()), "dedup_key": uuid.uuid4().hex},)
        for _ in range(count)
    ]


async def _fill_taskiq(server: LocalRedisServer, scenario: Scenario, count: int) -> None:
    settings = Settings(
        redis=RedisSettings(url=_url(server, SHARED_DB)),
        taskiq=TaskiqSettings(broker_url=_url(server, BROKER_DB)),
        worker=WorkerSettings(metrics_port=0),
    )
    broker = build_broker(settings, metrics_registry=CollectorRegistry())

    async def stand_in(*args: Any) -> None:
        """Only the task's name travels."""

    task = broker.register_task(stand_in, task_name=scenario.task_name)
    await broker.startup()
    payloads = _payloads(scenario, count)
    for start in range(0, count, 500):
        await asyncio.gather(*(task.kiq(*args) for args in payloads[start : start + 500]))
    await broker.shutdown()


def _fill_celery(server: LocalRedisServer, scenario: Scenario, count: int) -> None:
    os.environ.update(_env(server))
    sys.path.insert(0, str(BENCH))
    from worker_celery_app import app  # noqa: PLC0415 - needs the environment set above

    for args in _payloads(scenario, count):
        app.send_task(scenario.task_name, args=args)


def _command(framework: str, concurrency: int) -> list[str]:
    if framework == "taskiq":
        return [
            str(BIN / "taskiq"), "worker", "taskiq_fleet_worker.app:broker",
            "taskiq_fleet_worker.tasks", "worker_bench_tasks",
            "--workers", "1", "--max-async-tasks", str(concurrency), "--log-level", "WARNING",
        ]  # fmt: skip
    return [
        str(BIN / "celery"), "-A", "worker_celery_app", "worker",
        "--pool", "prefork", "--concurrency", str(concurrency), "--loglevel", "WARNING",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip


class RssSampler(threading.Thread):
    """Peak RSS of a process and all its descendants, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak_bytes = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            try:
                tree = [self.root, *self.root.children(recursive=True)]
                total = 0
                for process in tree:
                    try:
                        total += process.memory_info().rss
                    except psutil.NoSuchProcess:
                        # Holds: a child gone between listing and reading counts as zero.
                        continue
            except psutil.NoSuchProcess:
                # Gives up: the worker itself has exited.
                return
            self.peak_bytes = max(self.peak_bytes, total)


def drain(
    server: LocalRedisServer,
    *,
    framework: str,
    scenario: Scenario,
    count: int,
    round_: int,
    logs: Path,
) -> Drain:
    """Fill the queue, start one worker, time it from its first key to its last."""
    client = redis.Redis.from_url(_url(server, SHARED_DB))
    client.flushall()
    if framework == "taskiq":
        asyncio.run(_fill_taskiq(server, scenario, count))
    else:
        _fill_celery(server, scenario, count)
    concurrency = scenario.taskiq_slots if framework == "taskiq" else scenario.celery_processes
    log_path = logs / f"{framework}.{scenario.name}.{round_}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _command(framework, concurrency),
            cwd=BENCH,
            env=_env(server),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sampler = RssSampler(process.pid)
    sampler.start()
    expected_keys = count * scenario.keys_per_task
    try:
        first_s, first_keys = _wait_for(client, process, keys=1, timeout_s=120, log=log_path)
        last_s, _ = _wait_for(client, process, keys=expected_keys, timeout_s=900, log=log_path)
    finally:
        sampler.stopped.set()
        _stop(process)
    try:
        results = _count_results(client, framework)
    finally:
        client.close()
    if results != count:
        raise DrainFailedError(f"{results} results for {count} tasks; see {log_path}")
    seconds = last_s - first_s
    return Drain(
        framework=framework,
        scenario=scenario.name,
        round=round_,
        concurrency=concurrency,
        count=count,
        seconds=round(seconds, 3),
        tasks_per_s=round((count - first_keys // scenario.keys_per_task) / seconds, 1),
        peak_rss_mib=round(sampler.peak_bytes / 2**20, 1),
    )


def _wait_for(
    client: redis.Redis,
    process: subprocess.Popen[bytes],
    *,
    keys: int,
    timeout_s: float,
    log: Path,
) -> tuple[float, int]:
    """The moment the shared database holds ``keys`` keys, and how many it held then."""
    deadline = time.monotonic() + timeout_s
    while True:
        held = int(client.dbsize())
        now = time.monotonic()
        if held >= keys:
            return now, held
        if process.poll() is not None:
            raise DrainFailedError(f"the worker exited with {process.returncode}; see {log}")
        if now > deadline:
            raise DrainFailedError(f"only {held} of {keys} keys after {timeout_s} s; see {log}")
        # Every 10 ms: fine enough for drains of several seconds, and light enough
        # not to compete with the worker and the server for the two cores.
        time.sleep(0.01)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        # Gives up on a clean stop: the figures are taken already.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _count_results(client: redis.Redis, framework: str) -> int:
    """Results written, counted once the drain is timed: every task must have one."""
    pattern = f"{RESULT_PREFIX}:*" if framework == "taskiq" else "celery-task-meta-*"
    return sum(1 for _ in client.scan_iter(match=pattern, count=1000))


def _server_version(server: LocalRedisServer) -> str:
    client = redis.Redis.from_url(_url(server, BROKER_DB))
    try:
        info = client.info("server")
    finally:
        client.close()
    name = "valkey" if "valkey_version" in info else "redis"
    return f"{name} {info.get(f'{name}_version', info.get('redis_version'))}"


def _summary(drains: list[Drain]) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for scenario in SCENARIOS:
        for framework in FRAMEWORKS:
            runs = [d for d in drains if (d.framework, d.scenario) == (framework, scenario.name)]
            if not runs:
                continue
            rates = [d.tasks_per_s for d in runs]
            summary[f"{framework}_{scenario.name}"] = {
                "median_tasks_per_s": round(statistics.median(rates), 1),
                "min_tasks_per_s": min(rates),
                "max_tasks_per_s": max(rates),
                "drains": len(runs),
                "peak_rss_mib": max(d.peak_rss_mib for d in runs),
                "concurrency": runs[0].concurrency,
            }
    return summary


def _ratios(drains: list[Drain], summary: dict[str, dict[str, float]]) -> dict[str, float]:
    def rate(key: str) -> float:
        return summary[key]["median_tasks_per_s"]

    def rss(key: str) -> float:
        return summary[key]["peak_rss_mib"]

    ratios: dict[str, float] = {}
    for scenario in SCENARIOS:
        taskiq, celery = f"taskiq_{scenario.name}", f"celery_{scenario.name}"
        ratios[f"{scenario.name}_taskiq_over_celery_rate"] = round(rate(taskiq) / rate(celery), 2)
        ratios[f"{scenario.name}_celery_over_taskiq_rss"] = round(rss(celery) / rss(taskiq), 2)
    ratios["agent_over_noop_rate_taskiq"] = round(rate("taskiq_agent") / rate("taskiq_noop"), 2)

    # Each round's own ratio: its two drains ran back to back, on the same machine load.
    taskiq_rates = {(d.scenario, d.round): d.tasks_per_s for d in drains if d.framework == "taskiq"}
    per_round = [
        taskiq_rates[("agent", r)] / taskiq_rates[("noop", r)]
        for r in sorted({r for _, r in taskiq_rates})
        if ("agent", r) in taskiq_rates and ("noop", r) in taskiq_rates
    ]
    ratios["agent_over_noop_rate_taskiq_median_of_rounds"] = round(statistics.median(per_round), 2)
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="tasks per drain (>= 5000)")
    parser.add_argument("--rounds", type=int, default=5, help="no-op and agent drains each")
    args = parser.parse_args()
    if args.count < 5000 or args.rounds < 1:
        parser.error("--count must be at least 5000 and --rounds at least 1")
    logs = Path(tempfile.mkdtemp(prefix="worker-throughput-"))
    drains: list[Drain] = []

    def run(framework: str, scenario: Scenario, round_: int) -> None:
        result = drain(
            server, framework=framework, scenario=scenario, count=args.count, round_=round_,
            logs=logs,
        )  # fmt: skip
        drains.append(result)
        print(
            f"round {round_} {scenario.name:5} {framework:6} concurrency {result.concurrency:3}: "
            f"{result.tasks_per_s:8.1f} tasks/s, peak RSS {result.peak_rss_mib:6.1f} MiB",
            flush=True,
        )

    with LocalRedisServer() as server:
        server_version = _server_version(server)
        for round_ in range(1, args.rounds + 1):
            for framework in FRAMEWORKS:
                for scenario in (NOOP, AGENT):
                    run(framework, scenario, round_)
        for framework in FRAMEWORKS:
            run(framework, IO, 1)
    shutil.rmtree(logs)

    summary = _summary(drains)
    ratios = _ratios(drains, summary)
    targets = {
        "noop_taskiq_over_celery_rate >= 2": ratios["noop_taskiq_over_celery_rate"] >= 2,
        "io_taskiq_over_celery_rate >= 10": ratios["io_taskiq_over_celery_rate"] >= 10,
        "agent_over_noop_rate_taskiq >= 0.6": ratios["agent_over_noop_rate_taskiq"] >= 0.6,
    }
    for key, figures in summary.items():
        print(
            f"{key:13} median {figures['median_tasks_per_s']:8.1f} tasks/s "
            f"({figures['min_tasks_per_s']:.1f}..{figures['max_tasks_per_s']:.1f}), "
            f"peak RSS {figures['peak_rss_mib']:.1f} MiB"
        )
    for name, value in ratios.items():
        print(f"{name:45} {value}")
    for name, met in targets.items():
        print(f"target {name:40} {'met' if met else 'MISSED'}")
    report = {
        "benchmark": "worker_throughput",
        "command": "uv run --frozen python bench/worker_throughput.py "
        f"--count {args.count} --rounds {args.rounds}",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "server": server_version,
        },
        "count": args.count,
        "rounds": args.rounds,
        "summary": summary,
        "ratios": ratios,
        "targets_met": targets,
        "drains": [asdict(d) for d in drains],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "worker_throughput.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
