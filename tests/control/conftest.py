"""Marks shared by this directory's tests."""

from __future__ import annotations

import pytest

#: ``LocalRedisServer.start`` leaves its log file object to the garbage collector; with
#: warnings as errors that fails whichever test is running when it is collected. Only
#: that exact warning is ignored; drop this once the server closes its log file itself.
_SERVER_LOG_LEAK = pytest.mark.filterwarnings(
    r"ignore:Exception ignored in. <_io.FileIO name='[^']*server\.log'"
    ":pytest.PytestUnraisableExceptionWarning"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(_SERVER_LOG_LEAK)
