"""``taskiq-fleet-agent`` as a user runs it: clear refusals, and load that reaches the queue."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio

from taskiq_fleet.contract import keys
from taskiq_fleet.redis_server import free_port
from tests.worker.harness import QUEUE, eventually, worker_env

AGENT_CLI = Path(sys.executable).parent / "taskiq-fleet-agent"


def _cli(*args: str, redis_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AGENT_CLI), *args],
        env=worker_env(redis_url, kind="list", name="cli", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_malformed_json_is_refused_before_anything_is_sent() -> None:
    done = _cli("enqueue", "--json", '{"command": "run",', redis_url="redis://127.0.0.1:1/0")

    assert done.returncode == 2
    assert "--json" in done.stderr
    assert "not valid JSON" in done.stderr


def test_a_bad_field_is_refused_naming_it() -> None:
    done = _cli(
        "enqueue", "--json", '{"command": "run", "session_id": "x"}', redis_url="redis://h:1/0"
    )

    assert done.returncode == 2
    assert "field 'session_id'" in done.stderr


def test_a_cancel_needs_a_session() -> None:
    done = _cli("enqueue", "--cancel", redis_url="redis://h:1/0")

    assert done.returncode == 2
    assert "--cancel needs --session-id" in done.stderr


def test_a_malformed_redis_url_is_named_and_redacted() -> None:
    done = _cli("enqueue", redis_url="http://agent:hunter2@redis:6379/0")

    assert done.returncode == 1
    assert "REDIS_URL 'http://agent:***@redis:6379/0' must start with redis://" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


@pytest.mark.integration
def test_an_unreachable_redis_is_reported_without_the_password() -> None:
    url = f"redis://agent:hunter2@127.0.0.1:{free_port()}/0"

    done = _cli("enqueue", redis_url=url)

    assert done.returncode == 1
    assert "cannot send to Redis at redis://agent:***@127.0.0.1" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.integration
async def test_load_sends_every_command_and_records_it(
    redis_url: str, redis_client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    out = tmp_path / "sent.jsonl"

    done = _cli(
        "load", "--count", "25", "--pattern", "burst", "--work-ms", "5", "--out", str(out),
        redis_url=redis_url,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 25
    assert set(lines[0]) == {"session_id", "dedup_key", "task_id", "sent_ms"}
    assert len({line["session_id"] for line in lines}) == 25
    queued = [json.loads(raw) for raw in await redis_client.lrange(QUEUE, 0, -1)]
    assert len(queued) == 25
    assert {m["task_id"] for m in queued} == {line["task_id"] for line in lines}
    first = queued[0]
    assert first["task_name"] == "tasks.agent.run_command"
    assert keys.LABEL_ENQUEUED_MS in first["labels"]
    assert first["args"][0]["work_ms"] == 5
    assert first["args"][0]["dedup_key"].startswith("load-")


@pytest.mark.integration
async def test_enqueue_prints_what_it_sent(
    redis_url: str, redis_client: redis.asyncio.Redis
) -> None:
    done = _cli("enqueue", "--dedup-key", "once", "--steps", "2", redis_url=redis_url)

    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    [raw] = await redis_client.lrange(QUEUE, 0, -1)
    message = json.loads(raw)
    assert message["task_id"] == record["task_id"]
    assert message["args"][0] == {
        "command": "run",
        "session_id": record["session_id"],
        "steps": 2,
        "dedup_key": "once",
    }


@pytest.mark.integration
async def test_a_load_records_each_command_as_sent_and_a_sigterm_loses_none(
    redis_url: str, redis_client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    out = tmp_path / "sent.jsonl"
    load = await asyncio.create_subprocess_exec(
        str(AGENT_CLI), "load", "--count", "100000", "--pattern", "steady", "--rate", "20",
        "--out", str(out),
        env=worker_env(redis_url, kind="list", name="cli"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await eventually(
            lambda: _queued_at_least(redis_client, 5), timeout_s=30, what="five queued commands"
        )

        # While the load runs, every queued command but the one on its way is in the file.
        queued = await _queued_ids(redis_client)
        recorded = _recorded_ids(out)
        assert len(queued - recorded) <= 1

        load.send_signal(signal.SIGTERM)
        _, raw_stderr = await asyncio.wait_for(load.communicate(), timeout=30)
        stderr = raw_stderr.decode()
    finally:
        if load.returncode is None:
            load.kill()
            await load.wait()

    assert load.returncode == 143, stderr
    assert "stopped: sent" in stderr
    assert out.read_text().endswith("\n")
    assert _recorded_ids(out) == await _queued_ids(redis_client)


async def _queued_at_least(client: redis.asyncio.Redis, count: int) -> bool:
    return int(await client.llen(QUEUE)) >= count


async def _queued_ids(client: redis.asyncio.Redis) -> set[str]:
    return {json.loads(raw)["task_id"] for raw in await client.lrange(QUEUE, 0, -1)}


def _recorded_ids(out: Path) -> set[str]:
    text = out.read_text() if out.exists() else ""
    return {json.loads(line)["task_id"] for line in text.splitlines()}
