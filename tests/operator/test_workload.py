"""The owned Deployment: what the operator adds to the user's Pod template."""

from __future__ import annotations

from typing import Any

from taskiq_fleet.contract import keys
from taskiq_fleet.kube.workload import (
    GRACE_MARGIN_S,
    PoolRef,
    SecretKeyRef,
    WorkerSettings,
    render_deployment,
    render_pod_template,
    template_hash,
)

POOL = PoolRef(namespace="shop", name="orders", uid="1234")


def worker(**changes: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "template": {
            "metadata": {"labels": {"team": "checkout"}},
            "spec": {
                "containers": [
                    {
                        "name": "worker",
                        "image": "registry.example/worker:1",
                        "env": [
                            {"name": "AGENT_WORK_MS", "value": "50"},
                            {"name": "TASKIQ_FLEET_CAPACITY", "value": "999"},
                        ],
                    },
                    {"name": "sidecar", "image": "registry.example/sidecar:1"},
                ]
            },
        },
        "concurrency": 8,
        "drain_timeout_s": 40,
        "broker_kind": "list",
        "queues": ("orders", "orders-low"),
        "consumer_group": None,
        "url_secret": SecretKeyRef(name="redis", key="url"),
    }
    values.update(changes)
    return WorkerSettings(**values)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {entry["name"]: entry.get("value", entry.get("valueFrom")) for entry in container["env"]}


def test_every_container_gets_the_fleet_environment_before_its_own() -> None:
    template = render_pod_template(pool=POOL, worker=worker())

    for container in template["spec"]["containers"]:
        env = env_of(container)
        assert env[keys.ENV_REDIS_URL] == {"secretKeyRef": {"name": "redis", "key": "url"}}
        assert env[keys.ENV_POD_NAME] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert env[keys.ENV_CAPACITY] == "8"
        assert env[keys.ENV_DEFAULT_QUEUE] == "orders"
        assert env[keys.ENV_QUEUE] == "orders"
        assert env[keys.ENV_BROKER_KIND] == "list"
        assert keys.ENV_CONSUMER_GROUP not in env
        assert container["env"][0]["name"] == keys.ENV_REDIS_URL
    assert env_of(template["spec"]["containers"][0])["AGENT_WORK_MS"] == "50"


def test_the_spec_wins_over_a_template_entry_of_the_same_name() -> None:
    container = render_pod_template(pool=POOL, worker=worker())["spec"]["containers"][0]

    capacities = [entry for entry in container["env"] if entry["name"] == keys.ENV_CAPACITY]
    assert capacities == [{"name": keys.ENV_CAPACITY, "value": "8"}]


def test_a_stream_pool_tells_its_workers_the_consumer_group() -> None:
    template = render_pod_template(
        pool=POOL, worker=worker(broker_kind="stream", consumer_group="agents")
    )

    env = env_of(template["spec"]["containers"][0])
    assert env[keys.ENV_BROKER_KIND] == "stream"
    assert env[keys.ENV_CONSUMER_GROUP] == "agents"


def test_the_grace_period_outlasts_the_drain_timeout() -> None:
    short = render_pod_template(pool=POOL, worker=worker())
    assert short["spec"]["terminationGracePeriodSeconds"] == 40 + GRACE_MARGIN_S

    longer = worker()
    longer.template["spec"]["terminationGracePeriodSeconds"] = 600
    kept = render_pod_template(pool=POOL, worker=longer)
    assert kept["spec"]["terminationGracePeriodSeconds"] == 600


def test_pods_carry_the_pool_label_next_to_the_users_own() -> None:
    labels = render_pod_template(pool=POOL, worker=worker())["metadata"]["labels"]

    assert labels[keys.LABEL_POOL] == "orders"
    assert labels["team"] == "checkout"
    assert labels["app.kubernetes.io/instance"] == "orders"
    assert labels["app.kubernetes.io/managed-by"] == "taskiq-fleet"


def test_the_deployment_is_owned_by_the_pool_and_selects_by_its_label() -> None:
    deployment = render_deployment(pool=POOL, worker=worker(), replicas=2)

    (owner,) = deployment["metadata"]["ownerReferences"]
    assert owner["kind"] == keys.KIND
    assert owner["uid"] == "1234"
    assert owner["controller"] is True
    assert deployment["spec"]["selector"] == {"matchLabels": {keys.LABEL_POOL: "orders"}}
    assert deployment["spec"]["replicas"] == 2
    template = deployment["spec"]["template"]
    annotations = deployment["metadata"]["annotations"]
    assert annotations[keys.ANNOTATION_TEMPLATE_HASH] == template_hash(template)


def test_rendering_leaves_the_users_template_untouched() -> None:
    settings = worker()
    before = repr(settings.template)

    render_deployment(pool=POOL, worker=settings, replicas=1)

    assert repr(settings.template) == before


def test_the_template_hash_changes_with_the_template_and_not_with_key_order() -> None:
    first = render_pod_template(pool=POOL, worker=worker())
    reordered = dict(reversed(list(first.items())))
    changed = render_pod_template(pool=POOL, worker=worker(concurrency=9))

    assert template_hash(first) == template_hash(reordered)
    assert template_hash(first) != template_hash(changed)
