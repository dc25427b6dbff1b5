"""The project's vocabularies, each named once: environments, splits, output configs, why a sample
or a record was turned away, what a verified action did, and the metrics an evaluation reports.
Modules take their names from here, and the dataset card documents them from the same tables."""

from __future__ import annotations

# Environments, as a trajectory's `environment` column spells them.
SCIENCEWORLD = "scienceworld"
TEXTWORLD_EXPRESS = "textworld_express"
ALFWORLD = "alfworld"
WEBSHOP = "webshop"
GENERIC = "generic"  # a file whose name and records name no environment

# Splits, assigned per trajectory.
TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLITS: tuple[str, ...] = (TRAIN, VALIDATION, TEST)

# What a build does with held-out states whose prompt also appears in another split (`--leakage`).
LEAKAGE_MODES: tuple[str, ...] = ("report", "drop")

# Output configs of a published dataset: `datasets.load_dataset(OUT, NAME)`.
DEFAULT, ACT, STATES, PREFERENCE, WORLD_MODEL = "default", "act", "states", "preference", "world_model"
CONFIGS: dict[str, str] = {
    DEFAULT: "one row per (state, expert action, alternative) pair, self-contained",
    ACT: "each pair twice as a critic prompt for TRL, expert in slot 1 then slot 2 (`expert_slot`)",
    STATES: "one row per expert state, for agent training (SFT, action GRPO) and evaluation",
    PREFERENCE: "each pair as TRL's conversational preference row (`prompt`, `chosen` = the expert's "
    "action, `rejected` = the alternative), for `DPOTrainer` and `RewardTrainer`",
    WORLD_MODEL: "with `--verify`: each action tried in the engine (the expert's and the alternatives) "
    "as a prompt (state and action) and the engine's answer as its `completion`, Early Experience's "
    "implicit world modelling",
}
# Whose action was tried: a world-model row's `side`, and the two sides of the verified-outcome counts.
EXPERT, ALTERNATIVE = "expert", "alternative"

# A sampled output's verdict (`samples.status`) and its reason (`samples.reason`).
ACCEPTED, REJECTED = "accepted", "rejected"
OK = "ok"
SERVER_ERROR = "server_error"
SAMPLE_REASONS: dict[str, str] = {
    OK: "accepted: a parseable action, new for this state, not the expert's",
    "empty": "the completion is empty",
    "unparseable": "no action could be read out of the completion",
    "garbled": "the action holds control characters or undecodable bytes",
    "overlong": "the action is longer than `max_action_chars`",
    "not_admissible": "not among the state's admissible actions (`--admissible require`)",
    "same_as_expert": "the expert's action, after normalisation and aliases",
    "duplicate": "an earlier sample of the same state already gave this action",
    SERVER_ERROR: "the server's answer was an error or not a completion",
}
# A pair left out of the published version by `--drop-outcome` (verification found it no worse).
NOT_WORSE = "not_worse"

# Why a source record (or a whole file, or a live episode) went to quarantine (`quarantine.reason`).
QUARANTINE_REASONS: dict[str, str] = {
    "unreadable_file": "the file cannot be opened or read",
    "empty_file": "the file is empty or only whitespace",
    "not_parquet": "a .parquet file that Parquet cannot read",
    "encoding": "neither UTF-8 nor UTF-16 with a byte order mark",
    "unknown_format": "no known trajectory format matches the file",
    "undecodable_bytes": "a record holds bytes that are not UTF-8",
    "unencodable_text": "a record's text is not valid Unicode (a lone surrogate)",
    "invalid_json": "a record is not JSON",
    "too_deep": "a record is nested deeper than the reader follows",
    "unreadable_record": "building the record failed in a way no other reason names (see its detail)",
    "missing_field": "a required field is absent",
    "wrong_type": "a field has the wrong type",
    "unknown_role": "a conversation turn has a role no format knows",
    "turn_order": "conversation turns are out of order",
    "no_action": "the trajectory has no expert action",
    "empty_action": "an expert action is empty",
    "control_characters": "an expert action holds control characters",
    "overlong_action": "an expert action is longer than any real command",
    "engine_error": "the live engine failed to load or play the episode",
    "no_such_variation": "the live engine has no such variation or seed",
    "replay_failed": "the gold path's replay did not reach the engine's full score",
}

# What a verified action did in the live engine (`pipelines.curate.verify`); `--drop-outcome` takes these.
INVALID, NO_EFFECT, FAILS_TASK, PROGRESSES, NEUTRAL = (
    "invalid",
    "no_effect",
    "fails_task",
    "progresses",
    "neutral",
)
OUTCOME_MEANINGS: dict[str, str] = {
    INVALID: "the engine rejects the action or does not understand it",
    NO_EFFECT: "valid, but the room and the inventory read the same",
    FAILS_TASK: "the task is lost, or the score falls",
    PROGRESSES: "the score rises",
    NEUTRAL: "valid, changed something, no score change",
}
OUTCOMES: tuple[str, ...] = tuple(OUTCOME_MEANINGS)

# What `actforge train KIND` trains: the critic (ACT), the policy by GRPO on actions (RL), by SFT on
# the expert's actions (IL), or by DPO on the preference pairs.
TRAINING_KINDS: tuple[str, ...] = ("act", "action", "sft", "dpo")

# What an evaluation reports (`actforge eval`, the recipe's table, the report page): a column's label
# and its path in the evaluation's JSON.
METRICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("consistent", ("critic", "consistent_accuracy")),
    ("critic acc", ("critic", "accuracy")),
    ("slot-1 acc", ("critic", "slot_1", "accuracy")),
    ("slot-2 acc", ("critic", "slot_2", "accuracy")),
    ("answers slot 1", ("critic", "answers_slot_1")),
    ("P(expert)", ("critic", "p_expert")),
    ("action acc", ("action", "accuracy")),
    ("play score", ("play", "mean_score")),
    ("play success", ("play", "success_rate")),
)


def omitted_steps(count: int) -> str:
    """The line a prompt shows in place of the `count` oldest steps its history window left out."""
    return f"({count} earlier steps omitted)"
