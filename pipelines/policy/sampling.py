"""Sample K alternatives per state from a policy (local, batched by `pipelines.policy.decoding`, or a server)
and judge them.

Seeds derive from (seed, state_id, policy), so a state's samples do not depend on its batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from actforge.pipelines.curate.filters import FilterConfig, Verdict, judge
from actforge.pipelines.policy.params import Backend, SamplingParams
from actforge.pipelines.text.prompts import ACTION_PREFIX
from actforge.schemas import Sample, State
from actforge.schemas.ids import derive_seed, sample_id
from actforge.schemas.vocab import REJECTED, SERVER_ERROR


def sample_states(
    policy: Backend, states: Sequence[State], params: SamplingParams, filters: FilterConfig
) -> list[Sample]:
    """K judged samples for each state (every sample kept, whatever its verdict). A state whose
    server answer was an error gets K samples rejected as `server_error`."""
    seeds = [derive_seed(params.seed, state.state_id, policy.name) for state in states]
    outputs = policy.complete(states, params, seeds)
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
