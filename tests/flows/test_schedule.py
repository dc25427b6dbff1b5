"""Prefect the way a user runs it: `prefect server start` on loopback, `prefect deploy` of
prefect.yaml, and `actforge serve` running scheduled refreshes until it is stopped."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.factories import EXAMPLES, ROOT

BIN = Path(sys.executable).parent
DEADLINE_S = 240

pytestmark = [pytest.mark.slow, pytest.mark.integration]  # a real `prefect server start`


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen, timeout: float = 30) -> int:
    """SIGINT the process group, then SIGKILL if it does not end in `timeout` seconds."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        raise


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real Prefect server on a free loopback port, stopped at the end."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = os.environ | {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(home / "hf"),
    }
    log = (home / "server.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None, (home / "server.log").read_text()
        time.sleep(1)
    else:
        _stop(process)
        pytest.fail("prefect server did not become healthy in 90 s")
    yield env
    _stop(process)


def _api(env: dict[str, str], path: str, body: dict) -> list[dict]:
    response = httpx.post(f"{env['PREFECT_API_URL']}{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def test_prefect_deploy_registers_the_deployments(server: dict[str, str]) -> None:
    env = server | {"ACTFORGE_HOME": str(ROOT)}
    prefect = str(BIN / "prefect")
    subprocess.run([prefect, "work-pool", "create", "actforge", "--type", "process"], env=env, check=True)
    done = subprocess.run(
        [prefect, "deploy", "--all", "--no-prompt"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    deployments = {d["name"]: d for d in _api(server, "/deployments/filter", {})}
    assert {"demo", "nightly", "act"} <= set(deployments)
    [schedule] = deployments["nightly"]["schedules"]
    assert schedule["schedule"]["cron"] == "0 3 * * *"
    assert deployments["nightly"]["parameters"] == {"config": "actforge.yaml"}


def test_serve_runs_scheduled_refreshes(server: dict[str, str], tmp_path: Path, tiny_model_dir: Path) -> None:
    experts = tmp_path / "experts"
    experts.mkdir()
    shutil.copy(EXAMPLES / "native.jsonl", experts / "native.jsonl")
    config = tmp_path / "project.yaml"
    config.write_text(f"sources: [experts]\nout: out/ds\npolicy: {tiny_model_dir}\nk: 2\n", encoding="utf-8")
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "actforge"), "serve", "--project", str(config), "--interval", "5"],
        env=server, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    completed: list[dict] = []
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline and len(completed) < 2:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            completed = _api(
                server,
                "/flow_runs/filter",
                {
                    "flows": {"name": {"any_": ["refresh"]}},
                    "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
                },
            )
            time.sleep(2)
    finally:
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
            left = ""
        except subprocess.TimeoutExpired:  # what still runs, for the failure message
            left = subprocess.run(["ps", "-o", "pid,etime,stat,wchan:20,args", "-g", str(process.pid)],
                                  capture_output=True, text=True).stdout  # fmt: skip
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        stopped_in = time.monotonic() - started
    log_tail = (tmp_path / "serve.log").read_text()[-3000:]
    assert len(completed) >= 2, log_tail
    assert all(run["deployment_id"] for run in completed)  # scheduled runs of the served deployment
    assert not left and stopped_in < 30, f"not stopped in {stopped_in:.0f} s:\n{left}\n{log_tail}"
    assert (tmp_path / "out" / "ds" / "manifest.json").is_file()
