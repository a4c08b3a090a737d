"""Rendering the chart with the pinned helm, and the promtool build, for the chart tests."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.kube import control_plane_bin_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "taskiq-fleet"
CI_VALUES_DIR = CHART_DIR / "ci"
RULES_FILE = CHART_DIR / "rules" / "taskiq-fleet.rules.yaml"
RULES_TEST_FILE = CHART_DIR / "rules" / "taskiq-fleet.rules.test.yaml"
DASHBOARD_FILE = CHART_DIR / "dashboards" / "taskiq-fleet.json"
PROMTOOL_BUILD = REPO_ROOT / "tools" / "promtool" / "build.sh"
#: The Kubernetes version `helm template` assumes offline, and the schemas it is checked against.
KUBE_VERSION = "1.35.0"
MONITORING_API = "monitoring.coreos.com/v1"

Manifest = dict[str, Any]


class RenderError(AssertionError):
    """helm refused to render; the message carries helm's own words."""


@dataclass(frozen=True)
class Helm:
    """The pinned helm binary with a private home, so no user config leaks in."""

    path: Path
    home: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        result = subprocess.run(
            [str(self.path), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise RenderError(f"helm {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
        return result

    def template(
        self,
        *,
        values_files: Sequence[Path] = (),
        set_values: Sequence[str] = (),
        api_versions: Sequence[str] = (),
        release: str = "fleet",
        namespace: str = "taskiq-fleet",
        include_crds: bool = False,
    ) -> list[Manifest]:
        """The rendered objects (empty documents dropped), in helm's order."""
        args = ["template", release, str(CHART_DIR), "--namespace", namespace]
        args += ["--kube-version", KUBE_VERSION]
        for path in values_files:
            args += ["--values", str(path)]
        for item in set_values:
            args += ["--set", item]
        for api in api_versions:
            args += ["--api-versions", api]
        if include_crds:
            args.append("--include-crds")
        return parse_documents(self.run(*args).stdout)


def parse_documents(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(manifests: Sequence[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in manifests if doc["kind"] == kind]


def one(manifests: Sequence[Manifest], kind: str) -> Manifest:
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def helm_binary() -> Iterator[Helm]:
    """A Helm with a throwaway home; the binary comes from the control-plane build.

    TASKIQ_FLEET_BIN (exported by tools/dev) names the build's folder directly.
    """
    given = os.environ.get("TASKIQ_FLEET_BIN", "")
    bin_dir = Path(given) if given else control_plane_bin_dir()
    if not (bin_dir / "helm").is_file():
        pytest.fail(f"no helm in {bin_dir}: run bash tools/controlplane/build.sh", pytrace=False)
    with tempfile.TemporaryDirectory(prefix="taskiq-fleet-helm-") as home:
        yield Helm(path=bin_dir / "helm", home=Path(home))


def promtool_path() -> Path:
    """promtool from TASKIQ_FLEET_PROMTOOL or the cache of tools/promtool/build.sh."""
    given = os.environ.get("TASKIQ_FLEET_PROMTOOL", "")
    if given:
        if not Path(given).is_file():
            pytest.fail(f"TASKIQ_FLEET_PROMTOOL={given} is not a file", pytrace=False)
        return Path(given)
    result = subprocess.run(
        ["bash", str(PROMTOOL_BUILD), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        pytest.fail(
            "promtool is missing. Build it once (a few minutes cold) with:\n"
            f"    bash {PROMTOOL_BUILD}\n{result.stderr.strip()}",
            pytrace=False,
        )
    return Path(result.stdout.strip().splitlines()[-1])
