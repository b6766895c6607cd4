"""Tiny run directories and synthetic token data for the eval tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from excise.config import Config, ModelConfig, save_config
from excise.model.partition import Partition, build_model
from excise.run import save_model

TINY = dict(vocab_size=64, context=16, n_layers=2, d_model=16, n_heads=4, d_ff=32)


def tiny_config(method: str = "sgtm", **eval_overrides) -> Config:
    cfg = Config(
        model=ModelConfig(**TINY),
        method={"name": method},
        partition={"forget_mlp_units": 8, "forget_heads": 1},
    )
    ev = dict(max_tokens=4096, batch_size=8, calibration_steps=20, calibration_batch_size=4)
    ev.update(eval_overrides)
    return cfg.model_copy(update={"eval": cfg.eval.model_copy(update=ev)})


def synthetic_tokens(n_seq: int, context: int, vocab_lo: int, vocab_hi: int, seed: int) -> np.ndarray:
    """Sequences of a repeating ramp (learnable) over a token range."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(vocab_lo, vocab_hi, n_seq)
    ramp = np.arange(context + 1)
    return (vocab_lo + (starts[:, None] - vocab_lo + ramp[None, :]) % (vocab_hi - vocab_lo)).astype(np.int64)


def synthetic_data(context: int = 16) -> SimpleNamespace:
    """forget uses tokens 0..19, retain 20..39, adjacent 40..59 (train and test)."""
    train = {
        "forget": synthetic_tokens(24, context, 0, 20, 1),
        "retain": synthetic_tokens(24, context, 20, 40, 2),
        "adjacent": synthetic_tokens(12, context, 40, 60, 3),
    }
    test = {
        "forget": synthetic_tokens(8, context, 0, 20, 11),
        "retain": synthetic_tokens(8, context, 20, 40, 12),
        "adjacent": synthetic_tokens(8, context, 40, 60, 13),
    }
    return SimpleNamespace(train=train, test=test, tokenizer=None, probes=None)


def make_run(path: Path, method: str = "sgtm", seed: int = 0, **eval_overrides) -> Path:
    cfg = tiny_config(method, **eval_overrides)
    model, partition = build_model(cfg.model, cfg.partition if cfg.method.partitioned else None, seed=seed)
    save_config(cfg, path / "config.yaml")
    save_model(path, model, partition if cfg.method.partitioned else Partition())
    return path
