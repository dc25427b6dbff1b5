"""The `refresh` flow: rebuild a project's dataset incrementally and push new versions to the Hub.

Everything expensive is skipped on a rerun by the store (nothing is sampled twice) and by publish
(unchanged content writes nothing, so no new version and no Hub commit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from actforge.flows.build import build
from actforge.pipelines.project import load_project
from actforge.pipelines.publish.hub import push_dataset


@task(name="push-to-hub", cache_policy=NO_CACHE)  # no task retries: push_dataset is the one retry layer
def push(out: str, repo_id: str, revision: str | None, private: bool) -> dict[str, Any]:
    return push_dataset(Path(out), repo_id, revision=revision, private=private)


@flow(name="refresh")
def refresh(config: str, push_to_hub: str | None = None, with_report: bool = False) -> dict[str, Any]:
    """Refresh the dataset a project file describes; push it when a Hub repo is named.

    `push_to_hub` overrides the project's own `push_to_hub` repo; `with_report` turns on the
    project's `with_report` (plots in OUT, shown in the card). The build's tasks and artifacts
    run inside this flow run (`build.fn`, not a child flow run): a refresh with nothing new is mostly
    Prefect overhead, and a second flow run would add about 2 s of it.
    """
    project = load_project(config)
    result = build.fn(project.refresh_settings(with_report))
    repo_id = push_to_hub or project.push_to_hub
    if repo_id:
        result["hub"] = push(project.build.out, repo_id, project.revision, project.private)
    return result
