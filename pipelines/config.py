"""The one build configuration: the CLI's options, project files and the flow all come from here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actforge.pipelines.curate.filters import ADMISSIBLE_MODES, FilterConfig
from actforge.pipelines.curate.verify import POOL
from actforge.pipelines.policy.models import DEFAULT_POLICY, PolicySpec
from actforge.pipelines.policy.params import SamplingParams, Usage
from actforge.pipelines.policy.prefix_cache import DEFAULT_CACHE_MB
from actforge.pipelines.sources.base import FILE_FORMATS
from actforge.pipelines.sources.registry import check_source
from actforge.pipelines.text.critic import CRITIC_VERSION, DEFAULT_HISTORY_CHARS
from actforge.schemas import SCHEMA_VERSION
from actforge.schemas.vocab import LEAKAGE_MODES, OUTCOMES

RUNNERS = ("threads", "dask")


def _option(default: Any, help: str, **cli: Any) -> Any:
    """A field with its CLI help (and argparse extras such as `choices` or `metavar`)."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass(frozen=True)
class BuildConfig:
    """Everything a build depends on, with its defaults.

    Inputs and outputs:
        sources: source specs, `scienceworld:TASKS@VARIATIONS`, `twx:GAMES@SEEDS` or `[FORMAT:]PATH`.
        out: the dataset folder (Hugging Face layout).
        store: the DuckDB store (default OUT.duckdb beside OUT).
        format: force the format of file sources.
        cache_dir: where Prefect keeps task results (default STORE.cache beside the store).

    Policy and sampling (what changes a sample, so part of the "never sample twice" key):
        policy: `smollm2` (bundled), a local model folder, or `openai:MODEL` served at `base_url`.
        trust_remote_code: allow a model folder's own code; only when asked.
        base_url, tokenizer, concurrency, api_key_file: for `openai:MODEL`, the server's URL (e.g.
            http://127.0.0.1:8000/v1), the local tokenizer folder that renders its prompts (default:
            the bundled SmolLM2's), requests in flight at most, and a file holding the API key (else
            `OPENAI_API_KEY`; the key itself is never a setting).
        k, temperature, top_p, max_new_tokens, seed: K alternatives per state and how they are drawn.

    Scope, filters and output:
        max_states: sample at most this many states: whole trajectories, each split's in turn in
            proportion (so a partial build has every split, and a trajectory's consecutive prompts
            share their prefixes, which a local model prefills once); the last one cut short.
        batch_size: states per sampling task (one cached, resumable unit of work). A local model
            decodes a batch's states together (`pipelines.policy.decoding`); a server gets all of a batch's
            requests at once, so with `--concurrency N` use a batch of at least N states.
        admissible: map outputs to, or require, the source's admissible actions.
        history_chars: characters of earlier steps a published row carries (latest steps first;
            the row counts the ones left out).
        critic_history_chars: characters of earlier steps in each critic prompt of the `act` config
            (fewer make shorter prompts, so cheaper critic training steps).
        verify: for live sources, try each accepted alternative and the expert's action in the
            engine and publish what they did (`pipelines.curate.verify`); paid once per (state, action).
        with_report: add the plots of `actforge report` to OUT (`report/*.png`) and show them in the
            card, so the Hub shows them too.
        drop_outcome: leave out pairs whose verified alternative had one of these outcomes (for
            example `progresses`: the "bad" action helps), counted as `not_worse`.
        leakage: states whose prompt appears in more than one split are always counted (stats and
            card); `drop` also leaves them out of validation and test (`pipelines.publish.leakage`).

    What a build may spend (never part of the content):
        max_requests, max_tokens: caps on what a policy server is asked (requests answered; prompt
            plus completion tokens, as the answers count them), checked between batches: the build
            stops there, stores what it sampled and publishes it, and the next run samples the rest.

    Where the work runs (never part of the content):
        prefix_cache_mb: memory a local model keeps prefilled prompt chunks in across batches, so a
            trajectory's next state computes only its newest tokens (`pipelines.policy.prefix_cache`;
            0: reuse within a batch only). Never changes a sample.
        runner: `threads` (this process; sampling batch by batch) or `dask` (collection per source
            and sampling per batch as tasks on a Dask cluster; the flow stays the store's only
            writer).
        workers, dask_address: a local cluster of `workers` processes, or the running cluster at
            `dask_address`.
        verify_pool: with `verify`, more engines (each a JVM) per batch, walking its other
            trajectories or the second half of a long one; 0 keeps one engine per batch (two
            batches already verify at a time).
    """

    sources: tuple[str, ...] = _option(
        (), "scienceworld:TASKS@VARIATIONS, twx:GAMES@SEEDS or [FORMAT:]PATH; repeatable", flag="--source"
    )
    out: str = _option("", "output folder (Hugging Face dataset layout)")
    store: str | None = _option(None, "DuckDB store (default: OUT.duckdb beside OUT)")
    format: str | None = _option(None, "force the format of file sources", choices=FILE_FORMATS)
    cache_dir: str | None = _option(None, "Prefect result cache (default: STORE.cache beside the store)")
    policy: str = _option(DEFAULT_POLICY, "'smollm2' (bundled), a local model folder, or openai:MODEL")
    trust_remote_code: bool = _option(False, "allow a model folder's own code")
    base_url: str | None = _option(None, "with openai:MODEL: the server's URL, e.g. http://127.0.0.1:8000/v1")
    tokenizer: str | None = _option(None, "with openai:MODEL: tokenizer folder (default: the bundled one)")
    concurrency: int = _option(8, "with openai:MODEL: requests in flight at most")
    api_key_file: str | None = _option(None, "with openai:MODEL: file with the API key (else OPENAI_API_KEY)")
    k: int = _option(4, "alternatives sampled per state")
    temperature: float = _option(1.0, "sampling temperature")
    top_p: float = _option(0.95, "nucleus sampling mass")
    max_new_tokens: int = _option(24, "tokens generated per alternative at most")
    seed: int = _option(0, "seed of every sample (derived per state)")
    max_states: int | None = _option(
        None, "sample at most this many states (whole trajectories, every split in proportion)"
    )
    batch_size: int = _option(
        8, "states per sampling task (a local model decodes them together; a server gets them at once)"
    )
    admissible: str = _option(
        FilterConfig.admissible,
        "map outputs to, or require, the admissible actions",
        choices=ADMISSIBLE_MODES,
    )
    history_chars: int = _option(16000, "characters of history a published row carries")
    critic_history_chars: int = _option(
        DEFAULT_HISTORY_CHARS, "characters of history in each critic prompt of the act config"
    )
    verify: bool = _option(False, "try each accepted alternative and the expert's action in the live engine")
    with_report: bool = _option(False, "add the report's plots to OUT and show them in the card")
    drop_outcome: tuple[str, ...] = _option(
        (), "with --verify: leave out pairs whose alternative had this outcome; repeatable", choices=OUTCOMES
    )
    leakage: str = _option(
        "report",
        "held-out states whose prompt is in another split: report, or drop them",
        choices=LEAKAGE_MODES,
    )
    max_requests: int | None = _option(
        None, "stop sampling (between batches) once a server answered this many requests"
    )
    max_tokens: int | None = _option(
        None, "stop sampling (between batches) once a server counted this many tokens"
    )
    prefix_cache_mb: int = _option(
        DEFAULT_CACHE_MB, "local model: MB of prefilled prompt chunks kept across batches (0: none)"
    )
    runner: str = _option("threads", "where collection and sampling tasks run", choices=RUNNERS)
    workers: int = _option(2, "with --runner dask: workers of the local cluster")
    dask_address: str | None = _option(None, "with --runner dask: a running cluster, tcp://HOST:PORT")
    verify_pool: int = _option(POOL, "with --verify: more engines (JVMs) per batch, for spare cores")

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "drop_outcome", tuple(dict.fromkeys(self.drop_outcome)))
        for name in ("k", "batch_size", "max_new_tokens", "concurrency", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in (
            "max_states",
            "prefix_cache_mb",
            "history_chars",
            "critic_history_chars",
            "max_requests",
            "max_tokens",
            "verify_pool",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be 0 or more, got {value}")
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            for item in value if isinstance(value, tuple) else (value,):
                if choices and item not in (None, *choices):
                    raise ValueError(f"{f.name} must be one of {list(choices)}, not {item!r}")
        self.sampling  # noqa: B018 - check sampling values now, not after collection

    def cap_reached(self, usage: Usage) -> str | None:
        """The cap (as its flag) that what a server was asked has reached, if any."""
        if self.max_requests is not None and usage.requests >= self.max_requests:
            return f"--max-requests {self.max_requests}"
        if self.max_tokens is not None and usage.prompt_tokens + usage.completion_tokens >= self.max_tokens:
            return f"--max-tokens {self.max_tokens}"
        return None

    def check_complete(self) -> None:
        """A build needs sources and an output folder; a config may lack them until then."""
        if not self.sources or not self.out:
            raise ValueError("a build needs at least one source and an output folder (`sources`, `out`)")

    @property
    def store_path(self) -> Path:
        """The store: `store`, else beside the dataset (never inside it)."""
        out = Path(self.out)
        return Path(self.store) if self.store else out.parent / f"{out.name}.duckdb"

    @property
    def cache_path(self) -> Path:
        """Prefect's persisted task results: `cache_dir`, else beside the store."""
        return Path(self.cache_dir) if self.cache_dir else self.store_path.with_suffix(".cache")

    def check_ready(self) -> None:
        """Every source readable and every path usable, checked before any work: one clear error."""
        self.check_complete()
        for spec in self.sources:
            check_source(spec)
        self.policy_spec.check()
        if self.drop_outcome and not self.verify:
            raise ValueError("--drop-outcome needs --verify (outcomes come from the live engine)")
        out, store = Path(self.out), self.store_path
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out}: exists and is not a folder")
        if store.resolve() == out.resolve():
            raise ValueError(f"--store {store}: the same path as --out; the store sits beside the dataset")
        if store.is_dir():
            raise ValueError(f"--store {store}: is a folder, not a DuckDB file")
        for path, flag in ((store, "--store"), (self.cache_path, "--cache-dir")):
            parent = next((p for p in [path, *path.parents] if p.exists()), None)
            if parent is not None and parent != path and not parent.is_dir():
                raise ValueError(f"{flag} {path}: {parent} is a file, not a folder")
        if self.cache_path.exists() and not self.cache_path.is_dir():
            raise ValueError(f"--cache-dir {self.cache_path}: exists and is not a folder")

    @property
    def sampling(self) -> SamplingParams:
        return SamplingParams(
            k=self.k,
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
        )

    @property
    def policy_spec(self) -> PolicySpec:
        return PolicySpec(
            policy=self.policy,
            trust_remote_code=self.trust_remote_code,
            base_url=self.base_url,
            tokenizer=self.tokenizer,
            concurrency=self.concurrency,
            api_key_file=self.api_key_file,
            prefix_cache_mb=self.prefix_cache_mb,
        )

    @property
    def filters(self) -> FilterConfig:
        return FilterConfig(admissible=self.admissible)

    def provenance(self, policy_name: str) -> dict[str, Any]:
        """What the card and manifest record: the sources, the policy's identity, every setting
        that changes the published content (paths and caches do not)."""
        return {
            "sources": list(self.sources),
            "policy": policy_name,
            "k": self.k,
            "seed": self.seed,
            "sampling": self.sampling.as_dict(),
            "filters": self.filters.as_dict(),
            "max_states": self.max_states,
            "history_chars": self.history_chars,
            "critic_history_chars": self.critic_history_chars,
            "critic_version": CRITIC_VERSION,
            "verify": self.verify,
            "drop_outcome": list(self.drop_outcome),
            "with_report": self.with_report,
            "leakage": self.leakage,
            "schema_version": SCHEMA_VERSION,
        }
