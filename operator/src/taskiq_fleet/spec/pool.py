"""The TaskiqWorkerPool spec: which queues to read, which workers to run, how to scale.

Every field carries a description; the CRD's schema (and so ``kubectl explain``) is
generated from these models. ``PoolSpec.parse`` is the one way in for untrusted data:
its error names each offending field by its path, such as ``spec.scaling.maxReplicas``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import Field, ValidationError, model_validator

from taskiq_fleet.engine.types import ScalingPolicy
from taskiq_fleet.probes.types import BrokerKind, QueueRef
from taskiq_fleet.spec.base import (
    FieldRuleError,
    InvalidPoolSpecError,
    SpecModel,
    describe_errors,
)
from taskiq_fleet.spec.behavior import BehaviorSpec, to_behavior

_K8S_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class SecretKeyRef(SpecModel):
    """A key of a Secret in the pool's namespace."""

    name: str = Field(
        min_length=1, max_length=253, pattern=_K8S_NAME, description="The Secret's name."
    )
    key: str = Field(min_length=1, max_length=253, description="The key within the Secret.")


class RedisSpec(SpecModel):
    """Where the queues live. The URL is read from a Secret, never written in the spec."""

    url_secret_ref: SecretKeyRef = Field(
        description="Secret key holding the Redis URL: redis:// or rediss:// (TLS), with an "
        "optional ACL user and password and a db index, e.g. rediss://user:pass@host:6380/2."
    )
    ca_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding a PEM CA bundle that signed the server's TLS "
        "certificate, for rediss:// URLs with a private CA. Default: the system's trust store.",
    )


class QueueSpec(SpecModel):
    """One queue the pool's workers consume."""

    name: str = Field(
        min_length=1,
        max_length=512,
        description="The Redis key of the queue: the list (list broker) or the stream "
        "(stream broker), i.e. taskiq-redis's queue_name.",
    )
    weight: float = Field(
        default=1.0,
        gt=0,
        description="How much one task of this queue counts; the pool's work is the weighted "
        "sum over its queues.",
    )


class BrokerSpec(SpecModel):
    """The taskiq-redis broker the workers use, and the queues it reads."""

    kind: BrokerKind = Field(
        default=BrokerKind.LIST,
        description="list: taskiq-redis ListQueueBroker (LPUSH/BRPOP). stream: "
        "RedisStreamBroker (XADD/XREADGROUP in a consumer group, acknowledged).",
    )
    queues: list[QueueSpec] = Field(
        default_factory=lambda: [QueueSpec(name="default")],
        min_length=1,
        description="The queues of this pool; their weighted depths are added, not maxed.",
    )
    consumer_group: str = Field(
        default="taskiq",
        min_length=1,
        description="The consumer group the workers read in (stream broker only).",
    )
    redis: RedisSpec = Field(description="How to reach the Redis server holding the queues.")

    @model_validator(mode="after")
    def _unique_queue_names(self) -> Self:
        names = [q.name for q in self.queues]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise FieldRuleError("queues", f"queue names must be unique; repeated: {duplicates}")
        return self


class WorkerSpec(SpecModel):
    """The worker pods the pool runs."""

    template: dict[str, Any] | None = Field(
        default=None,
        description="The pod template of the worker Deployment the pool creates, in "
        "Kubernetes' PodTemplateSpec shape. Leave out when scaleTargetRef names an "
        "existing Deployment.",
    )
    concurrency: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Tasks one worker pod runs at once (taskiq --max-async-tasks).",
    )
    drain_timeout_seconds: int = Field(
        default=30,
        ge=0,
        le=86_400,
        description="Seconds a worker told to stop keeps finishing the tasks it holds "
        "(taskiq --wait-tasks-timeout); the pod's grace period is set above it.",
    )


class ScaleTargetRef(SpecModel):
    """An existing workload to scale instead of a Deployment the pool creates."""

    api_version: str = Field(default="apps/v1", description="The workload's API version.")
    kind: str = Field(default="Deployment", description="The workload's kind.")
    name: str = Field(
        min_length=1, max_length=253, pattern=_K8S_NAME, description="The workload's name."
    )


