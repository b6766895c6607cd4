"""Parameter counts of the paper's GPT-Neo-style shapes (slow: builds full-size models).

Shapes assumed (vocabulary 50257, tied head, LayerNorm/GELU, learned positions, biases,
1 forget head and 64 forget MLP units in every layer):
- "64M": 12 layers, width 512, 32 heads, 2048 MLP units, context 2048;
- "8M": 8 layers, width 128, 32 heads, 512 MLP units, context 2048.
"""

from __future__ import annotations

import pytest

from excise.config import ModelConfig, PartitionConfig
from excise.model.partition import build_model, count_elements


def forget_per_layer(d_model: int, head_dim: int, forget_heads: int, forget_units: int) -> int:
    """q/k/v rows + o columns per forget head; up row + bias entry + down column per unit."""
    return 4 * forget_heads * head_dim * d_model + forget_units * (2 * d_model + 1)


@pytest.mark.slow
@pytest.mark.parametrize(
    "shape, total, non_embedding",
    [
        (dict(n_layers=12, d_model=512, n_heads=32, d_ff=2048), 64_591_360, 37_811_200),
        (dict(n_layers=8, d_model=128, n_heads=32, d_ff=512), 8_278_400, 1_583_360),
    ],
    ids=["64M", "8M"],
)
def test_paper_shapes(shape: dict, total: int, non_embedding: int) -> None:
    cfg = ModelConfig(vocab_size=50257, context=2048, **shape)
    model, partition = build_model(cfg, PartitionConfig(forget_heads=1, forget_mlp_units=64))
    counts = count_elements(model, partition)
    assert model.num_parameters() == total
    assert model.num_parameters(exclude_embeddings=True) == non_embedding
    per_layer = forget_per_layer(cfg.d_model, cfg.resolved_head_dim, 1, 64)
    assert counts["forget"] == cfg.n_layers * per_layer
    assert sum(counts.values()) == total
