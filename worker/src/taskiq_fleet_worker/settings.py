"""Settings of the agent worker and its producers, read from the environment.

| variable | default | meaning |
| --- | --- | --- |
| ``REDIS_URL`` | ``redis://localhost:6379/0`` | sessions and dedup claims; fallback below |
| ``TASKIQ_BROKER_URL`` | ``REDIS_URL`` | where the task queue lives |
| ``TASKIQ_RESULT_BACKEND_URL`` | ``REDIS_URL`` | where task results live |
| ``TASKIQ_DEFAULT_QUEUE`` | ``default`` | the list or stream name |
| ``TASKIQ_BROKER_KIND`` | ``list`` | ``list`` (ListQueueBroker) or ``stream`` (RedisStreamBroker) |
| ``TASKIQ_CONSUMER_GROUP`` | ``taskiq`` | the stream's consumer group |
| ``TASKIQ_TASK_TIMEOUT_S`` | ``240`` | the longest one run may take |
| ``TASKIQ_RECLAIM_IDLE_S`` | ``300`` | stream: a delivery unacked this long is reclaimed |
| ``TASKIQ_RESULT_TTL_S`` | ``86400`` | how long a task result is kept |
| ``AGENT_STEP`` | the deterministic agent | import path of the agent step |
| ``AGENT_WORK_MS`` | ``100`` | work time of one run of the deterministic agent |
| ``AGENT_STEPS`` | ``3`` | steps of one run unless the command says otherwise |
| ``WORKER_METRICS_PORT`` | ``9000`` | Prometheus metrics of the worker; ``0`` turns them off |
| ``WORKER_METRICS_ADDR`` | ``0.0.0.0`` | the address the metrics server binds |
| ``WORKER_LOG_FORMAT`` | ``text`` | ``text`` or ``json`` (one JSON object per line) |

The fleet middleware reads ``TASKIQ_FLEET_POD_NAME``, ``TASKIQ_FLEET_QUEUE`` and
``TASKIQ_FLEET_CAPACITY`` itself (see ``taskiq_fleet.contract.middleware``).

URLs may carry a password: they are validated here, kept out of ``repr`` and shown
redacted in every error.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from taskiq_fleet.contract.redis_url import RedisURL

DEFAULT_AGENT_STEP = "taskiq_fleet_worker.agent:DeterministicAgent"


class SettingsError(ValueError):
    """The environment does not describe a usable worker; says which variable and why."""


def _check_url(value: str | None, *, what: str) -> str | None:
    if value is None or value == "":
        return None
    # Raises InvalidRedisURLError (a ValueError) with the URL redacted and `what` named.
    RedisURL.parse(value, what=what)
    return value.strip()


class _Env(BaseSettings):
    model_config = SettingsConfigDict(
        extra="ignore", hide_input_in_errors=True, frozen=True, validate_default=True
    )


class RedisSettings(_Env):
    """The application's Redis: sessions, dedup claims and the fallback for Taskiq."""

    model_config = SettingsConfigDict(env_prefix="REDIS_")

    #: ``redis://`` or ``rediss://``, optional user and password, db index.
    url: str = Field(default="redis://localhost:6379/0", repr=False)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        checked = _check_url(value, what="REDIS_URL")
        if checked is None:
            raise ValueError("REDIS_URL is empty")
        return checked


class TaskiqSettings(_Env):
    """Where Taskiq keeps the queue and the results, and how the queue is read."""

    model_config = SettingsConfigDict(env_prefix="TASKIQ_")

    broker_url: str | None = Field(default=None, repr=False)
    result_backend_url: str | None = Field(default=None, repr=False)
    default_queue: str = Field(default="default", min_length=1)
    broker_kind: Literal["list", "stream"] = "list"
    consumer_group: str = Field(default="taskiq", min_length=1)
    #: Seconds one run may take; Taskiq cancels it after that (the task's timeout label).
    task_timeout_s: float = Field(default=240.0, gt=0)
    #: Seconds a stream delivery may stay unacknowledged before another worker takes
    #: it over. Longer than ``task_timeout_s``, so a running task is never taken.
    reclaim_idle_s: float = Field(default=300.0, gt=0)
    #: Seconds a task result is kept in Redis.
    result_ttl_s: int = Field(default=86_400, gt=0)

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        return _check_url(value, what="TASKIQ_BROKER_URL")

    @field_validator("result_backend_url")
    @classmethod
    def _result_url(cls, value: str | None) -> str | None:
        return _check_url(value, what="TASKIQ_RESULT_BACKEND_URL")

    @model_validator(mode="after")
    def _reclaim_after_timeout(self) -> TaskiqSettings:
        if self.reclaim_idle_s <= self.task_timeout_s:
            raise ValueError(
                f"TASKIQ_RECLAIM_IDLE_S ({self.reclaim_idle_s:g}) must exceed "
                f"TASKIQ_TASK_TIMEOUT_S ({self.task_timeout_s:g}): a stream delivery "
                "idle for less than a run may take would be run twice at once"
            )
        return self


class AgentSettings(_Env):
    """The agent step every run executes."""

    model_config = SettingsConfigDict(env_prefix="AGENT_")

    #: ``package.module:attribute``; a class is instantiated without arguments.
    step: str = Field(default=DEFAULT_AGENT_STEP, min_length=1)
    #: Milliseconds of work of one run of the deterministic agent, spread over its steps.
    work_ms: int = Field(default=100, ge=0)
    #: Steps of a run whose command does not name a number.
    steps: int = Field(default=3, ge=1, le=1000)


class WorkerSettings(_Env):
    """Observability of the worker process."""

    model_config = SettingsConfigDict(env_prefix="WORKER_")

    metrics_port: int = Field(default=9000, ge=0, le=65535)
    metrics_addr: str = "0.0.0.0"  # noqa: S104 - scraped from other pods by design
    log_format: Literal["text", "json"] = "text"


class Settings(BaseModel):
    """Everything the worker and its producers read from the environment."""

    redis: RedisSettings = Field(default_factory=RedisSettings)
    taskiq: TaskiqSettings = Field(default_factory=TaskiqSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)

    @computed_field(repr=False)  # type: ignore[prop-decorator]
    @property
    def taskiq_broker_url(self) -> str:
        return self.taskiq.broker_url or self.redis.url

    @computed_field(repr=False)  # type: ignore[prop-decorator]
    @property
    def taskiq_result_backend_url(self) -> str:
        return self.taskiq.result_backend_url or self.redis.url


def load_settings() -> Settings:
    """Read the environment; raises :class:`SettingsError` naming each bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        # Gives up: a worker with a wrong setting must not start; say which and why.
        raise SettingsError(_describe(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        model = exc.title
        prefix = _PREFIXES.get(model, "")
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        name = f"{prefix}{field}".upper()
        named = not field or message.startswith(name)
        problems.append(message if named else f"{name}: {message}")
    return "invalid worker settings: " + "; ".join(problems)


_PREFIXES = {
    "RedisSettings": "REDIS_",
    "TaskiqSettings": "TASKIQ_",
    "AgentSettings": "AGENT_",
    "WorkerSettings": "WORKER_",
}
