"""Fixtures shared by the whole suite: the tiny model (its folder, and loaded as a policy), a small
published dataset, the loopback Hub, Prefect's temporary server, and `datasets` kept offline.

Factories, the tiny model's files and the loopback servers themselves live in `tests/support/`.
Tests that must not touch the user's policy cache set `ACTFORGE_CACHE` themselves: nothing here does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.hub_server import READ_TOKEN, TOKEN, HubServer

if TYPE_CHECKING:
    from actforge.pipelines.policy.models import Policy

# torch, transformers and Prefect load inside the fixtures that need them: a run of a few light
# tests (`pytest tests/test_architecture.py`) does not pay their ~10 s of imports.


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> Policy:
    """The tiny model loaded as a local policy, once per module."""
    from actforge.pipelines.policy.models import load_policy

    return load_policy(str(tiny_model_dir))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small published dataset, once per module: 8 test pairs over 5 states, 3 train pairs
    (`factories.SMALL_DATASET`)."""
    from tests.support.factories import publish_small_dataset

    return publish_small_dataset(tmp_path_factory.mktemp("dataset") / "ds")


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """A fresh loopback Hub that knows `hub_server.TOKEN` (write, also in HF_TOKEN) and `READ_TOKEN`.

    huggingface_hub reads its settings at import (this suite imports it before any test can set the
    environment), so they are set on its constants as HF_ENDPOINT and friends would: online, no Xet,
    no telemetry (its agent detection would call huggingface.co), no saved login, and the default
    endpoint on loopback too, so no request can leave this machine.
    """
    import huggingface_hub.constants

    with HubServer(TOKEN, READ_TOKEN) as server:
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", server.endpoint)
        template = server.endpoint + "/{repo_id}/resolve/{revision}/{filename}"  # file downloads
        monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
        yield server


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for the whole session (it takes ~15-20 s to start here)."""
    from actforge.flows.settings import configure_prefect

    configure_prefect()
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def hf_offline(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep `datasets` off the network and out of the user's cache."""
    import datasets

    home = tmp_path_factory.mktemp("hf")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(home / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
