"""The paper-size recipes: each one's parameter count is the paper's, and its training
settings are those of the paper's released code.

Counts from the paper's tables (thousands of parameters, output-logit bias included):
stories 8M / 18M / 34M / 64M and Wikipedia 34M / 64M / 125M / 254M. Models are built on
the meta device, so no memory is allocated for them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from excise.config import load_config
from excise.model.gpt import GPT
from excise.model.partition import build_partition

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

PAPER_COUNTS_K = {
    "bilingual-8m": 7_736, "bilingual-18m": 17_781, "bilingual-34m": 33_732, "bilingual-64m": 63_855,
    "topic-34m": 33_929, "topic-64m": 64_117, "topic-125m": 124_462, "topic-254m": 254_054,
}  # fmt: skip
# (steps, batch, warm-up, lr) of the paper code's configs/tinystories/*.yaml and wiki/*.yaml
PAPER_TRAINING = {
    "bilingual-8m": (3989, 128, 500, 5e-4), "bilingual-18m": (9204, 128, 1000, 5e-4),
    "bilingual-34m": (17484, 128, 1000, 5e-4), "bilingual-64m": (33120, 128, 1000, 5e-4),
    "topic-34m": (5169, 128, 500, 6e-4), "topic-64m": (4887, 256, 500, 6e-4),
    "topic-125m": (9491, 256, 1000, 6e-4), "topic-254m": (9689, 512, 1000, 6e-4),
}  # fmt: skip


def recipe(name: str):
    # the topic recipes read one file split by a topic column: any path will do here
    return load_config(
        CONFIGS / f"{name}.yaml", ["data.path=wikipedia.parquet"] if name.startswith("topic") else []
    )


def recipe_model(name: str):
    config = recipe(name)
    with torch.device("meta"):
        model = GPT(config.model)
    p = config.partition
    model.set_forget_units(
        [p.forget_heads] * config.model.n_layers, [p.forget_mlp_units] * config.model.n_layers
    )
    return config, model


@pytest.mark.parametrize("name", sorted(PAPER_COUNTS_K))
def test_recipe_parameter_count_is_the_papers(name: str) -> None:
    config, model = recipe_model(name)
    assert model.num_parameters() // 1000 == PAPER_COUNTS_K[name]
    assert config.model.output_bias  # counted in the paper's figures
    params = dict(model.named_parameters())
    forget = sum(
        s.width * params[n].numel() // params[n].shape[s.dim]
        for n, s in build_partition(model).slices.items()
    )
    # 1 forget head (q/k/v rows, o columns) + 64 MLP units (up row + bias, down column) a layer
    d, hd = config.model.d_model, config.model.resolved_head_dim
    assert forget == config.model.n_layers * (4 * hd * d + 64 * (2 * d + 1))


@pytest.mark.parametrize("name", sorted(PAPER_TRAINING))
def test_recipe_trains_as_the_papers_code(name: str) -> None:
    config = recipe(name)
    t, m = config.train, config.model
    assert (t.steps, t.batch_size, t.warmup_steps, t.lr) == PAPER_TRAINING[name]
    assert (t.beta1, t.beta2, t.weight_decay, t.weight_decay_on) == (0.9, 0.95, 0.1, "all")
    assert (t.grad_clip, t.warmup_start, t.min_lr_ratio, t.schedule) == (0.0, 0.1, 0.0, "cosine")
    assert m.attention_pattern == ["global", "local"] and m.local_window == 256
    assert m.attention_scale == 1.0 and m.n_heads == 32 and m.resolved_d_ff == 4 * m.d_model
    assert config.method.mask_shared == name.startswith("topic")
    assert config.labels.retain_fraction == (0.1 if name.startswith("topic") else 0.25)
