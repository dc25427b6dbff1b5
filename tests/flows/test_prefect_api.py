"""The CLI's in-process Prefect API: started for a build, stopped before the interpreter exits.

Left serving into interpreter shutdown, its threads (uvicorn, aiosqlite, the embedded Redis of
Prefect's background worker) are still calling into Python while it finalizes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.factories import ROOT

CHILD = textwrap.dedent(
    """
    import json, threading
    from actforge.flows.settings import prefect_api

    with prefect_api():
        from prefect import flow, get_run_logger, task

        @task
        def add(x):
            get_run_logger().warning("a run log the client queues for the API")
            return x + 1

        @flow
        def run():
            return add(1)

        result = run()
        inside = [t.name for t in threading.enumerate()]
    print(json.dumps({"result": result, "inside": inside, "after": [t.name for t in threading.enumerate()]}))
    """
)


@pytest.mark.integration
@pytest.mark.slow  # serves Prefect's API and runs a build: about 19 s
def test_the_api_thread_and_its_database_threads_stop_when_the_build_ends(tmp_path: Path) -> None:
    import json

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")},
        "PYTHONPATH": str(ROOT),
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }
    child = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert child.returncode == 0, child.stdout + child.stderr
    seen = json.loads(child.stdout.strip().splitlines()[-1])
    assert seen["result"] == 2
    assert "prefect-api" in seen["inside"]
    assert any("_connection_worker_thread" in name for name in seen["inside"])
    left = [name for name in seen["after"] if name == "prefect-api" or "_connection_worker_thread" in name]
    assert left == [], seen["after"]
    assert "Traceback" not in child.stderr and "Error" not in child.stderr, child.stderr
