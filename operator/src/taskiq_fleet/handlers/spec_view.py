"""What the Kubernetes side needs from a validated pool spec."""

from __future__ import annotations

from taskiq_fleet.handlers.brokers import BrokerAddress
from taskiq_fleet.kube.secrets import SecretReader
from taskiq_fleet.kube.workload import PoolRef, SecretKeyRef, WorkerSettings
from taskiq_fleet.probes import BrokerKind
from taskiq_fleet.spec import PoolSpec


def worker_settings(spec: PoolSpec) -> WorkerSettings:
    """The owned Deployment's ingredients; only for specs with ``worker.template``."""
    broker = spec.broker
    secret = broker.redis.url_secret_ref
    return WorkerSettings(
        template=spec.worker.template or {},
        concurrency=spec.worker.concurrency,
        drain_timeout_s=spec.worker.drain_timeout_seconds,
        broker_kind=broker.kind.value,
        queues=tuple(queue.name for queue in broker.queues),
        consumer_group=broker.consumer_group if broker.kind is BrokerKind.STREAM else None,
        url_secret=SecretKeyRef(name=secret.name, key=secret.key),
    )


async def broker_address(secrets: SecretReader, pool: PoolRef, spec: PoolSpec) -> BrokerAddress:
    """The pool's Redis URL and CA, read from its Secrets; raises ``KubeError``."""
    redis = spec.broker.redis
    url = await secrets.value(
        namespace=pool.namespace,
        name=redis.url_secret_ref.name,
        key=redis.url_secret_ref.key,
        field="spec.broker.redis.urlSecretRef",
    )
    ca_pem = None
    if redis.ca_secret_ref is not None:
        ca_pem = await secrets.value(
            namespace=pool.namespace,
            name=redis.ca_secret_ref.name,
            key=redis.ca_secret_ref.key,
            field="spec.broker.redis.caSecretRef",
        )
    return BrokerAddress(url=url.strip(), ca_pem=ca_pem)


def expire_broker_secrets(secrets: SecretReader, pool: PoolRef, spec: PoolSpec) -> None:
    """Have the Secrets of the pool's Redis read again at the next poll."""
    redis = spec.broker.redis
    for ref in (redis.url_secret_ref, redis.ca_secret_ref):
        if ref is not None:
            secrets.expire(namespace=pool.namespace, name=ref.name)
