"""manifests/ is what tools/render-manifests makes from the chart, byte for byte."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import kubernetes_validate

from tests.chart.rendering import REPO_ROOT, Helm, parse_documents

MANIFESTS_DIR = REPO_ROOT / "manifests"
RENDER_SCRIPT = REPO_ROOT / "tools" / "render-manifests"


def files_under(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_manifests_equal_a_fresh_rendering_of_the_chart(helm: Helm, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(RENDER_SCRIPT), "--out", str(tmp_path)],
        env={**os.environ, "TASKIQ_FLEET_BIN": str(helm.path.parent)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    committed = files_under(MANIFESTS_DIR)
    fresh = files_under(tmp_path)
    assert sorted(committed) == sorted(fresh), "run tools/render-manifests"
    stale = [name for name in fresh if committed[name] != fresh[name]]
    assert stale == [], f"manifests/{stale} differ from the chart: run tools/render-manifests"


def test_the_manifests_hold_the_crd_the_operator_and_an_example_pool() -> None:
    kinds = {
        name: [doc["kind"] for doc in parse_documents(text)]
        for name, text in files_under(MANIFESTS_DIR).items()
    }

    assert kinds["00-namespace.yaml"] == ["Namespace"]
    assert kinds["10-crds.yaml"] == ["CustomResourceDefinition"]
    assert {"ServiceAccount", "Deployment", "Service"} <= set(kinds["20-operator.yaml"])
    assert sorted(kinds["example/pool.yaml"]) == ["Secret", "TaskiqWorkerPool"]


def test_the_namespace_enforces_the_restricted_pod_security_level() -> None:
    [namespace] = parse_documents((MANIFESTS_DIR / "00-namespace.yaml").read_text())

    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    kubernetes_validate.validate(namespace, "1.35.0", strict=True)
