"""A local policy's identity follows its weights: two fine-tunes of one architecture are two
policies, a store's samples from an older actforge (keyed by config alone) are adopted once, and
weights are hashed once per file, not on every run. A missing folder or a Hub id is a clear error:
nothing is ever downloaded."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from actforge.pipelines.policy.models import legacy_policy_name, load_policy, policy_name, weights_digest
from actforge.pipelines.store.database import Store
from actforge.schemas import SAMPLE_SCHEMA, Sample, records_table


def _fine_tune(source: Path, target: Path) -> Path:
    """A copy of `source` whose weights differ in one value; config and file names are the same."""
    shutil.copytree(source, target)
    weights = load_file(target / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name].clone()
    weights[name].view(-1)[0] += 1e-3
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    return target


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ACTFORGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_folders_that_differ_only_in_weights_are_two_policies(
    tmp_path: Path, tiny_model_dir: Path, cache: Path
) -> None:
    a = shutil.copytree(tiny_model_dir, tmp_path / "a" / "tiny-llama")
    b = _fine_tune(tiny_model_dir, tmp_path / "b" / "tiny-llama")
    assert (a / "config.json").read_bytes() == (b / "config.json").read_bytes()
    assert legacy_policy_name(str(a)) == legacy_policy_name(str(b))  # the old key could not tell
    assert policy_name(str(a)) != policy_name(str(b))
    assert policy_name(str(a)) == policy_name(str(tiny_model_dir))  # a copy is the same policy
    assert policy_name(str(a)).startswith("tiny-llama@")


def test_weights_are_hashed_once_per_file(tmp_path: Path, tiny_model_dir: Path, cache: Path) -> None:
    folder = shutil.copytree(tiny_model_dir, tmp_path / "tiny-llama")
    first = weights_digest(folder)
    assert len(list((cache / "digests").iterdir())) == 1
    # The cached digest is what a second run uses: a cache entry that lies is believed...
    [entry] = (cache / "digests").iterdir()
    entry.write_text("0" * 64, encoding="utf-8")
    assert weights_digest(folder) != first
    # ...until the file changes (size, mtime or inode), when it is read again.
    weights = folder / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1))
    assert weights_digest(folder) == first


def test_a_folder_without_weights_is_a_clear_error(tmp_path: Path, tiny_model_dir: Path, cache: Path) -> None:
    folder = tmp_path / "no-weights"
    folder.mkdir()
    shutil.copy(tiny_model_dir / "config.json", folder / "config.json")
    with pytest.raises(FileNotFoundError, match="no weight files"):
        policy_name(str(folder))


def _sample(policy: str) -> Sample:
    return Sample(
        sample_id=f"s-{policy}",
        state_id="state-1",
        policy=policy,
        params_hash="p",
        params="{}",
        seed=1,
        sample_index=0,
        raw_output="Action: look",
        action="look",
        verdict="accepted",
        reason="",
    )


def test_legacy_samples_are_adopted_once(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        assert store.policy_names("new@1", "old@1") == ["new@1"]  # nothing stored under the old name
        store.stage({"samples": records_table([_sample("old@1")], SAMPLE_SCHEMA)})
        store.merge()
        assert store.policy_names("new@1", "old@1") == ["new@1", "old@1"]
        # A second folder with the same config (another fine-tune) does not inherit them.
        assert store.policy_names("other@2", "old@1") == ["other@2"]
    with Store(tmp_path / "s.duckdb") as store:  # the adoption is stored
        assert store.policy_names("new@1", None) == ["new@1", "old@1"]


def test_policy_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloads"):
        policy_name(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_policy("HuggingFaceTB/SmolLM2-135M-Instruct")
