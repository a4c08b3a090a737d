"""The demo's live view: a table redrawn in place on a terminal, plain lines elsewhere."""

from __future__ import annotations

import collections
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from rich.console import Console, Group


@dataclass(frozen=True, slots=True)
class Status:
    """What the view shows at one moment."""

    elapsed_s: float
    phase: str
    waiting: float | None
    in_flight: float | None
    oldest_age_s: float | None
    workers: int
    ready: int
    desired: int
    min_workers: int
    max_workers: int
    sent: int
    planned: int
    completed: int
    broker_up: bool


class View(Protocol):
    def update(self, status: Status) -> None: ...

    def note(self, line: str) -> None: ...

    def close(self) -> None: ...


def _num(value: float | None, unit: str = "") -> str:
    """Whole numbers as such (counts are whole unless queues carry weights), else 0.1."""
    if value is None:
        return "-"
    if value >= 10 or value == int(value):
        return f"{value:.0f}{unit}"
    return f"{value:.1f}{unit}"


class RichView:
    """A table of the pool's numbers and the last decisions, redrawn four times a second."""

    def __init__(self, *, title: str, console: Console | None = None) -> None:
        self._title = title
        self._notes: collections.deque[str] = collections.deque(maxlen=8)
        self._status: Status | None = None
        # rich comes with taskiq-fleet[demo]; imported here so plain output needs none of it.
        from rich.console import Console  # noqa: PLC0415
        from rich.live import Live  # noqa: PLC0415

        self._live = Live(
            self._render(), console=console or Console(), refresh_per_second=4, transient=False
        )
        self._live.start()

    def update(self, status: Status) -> None:
        self._status = status
        self._live.update(self._render())

    def note(self, line: str) -> None:
        self._notes.append(line)
        self._live.update(self._render())

    def close(self) -> None:
        self._live.stop()

    def _render(self) -> Group:
        from rich.console import Group  # noqa: PLC0415 - see __init__
        from rich.panel import Panel  # noqa: PLC0415
        from rich.table import Table  # noqa: PLC0415
        from rich.text import Text  # noqa: PLC0415

        table = Table.grid(padding=(0, 3))
        table.add_column(style="bold")
        table.add_column()
        s = self._status
        if s is not None:
            bar = "■" * s.workers + "·" * max(0, s.max_workers - s.workers)
            rows = [
                ("phase", f"{s.phase} ({s.elapsed_s:.0f}s)"),
                ("queue depth", _num(s.waiting)),
                ("in flight", _num(s.in_flight)),
                ("oldest task", _num(s.oldest_age_s, "s")),
                (
                    "workers",
                    f"{s.workers} running, {s.ready} ready, {s.desired} desired  [{bar}]",
                ),
                ("commands", f"{s.completed} done / {s.sent} sent / {s.planned} planned"),
                ("redis", "up" if s.broker_up else "UNREACHABLE: holding workers"),
            ]
            for name, value in rows:
                # Text, not markup: a value must never be read as a style tag.
                table.add_row(name, Text(value))
        notes = "\n".join(self._notes) or "(no scaling decision yet)"
        return Group(
            Panel(table, title=self._title),
            Panel(Text(notes), title="decisions", title_align="left"),
        )


class PlainView:
    """One line every ``every_s`` and one per note: for logs, CI and pipes."""

    def __init__(self, *, stream: TextIO | None = None, every_s: float = 2.0) -> None:
        self._stream = stream or sys.stdout
        self._every_s = every_s
        self._last_at = -1e9

    def update(self, status: Status) -> None:
        now = time.monotonic()
        if now - self._last_at < self._every_s:
            return
        self._last_at = now
        s = status
        self._print(
            f"t={s.elapsed_s:.0f}s phase={s.phase} waiting={_num(s.waiting)} "
            f"in_flight={_num(s.in_flight)} oldest={_num(s.oldest_age_s, 's')} "
            f"workers={s.workers} ready={s.ready} desired={s.desired} "
            f"done={s.completed}/{s.sent}" + ("" if s.broker_up else " redis=UNREACHABLE")
        )

    def note(self, line: str) -> None:
        self._print(line)

    def close(self) -> None:
        self._stream.flush()

    def _print(self, line: str) -> None:
        print(line, file=self._stream, flush=True)
