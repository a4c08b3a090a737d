"""Counting sent commands as completed, lost, duplicated, from their session events."""

from __future__ import annotations

from pathlib import Path

from taskiq_fleet.contract import events
from taskiq_fleet.demo.tally import SentCommand, percentile, read_sent, session_ids_in, tally


def sent(session: str, *, sent_ms: int = 1_000) -> SentCommand:
    return SentCommand(session_id=session, dedup_key=f"k-{session}", task_id="t", sent_ms=sent_ms)


def event(kind: str, **fields: str) -> events.SessionEvent:
    return events.SessionEvent(entry_id="0-1", type=kind, task_id="t", ms=0, fields=fields)


def started(*, enqueued_ms: int, started_ms: int) -> events.SessionEvent:
    return event(events.RUN_STARTED, enqueued_ms=str(enqueued_ms), started_ms=str(started_ms))


def test_completed_failed_and_unfinished_commands_are_told_apart() -> None:
    result = tally(
        sent=[sent("a"), sent("b"), sent("c")],
        sessions={
            "a": [started(enqueued_ms=1_000, started_ms=1_500), event(events.RUN_COMPLETED)],
            "b": [started(enqueued_ms=1_000, started_ms=3_000), event(events.RUN_FAILED)],
        },
        queued=set(),
    )

    assert (result.sent, result.completed, result.failed, result.unfinished) == (3, 1, 1, 1)
    assert result.lost == 1
    assert result.waits_s == (0.5, 2.0)


def test_an_unfinished_command_still_in_the_queue_is_not_lost_but_one_gone_is() -> None:
    result = tally(sent=[sent("a"), sent("b")], sessions={}, queued={"b", "elsewhere"})

    assert (result.unfinished, result.queued_at_end, result.lost) == (2, 1, 1)


def test_a_command_started_twice_is_duplicated_but_a_deduplicated_delivery_is_not() -> None:
    twice = [
        started(enqueued_ms=1_000, started_ms=1_100),
        event(events.RUN_COMPLETED),
        started(enqueued_ms=1_000, started_ms=1_200),
        event(events.RUN_COMPLETED),
    ]
    once = [
        started(enqueued_ms=1_000, started_ms=1_100),
        event(events.RUN_DEDUPLICATED),
        event(events.RUN_COMPLETED),
    ]

    result = tally(sent=[sent("a"), sent("b")], sessions={"a": twice, "b": once}, queued=set())

    assert (result.duplicated, result.deduplicated, result.completed) == (1, 1, 2)


def test_the_wait_falls_back_to_the_load_lines_send_time_without_an_enqueue_stamp() -> None:
    no_stamp = event(events.RUN_STARTED, started_ms="4000", enqueued_ms="")

    result = tally(
        sent=[sent("a", sent_ms=1_000)],
        sessions={"a": [no_stamp, event(events.RUN_COMPLETED)]},
        queued=set(),
    )

    assert result.waits_s == (3.0,)


def test_percentiles_use_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]

    assert percentile(values, 95) == 19.0
    assert percentile(values, 50) == 10.0
    assert percentile([], 95) is None


def test_sent_files_are_read_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "sent.jsonl"
    path.write_text(
        '{"session_id": "s1", "dedup_key": "d1", "task_id": "t1", "sent_ms": 5}\n'
        '{"session_id": "s2", "dedup_k'
    )

    assert read_sent([path, tmp_path / "missing.jsonl"]) == [
        SentCommand(session_id="s1", dedup_key="d1", task_id="t1", sent_ms=5)
    ]


def test_session_ids_are_found_in_queued_messages_whatever_their_shape() -> None:
    messages = [
        b'{"task_id":"x","args":[{"command":"run","session_id":'
        b'"0b9c2f4e-3f7a-4c1e-9a55-2d7f0e6c1a10"}],"kwargs":{}}',
        b"not json at all 7D1E5A2B-0000-4000-8000-00000000BEEF",
    ]

    assert session_ids_in(messages) == {
        "0b9c2f4e-3f7a-4c1e-9a55-2d7f0e6c1a10",
        "7d1e5a2b-0000-4000-8000-00000000beef",
    }
