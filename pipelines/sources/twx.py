"""Live expert trajectories from TextWorld Express: its household games (`twc`, "put each object where
it belongs", the closest offline stand-in for ALFWorld; `cookingworld`) and its other games.

Spec: `twx:GAMES[@SEEDS]`
  GAMES  comma-separated game names, each with optional engine parameters in brackets, for example
         `twc[numLocations=2,numItemsToPutAway=2]`. The parameters are part of each trajectory's id.
  SEEDS  the variation grammar of `pipelines.sources.selectors` over the engine's seed lists
         (train 0-999, dev 10000-, test 20000-); default `train:1`.

Each game's gold path is replayed step by step and kept only if the replay wins; every step records
the engine's valid actions as `admissible`. One JVM per source.

Determinism: the engine builds each world from `Random(seed)`, but its gold agents walk with an
unseeded `new Random()` (all games but cookingworld), so a seed's gold path changed from one reset to
the next (twc train seed 0 among them). `seeded_gold_path` runs
the engine's own gold agent with `Random(seed)` instead, the same retry loop included, so a (game,
parameters, fold, seed) always gives the same path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from py4j.java_gateway import get_method
from py4j.protocol import Py4JError
from textworld_express import TextWorldExpressEnv
from textworld_express.constants import GAME_NAMES
from tqdm import tqdm

from actforge.pipelines.sources.base import TWX, Collected, quarantine
from actforge.pipelines.sources.live import Episode, LiveEngine, Progress, scene_of
from actforge.pipelines.sources.selectors import (
    SPLIT_NAMES,
    Selector,
    parse_selectors,
    split_of,
    variation_ids,
)
from actforge.schemas import Quarantined, Step, Trajectory
from actforge.schemas.ids import episode_id
from actforge.schemas.vocab import TEXTWORLD_EXPRESS

ENVIRONMENT = TEXTWORLD_EXPRESS
DEFAULT_SEEDS = "train:1"
STEP_LIMIT = 10_000  # the engine's own limit, far above any gold path
GOLD_ATTEMPTS = 50  # the engine's own retries of a gold agent's walk
# The engine's gold agent (package textworldexpress.goldagent) of each game generator.
GOLD_AGENTS = {
    "GameGeneratorTWC": "TWCGoldAgent",
    "GameGeneratorCoin": "CoinGoldAgent",
    "GameGeneratorMapReader": "MapReaderGoldAgent",
    "GameGeneratorSorting": "SortingGoldAgent",
    "GameGeneratorArithmetic": "ArithmeticGoldAgent",
    "GameGeneratorSimonSays": "SimonSaysGoldAgent",
    "GameGeneratorSimonSaysMemory": "SimonSaysMemoryGoldAgent",
    "GameGeneratorPeckingOrder": "PeckingOrderGoldAgent",
    "GameGeneratorCookingWorld": "CookingWorldGoldAgent",
}
_GAME = re.compile(r"\s*([a-z]+)\s*(?:\[([^\]]*)\])?\s*(?:,|$)")
_PARAMETER = re.compile(r"([A-Za-z]+)=(\d+)")


@dataclass(frozen=True)
class Game:
    """A game and its engine parameters (name -> integer), as the spec gives them."""

    name: str
    parameters: tuple[tuple[str, int], ...] = ()

    @property
    def engine_parameters(self) -> str:
        """The engine's `gameParams` string: `key=value,...` in the spec's order."""
        return ",".join(f"{key}={value}" for key, value in self.parameters)


@dataclass(frozen=True)
class Request:
    games: tuple[Game, ...]
    selectors: tuple[Selector, ...]


def parse_spec(spec: str) -> Request:
    """Parse `twx:GAMES[@SEEDS]`; a bad spec is a user error, so it raises ValueError."""
    if not spec.startswith(TWX):
        raise ValueError(f"not a TextWorld Express spec (expected {TWX}GAMES[@SEEDS]): {spec!r}")
    games_text, _, seeds_text = spec[len(TWX) :].partition("@")
    return Request(_parse_games(games_text), parse_selectors(seeds_text or DEFAULT_SEEDS))


def _parse_games(text: str) -> tuple[Game, ...]:
    games, position = [], 0
    while position < len(text):
        match = _GAME.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"malformed TextWorld Express games {text!r}: expected game[key=value,...],...")
        name, parameters = match.group(1), match.group(2)
        if name not in GAME_NAMES:
            raise ValueError(f"unknown TextWorld Express game {name!r}; valid names: {', '.join(GAME_NAMES)}")
        games.append(Game(name, _parse_parameters(name, parameters or "")))
        position = match.end()
    if not games:
        raise ValueError(f"no TextWorld Express game named; valid names: {', '.join(GAME_NAMES)}")
    return tuple(dict.fromkeys(games))


def _parse_parameters(game: str, text: str) -> tuple[tuple[str, int], ...]:
    parameters = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        match = _PARAMETER.fullmatch(item)
        if match is None:
            raise ValueError(f"malformed parameter {item!r} of {game}: expected name=integer")
        parameters.append((match.group(1), int(match.group(2))))
    return tuple(parameters)


def collect_twx(spec: str, progress: bool = True) -> Collected:
    """Replay the gold path of every requested (game, seed) in one JVM; keep the winning ones."""
    request = parse_spec(spec)
    trajectories: list[Trajectory] = []
    quarantined: list[Quarantined] = []
    env = start()
    try:
        units = _units(env, spec, request, quarantined)
        bar = tqdm(units, desc="textworld-express", unit="game", disable=not progress)
        for game, seed, seeds in bar:
            record = _collect_unit(env, spec, game, seed, seeds)
            (trajectories if isinstance(record, Trajectory) else quarantined).append(record)
            bar.set_postfix(kept=len(trajectories), quarantined=len(quarantined))
    finally:
        env.close()
    return Collected.of(trajectories, quarantined)


def start() -> TextWorldExpressEnv:
    """One engine (one JVM)."""
    return TextWorldExpressEnv(envStepLimit=STEP_LIMIT)


def _units(
    env: TextWorldExpressEnv, spec: str, request: Request, quarantined: list[Quarantined]
) -> list[tuple[Game, int, Mapping[str, Sequence[int]]]]:
    """(game, seed, the game's seed lists) of every episode the spec names."""
    units: list[tuple[Game, int, Mapping[str, Sequence[int]]]] = []
    for game in request.games:
        seeds = _game_seeds(env, spec, game)
        if isinstance(seeds, Quarantined):
            quarantined.append(seeds)
        else:
            units.extend((game, seed, seeds) for seed in variation_ids(request.selectors, seeds))
    return units


class TwxEngine(LiveEngine):
    """TextWorld Express; its list of valid actions decides what is invalid."""

    environment = ENVIRONMENT

    def __init__(self, spec: str) -> None:
        super().__init__(spec)
        self.env = start()
        self._episodes: dict[str, tuple[Episode, Game, str]] = {}
        for game, seed, seeds in _units(self.env, spec, parse_spec(spec), self.unloadable):
            split = split_of(seed, seeds)
            fold = _fold(split) if split is not None else ""
            # a seed outside the engine's lists is never stored, so it has no trajectory id to keep
            key = _episode_id(game, seed, fold) if split is not None else f"{_position(game)}@{seed}"
            self._episodes[key] = (Episode(key, game.name, seed, split), game, fold)
        self._info: dict[str, Any] = {}
        self._valid_before: list[str] = []

    def episodes(self) -> list[Episode]:
        return [episode for episode, _game, _fold in self._episodes.values()]

    def reset(self, trajectory_id: str) -> tuple[str, str]:
        episode, game, fold = self._episodes[trajectory_id]
        self.env.load(game.name, game.engine_parameters)
        observation, self._info = self.env.reset(seed=episode.variation, gameFold=fold)
        return self._info["taskDescription"], observation

    def step(self, action: str) -> str:
        self._valid_before = self._info["validActions"]
        observation, _reward, _done, self._info = self.env.step(action)
        return observation

    def progress(self) -> Progress:
        info = self._info
        return Progress(float(info["score"]), won=bool(info["tasksuccess"]), lost=bool(info["taskfailure"]))

    def scene(self) -> tuple[str, ...]:
        return scene_of(self._info["look"], self._info["inventory"])

    def accepted(self, action: str, answer: str) -> bool:
        return action in self._valid_before

    def close(self) -> None:
        self.env.close()


def _fold(split: str) -> str:
    return next(name for name, dataset in SPLIT_NAMES.items() if dataset == split)


def _episode_id(game: Game, seed: int, fold: str) -> str:
    return episode_id(
        ENVIRONMENT, game.name, {"seed": seed, "fold": fold, "parameters": dict(game.parameters)}
    )


def _game_seeds(env: TextWorldExpressEnv, spec: str, game: Game) -> dict[str, tuple[int, ...]] | Quarantined:
    """The engine's train/dev/test seed lists for a game; a game the engine refuses (for example an
    unknown parameter) is quarantined whole, with the engine's words."""
    try:
        env.load(game.name, game.engine_parameters)
        return {
            "train": tuple(env.getValidSeedsTrain()),
            "dev": tuple(env.getValidSeedsDev()),
            "test": tuple(env.getValidSeedsTest()),
        }
    except (ValueError, Py4JError) as exc:
        return quarantine(spec, _position(game), "engine_error", _describe(exc), _raw(game))


def _collect_unit(
    env: TextWorldExpressEnv, spec: str, game: Game, seed: int, seeds: Mapping[str, Sequence[int]]
) -> Trajectory | Quarantined:
    position = f"{_position(game)}@{seed}"
    split = split_of(seed, seeds)
    if split is None:
        detail = f"seed {seed} is in none of the engine's seed lists for {game.name}"
        return quarantine(spec, position, "no_such_variation", detail, _raw(game, seed))
    fold = _fold(split)
    gold: list[str] = []
    try:
        env.load(game.name, game.engine_parameters)
        gold = seeded_gold_path(env, seed, fold)
        observation, info = env.reset(seed=seed, gameFold=fold, generateGoldPath=False)
        instruction = info["taskDescription"]
        steps: list[Step] = []
        for action in gold:
            steps.append(Step(observation, action, tuple(sorted(info["validActions"]))))
            observation, _reward, _done, info = env.step(action)
    except (ValueError, Py4JError) as exc:
        return quarantine(spec, position, "engine_error", _describe(exc), _raw(game, seed, gold))
    if not info["tasksuccess"]:
        detail = f"gold path of {len(gold)} actions ended at score {info['score']} without winning"
        return quarantine(spec, position, "replay_failed", detail, _raw(game, seed, gold))
    return Trajectory(
        trajectory_id=_episode_id(game, seed, fold),
        source=spec,
        task=game.name,
        environment=ENVIRONMENT,
        split=split,
        instruction=instruction,
        steps=tuple(steps),
        final_observation=observation,
        success=True,
        reward=float(info["score"]),
    )


def seeded_gold_path(env: TextWorldExpressEnv, seed: int, fold: str) -> list[str]:
    """The loaded game's gold path for `seed`, walked by the engine's gold agent with `Random(seed)`
    (the engine's own call uses an unseeded Random). A game to play is reset afterwards: some
    generators (sorting) share objects between the games they make."""
    env.reset(seed=seed, gameFold=fold, generateGoldPath=False)  # the generator of this game and params
    jvm = env._gateway.jvm
    generator = env.server.gameGenerator()
    agent = getattr(jvm.textworldexpress.goldagent, GOLD_AGENTS[generator.getClass().getSimpleName()])
    walk = jvm.scala.util.Random(seed)  # one source across attempts, as the engine does
    for _ in range(GOLD_ATTEMPTS):
        found = agent(generator.mkGame(seed, fold)).mkGoldPath(walk)
        if get_method(found, "_1")():  # a tuple's members are methods (the gateway auto-reads fields)
            return list(get_method(found, "_2")())
    raise ValueError(f"the gold agent found no path for {env.gameName} seed {seed} in {GOLD_ATTEMPTS} tries")


def _position(game: Game) -> str:
    return f"{game.name}[{game.engine_parameters}]" if game.parameters else game.name


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _raw(game: Game, seed: int | None = None, gold: Sequence[str] = ()) -> str:
    record = {"game": game.name, "parameters": dict(game.parameters), "seed": seed, "gold": list(gold)}
    return json.dumps(record, ensure_ascii=False)
