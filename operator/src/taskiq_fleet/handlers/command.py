"""``taskiq-fleet operator``: run the Kopf operator for TaskiqWorkerPools."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import socket
from collections.abc import Coroutine
from typing import Any

import click
import kopf
import prometheus_client

from taskiq_fleet.handlers.pools import registry
from taskiq_fleet.handlers.runtime import DEFAULT_FIGURES_INTERVAL_S, Options, Runtime
from taskiq_fleet.handlers.settings import configure_logging, operator_settings
from taskiq_fleet.kube.client import connect
from taskiq_fleet.kube.secrets import DEFAULT_REFRESH_S
from taskiq_fleet.telemetry.metrics import FleetMetrics

logger = logging.getLogger("taskiq_fleet.operator")


@click.command("operator")
@click.option(
    "--standalone",
    is_flag=True,
    help="Run without Kopf peering. Run one replica only (the chart does).",
)
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    metavar="NAME",
    help="Serve pools in this namespace; repeat for more.",
)
@click.option(
    "-A", "--all-namespaces", is_flag=True, help="Serve pools in every namespace (cluster-wide)."
)
@click.option(
    "--liveness",
    "liveness_endpoint",
    metavar="URL",
    default=None,
    help="Serve a health endpoint, e.g. http://0.0.0.0:8080/healthz.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    default=9090,
    show_default=True,
    help="Port of the Prometheus /metrics endpoint; 0 turns it off.",
)
@click.option(
    "--metrics-host",
    # In a Pod, Prometheus scrapes from outside: all interfaces is the useful default.
    default="0.0.0.0",  # noqa: S104
    show_default=True,
    help="Address /metrics binds to.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for log pipelines.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.option(
    "--status-figures-interval",
    "figures_interval_s",
    type=click.FloatRange(min=0),
    default=DEFAULT_FIGURES_INTERVAL_S,
    show_default=True,
    help="Seconds between status writes when only queue figures changed.",
)
@click.option(
    "--secret-refresh",
    "secret_refresh_s",
    type=click.FloatRange(min=0),
    default=DEFAULT_REFRESH_S,
    show_default=True,
    help="Seconds a Redis URL read from a Secret is reused before it is read again.",
)
def command(
    *,
    standalone: bool,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    liveness_endpoint: str | None,
    metrics_port: int,
    metrics_host: str,
    log_format: str,
    log_level: str,
    figures_interval_s: float,
    secret_refresh_s: float,
) -> None:
    """Scale the worker Deployments of TaskiqWorkerPools from their Redis queues."""
    if bool(namespaces) == all_namespaces:
        raise click.UsageError("give either --namespace (repeatable) or --all-namespaces")
    configure_logging(log_format=log_format, log_level=log_level)
    options = Options(figures_interval_s=figures_interval_s, secret_refresh_s=secret_refresh_s)
    metrics = FleetMetrics(prometheus_client.REGISTRY)
    server = None
    if metrics_port:
        server, _thread = prometheus_client.start_http_server(
            metrics_port, addr=metrics_host, registry=metrics.registry
        )
        logger.info("metrics served on http://%s:%d/metrics", metrics_host, metrics_port)
    try:
        _run_loop(
            _operate(
                options=options,
                metrics=metrics,
                standalone=standalone,
                namespaces=namespaces,
                liveness_endpoint=liveness_endpoint,
            )
        )
    finally:
        if server is not None:
            server.shutdown()


async def _operate(
    *,
    options: Options,
    metrics: FleetMetrics,
    standalone: bool,
    namespaces: tuple[str, ...],
    liveness_endpoint: str | None,
) -> None:
    runtime = Runtime.create(api=await connect(), metrics=metrics, options=options)
    instance = os.environ.get("POD_NAME") or socket.gethostname()
    try:
        await kopf.operator(
            registry=registry,
            settings=operator_settings(standalone=standalone, instance=instance),
            standalone=standalone,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=liveness_endpoint,
            memo=kopf.Memo(runtime=runtime),
        )
    finally:
        await runtime.aclose()


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed: the same code, less CPU per poll."""
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop  # noqa: PLC0415  (optional: only when installed)

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main)
        return
    with contextlib.suppress(KeyboardInterrupt):
        # Exits quietly on Ctrl-C; Kopf has already stopped its tasks by then.
        asyncio.run(main)
