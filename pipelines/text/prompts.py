"""The one agent prompt: instructions, few-shot action format, history, the assistant turn opened.

Sampling, SFT, action GRPO, next-action evaluation and play all render a state through
`agent_prompt_text`, so every stage trains and measures the same task. The assistant turn is opened
with "Action:" so even a 135M model answers with an action; the history window is `WINDOW_RULE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from actforge.schemas import State
from actforge.schemas.vocab import ALFWORLD, GENERIC, SCIENCEWORLD, TEXTWORLD_EXPRESS, WEBSHOP, omitted_steps

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PROMPT_VERSION = "agent-v2"  # v2: the history window slides in blocks (v1 dropped one step at a time)
ACTION_PREFIX = "Action:"
AGENT_PROMPT_TOKENS = 1024  # the agent prompt's token budget everywhere (sampling, training, evaluation)
WINDOW_RULE = (
    "the whole history when it fits the prompt's token budget; else the most recent steps that fit, "
    "with the oldest dropped in blocks: the window starts at a step index that is a multiple of B, "
    "B the largest power of two at most a quarter of the steps that fit (at least 1), so consecutive "
    "states of a trajectory share their history's first steps"
)
WINDOW_RULES = {  # what each prompt version's history window is (the card says it)
    "agent-v1": "the most recent steps that fit the prompt's token budget (one step dropped at a time)",
    PROMPT_VERSION: WINDOW_RULE,
}


@dataclass(frozen=True)
class FewShot:
    title: str
    examples: tuple[str, ...]
    demo_task: str
    demo_observation: str
    demo_action: str


FEW_SHOT: dict[str, FewShot] = {
    SCIENCEWORLD: FewShot(
        "ScienceWorld, a text-based science laboratory",
        (
            "look around",
            "look at thermometer",
            "go to kitchen",
            "open door to hallway",
            "pick up metal pot",
            "move metal pot to stove",
            "activate stove",
            "focus on orange",
            "pour cup containing water in pot",
            "wait1",
        ),
        "Your task is to find a(n) living thing. First, focus on the thing. Then, move it to the "
        "red box in the bathroom.",
        "This room is called the hallway. In it, you see: a picture, a substance called air. You "
        "also see: a door to the greenhouse (that is open), a door to the kitchen (that is open)",
        "go to greenhouse",
    ),
    ALFWORLD: FewShot(
        "ALFWorld, a text-based household",
        (
            "go to countertop 1",
            "take mug 1 from countertop 1",
            "open fridge 1",
            "put mug 1 in/on coffeemachine 1",
            "clean mug 1 with sinkbasin 1",
            "heat egg 1 with microwave 1",
            "examine desk 1",
            "use desklamp 1",
        ),
        "Your task is to: put a clean mug in coffeemachine.",
        "You are in the middle of a room. Looking quickly around you, you see a countertop 1, a "
        "coffeemachine 1, a sinkbasin 1, and a fridge 1.",
        "go to countertop 1",
    ),
    TEXTWORLD_EXPRESS: FewShot(
        "TextWorld Express, a text-based household",
        (
            "look around",
            "move north",
            "open fridge",
            "take red apple",
            "put red apple in fridge",
            "open door to south",
            "read cookbook",
            "slice red hot pepper",
            "cook block of cheese in stove",
            "prepare meal",
            "inventory",
        ),
        "Your task is to pick up objects, then place them in their usual locations in the environment.",
        "You are in the kitchen. In one part of the room you see a fridge that is closed. There is also "
        "a counter that has a clean plate on it. To the north you see the living room.",
        "take clean plate",
    ),
    WEBSHOP: FewShot(
        "WebShop, an online shopping website",
        (
            "search[red cotton t-shirt size m]",
            "click[b07xyz1234]",
            "click[size m]",
            "click[buy now]",
            "click[next >]",
            "click[< prev]",
            "click[back to search]",
        ),
        "i need a pack of decaf green tea bags, price lower than 20.00 dollars",
        "WebShop [SEP] Instruction: [SEP] i need a pack of decaf green tea bags, price lower than "
        "20.00 dollars [SEP] Search",
        "search[decaf green tea bags]",
    ),
    GENERIC: FewShot(
        "a text-based environment",
        ("look", "go north", "take key", "open door", "inventory"),
        "Your task is to open the locked door.",
        "You are in a small room. There is a key on the floor and a locked door to the north.",
        "take key",
    ),
}


def few_shot_for(environment: str) -> FewShot:
    return FEW_SHOT.get(environment, FEW_SHOT[GENERIC])


def _system(shot: FewShot) -> str:
    examples = "\n".join(f"- {e}" for e in shot.examples)
    return (
        f"You are an agent acting in {shot.title}. Read the task and the latest observation, then "
        f"reply with exactly one action on one line, written as '{ACTION_PREFIX} <action>'.\n"
        f"Examples of valid actions:\n{examples}"
    )


def _turns(state: State, window: int, shot: FewShot) -> list[dict[str, str]]:
    messages = [
        {"role": "system", "content": _system(shot)},
        {"role": "user", "content": f"Task: {shot.demo_task}\nObservation: {shot.demo_observation}"},
        {"role": "assistant", "content": f"{ACTION_PREFIX} {shot.demo_action}"},
    ]
    history = state.history[len(state.history) - window :] if window else ()
    skipped = state.history_omitted + len(state.history) - len(history)
    first = f"Task: {state.instruction}\n"
    if skipped:
        first += omitted_steps(skipped) + "\n"
    pending = first
    for step in history:
        messages.append({"role": "user", "content": f"{pending}Observation: {step.observation}"})
        messages.append({"role": "assistant", "content": f"{ACTION_PREFIX} {step.action}"})
        pending = ""
    messages.append({"role": "user", "content": f"{pending}Observation: {state.observation}"})
    return messages


def agent_messages(state: State) -> list[dict[str, str]]:
    """The agent's chat prompt for `state` with its whole (published) history window, as messages."""
    return _turns(state, len(state.history), few_shot_for(state.environment))