class ScalingSpec(SpecModel):
    """When to add and remove workers. Semantics follow the Kubernetes HPA."""

    min_replicas: int = Field(
        default=0,
        ge=0,
        description="Fewest replicas. 0 lets an idle pool scale to zero after "
        "scaleToZeroAfterSeconds.",
    )
    max_replicas: int = Field(default=20, ge=1, description="Most replicas.")
    target_per_replica: float | None = Field(
        default=None,
        gt=0,
        description="Work (waiting plus in-flight tasks, weighted) one replica should carry; "
        "desired replicas = ceil(work / targetPerReplica). Default: worker.concurrency.",
    )
    activation_threshold: float = Field(
        default=0,
        ge=0,
        description="A pool at zero starts its first replica only when work is above this. "
        "Default 0: one waiting task wakes the pool.",
    )
    poll_interval_seconds: float = Field(
        default=2,
        ge=0.1,
        le=3600,
        description="Seconds between two reads of the queues.",
    )
    scale_to_zero_after_seconds: float = Field(
        default=300,
        ge=0,
        description="Seconds with nothing waiting and nothing in flight before the pool goes "
        "to zero (only with minReplicas 0).",
    )
    behavior: BehaviorSpec | None = Field(
        default=None,
        description="Rate limits and stabilization windows, in the HPA's shape. Defaults suit a "
        "queue: scale up to the need at once, scale down 30 s after the work fell.",
    )
    fallback_replicas: int | None = Field(
        default=None,
        ge=0,
        description="Replicas to run after the queue could not be read 3 times in a row. "
        "Default: keep the current count for as long as the queue cannot be read.",
    )

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise FieldRuleError(
                "minReplicas",
                f"must not exceed maxReplicas ({self.min_replicas} > {self.max_replicas})",
            )
        fallback = self.fallback_replicas
        if fallback is not None and not self.min_replicas <= fallback <= self.max_replicas:
            raise FieldRuleError(
                "fallbackReplicas",
                f"must be between minReplicas and maxReplicas ({self.min_replicas} to "
                f"{self.max_replicas}), not {fallback}",
            )
        return self


class PoolSpec(SpecModel):
    """The spec of a TaskiqWorkerPool."""

    broker: BrokerSpec = Field(description="The broker, its queues and its Redis server.")
    worker: WorkerSpec = Field(
        default_factory=WorkerSpec, description="The worker pods and their concurrency."
    )
    scaling: ScalingSpec = Field(
        default_factory=ScalingSpec, description="Bounds and behavior of scaling."
    )
    scale_target_ref: ScaleTargetRef | None = Field(
        default=None,
        description="Scale this existing workload instead of creating a Deployment from "
        "worker.template.",
    )

    @model_validator(mode="after")
    def _one_workload(self) -> Self:
        if self.scale_target_ref is not None and self.worker.template is not None:
            raise FieldRuleError(
                "scaleTargetRef",
                "give either worker.template (the pool creates its Deployment) or "
                "scaleTargetRef (an existing one), not both",
            )
        return self

    @classmethod
    def parse(cls, data: Mapping[str, Any], *, what: str = "TaskiqWorkerPool") -> PoolSpec:
        """Validate ``data`` (the resource's ``spec``).

        ``what`` names the object in the error, e.g. ``TaskiqWorkerPool shop/orders``; each
        problem names its field path from ``spec``.
        """
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            # Gives up: a person must fix the spec; every problem is listed with its path.
            raise InvalidPoolSpecError(what, describe_errors(exc, root="spec")) from None

    @property
    def target_per_replica(self) -> float:
        """The work one replica carries: the explicit target, else the worker's concurrency."""
        explicit = self.scaling.target_per_replica
        return float(self.worker.concurrency) if explicit is None else explicit

    def to_policy(self) -> ScalingPolicy:
        """The engine's view of this spec, in engine units."""
        scaling = self.scaling
        return ScalingPolicy(
            min_replicas=scaling.min_replicas,
            max_replicas=scaling.max_replicas,
            target_per_replica=self.target_per_replica,
            behavior=to_behavior(scaling.behavior),
            activation_threshold=float(scaling.activation_threshold),
            scale_to_zero_after_s=float(scaling.scale_to_zero_after_seconds),
            fallback_replicas=scaling.fallback_replicas,
        )

    def queue_refs(self) -> tuple[QueueRef, ...]:
        """What the probe reads for this pool, one reference per queue."""
        broker = self.broker
        return tuple(
            QueueRef(
                kind=broker.kind,
                name=queue.name,
                weight=queue.weight,
                consumer_group=broker.consumer_group,
            )
            for queue in broker.queues
        )
