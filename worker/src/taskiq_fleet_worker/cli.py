"""``taskiq-fleet-agent``: send agent commands to the workers, one or many.

It reads the same environment as the worker (``REDIS_URL``, ``TASKIQ_*``), so it sends
to the queue the workers read.

    taskiq-fleet-agent enqueue --work-ms 200 --wait 30
    taskiq-fleet-agent enqueue --json '{"command": "cancel", "session_id": "..."}'
    taskiq-fleet-agent load --count 500 --pattern wave --rate 50 --work-ms 300 --out sent.jsonl
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import redis.exceptions
from taskiq import SendTaskError, TaskiqResultTimeoutError

from taskiq_fleet.contract.redis_url import redact
from taskiq_fleet_worker.commands import CommandError, parse_command
from taskiq_fleet_worker.load import PATTERNS, run_load
from taskiq_fleet_worker.settings import SettingsError, get_settings

T = TypeVar("T")

#: The exit code of a load stopped by a signal, as a shell reports a SIGTERM.
STOPPED_EXIT_CODE = 128 + signal.SIGTERM


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Send commands to taskiq-fleet agent workers."""


@main.command()
@click.option("--json", "raw", help="The whole command as JSON; the options below are ignored.")
@click.option("--session-id", help="The session to run in; a new one by default.")
@click.option("--dedup-key", help="Copies with the same key run once.")
@click.option("--steps", type=click.IntRange(1, 1000), help="Agent steps of this run.")
@click.option("--work-ms", type=click.IntRange(0), help="Work time of this run.")
@click.option("--cancel", is_flag=True, help="Send a cancel for --session-id instead of a run.")
@click.option("--wait", "wait_s", type=click.FloatRange(0), help="Wait this long for the result.")
def enqueue(
    *,
    raw: str | None,
    session_id: str | None,
    dedup_key: str | None,
    steps: int | None,
    work_ms: int | None,
    cancel: bool,
    wait_s: float | None,
) -> None:
    """Send one command; prints session_id, dedup_key, task_id and sent_ms as JSON."""
    if raw is not None:
        command = _command_from_json(raw)
    else:
        if cancel and not session_id:
            raise click.UsageError("--cancel needs --session-id")
        command = {"command": "cancel" if cancel else "run"}
        command["session_id"] = session_id or str(uuid.uuid4())
        if not cancel:
            command |= {k: v for k, v in (("steps", steps), ("work_ms", work_ms)) if v is not None}
    _validate(command)
    key = dedup_key or (command.pop("dedup_key", None) if raw is not None else None)
    record = _run(lambda: _enqueue_one(command, dedup_key=key, wait_s=wait_s))
    click.echo(json.dumps(record, separators=(",", ":")))


@main.command()
@click.option("--count", type=click.IntRange(1), required=True, help="Commands to send.")
@click.option("--pattern", type=click.Choice(PATTERNS), default="burst", show_default=True)
@click.option("--rate", type=click.FloatRange(0), default=10.0, show_default=True, help="Per s.")
@click.option("--period-s", type=click.FloatRange(0.1), default=20.0, show_default=True)
@click.option("--work-ms", type=click.IntRange(0), help="Work time of each run.")
@click.option("--steps", type=click.IntRange(1, 1000), help="Agent steps of each run.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default="-")
def load(
    *,
    count: int,
    pattern: str,
    rate: float,
    period_s: float,
    work_ms: int | None,
    steps: int | None,
    out: Path,
) -> None:
    """Send COUNT run commands on a pattern; writes one JSON line per command to --out."""
    if pattern != "burst" and rate <= 0:
        raise click.BadParameter("must be above 0 unless --pattern is burst", param_hint="--rate")
    command: dict[str, Any] = {"command": "run"}
    command |= {k: v for k, v in (("steps", steps), ("work_ms", work_ms)) if v is not None}

    stop = asyncio.Event()

    async def send() -> int:
        from taskiq_fleet_worker.app import broker  # noqa: PLC0415 - after settings are checked
        from taskiq_fleet_worker.queue_client import TaskiqQueueClient  # noqa: PLC0415

        # SIGTERM and Ctrl-C stop the sending; what is on its way is still recorded.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        client = TaskiqQueueClient()
        await broker.startup()
        try:
            with click.open_file(str(out), "w") as stream:
                return await run_load(
                    enqueue=lambda cmd, key: client.enqueue(command=cmd, dedup_key=key),
                    count=count,
                    pattern=pattern,  # type: ignore[arg-type]
                    rate=rate,
                    command=command,
                    out=stream,
                    period_s=period_s,
                    stop=stop,
                )
        finally:
            await broker.shutdown()

    sent = _run(send)
    if sent < count:
        click.echo(f"stopped: sent {sent} of {count} commands", err=True)
        sys.exit(STOPPED_EXIT_CODE)
    click.echo(f"sent {sent} commands", err=True)


def _command_from_json(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        # Gives up: say where the JSON breaks; nothing was sent.
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--json") from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--json")
    return value


def _validate(command: dict[str, Any]) -> None:
    try:
        parse_command(command)
    except CommandError as exc:
        # Gives up before sending: a worker would refuse the same command.
        raise click.BadParameter(str(exc), param_hint="the command") from None


async def _enqueue_one(
    command: dict[str, Any], *, dedup_key: str | None, wait_s: float | None
) -> dict[str, Any]:
    from taskiq import AsyncTaskiqTask  # noqa: PLC0415

    from taskiq_fleet_worker.app import broker  # noqa: PLC0415 - after settings are checked
    from taskiq_fleet_worker.queue_client import TaskiqQueueClient  # noqa: PLC0415

    await broker.startup()
    try:
        task_id = await TaskiqQueueClient().enqueue(command=command, dedup_key=dedup_key)
        record: dict[str, Any] = {
            "session_id": command["session_id"],
            "dedup_key": dedup_key,
            "task_id": task_id,
            "sent_ms": time.time_ns() // 1_000_000,
        }
        if wait_s is not None:
            task: AsyncTaskiqTask[Any] = AsyncTaskiqTask(task_id, broker.result_backend)
            result = await task.wait_result(timeout=wait_s)
            record["result"] = result.return_value
            record["error"] = None if result.error is None else repr(result.error)
        return record
    finally:
        await broker.shutdown()


def _run(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine with settings checked first and Redis errors told plainly."""
    try:
        settings = get_settings()
    except SettingsError as exc:
        # Gives up: nothing can be sent with a wrong setting.
        raise click.ClickException(str(exc)) from None
    shown = redact(settings.taskiq_broker_url)
    try:
        return asyncio.run(_call(make))
    except (SendTaskError, redis.exceptions.RedisError, OSError) as exc:
        # Gives up: say which server and why, never the password.
        cause = exc.__cause__ or exc
        raise click.ClickException(
            f"cannot send to Redis at {shown}: {type(cause).__name__}: {cause}"
        ) from None
    except TaskiqResultTimeoutError:
        # Gives up waiting; the command was sent and may still finish.
        raise click.ClickException("no result within --wait; the command was sent") from None


async def _call(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
