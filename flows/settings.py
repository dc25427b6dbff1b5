"""Prefect settings that make its temporary local server start reliably on small machines."""

from __future__ import annotations

import os

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
