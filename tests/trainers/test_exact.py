"""The exact critic objective (trainers.exact) against what GRPO estimates by sampling, on the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from actforge.trainers.evaluate import answer_token_ids
from actforge.trainers.exact import exact_critic_loss

# 64,000 sampled answers; groups large enough that their mean and std are the expectation's (with G
# answers a group's baseline includes each answer itself, which shrinks the update by (G - 1) / G).
GROUPS, GENERATIONS = 250, 256


def _policy_and_reference(folder: Path) -> tuple[torch.nn.Module, torch.nn.Module, torch.Tensor, int]:
    """The tiny model made to favour the digits (p("1") about 0.25, p("2") about 0.4 after a prompt
    ending `<answer>`), its unchanged copy as the reference, the prompt, and the id of "1"."""
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    prompt = tokenizer("Action 1: go to kitchen\nAction 2: nehctik ot og\n<answer>", return_tensors="pt")
    reference = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    policy = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    one, two = answer_token_ids(tokenizer)
    with torch.no_grad():
        hidden = policy.model(**prompt).last_hidden_state[0, -1]
        for token, logit in ((one, 5.0), (two, 5.5)):
            policy.lm_head.weight[token] = hidden * logit / hidden.dot(hidden)
    return policy, reference, prompt.input_ids, one


def _gradient(model: torch.nn.Module, loss: torch.Tensor) -> torch.Tensor:
    model.zero_grad()
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def _sampled_grpo_loss(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, expert: int, beta: float):
    """TRL's GRPO loss on GROUPS x GENERATIONS sampled one-token answers of one prompt: reward 1 for the
    expert's token, advantages normalised by each group's std (+1e-4), k3 KL on the sampled tokens."""
    generator = torch.Generator().manual_seed(0)
    tokens = torch.multinomial(logprobs.detach().exp(), GROUPS * GENERATIONS, True, generator=generator)
    rewards = (tokens == expert).float().view(GROUPS, GENERATIONS)
    advantages = (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-4)
    sampled, ref = logprobs[tokens], ref_logprobs[tokens]
    k3 = torch.exp(ref - sampled) - (ref - sampled) - 1
    return (-advantages.flatten() * sampled + beta * k3).mean()


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_exact_gradient_is_the_mean_of_sampled_grpo_gradients(tiny_model_dir: Path, beta: float) -> None:
    policy, reference, prompt, expert = _policy_and_reference(tiny_model_dir)
    with torch.no_grad():
        ref_logprobs = torch.log_softmax(reference(prompt).logits[0, -1], -1)
    logits = policy(prompt).logits[:, -1]
    p = torch.softmax(logits, -1)[0, expert].item()
    assert 0.15 < p < 0.35  # a real two-way choice, not a corner where both estimates vanish

    loss, figures = exact_critic_loss(logits, torch.tensor([expert]), ref_logprobs[None], beta=beta)
    exact = _gradient(policy, loss)
    assert figures["p_expert"].item() == pytest.approx(p)

    logprobs = torch.log_softmax(policy(prompt).logits[0, -1], -1)
    sampled = _gradient(policy, _sampled_grpo_loss(logprobs, ref_logprobs, expert, beta))

    cosine = torch.nn.functional.cosine_similarity(exact, sampled, dim=0).item()
    assert cosine > 0.99
    assert sampled.norm().item() == pytest.approx(exact.norm().item(), rel=0.05)


def test_a_step_on_the_loss_raises_p_expert_in_either_slot(tiny_model_dir: Path) -> None:
    policy, _reference, prompt, _one = _policy_and_reference(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    for expert in answer_token_ids(tokenizer):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
        model.load_state_dict(policy.state_dict())
        before = torch.softmax(model(prompt).logits[0, -1], -1)[expert].item()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        loss, _ = exact_critic_loss(model(prompt).logits[:, -1], torch.tensor([expert]))
        loss.backward()
        optimizer.step()
        assert torch.softmax(model(prompt).logits[0, -1], -1)[expert].item() > before
