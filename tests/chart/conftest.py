"""Fixtures of the chart tests: the pinned helm, promtool and chartcheck."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chart.rendering import Helm, helm_binary, promtool_path


@pytest.fixture(scope="session")
def helm() -> Iterator[Helm]:
    yield from helm_binary()


@pytest.fixture(scope="session")
def promtool() -> Path:
    return promtool_path()


@pytest.fixture(scope="session")
def chartcheck(promtool: Path) -> Path:
    """The PromQL and monitoring-object checker, built beside promtool by its build.sh."""
    path = promtool.parent / "chartcheck"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run bash tools/promtool/build.sh", pytrace=False)
    return path
