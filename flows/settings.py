"""Prefect settings for the CLI: quiet run logs, and an API server that cannot outlive the CLI."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

API_STARTUP_SECONDS = 90

PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


# Prefect's loggers of task and flow runs, as its logging config names them in the environment.
RUN_LOGGERS = (
    "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL",
    "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL",
)


def configure_prefect(verbose: bool = False) -> None:
    """Set defaults before Prefect is imported; a user's own environment wins.

    Unless `verbose`, a failing task or flow run does not log its traceback: actforge reports an
    expected error in one line itself, and an unexpected one still ends in Python's traceback.
    """
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if not verbose:
        for key in RUN_LOGGERS:
            os.environ.setdefault(key, "CRITICAL")


@contextmanager
def prefect_api(verbose: bool = False) -> Iterator[None]:
    """Prefect configured (`configure_prefect`); flows inside talk to the user's Prefect server
    when `PREFECT_API_URL` is set, else to one served from a thread of this process.

    Prefect's own temporary server is a separate process that survives a killed CLI (SIGKILL runs
    no cleanup); a thread dies with the process, and starts in a few seconds. The thread keeps
    serving until the process exits, so Prefect's log and event workers can flush at exit.
    """
    configure_prefect(verbose)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    with temporary_settings(updates={PREFECT_API_URL: _serve_in_thread()}):
        yield


def _serve_in_thread() -> str:
    """Start Prefect's API app (no UI, no background services) on a free loopback port."""
    import uvicorn
    from prefect.server.api.server import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = create_app(ephemeral=True, final=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="prefect-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + API_STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"Prefect's API did not start within {API_STARTUP_SECONDS} s")
        time.sleep(0.05)
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}/api"
