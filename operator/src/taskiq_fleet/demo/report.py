"""The demo's closing summary, on the terminal and as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from taskiq_fleet.demo.run import DemoResult
from taskiq_fleet.demo.scenario import Scenario


def summary_dict(
    result: DemoResult, *, scenario: Scenario, workdir: Path, metrics_url: str
) -> dict[str, Any]:
    """Every figure of the summary, measured in this run; ``problems`` lists failures."""
    t = result.tally
    timeline = result.timeline
    problems = list(result.problems)
    if t.lost:
        problems.append(f"{t.lost} command(s) lost: never finished and not in the queue")
    if t.duplicated:
        problems.append(f"{t.duplicated} command(s) ran more than once")
    if t.unfinished and not t.lost and not result.interrupted:
        problems.append(f"{t.unfinished} command(s) still queued when the demo ended")
    if t.failed:
        problems.append(f"{t.failed} run(s) failed; see the logs")
    fixed_peak = timeline.peak_workers * timeline.duration_s
    return {
        "sent": t.sent,
        "completed": t.completed,
        "failed": t.failed,
        "lost": t.lost,
        "duplicated": t.duplicated,
        "deduplicated_deliveries": t.deduplicated,
        "still_queued": t.queued_at_end,
        "wait_p50_s": t.wait_p50_s,
        "wait_p95_s": t.wait_p95_s,
        "wait_max_s": t.wait_max_s,
        "min_workers": scenario.min_workers,
        "max_workers": scenario.max_workers,
        "peak_workers": timeline.peak_workers,
        "final_workers": result.final_workers,
        "final_desired": result.final_desired,
        "worker_seconds": round(timeline.worker_seconds, 1),
        "fixed_peak_worker_seconds": round(fixed_peak, 1),
        "run_seconds": round(timeline.duration_s, 1),
        "interrupted": result.interrupted,
        "metrics_url": metrics_url,
        "logs": str(workdir),
        "problems": problems,
    }


def _seconds(value: object) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.2f}s"


def print_summary(s: dict[str, Any]) -> None:
    saved = ""
    if s["fixed_peak_worker_seconds"]:
        share = 1 - s["worker_seconds"] / s["fixed_peak_worker_seconds"]
        saved = f" ({share:.0%} less than {s['peak_workers']} workers all along)"
    rows = [
        ("commands sent", str(s["sent"])),
        ("completed", str(s["completed"])),
        ("lost", str(s["lost"])),
        ("duplicated", str(s["duplicated"])),
        ("failed", str(s["failed"])),
        ("still queued", str(s["still_queued"])),
        (
            "wait p50 / p95 / max",
            " / ".join(_seconds(s[k]) for k in ("wait_p50_s", "wait_p95_s", "wait_max_s")),
        ),
        (
            "workers",
            f"peak {s['peak_workers']}, at the end {s['final_workers']} "
            f"(min {s['min_workers']}, max {s['max_workers']})",
        ),
        ("worker-seconds", f"{s['worker_seconds']:.0f}{saved}"),
        ("run time", f"{s['run_seconds']:.0f}s" + (" (interrupted)" if s["interrupted"] else "")),
        ("logs", s["logs"]),
    ]
    click.echo("\ntaskiq-fleet demo: summary")
    for name, value in rows:
        click.echo(f"  {name:<22}{value}")
    for problem in s["problems"]:
        click.secho(f"  PROBLEM: {problem}", fg="red", err=True)
    if s["problems"]:
        return
    if s["interrupted"]:
        click.secho(
            f"  interrupted: nothing lost or run twice; {s['still_queued']} command(s) "
            "left in the queue",
            fg="yellow",
        )
    else:
        click.secho("  every command ran exactly once", fg="green")


def write_json(path: Path, summary: dict[str, Any]) -> None:
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
