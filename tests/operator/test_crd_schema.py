"""The CRD's schema: described for `kubectl explain`, and the same fields as PoolSpec."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from taskiq_fleet.contract import keys
from taskiq_fleet.engine import default_behavior
from taskiq_fleet.spec import PoolSpec

CRD_PATH = Path(__file__).resolve().parents[2] / "charts/taskiq-fleet/crds/taskiqworkerpools.yaml"

#: Defaults PoolSpec has and the CRD deliberately leaves out, with the reason.
SPEC_ONLY_DEFAULTS = {
    # A default would set it on list pools too, where the CRD refuses it.
    "broker.consumerGroup": "taskiq",
}


def crd() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return document


def version_schema() -> dict[str, Any]:
    (version,) = crd()["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def walk(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property below ``schema`` as (dotted path, its schema); ``[]`` for items."""
    for name, child in (schema.get("properties") or {}).items():
        child_path = f"{path}.{name}" if path else name
        yield child_path, child
        yield from walk(child, child_path)
    items = schema.get("items")
    if items:
        yield f"{path}[]", items
        yield from walk(items, f"{path}[]")


def spec_schema() -> dict[str, Any]:
    spec: dict[str, Any] = version_schema()["properties"]["spec"]
    return spec


def model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The pydantic model inside an annotation (through Optional and list), and if a list."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return model_of(arg)
    if origin is list:
        model, _ = model_of(typing.get_args(annotation)[0])
        return model, True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def spec_fields(model: type[BaseModel], path: str = "") -> Iterator[tuple[str, Any]]:
    """PoolSpec's fields by their camelCase names, as (dotted path, pydantic FieldInfo)."""
    for name, info in model.model_fields.items():
        alias = info.alias or name
        field_path = f"{path}.{alias}" if path else alias
        yield field_path, info
        child, is_list = model_of(info.annotation)
        if child is not None:
            yield from spec_fields(child, f"{field_path}[]" if is_list else field_path)


def default_of(info: Any) -> Any:
    if info.default_factory is not None:
        return info.default_factory()
    return None if info.default is PydanticUndefined else info.default


def test_the_crd_has_the_fixed_group_kind_plural_and_short_name() -> None:
    document = crd()
    names = document["spec"]["names"]
    assert document["spec"]["group"] == keys.API_GROUP
    assert names["kind"] == keys.KIND
    assert names["plural"] == keys.PLURAL
    assert names["shortNames"] == ["twp"]
    assert "taskiq" in names["categories"]
    (version,) = document["spec"]["versions"]
    assert version["name"] == keys.API_VERSION
    assert "status" in version["subresources"]


def test_every_field_has_a_description_for_kubectl_explain() -> None:
    missing = [
        path
        for path, schema in walk(version_schema(), "")
        if path != "metadata" and not str(schema.get("description", "")).strip()
    ]
    assert missing == []


def test_the_printer_columns_show_queue_depth_in_flight_desired_ready_and_age() -> None:
    (version,) = crd()["spec"]["versions"]
    shown = [column["name"] for column in version["additionalPrinterColumns"]]
    default = [
        column["name"]
        for column in version["additionalPrinterColumns"]
        if not column.get("priority")
    ]
    assert default == ["Queue", "Depth", "In Flight", "Desired", "Ready", "Age"]
    assert set(default) <= set(shown)


def test_the_crd_and_poolspec_have_the_same_fields() -> None:
    template_internals = "worker.template."
    crd_paths = {
        path
        for path, _ in walk(spec_schema(), "")
        if not path.startswith(template_internals) and not path.endswith("[]")
    }
    model_paths = {path for path, _ in spec_fields(PoolSpec)}
    assert crd_paths == model_paths


@pytest.mark.parametrize("path", [path for path, _ in spec_fields(PoolSpec)])
def test_the_crd_defaults_agree_with_poolspec(path: str) -> None:
    info = dict(spec_fields(PoolSpec))[path]
    schema = dict(walk(spec_schema(), ""))[path]
    expected = default_of(info)
    if path in SPEC_ONLY_DEFAULTS:
        assert expected == SPEC_ONLY_DEFAULTS[path]
        assert "default" not in schema
        return
    if "default" not in schema:
        # No default in the CRD: PoolSpec either has none, or derives it (targetPerReplica).
        assert expected is None or isinstance(expected, BaseModel) or path == "broker.queues"
        return
    default = schema["default"]
    if isinstance(expected, BaseModel):
        assert default == {}
    elif isinstance(expected, list):
        assert default == [item.model_dump(by_alias=True) for item in expected]
    else:
        assert default == (expected.value if hasattr(expected, "value") else expected)


def test_the_required_fields_agree_with_poolspec() -> None:
    schemas = dict(walk(spec_schema(), ""))
    schemas[""] = spec_schema()
    for path, info in spec_fields(PoolSpec):
        parent, _, name = path.rpartition(".")
        required = name in (schemas[parent].get("required") or [])
        assert required == info.is_required(), path


def test_the_behavior_descriptions_state_the_engines_defaults() -> None:
    schemas = dict(walk(spec_schema(), ""))
    defaults = default_behavior()
    up = " ".join(schemas["scaling.behavior.scaleUp"]["description"].split())
    down = " ".join(schemas["scaling.behavior.scaleDown"]["description"].split())

    (up_policy,) = defaults.scale_up.policies
    assert defaults.scale_up.stabilization_window_s == 0
    assert "no stabilization window" in up
    assert f"{up_policy.value} {up_policy.kind.value} per {up_policy.period_s:.0f} seconds" in up
    (down_policy,) = defaults.scale_down.policies
    window_s = defaults.scale_down.stabilization_window_s
    assert f"a {window_s:.0f}-second stabilization window" in down
    assert f"{down_policy.value}% per {down_policy.period_s:.0f} seconds" in down