def acted(action: str) -> list[dict[str, str]]:
    """An action as the agent's reply, as the agent prompt's examples and history write it."""
    return [{"role": "assistant", "content": f"{ACTION_PREFIX} {action}"}]


def render_chat(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> str:
    """Messages through the chat template, ending where the assistant's reply begins."""
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "


def render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> str:
    """The agent prompt text, with the assistant turn opened by "Action:"."""
    return render_chat(tokenizer, messages) + ACTION_PREFIX


def turn_opener(tokenizer: PreTrainedTokenizerBase) -> tuple[int, ...]:
    """The token ids that open the agent's turn (the template's assistant header, then "Action:"):
    every agent prompt ends with them and every history step holds them once, so a trajectory's
    prompt up to a step's opener is the whole prompt of that step's state. Empty when the template
    does not render them apart from the turn before."""
    messages = [{"role": "user", "content": "x"}]
    closed = (
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        if tokenizer.chat_template
        else render_chat(tokenizer, messages).removesuffix("assistant: ")
    )
    opened = render(tokenizer, messages)
    if not opened.startswith(closed):
        return ()
    return tuple(tokenizer(opened[len(closed) :], add_special_tokens=False).input_ids)


def agent_prompt_text(
    state: State, tokenizer: PreTrainedTokenizerBase, max_prompt_tokens: int = AGENT_PROMPT_TOKENS
) -> str:
    """The agent prompt for `state` as text, its history window by `WINDOW_RULE`.

    The longest window that fits is found by bisection (a prompt grows with its window), so a long
    history costs a few tokenisations, not one per step. Its start then moves to the next block
    boundary, counted in the trajectory's own step indices, so the states after it start their
    window at the same step (their prompts share a prefix, which sampling prefills once) until the
    next block has to go. When even the bare state is too long, its tail is kept, where the current
    observation is.
    """
    shot = few_shot_for(state.environment)

    def text(window: int) -> str:
        return render(tokenizer, _turns(state, window, shot))

    def fits(window: int) -> bool:
        return len(tokenizer(text(window), add_special_tokens=False).input_ids) <= max_prompt_tokens

    low, high = 0, len(state.history)
    if fits(high):  # the whole history fits: one tokenisation (most states of short trajectories)
        return text(high)
    if not fits(low):
        ids = tokenizer(text(0), add_special_tokens=False).input_ids
        return tokenizer.decode(ids[-max_prompt_tokens:])
    while low < high:  # invariant: fits(low)
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return text(block_window(state.history_omitted + len(state.history), low))


def block_window(steps: int, fitting: int) -> int:
    """The window (recent steps kept) out of `steps` earlier steps, `fitting` of which fit: its first
    step moved up to a multiple of the block, B the largest power of two <= fitting / 4 (>= 1)."""
    block = 1 << max(0, (fitting // 4).bit_length() - 1)
    start = -(-(steps - fitting) // block) * block
    return steps - start


def agent_prompt(
    state: State, tokenizer: PreTrainedTokenizerBase, max_prompt_tokens: int = AGENT_PROMPT_TOKENS
) -> list[int]:
    """Token ids of `agent_prompt_text` (what sampling and greedy evaluation feed the model)."""
    ids = tokenizer(
        agent_prompt_text(state, tokenizer, max_prompt_tokens), add_special_tokens=False
    ).input_ids
    return ids[-max_prompt_tokens:]
