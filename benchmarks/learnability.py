"""Learnability check: does ACT's critic stage learn when the data has an easy, certain signal?

The pairs are real ScienceWorld expert states (no history, observation cut to its first 300
characters, so a CPU step is affordable); each alternative is the expert's action spelled
backwards ("go to kitchen" -> "nehctik ot og"), which the engine cannot parse. A critic that learns
anything should pick the expert in both orders. Train and held-out test pairs come from different
task variations (the engine's own train and test lists).

Run: .venv/bin/python benchmarks/learnability.py --out out/learnability [--spec SPEC] [TRL overrides]
The critic trains with the default objective (`exact` for the direct protocol, `trainers.exact`) for
MAX_STEPS steps unless `--max_steps` is given; held-out consistent accuracy is measured every
`--curve-every` steps (the learning curve). Prints before/after critic metrics (consistent accuracy,
per slot, P(expert)), the curve and the training time (evaluation excluded), and writes them to
OUT-critic/learnability.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow.compute as pc

from actforge.pipelines import steps
from actforge.pipelines.sources.scienceworld import collect_scienceworld
from actforge.pipelines.store.database import Store
from actforge.pipelines.store.states import load_states
from actforge.pipelines.text.critic import OBJECTIVES
from actforge.schemas import Sample
from actforge.schemas.ids import sample_id
from actforge.schemas.vocab import ACCEPTED
from actforge.trainers.curve import curve_table
from actforge.trainers.evaluate import evaluate, format_table
from actforge.trainers.train import RUN_FILE, train

SPEC = "scienceworld:find-non-living-thing,find-living-thing,find-plant,find-animal@train:6,test:2"
HISTORY_CHARS = 0  # no history in the rows: the signal is in the two actions, and CPU steps are slow
OBSERVATION_CHARS = 300  # observations cut too (the room description can run to 1,000+ characters)


POLICY = "backwards"
MAX_STEPS = 30


def backwards(action: str) -> str:
    return action[::-1]


def build(spec: str, out: Path) -> None:
    """One (expert, expert-backwards) pair per expert state, made and published the way a build does."""
    collected = collect_scienceworld(spec)
    observation = collected.steps["observation"]
    cut = pc.utf8_slice_codeunits(observation, 0, OBSERVATION_CHARS)
    collected.steps = collected.steps.set_column(
        collected.steps.column_names.index("observation"), "observation", cut
    )
    with Store(out.parent / f"{out.name}.duckdb") as store:
        trajectory_ids, _ = steps.record(store, collected)
        state_ids = steps.select(store, trajectory_ids, None)
        states = load_states(store, trajectory_ids, state_ids, HISTORY_CHARS)
        samples = [
            Sample(
                sample_id=sample_id(state.state_id, POLICY, "-", 0),
                state_id=state.state_id,
                policy=POLICY,
                params_hash="-",
                params="{}",
                seed=0,
                sample_index=0,
                raw_output=backwards(state.expert_action),
                action=backwards(state.expert_action),
                verdict=ACCEPTED,
                reason="ok",
            )
            for state in states
        ]
        steps.store_batch(store, states, samples)
        steps.finish(store)
        steps.publish_dataset(store, out, trajectory_ids, [spec], {"sources": [spec]}, HISTORY_CHARS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/learnability")
    parser.add_argument("--spec", default=SPEC)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--objective", default="auto", choices=OBJECTIVES)
    parser.add_argument("--max-pairs", type=int, default=40, help="held-out test pairs evaluated")
    parser.add_argument("--curve-every", type=int, default=5, help="steps between points of the curve")
    args, overrides = parser.parse_known_args()
    if not any(o.split("=")[0] == "--max_steps" for o in overrides):
        overrides += ["--max_steps", str(MAX_STEPS)]
    out = Path(args.out)
    if not (out / "manifest.json").is_file():
        build(args.spec, out)
    manifest = json.loads((out / "manifest.json").read_text())
    print(f"dataset: {out} {manifest['splits']}")
    before = evaluate(str(out), args.model, max_pairs=args.max_pairs, max_states=0)
    trained = train(
        "act",
        str(out),
        args.model,
        f"{out}-critic",
        overrides=overrides,
        protocol="direct",
        objective=args.objective,
        curve_every=args.curve_every,
        curve_max_pairs=args.max_pairs,
    )
    after = evaluate(str(out), str(trained), max_pairs=args.max_pairs, max_states=0)
    run = json.loads((Path(trained) / RUN_FILE).read_text())
    print(format_table([before, after], ["before", "after"]))
    print(curve_table(run["curve"]))
    print(
        f"training: {run['train_seconds']:.0f} s (curve evaluations, {run['curve_seconds']:.0f} s, excluded)"
    )
    result = {
        "spec": args.spec,
        "before": before,
        "after": after,
        "train_seconds": run["train_seconds"],
        "objective": run["objective"],
        "curve": run["curve"],
        "overrides": overrides,
    }
    (Path(trained) / "learnability.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
