"""Worker logs that say which task and which session they are about.

The runtime sets the task id and session id of the run it executes in context
variables; every record logged inside that run (by us or by Taskiq's receiver) carries
them. ``WORKER_LOG_FORMAT=json`` writes one JSON object per line for log collectors;
``text`` keeps Taskiq's layout and appends ``task_id=... session_id=...``.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Final, Literal

task_id_var: ContextVar[str | None] = ContextVar("taskiq_fleet_task_id", default=None)
session_id_var: ContextVar[str | None] = ContextVar("taskiq_fleet_session_id", default=None)

TEXT_FORMAT: Final = "[%(asctime)s][%(name)s][%(levelname)-7s][%(processName)s] %(message)s"


class RunContextFilter(logging.Filter):
    """Adds ``task_id`` and ``session_id`` (or ``None``) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.task_id = task_id_var.get()
        record.session_id = session_id_var.get()
        return True


class TextFormatter(logging.Formatter):
    """Taskiq's text layout, with the run's ids appended when there are any."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [
            f"{name}={value}"
            for name in ("task_id", "session_id")
            if (value := getattr(record, name, None))
        ]
        return f"{line} {' '.join(ids)}" if ids else line


class JsonFormatter(logging.Formatter):
    """One JSON object per record, always with the same keys in the same order."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "task_id": getattr(record, "task_id", None),
            "session_id": getattr(record, "session_id", None),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)


def configure_logging(*, log_format: Literal["text", "json"]) -> None:
    """Give the root logger's handlers our formatter and the run-context filter.

    ``taskiq worker`` has configured a root handler by the time this runs (in the
    worker process's startup); without one, a stderr handler is added.
    """
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    formatter: logging.Formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    for handler in root.handlers:
        handler.setFormatter(formatter)
        if not any(isinstance(f, RunContextFilter) for f in handler.filters):
            handler.addFilter(RunContextFilter())
