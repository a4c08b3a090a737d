"""Session events as the operator side reads them."""

from __future__ import annotations

import pytest
import redis.asyncio

from taskiq_fleet.contract import events, keys


def test_an_entry_parses_into_an_event_with_its_fields() -> None:
    event = events.parse(
        b"1-0", {b"type": b"run.started", b"task_id": b"t", b"ms": b"42", b"enqueued_ms": b"40"}
    )

    assert (event.entry_id, event.type, event.task_id, event.ms) == ("1-0", "run.started", "t", 42)
    assert event.int_field(events.F_ENQUEUED_MS) == 40
    assert event.int_field(events.F_STARTED_MS) is None


@pytest.mark.parametrize("missing", ["type", "task_id", "ms"])
def test_an_entry_without_a_required_field_is_refused_naming_it(missing: str) -> None:
    fields = {"type": "step", "task_id": "t", "ms": "1"}
    del fields[missing]

    with pytest.raises(events.MalformedEventError, match=f"has no '{missing}' field"):
        events.parse("1-0", fields)


def test_a_non_numeric_stamp_is_refused() -> None:
    with pytest.raises(events.MalformedEventError, match="'ms' = 'soon'"):
        events.parse("1-0", {"type": "step", "task_id": "t", "ms": "soon"})


def test_terminal_events_are_exactly_the_three_outcomes() -> None:
    assert {"run.completed", "run.failed", "run.cancelled"} == events.TERMINAL
    assert events.RUN_DEDUPLICATED not in events.TERMINAL


@pytest.mark.integration
async def test_reading_a_session_skips_foreign_entries(redis_client: redis.asyncio.Redis) -> None:
    stream = keys.session_events_key("s1")
    await redis_client.xadd(stream, {"type": "run.started", "task_id": "t", "ms": "1"})
    await redis_client.xadd(stream, {"something": "else"})
    await redis_client.xadd(stream, {"type": "run.completed", "task_id": "t", "ms": "2"})

    history = await events.read_session(redis_client, session_id="s1")

    assert [e.type for e in history] == ["run.started", "run.completed"]
