"""The demo's record over time: queue, in-flight work and workers, sampled on a period.

From it come the peak worker count, the worker-seconds the run used (the area under
the worker curve, what a cluster would bill), and the optional PNG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Sample:
    """One moment of the run; ``t_s`` counts from the start of the demo."""

    t_s: float
    waiting: float | None
    in_flight: float | None
    oldest_age_s: float | None
    workers: int
    ready: int
    desired: int
    completed: int


@dataclass
class Timeline:
    samples: list[Sample] = field(default_factory=list)
    #: Start times (on the same clock) of each burst of load, for the picture.
    bursts_s: list[float] = field(default_factory=list)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    @property
    def peak_workers(self) -> int:
        return max((s.workers for s in self.samples), default=0)

    @property
    def duration_s(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        return self.samples[-1].t_s - self.samples[0].t_s

    @property
    def worker_seconds(self) -> float:
        """Running workers integrated over time (each count held until the next sample)."""
        total = 0.0
        for before, after in zip(self.samples, self.samples[1:], strict=False):
            total += before.workers * (after.t_s - before.t_s)
        return total

    def render_png(self, path: Path, *, title: str) -> None:
        """Draw queue and in-flight work above, workers below; written with Agg."""
        import matplotlib  # noqa: PLC0415 - a heavy import, only when a PNG is asked for

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415 - after choosing the backend

        t = [s.t_s for s in self.samples]
        fig, (work_ax, workers_ax) = plt.subplots(
            2, 1, sharex=True, figsize=(10, 6), height_ratios=(3, 2)
        )
        try:
            work_ax.plot(t, [s.waiting or 0 for s in self.samples], label="waiting")
            work_ax.plot(t, [s.in_flight or 0 for s in self.samples], label="in flight")
            work_ax.set_ylabel("tasks")
            work_ax.set_title(title)
            work_ax.legend(loc="upper right")
            workers_ax.step(t, [s.workers for s in self.samples], where="post", label="running")
            workers_ax.step(t, [s.ready for s in self.samples], where="post", label="ready")
            workers_ax.step(
                t, [s.desired for s in self.samples], where="post", linestyle="--",
                label="desired",
            )  # fmt: skip
            workers_ax.set_ylabel("workers")
            workers_ax.set_xlabel("seconds since start")
            workers_ax.legend(loc="upper right")
            for at in self.bursts_s:
                for ax in (work_ax, workers_ax):
                    ax.axvline(at, color="grey", linewidth=0.8, linestyle=":")
            for ax in (work_ax, workers_ax):
                ax.grid(alpha=0.3)
            fig.tight_layout()
            fig.savefig(path, dpi=100)
        finally:
            plt.close(fig)
