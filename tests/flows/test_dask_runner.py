"""`--runner dask`: collection per source and sampling per batch on a 2-worker local Dask cluster
(real worker processes on loopback) publish the same bytes as the default runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from actforge.flows.build import _policy, build
from actforge.flows.runners import on_runner
from actforge.pipelines.config import BuildConfig
from tests.support.factories import EXAMPLES, files_of

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.usefixtures("prefect_harness", "hf_offline"),
]

SOURCES = (str(EXAMPLES / "native.jsonl"), str(EXAMPLES / "eto_alfworld.json"))


def test_a_build_on_two_dask_workers_publishes_the_bytes_of_a_serial_build(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    results = {}
    for runner in ("threads", "dask"):
        _policy.cache_clear()
        config = BuildConfig(
            sources=SOURCES,
            out=str(tmp_path / runner),
            policy=str(tiny_model_dir),
            k=2,
            batch_size=2,
            runner=runner,
            workers=2,
        )
        results[runner] = on_runner(build, config)(config)
        loaded_here = _policy.cache_info().misses
        assert loaded_here == (1 if runner == "threads" else 0)  # on Dask, workers sampled, not the flow
    assert results["dask"]["run"] == results["threads"]["run"]
    assert results["dask"]["run"]["policy_calls"] == results["dask"]["stats"]["states"] == 20
    serial, dask = files_of(tmp_path / "threads"), files_of(tmp_path / "dask")
    shards = {name for name in serial if name.endswith(".parquet")}
    assert len(shards) == 12 and {n: dask[n][0] for n in shards} == {n: serial[n][0] for n in shards}
