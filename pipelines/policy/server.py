"""A base policy behind an OpenAI-compatible server: vLLM, SGLang, llama.cpp's server, `transformers
serve`.

The prompt is exactly local sampling's: rendered here with the model's chat template (from a local
tokenizer folder), the assistant turn opened with "Action:", sent to `/v1/completions` with the
same stop rule and token limit. Requests go out concurrently through the `openai` package's async
client, which owns retries (with backoff, honouring Retry-After) and timeouts. The API key comes
only from `OPENAI_API_KEY` or a file; it is never printed, logged or stored.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from actforge.pipelines.policy.params import Usage
from actforge.pipelines.text.prompts import agent_prompt_text
from actforge.schemas import State
from actforge.schemas.ids import derive_seed

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from transformers import PreTrainedTokenizerBase

    from actforge.pipelines.policy.params import SamplingParams

log = logging.getLogger(__name__)

PREFIX = "openai:"
MAX_RETRIES = 4
TIMEOUT_SECONDS = 120.0
NO_KEY = "EMPTY"  # what local servers (vLLM, transformers serve) accept when they check no key


def is_server(policy: str) -> bool:
    return policy.startswith(PREFIX)


def server_model(policy: str) -> str:
    """MODEL of `openai:MODEL`."""
    model = policy.removeprefix(PREFIX)
    if not model:
        raise ValueError(f"policy {policy!r}: name the served model, e.g. openai:HuggingFaceTB/SmolLM2-135M")
    return model


def api_key(key_file: str | None) -> str:
    """The key from `key_file` (first line), else `OPENAI_API_KEY`, else none."""
    if key_file:
        lines = Path(key_file).read_text(encoding="utf-8").splitlines()
        if not lines or not lines[0].strip():
            raise ValueError(f"--api-key-file {key_file}: the file is empty")
        return lines[0].strip()
    return os.environ.get("OPENAI_API_KEY") or NO_KEY


@dataclass
class ServerPolicy:
    """A served model: its name (samples are keyed by it), where it is, and the tokenizer that
    renders its prompts."""

    name: str
    model: str
    base_url: str
    tokenizer: PreTrainedTokenizerBase
    concurrency: int
    api_key: str = field(repr=False)
    usage: Usage = field(default_factory=Usage)

    def complete(
        self, states: Sequence[State], params: SamplingParams, seeds: Sequence[int]
    ) -> list[list[str] | str]:
        """K completions per state from the server, requests in flight together (`sample_server`)."""
        return sample_server(self, states, params, seeds)


def sample_server(
    policy: ServerPolicy, states: Sequence[State], params: SamplingParams, seeds: Sequence[int]
) -> list[list[str] | str]:
    """Per state (with its seed): its K raw outputs (without the "Action:" prefix) or an error line."""
    return asyncio.run(_sample_all(policy, states, params, seeds))


async def _sample_all(
    policy: ServerPolicy, states: Sequence[State], params: SamplingParams, seeds: Sequence[int]
) -> list[list[str] | str]:
    from openai import AsyncOpenAI

    limit = asyncio.Semaphore(policy.concurrency)
    # Prompts render in one thread beside the event loop (a tokenizer is not safe to share between
    # threads), so answers are handled while later prompts render.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="render") as render:
        async with AsyncOpenAI(
            base_url=policy.base_url, api_key=policy.api_key, max_retries=MAX_RETRIES, timeout=TIMEOUT_SECONDS
        ) as client:
            jobs = [
                _sample_state(client, limit, render, policy, state, params, seed)
                for state, seed in zip(states, seeds, strict=True)
            ]
            return list(await asyncio.gather(*jobs))


async def _sample_state(
    client: AsyncOpenAI,
    limit: asyncio.Semaphore,
    render: ThreadPoolExecutor,
    policy: ServerPolicy,
    state: State,
    params: SamplingParams,
    seed: int,
) -> list[str] | str:
    """K outputs for one state: `n=K` in one request, then one concurrent request per missing sample
    (servers such as `transformers serve` ignore `n`), each with its own derived seed."""
    import openai

    prompt = await asyncio.get_running_loop().run_in_executor(
        render, agent_prompt_text, state, policy.tokenizer, params.max_prompt_tokens
    )
    texts: list[str] = []
    try:
        texts += await _complete(client, limit, policy, prompt, params, params.k, seed)
        missing = [derive_seed(seed, str(index)) for index in range(len(texts), params.k)]
        extra = [_complete(client, limit, policy, prompt, params, 1, each) for each in missing]
        for answer in await asyncio.gather(*extra):
            texts += answer
    except openai.APIConnectionError as err:  # down or unreachable after every retry: stop the build
        raise RuntimeError(
            f"policy server {policy.base_url} unreachable after {MAX_RETRIES} retries: {type(err).__name__}"
        ) from None
    except openai.APIStatusError as err:
        if err.status_code < 500:  # our request is wrong (model name, key, limits): no sample can come
            detail = " ".join(err.response.text.split())[:300]
            raise RuntimeError(
                f"policy server {policy.base_url} refused the request (HTTP {err.status_code}): {detail}"
            ) from None
        policy.usage.retries += MAX_RETRIES
        line = f"HTTP {err.status_code} after {MAX_RETRIES} retries"
        log.warning("state %s: %s from %s", state.state_id[:12], line, policy.base_url)
        return line
    except (openai.APIError, ValueError, KeyError, TypeError) as err:  # an error answer, or garbage
        line = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        log.warning("state %s: %s from %s", state.state_id[:12], line, policy.base_url)
        return line
    return texts[: params.k]


async def _complete(
    client: AsyncOpenAI,
    limit: asyncio.Semaphore,
    policy: ServerPolicy,
    prompt: str,
    params: SamplingParams,
    n: int,
    seed: int,
) -> list[str]:
    async with limit:
        raw = await client.completions.with_raw_response.create(
            model=policy.model,
            prompt=prompt,
            n=n,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            stop=["\n"],
            seed=seed % 2**31,
        )
    response = raw.parse()
    policy.usage.requests += 1
    policy.usage.retries += raw.retries_taken
    if response.usage is not None:  # vLLM and `transformers serve` count tokens; some servers do not
        policy.usage.prompt_tokens += response.usage.prompt_tokens
        policy.usage.completion_tokens += response.usage.completion_tokens
    choices = sorted(response.choices, key=lambda c: c.index)
    if not choices or any(not isinstance(c.text, str) for c in choices):
        raise ValueError("the server answered without completion texts")
    return [c.text for c in choices]
