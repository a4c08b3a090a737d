"""What every spec model shares: camelCase names, no unknown fields, immutability, and
errors that name the field path a person wrote."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel


class SpecModel(BaseModel):
    """Base of the resource's models: fields are read by their camelCase names."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=False,
    )


class FieldRuleError(ValueError):
    """A rule across fields, broken; ``field`` is the camelCase name to blame."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidPoolSpecError(ValueError):
    """A TaskiqWorkerPool spec that cannot be used; each problem names its field path."""

    def __init__(self, what: str, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        listed = "; ".join(self.problems)
        super().__init__(f"{what} is invalid: {listed}")


def describe_errors(error: ValidationError, *, root: str) -> list[str]:
    """Pydantic's errors as ``spec.scaling.maxReplicas: <what is wrong>`` lines."""
    problems: list[str] = []
    for item in error.errors(include_url=False):
        loc: list[Any] = [root, *item["loc"]]
        message = item["msg"]
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, FieldRuleError):
            loc.append(cause.field)
            message = str(cause)
        path = ""
        for part in loc:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        problems.append(f"{path.lstrip('.')}: {message}")
    return problems
