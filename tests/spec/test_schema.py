"""The schema the CRD is generated from: every field is described for ``kubectl explain``."""

from __future__ import annotations

from typing import Any

from taskiq_fleet.spec import PoolSpec


def _properties(schema: dict[str, Any], node: dict[str, Any], path: str) -> list[tuple[str, Any]]:
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    found = []
    for name, prop in node.get("properties", {}).items():
        found.append((f"{path}.{name}", prop))
        for option in [prop, *prop.get("anyOf", []), prop.get("items", {})]:
            if "$ref" in option or "properties" in option:
                found.extend(_properties(schema, option, f"{path}.{name}"))
            if "items" in option:
                found.extend(_properties(schema, option["items"], f"{path}.{name}[]"))
    return found


def test_every_field_of_the_spec_has_a_description() -> None:
    schema = PoolSpec.model_json_schema(by_alias=True)
    fields = _properties(schema, schema, "spec")
    assert len(fields) > 30
    undescribed = [path for path, prop in fields if not prop.get("description")]
    assert undescribed == []


def test_the_schema_uses_the_camel_case_names() -> None:
    schema = PoolSpec.model_json_schema(by_alias=True)
    paths = {path for path, _ in _properties(schema, schema, "spec")}
    assert "spec.scaling.scaleToZeroAfterSeconds" in paths
    assert "spec.scaling.behavior.scaleUp.stabilizationWindowSeconds" in paths
    assert "spec.broker.redis.urlSecretRef.name" in paths
    assert "spec.scaling.behavior.scaleDown.policies[].periodSeconds" in paths
