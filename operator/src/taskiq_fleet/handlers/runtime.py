"""What every pool's handlers share inside one operator process."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

from kubernetes_asyncio import client

from taskiq_fleet.handlers.brokers import BrokerRegistry
from taskiq_fleet.handlers.status import Problem
from taskiq_fleet.kube.cache import WorkloadCache
from taskiq_fleet.kube.secrets import DEFAULT_REFRESH_S, SecretReader, api_fetch
from taskiq_fleet.telemetry.metrics import FleetMetrics

#: Seconds between status writes when only the queue's figures changed.
DEFAULT_FIGURES_INTERVAL_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class Options:
    """Operator-wide tunables (the pool's own come from its spec)."""

    figures_interval_s: float = DEFAULT_FIGURES_INTERVAL_S
    secret_refresh_s: float = DEFAULT_REFRESH_S


@dataclass(slots=True)
class Runtime:
    """Shared by all pools: the API client, caches, probes and metrics.

    ``workload_problems`` carries what the create/update handlers found wrong with a
    pool's workload (by pool uid) to that pool's poll loop, which reports it in status.
    ``closing`` holds the clean-ups of poll loops that have ended (see :meth:`close_later`).
    """

    api: client.ApiClient
    metrics: FleetMetrics
    options: Options
    cache: WorkloadCache
    secrets: SecretReader
    brokers: BrokerRegistry
    workload_problems: dict[str, Problem] = field(default_factory=dict)
    closing: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def create(cls, *, api: client.ApiClient, metrics: FleetMetrics, options: Options) -> Runtime:
        return cls(
            api=api,
            metrics=metrics,
            options=options,
            cache=WorkloadCache(),
            secrets=SecretReader(api_fetch(api), refresh_s=options.secret_refresh_s),
            brokers=BrokerRegistry(),
        )

    def close_later(self, cleanup: Coroutine[Any, Any, None], *, name: str) -> None:
        """Run a pool's clean-up (its last status write, its Redis connections) beside
        the other pools, so its loop ends at once: Kopf counts a loop that takes longer
        than a few event-loop cycles to stop as stuck and checks again only much later,
        which would hold a deleted pool's finalizer for that long."""
        task = asyncio.create_task(cleanup, name=name)
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)

    async def aclose(self) -> None:
        await asyncio.gather(*self.closing, return_exceptions=True)
        await self.secrets.aclose()
        await self.brokers.aclose()
        await self.api.close()
