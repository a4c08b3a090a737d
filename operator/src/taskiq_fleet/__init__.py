"""taskiq-fleet: elastic Taskiq workers scaled from Redis queue depth and in-flight work.

What users import is listed in ``__all__``; everything else is internal.
:class:`FleetMiddleware` is loaded on first use, so the CLI does not pay for importing
Taskiq when it does not need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskiq_fleet.contract.middleware import FleetMiddleware

__all__ = ["FleetMiddleware", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "FleetMiddleware":
        from taskiq_fleet.contract.middleware import FleetMiddleware  # noqa: PLC0415

        return FleetMiddleware
    raise AttributeError(f"module 'taskiq_fleet' has no attribute {name!r}")
