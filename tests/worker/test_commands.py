"""Commands as they arrive: every malformed one is refused, naming what is wrong."""

from __future__ import annotations

import uuid

import pytest

from taskiq_fleet_worker.commands import CancelCommand, CommandError, RunCommand, parse_command

SESSION = "6f1c1f9e-5b7e-4f0e-9d7c-3f0e2b1a9c11"


def test_a_run_command_is_parsed_with_its_options() -> None:
    command = parse_command(
        {"command": "run", "session_id": SESSION, "dedup_key": "k", "steps": 2, "work_ms": 0}
    )

    assert isinstance(command, RunCommand)
    assert command.session_id == uuid.UUID(SESSION)
    assert (command.dedup_key, command.steps, command.work_ms) == ("k", 2, 0)


def test_a_cancel_command_needs_only_the_session() -> None:
    assert isinstance(parse_command({"command": "cancel", "session_id": SESSION}), CancelCommand)


def test_json_text_is_accepted() -> None:
    assert isinstance(parse_command(f'{{"command": "run", "session_id": "{SESSION}"}}'), RunCommand)


def test_malformed_json_is_refused_as_json() -> None:
    with pytest.raises(CommandError, match="command is not valid JSON"):
        parse_command('{"command": "run", "session_id": ')


def test_a_json_array_is_not_a_command() -> None:
    with pytest.raises(CommandError, match="must be a JSON object, not list"):
        parse_command("[1, 2]")


@pytest.mark.parametrize("kind", [None, "", "RUN", "delete", 3])
def test_an_unknown_command_type_is_refused(kind: object) -> None:
    with pytest.raises(CommandError, match="invalid command type"):
        parse_command({"command": kind, "session_id": SESSION})


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("session_id", "12345", "field 'session_id'"),
        ("steps", 0, "field 'steps'"),
        ("steps", "many", "field 'steps'"),
        ("work_ms", -1, "field 'work_ms'"),
        ("dedup_key", "", "field 'dedup_key'"),
        ("input", [1], "field 'input'"),
        ("stpes", 3, "field 'stpes': unknown field"),
        ("steps", True, "field 'steps'"),
        ("steps", "3", "field 'steps'"),
        ("work_ms", False, "field 'work_ms'"),
        (
            "session_id",
            SESSION.upper(),
            "field 'session_id': Value error, must be a UUID in lowercase",
        ),
        (
            "session_id",
            SESSION.replace("-", ""),
            "field 'session_id': Value error, must be a UUID written",
        ),
        ("session_id", f"urn:uuid:{SESSION}", "field 'session_id'"),
    ],
)
def test_a_bad_field_is_named(field: str, value: object, complaint: str) -> None:
    with pytest.raises(CommandError, match=complaint) as refused:
        parse_command({"command": "run", "session_id": SESSION, field: value})

    assert str(refused.value).startswith("invalid run command: ")


def test_a_missing_session_id_is_named() -> None:
    with pytest.raises(CommandError, match="field 'session_id': Field required"):
        parse_command({"command": "cancel"})


def test_errors_do_not_echo_the_values_sent() -> None:
    with pytest.raises(CommandError) as refused:
        parse_command({"command": "run", "session_id": "secret-token-value"})

    assert "secret-token-value" not in str(refused.value)
