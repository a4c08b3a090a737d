"""What the demo runs: the pool's settings and the bursts of load, on one timeline.

Two bursts show the whole cycle twice: a queue that jumps, workers that follow it
up, the backlog draining, and the pool coming back down once the work is gone. The
scale-down window is short (HPA's default is five minutes) so a person watching
sees the step down within the run; everything else is the engine's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Wave:
    """One run of the load generator, started ``at_s`` seconds into the demo."""

    at_s: float
    count: int
    pattern: str = "burst"
    rate: float = 200.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """The demo's pool and load. ``settle_timeout_s``: how long, after the last wave,
    the demo waits for every command to finish and the pool to come back down."""

    waves: tuple[Wave, ...]
    work_ms: int
    min_workers: int
    max_workers: int
    concurrency: int
    poll_interval_s: float
    scale_down_window_s: int
    scale_down_period_s: int
    drain_timeout_s: int
    settle_timeout_s: float
    queue: str = "taskiq-fleet-demo"

    @classmethod
    def standard(cls, *, duration_s: float = 50.0, burst: int = 140) -> Scenario:
        """About a minute: two bursts, half the duration apart."""
        return cls(
            waves=(Wave(at_s=3.0, count=burst), Wave(at_s=3.0 + duration_s / 2, count=burst)),
            work_ms=1000,
            min_workers=1,
            max_workers=6,
            concurrency=4,
            poll_interval_s=1.0,
            scale_down_window_s=8,
            scale_down_period_s=5,
            drain_timeout_s=20,
            settle_timeout_s=max(40.0, duration_s),
        )

    @classmethod
    def quick(cls, *, burst: int = 40) -> Scenario:
        """For tests: one burst, short tasks, fast scale-down; about 20 seconds."""
        return cls(
            waves=(Wave(at_s=1.0, count=burst),),
            work_ms=500,
            min_workers=1,
            max_workers=4,
            concurrency=2,
            poll_interval_s=0.5,
            scale_down_window_s=2,
            scale_down_period_s=1,
            drain_timeout_s=10,
            settle_timeout_s=30.0,
        )

    @property
    def sent_total(self) -> int:
        return sum(wave.count for wave in self.waves)

    @property
    def load_end_s(self) -> float:
        return max(wave.at_s for wave in self.waves)

    def spec_overrides(self) -> dict[str, Any]:
        """The pool spec (paths as in a TaskiqWorkerPool) this scenario runs."""
        return {
            "broker.queues": [{"name": self.queue}],
            "broker.kind": "list",
            "scaling.minReplicas": self.min_workers,
            "scaling.maxReplicas": self.max_workers,
            "scaling.pollIntervalSeconds": self.poll_interval_s,
            "scaling.behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": self.scale_down_window_s,
                    "policies": [
                        {"type": "Percent", "value": 100, "periodSeconds": self.scale_down_period_s}
                    ],
                }
            },
            "worker.concurrency": self.concurrency,
            "worker.drainTimeoutSeconds": self.drain_timeout_s,
        }

    def worker_command(self, *, taskiq: str) -> tuple[str, ...]:
        """The agent worker, run by Taskiq's own CLI, one process per replica."""
        return (
            taskiq,
            "worker",
            "taskiq_fleet_worker.app:broker",
            "taskiq_fleet_worker.tasks",
            "--workers", "1",
            "--max-async-tasks", str(self.concurrency),
            # The worker finishes its tasks before the supervisor's patience runs out.
            "--wait-tasks-timeout", str(max(1, self.drain_timeout_s - 5)),
            "--log-level", "WARNING",
        )  # fmt: skip

    def load_command(self, wave: Wave, *, agent: str, out: str) -> tuple[str, ...]:
        """The agent's own load generator: real commands through the real producer."""
        return (
            agent,
            "load",
            "--count", str(wave.count),
            "--pattern", wave.pattern,
            "--rate", f"{wave.rate:g}",
            "--work-ms", str(self.work_ms),
            "--out", out,
        )  # fmt: skip
