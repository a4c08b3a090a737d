"""The demo's record over time, its picture, and its two kinds of live view."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from taskiq_fleet.demo.timeline import Sample, Timeline
from taskiq_fleet.demo.view import PlainView, RichView, Status


def sample(t_s: float, workers: int) -> Sample:
    return Sample(
        t_s=t_s,
        waiting=10.0,
        in_flight=2.0,
        oldest_age_s=1.0,
        workers=workers,
        ready=workers,
        desired=workers,
        completed=0,
    )


def status(workers: int) -> Status:
    return Status(
        elapsed_s=12.0,
        phase="load",
        waiting=30.0,
        in_flight=8.0,
        oldest_age_s=2.5,
        workers=workers,
        ready=workers - 1,
        desired=workers,
        min_workers=1,
        max_workers=6,
        sent=40,
        planned=80,
        completed=10,
        broker_up=True,
    )


def test_worker_seconds_hold_each_count_until_the_next_sample() -> None:
    timeline = Timeline(samples=[sample(0, 1), sample(2, 4), sample(5, 1), sample(6, 1)])

    assert timeline.worker_seconds == 1 * 2 + 4 * 3 + 1 * 1
    assert timeline.peak_workers == 4
    assert timeline.duration_s == 6


def test_the_picture_is_a_png(tmp_path: Path) -> None:
    timeline = Timeline(samples=[sample(0, 1), sample(1, 3), sample(2, 2)], bursts_s=[0.5])
    path = tmp_path / "run.png"

    timeline.render_png(path, title="test run")

    assert path.read_bytes().startswith(b"\x89PNG")


def test_the_plain_view_prints_a_line_per_period_and_every_note() -> None:
    out = io.StringIO()
    view = PlainView(stream=out, every_s=3600)

    view.update(status(workers=3))
    view.update(status(workers=4))  # within the period: not printed
    view.note("  5.0s  workers 1 -> 3: scale up")
    view.close()

    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        "t=12s phase=load waiting=30 in_flight=8 oldest=2.5s workers=3 ready=2 desired=3"
    )
    assert lines[1] == "  5.0s  workers 1 -> 3: scale up"


def test_the_rich_view_draws_the_numbers_and_the_decisions() -> None:
    out = io.StringIO()
    view = RichView(title="demo", console=Console(file=out, force_terminal=True, width=100))

    view.update(status(workers=4))
    view.note("workers 1 -> 4: scale up")
    view.close()

    text = out.getvalue()
    assert "4 running, 3 ready, 4 desired" in text
    assert "10 done / 40 sent / 80 planned" in text
    assert "workers 1 -> 4: scale up" in text
