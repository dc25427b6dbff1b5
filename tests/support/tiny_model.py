"""A tiny randomly initialised Llama with a locally trained byte-level BPE tokenizer.

It runs in milliseconds, so sampling, the store and the flow are tested on a real transformers
model without the 135M SmolLM2 weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "go to kitchen",
    "open door to hallway",
    "pick up metal pot",
    "look around",
    "focus on orange",
    "move metal pot to stove",
    "activate stove",
    "look at thermometer",
    "take key",
    "open fridge 1",
    "Observation: This room is called the kitchen. In it, you see: a table, a chair, a fridge.",
    "Task: Your task is to find a non-living thing.",
    "Action: go to workshop",
    "wait1",
    "Observation: the door is open.\nAction: go to hallway\n",
    "<answer>1</answer>",  # the critic's answers are single tokens, as in real tokenizers
    "<answer>2</answer>",
] * 20


def make_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Write a tiny model folder loadable with `from_pretrained(folder, local_files_only=True)`."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    # Only the corpus's own characters: every token decodes to printable text, so a random model
    # still emits action-like strings that the filters can accept or reject on their merits.
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token="<|im_start|>"
    )
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        bos_token_id=fast.bos_token_id,
    )
    model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder
