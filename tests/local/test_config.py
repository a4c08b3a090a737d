"""A local pool from a pool file and flags, validated by the operator's own spec model."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskiq_fleet.local.config import LocalConfigError, load_pool
from taskiq_fleet.probes.types import BrokerKind

URL = "redis://:s3cret@127.0.0.1:6379/2"

RESOURCE = """
apiVersion: taskiq-fleet.dev/v1alpha1
kind: TaskiqWorkerPool
metadata: {name: agents}
spec:
  broker:
    kind: stream
    queues: [{name: agent-runs, weight: 2}, {name: agent-bulk}]
    redis: {urlSecretRef: {name: redis, key: url}}
  worker:
    concurrency: 4
    drainTimeoutSeconds: 45
    template:
      spec:
        containers:
          - name: worker
            command: [taskiq, worker]
            args: [app:broker, app.tasks]
  scaling: {minReplicas: 1, maxReplicas: 6, pollIntervalSeconds: 1}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pool.yaml"
    path.write_text(text)
    return path


def test_a_resource_file_gives_name_queues_policy_and_the_containers_command(
    tmp_path: Path,
) -> None:
    pool = load_pool(
        file=write(tmp_path, RESOURCE), name=None, redis_url=URL, command=(), overrides={}
    )

    assert pool.name == "agents"
    assert [(q.name, q.weight, q.kind) for q in pool.queues] == [
        ("agent-runs", 2.0, BrokerKind.STREAM),
        ("agent-bulk", 1.0, BrokerKind.STREAM),
    ]
    assert (pool.policy.min_replicas, pool.policy.max_replicas) == (1, 6)
    assert pool.policy.target_per_replica == 4.0
    assert (pool.poll_interval_s, pool.drain_timeout_s, pool.concurrency) == (1.0, 45.0, 4)
    assert pool.command == ("taskiq", "worker", "app:broker", "app.tasks")


def test_flags_override_the_file_and_the_command_line_wins(tmp_path: Path) -> None:
    pool = load_pool(
        file=write(tmp_path, RESOURCE),
        name="mine",
        redis_url=URL,
        command=("my-worker", "--fast"),
        overrides={"scaling.maxReplicas": 9, "broker.kind": "list", "worker.concurrency": None},
    )

    assert pool.name == "mine"
    assert pool.policy.max_replicas == 9
    assert pool.queues[0].kind is BrokerKind.LIST
    assert pool.concurrency == 4
    assert pool.command == ("my-worker", "--fast")


def test_flags_alone_make_a_pool_with_the_specs_defaults() -> None:
    pool = load_pool(file=None, name=None, redis_url=URL, command=("w",), overrides={})

    assert pool.name == "local"
    assert [q.name for q in pool.queues] == ["default"]
    assert (pool.policy.min_replicas, pool.policy.max_replicas) == (0, 20)
    assert pool.poll_interval_s == 2.0


def test_a_bad_field_is_named_by_its_path() -> None:
    with pytest.raises(LocalConfigError) as caught:
        load_pool(
            file=None,
            name=None,
            redis_url=URL,
            command=("w",),
            overrides={"scaling.minReplicas": 5, "scaling.maxReplicas": 2},
        )

    assert "spec.scaling.minReplicas" in str(caught.value)
    assert "local pool 'local'" in str(caught.value)


def test_no_command_anywhere_says_how_to_give_one() -> None:
    with pytest.raises(LocalConfigError, match="no worker command: give it after --"):
        load_pool(file=None, name=None, redis_url=URL, command=(), overrides={})


def test_a_missing_redis_url_names_the_flag_and_the_variable() -> None:
    with pytest.raises(LocalConfigError, match="pass --redis-url or set REDIS_URL"):
        load_pool(file=None, name=None, redis_url=None, command=("w",), overrides={})


def test_a_bad_redis_url_is_refused_without_showing_its_password() -> None:
    with pytest.raises(LocalConfigError) as caught:
        load_pool(
            file=None,
            name=None,
            redis_url="http://:s3cret@127.0.0.1/0",
            command=("w",),
            overrides={},
        )

    assert "--redis-url" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_the_pool_keeps_its_redis_password_out_of_repr() -> None:
    pool = load_pool(file=None, name=None, redis_url=URL, command=("w",), overrides={})

    assert "s3cret" not in repr(pool)
    assert "s3cret" not in pool.shown_url
    assert pool.worker_env({})["REDIS_URL"] == URL


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LocalConfigError, match="must hold a mapping"):
        load_pool(
            file=write(tmp_path, "- just\n- a list\n"),
            name=None,
            redis_url=URL,
            command=("w",),
            overrides={},
        )


def test_a_nested_flag_merges_into_the_files_behavior(tmp_path: Path) -> None:
    text = RESOURCE.replace(
        "scaling: {minReplicas: 1, maxReplicas: 6, pollIntervalSeconds: 1}",
        "scaling:\n    minReplicas: 1\n    behavior:\n      scaleDown:\n"
        "        policies: [{type: Pods, value: 1, periodSeconds: 10}]",
    )

    pool = load_pool(
        file=write(tmp_path, text),
        name=None,
        redis_url=URL,
        command=(),
        overrides={"scaling.behavior.scaleDown.stabilizationWindowSeconds": 20},
    )

    down = pool.policy.behavior.scale_down
    assert down.stabilization_window_s == 20
    assert [(p.kind.value, p.value, p.period_s) for p in down.policies] == [("Pods", 1, 10)]
