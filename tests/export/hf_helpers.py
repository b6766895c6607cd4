"""Helpers for the transformers interop tests: tiny random models, a tiny tokenizer."""

from __future__ import annotations

from pathlib import Path

import torch

from excise.config import ModelConfig, PartitionConfig
from excise.model.gpt import GPT
from excise.model.partition import Partition, build_model

VOCAB = 64

NEO = dict(norm="layernorm", mlp="gelu", positions="learned", tie_embeddings=True, bias=True,
           qkv_bias=False, attention_scale=1.0)  # fmt: skip
LLAMA = dict(norm="rmsnorm", mlp="swiglu", positions="rope", tie_embeddings=False, bias=False,
             qkv_bias=False)  # fmt: skip


def tiny_config(**overrides) -> ModelConfig:
    base = dict(vocab_size=VOCAB, context=16, n_layers=2, d_model=16, n_heads=4, d_ff=32)
    return ModelConfig(**(base | overrides))


@torch.no_grad()
def randomize_(model: GPT, seed: int = 0) -> GPT:
    """Every parameter random (norm weights around 1), so no mapping error can hide."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
        if "norm" in name and name.endswith("weight"):
            p.copy_(1.0 + 0.1 * noise)
        else:
            p.copy_(0.2 * noise)
    return model


def tiny_model(
    cfg: ModelConfig, pcfg: PartitionConfig | None, seed: int = 0, dtype=torch.float64
) -> tuple[GPT, Partition]:
    model, partition = build_model(cfg, pcfg, seed=seed)
    model.to(dtype)
    randomize_(model, seed)
    model.eval()
    return model, partition


def train_tokenizer(path: Path) -> Path:
    """A tiny word-level BPE with ``<|endoftext|>``, vocabulary at most VOCAB."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<|endoftext|>"])
    text = ["the cat sat on the mat", "el gato se sienta", "a dog and a cat", "the end"] * 20
    tok.train_from_iterator(text, trainer)
    assert tok.get_vocab_size() <= VOCAB
    tok.save(str(path))
    return path
