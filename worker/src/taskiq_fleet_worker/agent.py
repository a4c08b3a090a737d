"""The agent step: the pluggable part of a run, and the deterministic default.

A run calls its agent step once per step, in order, and checks for a cancel between
steps. A step is any object with::

    async def __call__(self, step: StepInput) -> StepResult

``AGENT_STEP`` names it as ``package.module:attribute``; a class there is instantiated
without arguments. The default, :class:`DeterministicAgent`, does no I/O: it waits
its share of the run's work time and returns a digest of its input, so demos and
benchmarks drive real runs with known timing and known output.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class StepInput:
    """What one step of a run knows."""

    session_id: str
    task_id: str
    index: int
    steps: int
    work_ms: int
    input: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step produced: a JSON-able output, and whether the run is done early."""

    output: Mapping[str, Any] = field(default_factory=dict)
    done: bool = False


@runtime_checkable
class AgentStep(Protocol):
    async def __call__(self, step: StepInput) -> StepResult: ...


class DeterministicAgent:
    """Waits ``work_ms / steps`` per step and returns a digest of session, step and input."""

    async def __call__(self, step: StepInput) -> StepResult:
        share_ms = step.work_ms / step.steps
        if share_ms > 0:
            await asyncio.sleep(share_ms / 1000)
        seed = f"{step.session_id}:{step.index}:{sorted(step.input.items())!r}"
        digest = hashlib.sha256(seed.encode()).hexdigest()[:16]
        return StepResult(output={"step": step.index, "digest": digest})


class AgentStepError(ValueError):
    """``AGENT_STEP`` does not name a usable agent step."""


def load_agent_step(path: str) -> AgentStep:
    """Import the agent step named by ``path`` (``module:attribute`` or ``module.attribute``)."""
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise AgentStepError(f"AGENT_STEP={path!r} must look like 'package.module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        # Gives up: a worker without its agent cannot run anything.
        raise AgentStepError(f"AGENT_STEP={path!r}: cannot import {module_name!r}: {exc}") from exc
    target: object = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            # Gives up, as above, naming the missing part.
            raise AgentStepError(
                f"AGENT_STEP={path!r}: {module_name!r} has no attribute {attribute!r}"
            ) from None
    step: object = target() if isinstance(target, type) else target
    if not isinstance(step, AgentStep) or not _is_async_callable(step):
        raise AgentStepError(
            f"AGENT_STEP={path!r} is not an agent step: "
            "it must be an async callable taking a StepInput"
        )
    return step


def _is_async_callable(target: object) -> bool:
    call = getattr(target, "__call__", None)  # noqa: B004 - the method itself is inspected
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(call)
