"""Worker settings: defaults, environment names, URL fallbacks, and errors without secrets."""

from __future__ import annotations

import pytest

from taskiq_fleet.contract import keys
from taskiq_fleet_worker.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "REDIS_URL",
        "TASKIQ_BROKER_URL",
        "TASKIQ_RESULT_BACKEND_URL",
        "TASKIQ_DEFAULT_QUEUE",
        "TASKIQ_BROKER_KIND",
        "TASKIQ_CONSUMER_GROUP",
        "TASKIQ_TASK_TIMEOUT_S",
        "TASKIQ_RECLAIM_IDLE_S",
        "AGENT_STEP",
        "AGENT_WORK_MS",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_taskiq_uses_redis_url_by_default() -> None:
    settings = Settings()
    assert settings.taskiq_broker_url.startswith("redis://")
    assert settings.taskiq_result_backend_url == settings.redis.url


def test_taskiq_queue_default_value() -> None:
    settings = Settings()
    assert settings.taskiq.default_queue == "default"
    assert settings.taskiq.broker_kind == "list"
    assert settings.taskiq.consumer_group == "taskiq"


def test_taskiq_urls_fall_back_to_redis_url_unless_given(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REDIS_URL", "redis://app-redis:6379/1")
    clean_env.setenv("TASKIQ_RESULT_BACKEND_URL", "rediss://results:6380/2")

    settings = load_settings()

    assert settings.taskiq_broker_url == "redis://app-redis:6379/1"
    assert settings.taskiq_result_backend_url == "rediss://results:6380/2"


def test_the_env_names_are_the_ones_the_operator_sets(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv(keys.ENV_REDIS_URL, "redis://r:1/0")
    clean_env.setenv(keys.ENV_DEFAULT_QUEUE, "agents")
    clean_env.setenv(keys.ENV_BROKER_KIND, "stream")
    clean_env.setenv(keys.ENV_CONSUMER_GROUP, "fleet")
    clean_env.setenv("AGENT_WORK_MS", "250")

    settings = load_settings()

    assert settings.redis.url == "redis://r:1/0"
    assert settings.taskiq.default_queue == "agents"
    assert settings.taskiq.broker_kind == "stream"
    assert settings.taskiq.consumer_group == "fleet"
    assert settings.agent.work_ms == 250


def test_a_bad_redis_url_is_refused_naming_the_variable_without_the_password(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("REDIS_URL", "http://agent:hunter2@redis:6379/0")

    with pytest.raises(SettingsError) as refused:
        load_settings()

    message = str(refused.value)
    assert "REDIS_URL" in message
    assert "redis://" in message
    assert "hunter2" not in message
    assert "***" in message


def test_a_bad_broker_url_names_its_own_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TASKIQ_BROKER_URL", "redis://:s3cret@/0")

    with pytest.raises(SettingsError, match="TASKIQ_BROKER_URL") as refused:
        load_settings()

    assert "s3cret" not in str(refused.value)


def test_urls_stay_out_of_the_settings_repr(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REDIS_URL", "redis://agent:hunter2@redis:6379/0")

    assert "hunter2" not in repr(load_settings())


def test_an_unknown_broker_kind_is_refused_by_name(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TASKIQ_BROKER_KIND", "pubsub")

    with pytest.raises(SettingsError, match="TASKIQ_BROKER_KIND: Input should be 'list' or"):
        load_settings()


def test_reclaiming_sooner_than_a_run_may_take_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TASKIQ_TASK_TIMEOUT_S", "120")
    clean_env.setenv("TASKIQ_RECLAIM_IDLE_S", "60")

    with pytest.raises(SettingsError, match=r"TASKIQ_RECLAIM_IDLE_S .* must exceed"):
        load_settings()


def test_a_negative_work_time_is_refused_by_name(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AGENT_WORK_MS", "-5")

    with pytest.raises(SettingsError, match="AGENT_WORK_MS"):
        load_settings()
