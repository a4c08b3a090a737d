"""``taskiq-fleet demo`` end to end: embedded Redis, real agent workers, real load."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from taskiq_fleet.demo.scenario import Scenario
from taskiq_fleet.redis_server import LocalRedisServer

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
DEMO_QUEUE = Scenario.quick().queue


def test_a_quick_demo_loses_nothing_and_scales_up_and_back_down(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    png_path = tmp_path / "run.png"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"

    done = subprocess.run(
        [
            str(BIN / "taskiq-fleet"),
            "demo",
            "--quick",
            "--metrics-port",
            "0",
            "--summary-json",
            str(summary_path),
            "--png",
            str(png_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["problems"] == []
    assert summary["sent"] == 40
    assert summary["completed"] == 40
    assert (summary["lost"], summary["duplicated"], summary["still_queued"]) == (0, 0, 0)
    assert summary["peak_workers"] > summary["min_workers"]
    assert summary["final_workers"] == summary["min_workers"]
    assert summary["wait_p95_s"] is not None
    assert 0 < summary["worker_seconds"] < summary["fixed_peak_worker_seconds"]
    assert png_path.read_bytes().startswith(b"\x89PNG")

    # Not a terminal: plain progress lines, then the summary.
    assert "phase=" in done.stdout
    assert "workers 1 -> " in done.stdout
    assert "every command ran exactly once" in done.stdout


def test_ctrl_c_at_the_terminal_drains_counts_and_exits_zero(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"

    # Its own process group plays the terminal's foreground group: Ctrl-C reaches all of it.
    with subprocess.Popen(
        [
            str(BIN / "taskiq-fleet"),
            "demo",
            "--metrics-port",
            "0",
            "--summary-json",
            str(summary_path),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as demo:
        assert demo.stdout is not None
        metrics_url = ""
        try:
            for line in demo.stdout:
                if found := re.search(r"metrics at (http://\S+?);", line):
                    metrics_url = found.group(1)
                if "workers 1 -> " in line:
                    break
            # Scraped while it runs: the poll loop's own figures for the demo's pool.
            with urllib.request.urlopen(metrics_url, timeout=10) as response:  # noqa: S310
                scraped = response.read().decode()
            os.killpg(demo.pid, signal.SIGINT)
            rest = demo.stdout.read()
            code = demo.wait(timeout=60)
        finally:
            if demo.poll() is None:
                os.killpg(demo.pid, signal.SIGKILL)

    assert code == 0, rest
    assert metrics_url.startswith("http://127.0.0.1:")
    current = r'^taskiq_fleet_pool_replicas\{[^}]*kind="current"[^}]*\} [1-9]'
    assert re.search(current, scraped, re.MULTILINE), scraped
    assert re.search(r"^taskiq_fleet_pool_broker_up\{[^}]*\} 1\.0$", scraped, re.MULTILINE), scraped
    summary = json.loads(summary_path.read_text())
    assert summary["interrupted"] is True
    assert (summary["lost"], summary["duplicated"]) == (0, 0)
    assert summary["completed"] + summary["still_queued"] == summary["sent"] > 0
    assert "nothing lost or run twice" in rest


def test_a_command_lost_behind_its_back_is_counted_and_fails_the_demo(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"

    with LocalRedisServer() as server:
        env["REDIS_URL"] = server.url
        client = redis.Redis.from_url(server.url)
        demo = subprocess.Popen(
            [
                str(BIN / "taskiq-fleet"), "demo", "--quick", "--metrics-port", "0",
                "--summary-json", str(summary_path),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        try:
            # Some waiting commands vanish from the queue as the burst lands: lost.
            taken = 0
            deadline = time.monotonic() + 60
            while not taken and time.monotonic() < deadline and demo.poll() is None:
                taken = len(client.lpop(DEMO_QUEUE, 3) or [])
                time.sleep(0.005)
            output, _ = demo.communicate(timeout=150)
        finally:
            if demo.poll() is None:
                demo.kill()
            client.close()

    assert taken > 0, "the burst never waited in the queue"
    assert demo.returncode == 1, output
    summary = json.loads(summary_path.read_text())
    assert summary["lost"] == taken
    assert summary["duplicated"] == 0
    assert any("lost" in problem for problem in summary["problems"])
