"""Action text: parse an action out of agent output, and normalise actions for comparison.

Sources (expert turns) and filters (policy outputs) share this, so "equal to the expert" means the
same thing everywhere.
"""

from __future__ import annotations

import re

from actforge.schemas.vocab import ALFWORLD, GENERIC, SCIENCEWORLD, WEBSHOP

_TAG = re.compile(r"<action>(.*?)(?:</action>|$)", re.IGNORECASE | re.DOTALL)
_LABEL = re.compile(r"(?:^|\n)\s*\**action\**\s*:\s*(.*)", re.IGNORECASE | re.DOTALL)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_PUNCT = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")

# Aliases per environment: regex rewrites applied in order to the lower-cased text without
# punctuation or articles. ScienceWorld's entries are forms its own parser accepts as the same action.
ALIASES: dict[str, tuple[tuple[str, str], ...]] = {
    SCIENCEWORLD: (
        (r"^examine ", "look at "),
        (r"^(?:take|get) ", "pick up "),
        (r"^walk to ", "go to "),
        (r"^go (?!to )", "go to "),
        (r"^teleport (?!to )", "teleport to "),
        (r"^focus (?!on )", "focus on "),
        (r"^drop ", "put down "),
        (r"^look$", "look around"),
        (r"^(?:put|move) (?!down )(.+?) (?:in|into|on|to) ", r"move \1 to "),
        (r"^pour (.+?) into ", r"pour \1 in "),
    ),
    ALFWORLD: (
        (r"^(?:pick up|grab) ", "take "),
        (r"^(?:walk|move) to ", "go to "),
        (r"^(?:look at|inspect) ", "examine "),
        (r"^place ", "put "),
    ),
}
_COMPILED = {env: tuple((re.compile(p), r) for p, r in rules) for env, rules in ALIASES.items()}


def parse_action(text: str) -> str | None:
    """The action in an agent turn, or None when there is none.

    Accepts `<action>X</action>`, `Action: X` (also `Action:` then X on the next line), and a bare
    single line. Only the first line of the action is kept.
    """
    if not text or not text.strip():
        return None
    match = _TAG.search(text)
    if match is None:
        match = _LABEL.search(text)
    if match is not None:
        body = match.group(1).strip()
    elif re.match(r"\s*(thought|observation|<think>)", text, re.IGNORECASE):
        return None
    else:
        body = text.strip()
    line = body.split("\n", 1)[0].strip().strip("`").strip()
    return line or None


def normalise(action: str, environment: str = GENERIC) -> str:
    """Canonical form for comparison: case, whitespace, punctuation, articles, verb aliases."""
    text = action.lower()
    if environment == WEBSHOP:
        # WebShop actions are search[...] / click[...]: brackets carry meaning.
        return _SPACES.sub(" ", _ARTICLES.sub(" ", text)).strip()
    text = _SPACES.sub(" ", _ARTICLES.sub(" ", _PUNCT.sub(" ", text))).strip()
    for pattern, replacement in _COMPILED.get(environment, ()):
        text = pattern.sub(replacement, text)
    return text


MAX_EXPERT_ACTION_CHARS = 500  # far above any real environment's command; a longer one is a paste error
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 (but tab and newline), DEL, C1


def expert_action_problem(action: str) -> tuple[str, str] | None:
    """Why an expert action cannot teach anything (reason, detail), or None when it is usable."""
    if not action.strip():
        return "empty_action", "the expert action is empty or only whitespace"
    found = _CONTROL.search(action)
    if found:
        return "control_characters", f"the expert action holds control character U+{ord(found.group()):04X}"
    if len(action) > MAX_EXPERT_ACTION_CHARS:
        return (
            "overlong_action",
            f"the expert action has {len(action)} characters (at most {MAX_EXPERT_ACTION_CHARS})",
        )
    return None
