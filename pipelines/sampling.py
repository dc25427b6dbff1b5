"""Sample K alternatives per state from a policy (local, batched by `pipelines.decoding`, or a server)
and judge them.

Seeds derive from (seed, state_id, policy), so a state's samples do not depend on its batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from pipelines.decoding import sample_prompts
from pipelines.filters import REJECTED, FilterConfig, Verdict, judge
from pipelines.policy import Policy
from pipelines.prompts import ACTION_PREFIX, AGENT_PROMPT_TOKENS, PROMPT_VERSION, agent_prompt
from pipelines.server import SERVER_ERROR, ServerPolicy, sample_server
from schemas import Sample, State
from schemas.ids import derive_seed, params_hash, sample_id


@dataclass(frozen=True)
class SamplingParams:
    """Everything that changes what a policy outputs; its hash keys the "never sample twice" rule.

    The user-facing values and their defaults come from `pipelines.config.BuildConfig`.
    """

    k: int
    temperature: float
    top_p: float
    max_new_tokens: int
    seed: int
    max_prompt_tokens: int = AGENT_PROMPT_TOKENS
    prompt: str = PROMPT_VERSION

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("k must be at least 1")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive (sampling, not greedy)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def digest(self) -> str:
        return params_hash(self.as_dict())


def sample_states(
    policy: Policy | ServerPolicy, states: Sequence[State], params: SamplingParams, filters: FilterConfig
) -> list[Sample]:
    """K judged samples for each state (every sample kept, whatever its verdict). A state whose
    server answer was an error gets K samples rejected as `server_error`."""
    seeds = [derive_seed(params.seed, state.state_id, policy.name) for state in states]
    if isinstance(policy, ServerPolicy):
        outputs = sample_server(policy, states, params, seeds)
    else:
        prompts = [agent_prompt(state, policy.tokenizer, params.max_prompt_tokens) for state in states]
        outputs = sample_prompts(policy, prompts, params, seeds)
    samples = []
    digest, params_json = params.digest, json.dumps(params.as_dict(), sort_keys=True)
    for state, seed, texts in zip(states, seeds, outputs, strict=True):
        if isinstance(texts, str):  # the server's error, in one line (logged by sample_server)
            raws = [""] * params.k
            verdicts = [Verdict("", REJECTED, SERVER_ERROR)] * params.k
        else:
            raws = [ACTION_PREFIX + text for text in texts]
            verdicts = judge(raws, state, filters)
        for index, (raw, verdict) in enumerate(zip(raws, verdicts, strict=True)):
            samples.append(
                Sample(
                    sample_id=sample_id(state.state_id, policy.name, digest, index),
                    state_id=state.state_id,
                    policy=policy.name,
                    params_hash=digest,
                    params=params_json,
                    seed=seed,
                    sample_index=index,
                    raw_output=raw,
                    action=verdict.action,
                    verdict=verdict.verdict,
                    reason=verdict.reason,
                )
            )
    return samples
