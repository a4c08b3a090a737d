"""What every pool's handlers share inside one operator process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

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
    """

    api: client.ApiClient
    metrics: FleetMetrics
    options: Options
    cache: WorkloadCache
    secrets: SecretReader
    brokers: BrokerRegistry
    workload_problems: dict[str, Problem] = field(default_factory=dict)

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

    async def aclose(self) -> None:
        await self.secrets.aclose()
        await self.brokers.aclose()
        await self.api.close()
