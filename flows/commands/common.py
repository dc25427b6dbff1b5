"""What several commands print or share: the build summary, a Hub push's line, the recipe's options."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from actforge.flows.arguments import positive_int
from actforge.pipelines.sources.live import PLAY_STEPS
from actforge.pipelines.text.critic import OBJECTIVES, PROTOCOLS
from actforge.schemas.vocab import ALTERNATIVE, EXPERT, OUTCOMES

SUMMARY_KEYS = ("trajectories", "states", "samples", "pairs", "quarantined")


def stats_table(stats: dict[str, Any]) -> str:
    lines = [f"{key:<14}{stats[key]:>8}" for key in SUMMARY_KEYS]
    for key in ("samples_by_verdict", "samples_by_reason", "pairs_by_split", "quarantined_by_reason"):
        for name, count in sorted(stats.get(key, {}).items()):
            lines.append(f"  {key.replace('_by_', ' ')}: {name:<22}{count:>8}")
    for name, count in sorted(stats.get("pairs_rejected", {}).items()):
        lines.append(f"  pairs rejected: {name:<22}{count:>8}")
    for name, count in sorted(stats.get("leakage", {}).items()):  # prompts in several splits
        lines.append(f"  leakage: {name:<24}{count:>8}")
    for name, count in stats.get("server_usage", {}).items():  # every build of the store, summed
        lines.append(f"  server: {name:<25}{count:>8}")
    for environment, sides in sorted(stats.get("outcomes", {}).items()):
        lines.append(f"  verified outcomes in {environment} (alternatives / expert actions):")
        for outcome in OUTCOMES:
            alternative, expert = (sides.get(side, {}).get(outcome, 0) for side in (ALTERNATIVE, EXPERT))
            if alternative or expert:
                lines.append(f"    {outcome:<12}{alternative:>8} /{expert:>6}")
    return "\n".join(lines)


def print_build(result: dict[str, Any]) -> None:
    run = result["run"]
    print(
        f"run: +{run['trajectories_added']} trajectories, +{run['states_added']} states, "
        f"+{run['samples_added']} samples ({run['policy_calls']} policy calls), "
        f"+{run['pairs_added']} pairs, {run['quarantined']} quarantined"
    )
    print(stats_table(result["stats"]))
    print(f"dataset: {result['out']}")
    if "stopped_at" in run:
        print(
            f"stopped at {run['stopped_at']} after {run['server_requests']} requests and "
            f"{run['server_prompt_tokens'] + run['server_completion_tokens']} tokens: "
            f"{run['policy_calls']} of {run['states_pending']} states sampled; run it again to go on"
        )


def push(out: str, repo_id: str, revision: str | None, private: bool) -> dict[str, Any]:
    from actforge.pipelines.publish.hub import push_dataset

    return push_dataset(Path(out), repo_id, revision=revision, private=private)


def print_push(result: dict[str, Any]) -> None:
    """One line: what this push did (committed, tagged, or nothing)."""
    where = f"hub: {result['repo_id']}@{result['revision']}"
    if result["commit"]:
        print(f"{where} commit {result['commit']} tag {result['tag']}")
    elif result["tag"]:
        print(f"{where} already had this version; tagged it {result['tag']}")
    else:
        print(f"{where} already has this version; no commit")


def training_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by `train` and `build --train` (which runs the recipe)."""
    parser.add_argument("--config", help="a YAML file of TRL config fields (GRPOConfig or SFTConfig)")
    parser.add_argument(
        "--protocol",
        default="auto",
        choices=("auto", *PROTOCOLS),
        help="critic answer protocol (act, recipe)",
    )
    parser.add_argument(
        "--objective",
        default="auto",
        choices=OBJECTIVES,
        help="critic objective: exact (GRPO's expectation, one forward per prompt; direct protocol only), "
        "grpo (TRL's sampled GRPO), auto (exact for direct, grpo for reason)",
    )
    parser.add_argument(
        "--curve-every",
        type=positive_int,
        help="critic: score validation and test pairs every N steps and keep the best validation step",
    )
    parser.add_argument("--curve-max-pairs", type=positive_int, help="with --curve-every: pairs per split")
    parser.add_argument("--stage3", default="both", choices=("action", "sft", "both"), help="recipe: stage 3")
    parser.add_argument("--play", metavar="SPEC", help="recipe: also play this live spec with every model")
    parser.add_argument(
        "--play-steps", type=positive_int, default=PLAY_STEPS, help="recipe: actions per played episode"
    )
    parser.add_argument(
        "--eval-max-pairs", type=positive_int, help="recipe: evaluate on at most N pairs and states"
    )
    parser.add_argument(
        "--stage3-max-steps",
        type=positive_int,
        help="recipe: max_steps of each stage-3 run (default: the max_steps every stage takes)",
    )


def recipe_args(args: argparse.Namespace, trl: list[str]) -> dict[str, Any]:
    return {
        "stage3": args.stage3,
        "config": args.config,
        "overrides": trl,
        "protocol": args.protocol,
        "objective": args.objective,
        "curve_every": args.curve_every or 0,
        "curve_max_pairs": args.curve_max_pairs,
        "play_spec": args.play,
        "play_steps": args.play_steps,
        "eval_max_pairs": args.eval_max_pairs,
        "stage3_max_steps": args.stage3_max_steps,
    }
