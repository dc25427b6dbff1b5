"""The critic's GRPO objective computed exactly, for the `direct` protocol's one-token answer.

GRPO samples G answers per prompt and estimates an expectation; with a one-token action that
expectation is a sum over the vocabulary, which one forward pass gives:
- reward: 1 for the expert's digit, 0 for any other token, so the expected reward is p, the
  probability of the expert's digit right after `<answer>`;
- GRPO's update (advantage = (r - mean) / std of the group) has the expected gradient
  sum_a pi(a) (r(a) - p) / sigma * grad log pi(a) = grad p / sigma, with sigma = sqrt(p (1 - p));
- TRL's KL term (the k3 estimator on sampled tokens, gradient through the policy's log-probability)
  has the expected gradient -sum_a ref(a) grad log pi(a) = grad KL(ref || pi).
So the loss per prompt is -p / sigma(p) (sigma held constant, as GRPO's group std is) plus
beta * KL(ref || pi) at the answer position: the same expected update as GRPO, with one forward and
backward per prompt instead of G, and no sampling noise to random-walk along the slot bias.
`tests/trainers/test_exact.py` checks it against the mean of many sampled GRPO gradients.

The trainer is transformers' own Trainer with this `compute_loss` and TRL's GRPOConfig (learning
rate, beta, batch size, logging, checkpointing); prompts are read in the dataset's order, so both
orders of a pair share an optimiser step (`trainers.data.critic_dataset`).
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import datasets
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer
from trl import GRPOConfig

from actforge.trainers.evaluate import answer_token_ids

STD_EPSILON = 1e-4  # TRL adds the same to the group std


def exact_critic_loss(
    logits: torch.Tensor,
    expert_ids: torch.Tensor,
    ref_logprobs: torch.Tensor | None = None,
    beta: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """GRPO's expected critic loss from the answer-position logits (batch x vocab).

    Returns the mean loss over the batch and detached per-prompt figures: p (expert's digit) and,
    with a reference, KL(ref || pi).
    """
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    p = logprobs.gather(1, expert_ids[:, None]).squeeze(1).exp()
    loss = -p / (torch.sqrt(p * (1 - p)).detach() + STD_EPSILON)
    figures = {"p_expert": p.detach()}
    if ref_logprobs is not None:
        kl = (ref_logprobs.exp() * (ref_logprobs - logprobs)).sum(-1)
        loss = loss + beta * kl
        figures["kl"] = kl.detach()
    return loss.mean(), figures


def tokenized_critic_dataset(
    dataset: datasets.Dataset, tokenizer: PreTrainedTokenizerBase
) -> datasets.Dataset:
    """`critic_dataset` rows (prompt text ending `<answer>`, expert_slot) as input ids and the id of
    the expert's digit."""
    digits = answer_token_ids(tokenizer)
    return dataset.map(
        lambda row: {
            "input_ids": tokenizer(row["prompt"], add_special_tokens=False).input_ids,
            "expert_id": digits[row["expert_slot"] - 1],
        },
        remove_columns=dataset.column_names,
    )


class ExactCriticTrainer(Trainer):
    """transformers' Trainer whose loss is GRPO's expected critic objective (`exact_critic_loss`).

    The reference is a frozen `ref_model`, or, for a PEFT model, the same model with its adapter
    disabled (no second copy); none is used when `args.beta` is 0.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        args: GRPOConfig,
        train_dataset: datasets.Dataset,
        processing_class: PreTrainedTokenizerBase,
        ref_model: PreTrainedModel | None = None,
    ) -> None:
        args.train_sampling_strategy = "sequential"  # both orders of a pair in one step
        args.remove_unused_columns = False
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            processing_class=processing_class,
            data_collator=self._collate,
        )
        self.ref_model = ref_model.eval().requires_grad_(False) if ref_model is not None else None
        self._digits = answer_token_ids(processing_class)
        self._figures: dict[str, list[float]] = defaultdict(list)

    def _collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Left-padded prompts, so every prompt's answer position is the last."""
        tokenizer = self.processing_class
        tokenizer.padding_side = "left"
        padded = tokenizer.pad({"input_ids": [r["input_ids"] for r in rows]}, return_tensors="pt")
        return {**padded, "expert_id": torch.tensor([r["expert_id"] for r in rows])}

    def _reference(self, model: PreTrainedModel) -> tuple[PreTrainedModel, AbstractContextManager]:
        if self.ref_model is not None:
            return self.ref_model, nullcontext()
        return model, self.accelerator.unwrap_model(model).disable_adapter()

    def compute_loss(
        self,
        model: PreTrainedModel,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        expert_ids = inputs.pop("expert_id")
        logits = model(**inputs).logits[:, -1, :]
        ref_logprobs = None
        if self.args.beta:
            reference, context = self._reference(model)
            with torch.no_grad(), context:
                ref_logprobs = torch.log_softmax(reference(**inputs).logits[:, -1, :].float(), dim=-1)
        loss, figures = exact_critic_loss(logits, expert_ids, ref_logprobs, self.args.beta)
        one, two = self._digits
        slot_1 = (logits[:, one] > logits[:, two]).detach().float()
        self._figures["p_expert"].extend(figures["p_expert"].tolist())
        self._figures["rewards/answers_slot_1/mean"].extend(slot_1.tolist())
        self._figures["rewards/answers_slot_2/mean"].extend((1 - slot_1).tolist())
        if "kl" in figures:
            self._figures["kl"].extend(figures["kl"].tolist())
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Training logs with the means of the figures since the last log (the curves the report draws).

        The logged `loss` is the surrogate -p/sigma(p), which falls without bound as p nears 1 (it
        was about -3,000 late in the learnability run): `reward`, the mean p, is the figure to read.
        """
        if "loss" in logs:
            logs = logs | {key: sum(v) / len(v) for key, v in self._figures.items() if v}
            logs["reward"] = logs.get("p_expert", 0.0)
            self._figures.clear()
        super().log(logs, start_time)
