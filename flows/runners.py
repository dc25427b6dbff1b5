"""Where a flow's tasks run: threads in this process, or a Dask cluster (local or the user's).

The local cluster is set up for offline, loopback-only use: workers are processes on 127.0.0.1, one
thread each (each loads its own copy of the policy, and torch's seeded sampling is per process), and
no dashboard.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from prefect import Flow
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from actforge.pipelines.config import BuildConfig

THREAD_WORKERS = 2  # sources collected at once in the default runner

F = TypeVar("F", bound=Flow)


def task_runner(config: BuildConfig) -> TaskRunner:
    if config.runner != "dask":
        return ThreadPoolTaskRunner(max_workers=THREAD_WORKERS)
    from prefect_dask import DaskTaskRunner

    if config.dask_address:
        return DaskTaskRunner(address=config.dask_address)
    cluster = {
        "n_workers": config.workers,
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": None,
        "silence_logs": logging.WARNING,
    }
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=cluster)


def on_runner(flow_: F, config: BuildConfig) -> F:
    """`flow_` with the task runner `config` asks for."""
    return flow_.with_options(task_runner=task_runner(config))
