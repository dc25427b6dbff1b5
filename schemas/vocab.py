"""The project's vocabularies, each named once: the environments trajectories come from, and what a
verified action did in its engine. Modules and the dataset card take their names from here."""

from __future__ import annotations

# Environments, as a trajectory's `environment` column spells them.
SCIENCEWORLD = "scienceworld"
TEXTWORLD_EXPRESS = "textworld_express"
ALFWORLD = "alfworld"
WEBSHOP = "webshop"
GENERIC = "generic"  # a file whose name and records name no environment

# What a verified action did in the live engine (`pipelines.curate.verify`); `--drop-outcome` takes these.
INVALID = "invalid"  # the engine rejects it or does not understand it
NO_EFFECT = "no_effect"  # valid, but the room and the inventory read the same
FAILS_TASK = "fails_task"  # the task is lost, or the score falls
PROGRESSES = "progresses"  # the score rises
NEUTRAL = "neutral"  # valid, changed something, no score change
OUTCOMES: tuple[str, ...] = (INVALID, NO_EFFECT, FAILS_TASK, PROGRESSES, NEUTRAL)
