"""A local pool from a YAML file in the TaskiqWorkerPool shape and command-line flags.

The file may be a whole resource (``apiVersion``, ``kind``, ``metadata``, ``spec``) or
just its ``spec``. Flags override the file field by field, and the result is validated
by the very model the operator uses, so an error names the field path either way.
Locally the Redis URL comes from ``--redis-url`` or ``REDIS_URL``, not from a Secret,
and the worker command from the command line or the template's first container.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from taskiq_fleet.contract.redis_url import InvalidRedisURLError, RedisURL
from taskiq_fleet.local.supervisor import LocalPool
from taskiq_fleet.spec import InvalidPoolSpecError, PoolSpec

DEFAULT_POOL_NAME = "local"

#: ``broker.redis`` is required by the resource's schema but unused locally.
_LOCAL_REDIS_PLACEHOLDER = {"urlSecretRef": {"name": "local", "key": "url"}}


class LocalConfigError(ValueError):
    """The pool file or flags cannot make a pool; the message says which field and why."""


def load_pool(
    *,
    file: Path | None,
    name: str | None,
    redis_url: str | None,
    command: Sequence[str],
    overrides: Mapping[str, Any],
) -> LocalPool:
    """Build a :class:`LocalPool`; ``overrides`` maps spec paths (``scaling.minReplicas``)
    to values given on the command line (``None`` values are ignored)."""
    document = _read(file) if file is not None else {}
    spec_data, file_name = _spec_of(document, file=file)
    for path, value in overrides.items():
        if value is not None:
            _set_path(spec_data, path, value)
    broker = spec_data.setdefault("broker", {})
    if not isinstance(broker, dict):
        raise LocalConfigError(f"{_where(file)}: spec.broker must be a mapping")
    broker.setdefault("redis", _LOCAL_REDIS_PLACEHOLDER)
    pool_name = name or file_name or DEFAULT_POOL_NAME

    try:
        spec = PoolSpec.parse(spec_data, what=f"local pool {pool_name!r}")
    except InvalidPoolSpecError as exc:
        # Gives up: the person fixes the file or the flag the message names.
        raise LocalConfigError(str(exc)) from None

    return LocalPool(
        name=pool_name,
        redis_url=_redis_url(redis_url),
        queues=spec.queue_refs(),
        policy=spec.to_policy(),
        command=_command(command, spec=spec, file=file),
        poll_interval_s=float(spec.scaling.poll_interval_seconds),
        concurrency=spec.worker.concurrency,
        drain_timeout_s=float(spec.worker.drain_timeout_seconds),
    )


def _read(file: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        # Gives up: an unreadable file needs the person who named it.
        raise LocalConfigError(f"cannot read pool file {file}: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise LocalConfigError(f"pool file {file} must hold a mapping, not {type(loaded).__name__}")
    return loaded


def _spec_of(document: dict[str, Any], *, file: Path | None) -> tuple[dict[str, Any], str | None]:
    """The spec part of a document (a copy) and the resource's name when it has one."""
    if "spec" not in document and "kind" not in document:
        return copy.deepcopy(document), None
    spec = document.get("spec") or {}
    if not isinstance(spec, dict):
        raise LocalConfigError(f"{_where(file)}: spec must be a mapping")
    metadata = document.get("metadata") or {}
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return copy.deepcopy(spec), str(name) if name else None


def _set_path(data: dict[str, Any], path: str, value: object) -> None:
    *parents, leaf = path.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise LocalConfigError(f"spec.{path}: spec.{part} in the pool file is not a mapping")
        node = child
    node[leaf] = value


def _redis_url(given: str | None) -> str:
    if not given:
        raise LocalConfigError("no Redis URL: pass --redis-url or set REDIS_URL")
    try:
        return RedisURL.parse(given, what="--redis-url").secret
    except InvalidRedisURLError as exc:
        # Gives up: the message names the flag and shows the URL without its password.
        raise LocalConfigError(str(exc)) from None


def _command(given: Sequence[str], *, spec: PoolSpec, file: Path | None) -> tuple[str, ...]:
    """The command line after ``--``, else the template's first container's command."""
    if given:
        return tuple(given)
    template = spec.worker.template or {}
    containers = (template.get("spec") or {}).get("containers") or []
    if containers and isinstance(containers[0], dict):
        first = containers[0]
        words = [*(first.get("command") or []), *(first.get("args") or [])]
        if words and all(isinstance(word, str) for word in words):
            return tuple(words)
    raise LocalConfigError(
        "no worker command: give it after --, e.g. `taskiq-fleet local -- taskiq worker "
        "app:broker tasks`, or set command/args of the first container in "
        f"{_where(file)} spec.worker.template"
    )


def _where(file: Path | None) -> str:
    return f"pool file {file}" if file is not None else "the pool"
