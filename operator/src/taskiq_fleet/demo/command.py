"""``taskiq-fleet demo``: watch a worker pool follow bursts of real agent work."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

import click
from prometheus_client import CollectorRegistry

from taskiq_fleet.contract import keys
from taskiq_fleet.demo.report import print_summary, summary_dict, write_json
from taskiq_fleet.demo.run import DemoResult, DemoRun
from taskiq_fleet.demo.scenario import Scenario
from taskiq_fleet.demo.view import PlainView, RichView, View
from taskiq_fleet.local.command import DEFAULT_METRICS_PORT, resolve_program
from taskiq_fleet.local.config import LocalConfigError, load_pool
from taskiq_fleet.local.runtime import LOG_FORMAT, MetricsServer, stop_on_signals
from taskiq_fleet.redis_server import LocalRedisServer, RedisServerUnavailableError
from taskiq_fleet.telemetry.metrics import FleetMetrics


@click.command("demo", context_settings={"show_default": True})
@click.option("--quick", is_flag=True, help="One short burst, about 20 seconds (for tests).")
@click.option(
    "--duration",
    type=click.FloatRange(min=4),
    help="Seconds of load: two bursts, half of it apart [default: 50; not with --quick].",
)
@click.option("--burst", type=click.IntRange(min=1), help="Commands per burst [default: 140/40].")
@click.option(
    "--redis-url",
    envvar="REDIS_URL",
    help="Use this Redis [env REDIS_URL]; without it an embedded server is started.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    default=DEFAULT_METRICS_PORT,
    help="Serve /metrics on 127.0.0.1 here; if taken, any free port (0: any).",
)
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), help="Draw the run here.")
@click.option(
    "--summary-json",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the summary as JSON here.",
)
@click.option("--plain", is_flag=True, help="Plain lines even on a terminal.")
def command(
    *,
    quick: bool,
    duration: float | None,
    burst: int | None,
    redis_url: str | None,
    metrics_port: int,
    png: Path | None,
    summary_json: Path | None,
    plain: bool,
) -> None:
    """Run the agent worker on this machine, send it bursts of work, scale it live.

    Starts a Redis-compatible server (unless REDIS_URL is set), the local supervisor
    with `taskiq worker` processes of the agent, and the agent's load generator; shows
    the queue and the workers as they move, serves /metrics, and ends with a summary.
    Exits non-zero if a command was lost, ran twice or never finished.
    """
    _require_extras(live=not (plain or not sys.stdout.isatty()), png=png is not None)
    scenario = _scenario(quick=quick, duration_s=duration, burst=burst)
    taskiq = resolve_program("taskiq")
    agent = _agent_program()
    workdir = Path(tempfile.mkdtemp(prefix="taskiq-fleet-demo-"))
    _log_to_file(workdir / "demo.log")

    server: LocalRedisServer | None = None
    if not redis_url:
        server = _start_server()
        redis_url = server.url
    try:
        result, shown_metrics = asyncio.run(
            _run(
                scenario,
                redis_url=redis_url,
                taskiq=taskiq,
                agent=agent,
                workdir=workdir,
                metrics_port=metrics_port,
                plain=plain or not sys.stdout.isatty(),
            )
        )
    finally:
        if server is not None:
            server.close()

    summary = summary_dict(result, scenario=scenario, workdir=workdir, metrics_url=shown_metrics)
    print_summary(summary)
    if png is not None:
        result.timeline.render_png(png, title=f"taskiq-fleet demo: {summary['sent']} commands")
        click.echo(f"picture: {png}")
    if summary_json is not None:
        write_json(summary_json, summary)
    if summary["problems"]:
        raise SystemExit(1)


def _require_extras(*, live: bool, png: bool) -> None:
    """Fail before starting anything when a part of taskiq-fleet[demo] is missing."""
    needed = [("rich", live), ("matplotlib", png)]
    missing = [name for name, wanted in needed if wanted and importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(
            f"the demo needs {', '.join(missing)}: install taskiq-fleet[demo] "
            "(or pass --plain and leave out --png)"
        )


def _start_server() -> LocalRedisServer:
    """The embedded server, deaf to the terminal's Ctrl-C.

    Ctrl-C reaches every process of the terminal's foreground group. The workers and
    the load run in sessions of their own; the server cannot, so it starts with SIGINT
    blocked (a blocked signal stays blocked across exec). It must outlive the workers'
    drain, and the demo stops it itself, with SIGTERM, once the count is done.
    """
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        server = LocalRedisServer()
        server.start()
    except RedisServerUnavailableError as exc:
        # Gives up: without a server there is no demo; the message says how to get one.
        raise click.ClickException(str(exc)) from None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return server


def _scenario(*, quick: bool, duration_s: float | None, burst: int | None) -> Scenario:
    if quick:
        if duration_s is not None:
            raise click.UsageError("--duration sets the standard run's two bursts; --quick has one")
        return Scenario.quick(burst=burst or 40)
    return Scenario.standard(duration_s=duration_s or 50.0, burst=burst or 140)


def _agent_program() -> str:
    try:
        return resolve_program("taskiq-fleet-agent")
    except click.UsageError:
        # Gives up with advice: the demo's workers and load are the agent's programs.
        raise click.ClickException(
            "taskiq-fleet-agent not found: the demo runs the agent worker; install "
            "taskiq-fleet-worker into this environment (tools/dev demo does)"
        ) from None


async def _run(
    scenario: Scenario,
    *,
    redis_url: str,
    taskiq: str,
    agent: str,
    workdir: Path,
    metrics_port: int,
    plain: bool,
) -> tuple[DemoResult, str]:
    try:
        pool = load_pool(
            file=None,
            name="demo",
            redis_url=redis_url,
            command=scenario.worker_command(taskiq=taskiq),
            overrides=scenario.spec_overrides(),
        )
    except LocalConfigError as exc:
        # Gives up: only a bad --redis-url gets here; the message names it, redacted.
        raise click.UsageError(str(exc)) from None

    registry = CollectorRegistry()
    server = _serve_metrics(registry, port=metrics_port)
    view: View = PlainView() if plain else RichView(title="taskiq-fleet demo")
    view.note(f"metrics at {server.url}; logs in {workdir}")
    forward = _NoteHandler(view)
    logging.getLogger("taskiq_fleet").addHandler(forward)

    env = {
        **os.environ,
        keys.ENV_BROKER_URL: redis_url,
        keys.ENV_RESULT_BACKEND_URL: redis_url,
        keys.ENV_AGENT_WORK_MS: str(scenario.work_ms),
        keys.ENV_WORKER_METRICS_PORT: "0",
    }
    demo = DemoRun(
        scenario,
        pool=pool,
        view=view,
        workdir=workdir,
        metrics=FleetMetrics(registry),
        agent_program=agent,
        env=pool.worker_env(env),
    )
    stop = asyncio.Event()
    stop_on_signals(stop, on_second=demo.supervisor.force_stop)
    try:
        result = await demo.run(stop)
    finally:
        logging.getLogger("taskiq_fleet").removeHandler(forward)
        view.close()
        server.close()
    return result, server.url


def _serve_metrics(registry: CollectorRegistry, *, port: int) -> MetricsServer:
    try:
        return MetricsServer.start(registry, port=port)
    except OSError:
        # Retries once on any free port: a busy default port must not stop a demo.
        return MetricsServer.start(registry, port=0)


def _log_to_file(path: Path) -> None:
    """Every log line goes to the run's log file; the view shows the ones that matter."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)


class _NoteHandler(logging.Handler):
    """Shows the supervisor's warnings and errors in the view (not the workers' output)."""

    def __init__(self, view: View) -> None:
        super().__init__(level=logging.WARNING)
        self._view = view

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("taskiq_fleet.worker"):
            return
        self._view.note(f"{record.levelname.lower()}: {record.getMessage().splitlines()[0]}")
