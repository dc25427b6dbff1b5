"""Prefect settings for the CLI: quiet run logs, and an API server that cannot outlive the CLI."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn

API_STARTUP_SECONDS = 90
API_STOP_SECONDS = 30

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
    no cleanup); a thread dies with the process, and starts in a few seconds. On the way out the
    client's log and event workers are drained into it, then it is stopped and joined: left
    serving into interpreter shutdown, its embedded Redis (burner-redis, whose Rust threads call
    back into Python) aborted the process now and then (`Fatal Python error: PyGILState_Release`).
    """
    configure_prefect(verbose)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    server, thread, url = _serve_in_thread()
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            try:
                yield
            finally:
                _drain_prefect_clients()
    finally:
        server.should_exit = True
        thread.join(API_STOP_SECONDS)


def _serve_in_thread() -> tuple[uvicorn.Server, threading.Thread, str]:
    """Start Prefect's API app (no UI) on a free loopback port; return the server, its thread and
    its URL."""
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
    return server, thread, f"http://{host}:{port}/api"


def _drain_prefect_clients() -> None:
    """Send what Prefect's client still queues (run logs, events) while the API is up, as
    Prefect's own test harness does before it stops its server."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=API_STOP_SECONDS)
    EventsWorker.drain_all(timeout=API_STOP_SECONDS)
