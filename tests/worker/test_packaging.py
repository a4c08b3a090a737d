"""What ships: the image runs ``taskiq worker`` as PID 1, and no Celery is left in the runtime."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "worker" / "Dockerfile"


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions(DOCKERFILE.read_text())
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_worker_command_uses_taskiq() -> None:
    stage = dict(_final_stage())
    entrypoint = json.loads(stage["ENTRYPOINT"])
    cmd = json.loads(stage["CMD"])

    assert entrypoint == ["taskiq", "worker"], "exec form, taskiq itself is PID 1"
    assert cmd[:2] == ["taskiq_fleet_worker.app:broker", "taskiq_fleet_worker.tasks"]
    flags = dict(zip(cmd[2::2], cmd[3::2], strict=True))
    assert flags["--workers"] == "1"
    assert int(flags["--wait-tasks-timeout"]) < 30, "drains within the default grace period"
    assert "--max-async-tasks" in flags
    assert "celery" not in DOCKERFILE.read_text().lower()


def test_the_image_is_slim_python_and_runs_as_a_non_root_user() -> None:
    stage = _final_stage()
    base = stage[0][1]
    user = dict(stage)["USER"]

    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", base)
    assert user.split(":")[0] not in {"0", "root"}
    assert not any(keyword == "SHELL" for keyword, _ in stage)


def test_the_runtime_paths_do_not_mention_celery() -> None:
    runtime_paths = [
        REPO / "worker" / "src",
        REPO / "worker" / "Dockerfile",
        REPO / "worker" / "pyproject.toml",
        REPO / "operator" / "src" / "taskiq_fleet" / "contract",
    ]
    mentions = [
        str(path.relative_to(REPO))
        for root in runtime_paths
        for path in ([root] if root.is_file() else root.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and "celery" in path.read_text(errors="ignore").lower()
    ]

    assert mentions == []
