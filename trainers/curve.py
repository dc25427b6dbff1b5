"""The critic's learning curve while it trains, and the step kept: chosen on validation, never on test.

Every `every` optimiser steps the live model is scored on held-out pairs the way `actforge eval`
scores a folder (both orders, answer probabilities, no sampling), and the figures are logged as
`curve/<split>/<metric>` beside the training loss (trainer_state.json keeps them). When a
validation split is given, the weights of its best step (consistent accuracy, then the smaller gap
between the slots' accuracies) are restored before the model is saved.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from actforge.pipelines.policy.models import Policy
from actforge.trainers.evaluate import answer_probabilities, critic_prompts, score_pairs

CURVE_PREFIX = "curve"
VALIDATION = "validation"


def slot_gap(scores: dict[str, Any]) -> float:
    """How far apart the two slots' accuracies are (0 for a critic without a position bias)."""
    return abs(scores["slot_1"]["accuracy"] - scores["slot_2"]["accuracy"])


def _rank(scores: dict[str, Any]) -> tuple[float, float]:
    return (scores["consistent_accuracy"], -slot_gap(scores))


class CriticCurve(TrainerCallback):
    """Scores the critic on `rows` (split -> "act" rows) at step 0, every `every` steps and at the end."""

    def __init__(
        self, policy: Policy, rows: dict[str, Sequence[dict[str, Any]]], every: int, protocol: str = "direct"
    ) -> None:
        self.policy = policy
        self.protocol = protocol
        self.rows = {split: r for split, r in rows.items() if r}
        # Direct prompts are fixed; reason prompts hold the live model's own reasoning, made at each score.
        self.prompts = self._prompts() if protocol == "direct" else {}
        self.every = every
        self.points: list[dict[str, Any]] = []
        self.best: tuple[tuple[float, float], int, dict[str, torch.Tensor]] | None = None
        self.seconds = 0.0  # spent scoring, so a run's training time can leave it out

    def _prompts(self) -> dict[str, list[list[int]]]:
        return {split: critic_prompts(self.policy, rows, self.protocol) for split, rows in self.rows.items()}

    def _score(self, state: TrainerState) -> None:
        if self.points and self.points[-1]["step"] == state.global_step:
            return
        started = time.perf_counter()
        model = self.policy.model
        training = model.training
        model.eval()
        scores = {
            split: score_pairs(self.rows[split], answer_probabilities(self.policy, prompts, progress=False))
            for split, prompts in (self.prompts or self._prompts()).items()
        }
        model.train(training)
        self.points.append({"step": state.global_step, **scores})
        state.log_history.append(
            {
                "step": state.global_step,
                **{
                    f"{CURVE_PREFIX}/{split}/{key}": value
                    for split, s in scores.items()
                    for key, value in (
                        ("consistent_accuracy", s["consistent_accuracy"]),
                        ("slot_1_accuracy", s["slot_1"]["accuracy"]),
                        ("slot_2_accuracy", s["slot_2"]["accuracy"]),
                        ("p_expert", s["p_expert"]),
                        ("margin", s["margin"]),
                    )
                },
            }
        )
        if VALIDATION in scores and (self.best is None or _rank(scores[VALIDATION]) > self.best[0]):
            weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.best = (_rank(scores[VALIDATION]), state.global_step, weights)
        self.seconds += time.perf_counter() - started

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._score(state)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.global_step % self.every == 0:
            self._score(state)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._score(state)
        if self.best is not None:
            self.policy.model.load_state_dict(self.best[2])

    @property
    def kept_step(self) -> int | None:
        """The step whose weights were restored (best on validation), or None (the last is kept)."""
        return self.best[1] if self.best is not None else None


def curve_table(points: Sequence[dict[str, Any]]) -> str:
    """One line per scored step: each split's consistent accuracy, slot accuracies and P(expert)."""
    lines = []
    for point in points:
        cells = [f"step {point['step']:>3}"]
        for split in (VALIDATION, "test"):
            if split in point:
                s = point[split]
                slots = f"{s['slot_1']['accuracy']:.2f}/{s['slot_2']['accuracy']:.2f}"
                consistent, p_expert = s["consistent_accuracy"], s["p_expert"]
                cells.append(f"{split} consistent {consistent:.3f} slots {slots} P(expert) {p_expert:.3f}")
        lines.append("  ".join(cells))
    return "\n".join(lines)
