"""Fixtures for the transformers interop tests: fabricated run directories."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hf_helpers import tiny_model, train_tokenizer

from excise.config import Config, DataConfig, ModelConfig, PartitionConfig, save_config


@pytest.fixture
def make_run(tmp_path):
    """Fabricate a finished run directory: config.yaml, weights, partition, tokenizer."""
    from excise.run import save_model

    def make(cfg: ModelConfig, pcfg: PartitionConfig, eval_json: dict | None = None) -> Path:
        run_dir = tmp_path / "run"
        model, partition = tiny_model(cfg, pcfg, dtype=torch.float32)
        save_model(run_dir, model, partition)
        config = Config(
            model=cfg, partition=pcfg,
            data=DataConfig(
                retain={"path": "/data/en.jsonl"}, forget={"path": "/data/es.jsonl"}
            ),
        )  # fmt: skip
        save_config(config, run_dir / "config.yaml")
        train_tokenizer(run_dir / "tokenizer.json")
        if eval_json is not None:
            import json

            (run_dir / "eval.json").write_text(json.dumps(eval_json))
        (run_dir / "meta.json").write_text('{"excise": "0.1.0", "seed": 0, "method": "sgtm"}')
        return run_dir

    return make
