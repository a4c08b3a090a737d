"""What a long-running local command needs around its work: logs, signals, /metrics."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Plain lines on stderr; the control loop's one line per change reads well there."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, force=True)


#: A second signal this soon after the first is the same request, not an insistence:
#: a terminal's Ctrl-C reaches the whole process group, and wrappers such as ``uv run``
#: or ``timeout`` pass the same signal on once more.
SAME_REQUEST_S = 1.0


def stop_on_signals(stop: asyncio.Event, *, on_second: Callable[[], None]) -> None:
    """SIGINT or SIGTERM sets ``stop``; a second one calls ``on_second`` (kill, don't wait)."""
    loop = asyncio.get_running_loop()
    first_at: float | None = None

    def handle(signum: int) -> None:
        nonlocal first_at
        now = loop.time()
        if first_at is None:
            first_at = now
            logging.getLogger("taskiq_fleet.local").info(
                "received %s: draining the workers (again to kill them now)",
                signal.Signals(signum).name,
            )
            stop.set()
        elif now - first_at >= SAME_REQUEST_S:
            on_second()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, handle, signum)


@dataclass
class MetricsServer:
    """The /metrics endpoint on loopback, served from a thread by prometheus_client."""

    port: int
    _server: WSGIServer
    _thread: threading.Thread

    @classmethod
    def start(
        cls, registry: CollectorRegistry, *, port: int, host: str = "127.0.0.1"
    ) -> MetricsServer:
        """Serve on ``port`` (0: any free port); raises ``OSError`` when it is taken."""
        server, thread = start_http_server(port, addr=host, registry=registry)
        return cls(port=server.server_port, _server=server, _thread=thread)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
