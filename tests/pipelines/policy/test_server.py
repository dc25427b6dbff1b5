"""Builds whose base policy is an OpenAI-compatible server: a real HTTP server on loopback
(`tests/support/openai_server.py`) that ignores `n`, fails or garbles some prompts, and records requests."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
from pathlib import Path

import pytest

from actforge.flows.cli import main
from actforge.pipelines.config import BuildConfig
from tests.support.factories import EXAMPLES
from tests.support.openai_server import CompletionServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.usefixtures("prefect_harness", "hf_offline"),
]

KEY = "sk-test-" + os.urandom(12).hex()
NATIVE = str(EXAMPLES / "native.jsonl")  # 3 states: 2 of "boil water", 1 of "count the apples"


def config(tmp_path: Path, base_url: str, tokenizer: Path, **fields) -> BuildConfig:
    return BuildConfig(
        sources=(NATIVE,),
        out=str(tmp_path / "out"),
        policy="openai:test-model",
        base_url=base_url,
        tokenizer=str(tokenizer),
        k=3,
        seed=5,
        **fields,
    )


def test_a_build_through_a_server_keeps_good_samples_records_bad_ones_and_resumes(
    tmp_path: Path,
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from actforge.flows.build import build

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    with CompletionServer(KEY, ignore_n=True, garbage_marker="Count the apples") as server:
        # The first two states in `--max-states` order: the garbled trajectory's one, a good one.
        first = build(config(tmp_path, server.base_url, tiny_model_dir, max_states=2))
        assert first["run"]["policy_calls"] == 2 and first["stats"]["pairs"] > 0
        requests_first = len(server.requests)
        second = build(config(tmp_path, server.base_url, tiny_model_dir))
        new_prompts = {r.prompt for r in server.requests[requests_first:]}
        requests_second = len(server.requests)
        third = build(config(tmp_path, server.base_url, tiny_model_dir))
        assert len(server.requests) == requests_second  # the third build requested nothing

    assert second["run"]["policy_calls"] == 1  # only the state the first build did not sample
    assert len(new_prompts) == 1
    assert third["run"]["policy_calls"] == 0 and third["run"]["samples_added"] == 0
    assert all(r.authorised for r in server.requests)  # the key went to the server, and only there

    stats = third["stats"]
    assert stats["samples"] == 9  # K=3 for each of the 3 states, good or bad
    assert stats["samples_by_reason"].get("server_error") == 3  # the garbled state's K samples
    assert stats["pairs"] > 0 and stats["samples_by_verdict"]["accepted"] + 3 <= 9
    # `n` was ignored: the client asked again, one sample per request, with derived seeds
    seeds = [r.seed for r in server.requests if "Count the apples" not in r.prompt]
    assert len(seeds) == len(set(seeds))

    out = tmp_path / "out"
    printed = capfd.readouterr()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and all(KEY.encode() not in p.read_bytes() for p in files)  # store, shards, card, cache
    assert KEY not in printed.out + printed.err + logged
    assert (out / "manifest.json").is_file()


def test_a_capped_build_stops_cleanly_and_the_next_run_ends_as_an_uncapped_build(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--max-requests 1` stops after the first batch with a one-line notice (exit 0); the next run
    samples the rest, and the shards equal an uncapped build's. Requests and tokens are counted."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with CompletionServer(KEY) as server:

        def argv(out: str) -> list[str]:
            server_flags = ["--policy", "openai:test-model", "--base-url", server.base_url]
            sampling = ["--tokenizer", str(tiny_model_dir), "--k", "3", "--seed", "5", "--batch-size", "1"]
            return ["build", "--source", NATIVE, "--out", str(tmp_path / out), *server_flags, *sampling]

        assert main([*argv("capped"), "--max-requests", "1"]) == 0
        [notice] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("stopped at")]
        [first] = server.requests
        tokens = len(first.prompt.split()) + 3 * len("go to room 1".split())
        assert notice == (
            f"stopped at --max-requests 1 after 1 requests and {tokens} tokens: "
            "1 of 3 states sampled; run it again to go on"
        )
        assert main(argv("capped")) == 0
        assert "stopped at" not in capsys.readouterr().out and len(server.requests) == 3
        assert main(argv("uncapped")) == 0
        assert len(server.requests) == 6

    capped, uncapped = tmp_path / "capped", tmp_path / "uncapped"
    shards = sorted(p.relative_to(capped) for p in capped.rglob("*.parquet"))
    assert shards == sorted(p.relative_to(uncapped) for p in uncapped.rglob("*.parquet"))
    assert all((capped / p).read_bytes() == (uncapped / p).read_bytes() for p in shards)
    stats = {
        name: json.loads((tmp_path / name / "manifest.json").read_text())["stats"]
        for name in ("capped", "uncapped")
    }
    assert stats["capped"]["server_usage"] == stats["uncapped"]["server_usage"]  # 3 requests, all told
    assert (
        stats["capped"]["server_usage"]["requests"] == 3 and stats["capped"]["server_usage"]["retries"] == 0
    )
    words = sum(len(r.prompt.split()) + 3 * 4 for r in server.requests[:3])
    usage = stats["capped"]["server_usage"]
    assert usage["prompt_tokens"] + usage["completion_tokens"] == words


def test_a_server_that_is_down_fails_the_build_in_one_line(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("actforge.pipelines.policy.server.MAX_RETRIES", 1)
    with socket.socket() as sock:  # a free port with nothing listening on it
        sock.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    argv = ["build", "--source", NATIVE, "--out", str(tmp_path / "out"), "--policy", "openai:m"]
    argv += ["--base-url", base_url, "--tokenizer", str(tiny_model_dir)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("actforge")]  # besides progress bars
    assert line.startswith("actforge: error: policy server") and "unreachable" in line
    assert "Traceback" not in err


def test_a_refused_request_fails_the_build_in_one_line_and_stores_no_sample(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 4xx answer means the request itself is wrong (here the model name): no sample can come,
    so none is recorded, and the corrected build samples every state."""
    from actforge.flows.build import build

    with CompletionServer(KEY, model="served-model") as server:
        argv = ["build", "--source", NATIVE, "--out", str(tmp_path / "out"), "--policy", "openai:other"]
        argv += ["--base-url", server.base_url, "--tokenizer", str(tiny_model_dir), "--k", "3"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        [line] = [line for line in err.splitlines() if line.startswith("actforge")]
        assert "refused the request (HTTP 400)" in line and "serving 'served-model' only" in line
        fixed = dataclasses.replace(
            config(tmp_path, server.base_url, tiny_model_dir), policy="openai:served-model"
        )
        assert build(fixed)["run"]["policy_calls"] == 3


def test_server_settings_are_checked_before_any_work(tmp_path: Path, capsys) -> None:
    base = ["build", "--source", NATIVE, "--out", str(tmp_path / "o")]
    cases = [
        (["--policy", "openai:m"], "needs --base-url"),
        (["--policy", "openai:"], "name the served model"),
        (["--base-url", "http://127.0.0.1:9/v1"], "--base-url is for --policy openai:MODEL"),
        (["--policy", "openai:m", "--base-url", "http://x/v1", "--tokenizer", "nope"], "--tokenizer nope"),
        (["--policy", "openai:m", "--base-url", "http://x/v1", "--api-key-file", "nope"], "--api-key-file"),
    ]
    for extra, expected in cases:
        assert main([*base, *extra]) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert expected in line
    assert not (tmp_path / "o").exists()
