"""Tiny runs and synthetic data for the unlearning tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from excise.config import Config, ModelConfig, save_config
from excise.model.partition import Partition, build_model
from excise.run import save_model

TINY = dict(vocab_size=64, context=16, n_layers=4, d_model=16, n_heads=4, d_ff=32)


def ramp_tokens(n_seq: int, lo: int, hi: int, seed: int, context: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    starts = rng.integers(lo, hi, n_seq)
    return (lo + (starts[:, None] - lo + np.arange(context + 1)[None, :]) % (hi - lo)).astype(np.int64)


def data() -> SimpleNamespace:
    train = {"forget": ramp_tokens(16, 0, 30, 1), "retain": ramp_tokens(16, 30, 60, 2)}
    test = {"forget": ramp_tokens(8, 0, 30, 3), "retain": ramp_tokens(8, 30, 60, 4)}
    return SimpleNamespace(train=train, test=test, tokenizer=None, probes=None)


def make_run(path: Path, method: str = "no_filter") -> Path:
    cfg = Config(
        model=ModelConfig(**TINY),
        method={"name": method},
        partition={"forget_mlp_units": 8, "forget_heads": 1},
        eval={"max_tokens": 2048, "calibration_steps": 5, "calibration_batch_size": 2},
        unlearn={"steps": 5, "batch_size": 4},
    )
    model, partition = build_model(cfg.model, cfg.partition if cfg.method.partitioned else None, seed=0)
    save_config(cfg, path / "config.yaml")
    save_model(path, model, partition if cfg.method.partitioned else Partition())
    (path / "tokenizer.json").write_text("{}")
    return path
