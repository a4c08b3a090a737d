"""``taskiq-fleet local``: autoscale a Taskiq worker command on this machine."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import sys
from pathlib import Path

import click
from prometheus_client import CollectorRegistry

from taskiq_fleet.local.config import LocalConfigError, load_pool
from taskiq_fleet.local.runtime import MetricsServer, configure_logging, stop_on_signals
from taskiq_fleet.local.supervisor import LocalPool, Supervisor, SupervisorError
from taskiq_fleet.telemetry.metrics import FleetMetrics

DEFAULT_METRICS_PORT = 9464


@click.command(
    "local",
    context_settings={"show_default": True},
    epilog="Example: taskiq-fleet local --min 1 --max 8 --queue default -- "
    "taskiq worker myapp.broker:broker myapp.tasks --workers 1",
)
@click.option(
    "-f",
    "--file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A TaskiqWorkerPool (or just its spec) in YAML; flags override its fields.",
)
@click.option("--name", help="Pool name in logs and metrics [default: metadata.name, or local].")
@click.option("--redis-url", envvar="REDIS_URL", help="The Redis of the queues [env REDIS_URL].")
@click.option(
    "--redis-ca-file",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM CA bundle that signed a rediss:// server's certificate [default: system's].",
)
@click.option("--queue", "queues", multiple=True, help="A queue to read; repeat for several.")
@click.option("--broker", type=click.Choice(["list", "stream"]), help="taskiq-redis broker kind.")
@click.option("--consumer-group", help="Consumer group of the stream broker.")
@click.option("--min", "min_replicas", type=click.IntRange(min=0), help="Fewest workers.")
@click.option("--max", "max_replicas", type=click.IntRange(min=1), help="Most workers.")
@click.option("--target-per-replica", type=float, help="Work one worker should carry.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Tasks one worker runs at once.")
@click.option("--poll-interval", type=float, help="Seconds between two reads of the queues.")
@click.option("--drain-timeout", type=click.IntRange(min=0), help="Seconds a worker may drain.")
@click.option("--scale-to-zero-after", type=float, help="Idle seconds before going to zero.")
@click.option(
    "--scale-down-window",
    type=click.IntRange(min=0, max=3600),
    help="Seconds of past recommendations a scale-in waits out [default: 30].",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    default=DEFAULT_METRICS_PORT,
    help="Serve /metrics on 127.0.0.1 at this port (0: any free port).",
)
@click.option("--no-metrics", is_flag=True, help="Do not serve /metrics.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    help="debug shows every poll.",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def command(
    *,
    file: Path | None,
    name: str | None,
    redis_url: str | None,
    redis_ca_file: str | None,
    queues: tuple[str, ...],
    broker: str | None,
    consumer_group: str | None,
    min_replicas: int | None,
    max_replicas: int | None,
    target_per_replica: float | None,
    concurrency: int | None,
    poll_interval: float | None,
    drain_timeout: int | None,
    scale_to_zero_after: float | None,
    scale_down_window: int | None,
    metrics_port: int,
    no_metrics: bool,
    log_level: str,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND (a Taskiq worker) as N local processes, N set by queue depth.

    The same engine as the Kubernetes operator decides N from waiting plus in-flight
    tasks. Scale-in drains (SIGTERM, then SIGKILL after the drain timeout) and picks
    idle workers first; a crashed worker is replaced; Ctrl-C drains all and exits.
    A flag left out takes the pool file's value, else the pool spec's default.
    """
    configure_logging(log_level)
    overrides = {
        "broker.queues": [{"name": q} for q in queues] if queues else None,
        "broker.kind": broker,
        "broker.consumerGroup": consumer_group,
        "scaling.minReplicas": min_replicas,
        "scaling.maxReplicas": max_replicas,
        "scaling.targetPerReplica": target_per_replica,
        "scaling.pollIntervalSeconds": poll_interval,
        "scaling.scaleToZeroAfterSeconds": scale_to_zero_after,
        "scaling.behavior.scaleDown.stabilizationWindowSeconds": scale_down_window,
        "worker.concurrency": concurrency,
        "worker.drainTimeoutSeconds": drain_timeout,
    }
    try:
        pool = load_pool(
            file=file, name=name, redis_url=redis_url, command=command, overrides=overrides
        )
    except LocalConfigError as exc:
        # Gives up before starting anything: the message names the field to fix.
        raise click.UsageError(str(exc)) from None
    pool = dataclasses.replace(
        pool,
        command=(resolve_program(pool.command[0]), *pool.command[1:]),
        ca_file=redis_ca_file,
    )
    asyncio.run(supervise(pool, metrics_port=None if no_metrics else metrics_port))


def resolve_program(program: str) -> str:
    """The full path of ``program``: on ``PATH``, else beside this Python (its venv)."""
    search = os.pathsep.join([os.environ.get("PATH", ""), str(Path(sys.executable).parent)])
    found = shutil.which(program, path=search)
    if found is None:
        raise click.UsageError(f"worker command {program!r} not found on PATH")
    return found


async def supervise(pool: LocalPool, *, metrics_port: int | None) -> None:
    """Run the supervisor until SIGINT or SIGTERM, then drain and return."""
    registry = CollectorRegistry()
    metrics = FleetMetrics(registry)
    server: MetricsServer | None = None
    if metrics_port is not None:
        try:
            server = MetricsServer.start(registry, port=metrics_port)
        except OSError as exc:
            # Gives up: another process holds the port; the person picks another.
            raise click.ClickException(
                f"cannot serve /metrics on 127.0.0.1:{metrics_port} ({exc.strerror}); "
                "pick another --metrics-port or pass --no-metrics"
            ) from None
        click.echo(f"metrics at {server.url}", err=True)
    supervisor = Supervisor(pool, metrics=metrics)
    stop = asyncio.Event()
    stop_on_signals(stop, on_second=supervisor.force_stop)
    try:
        await supervisor.run(stop)
    except SupervisorError as exc:
        # Gives up: the workers are drained; the message says what broke.
        raise click.ClickException(str(exc)) from None
    finally:
        if server is not None:
            server.close()
