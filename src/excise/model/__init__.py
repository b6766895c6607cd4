"""The transformer, its forget/retain partition and the masking strategies."""

from excise.model.gpt import GPT, LayerShape, Mode, Routing, StepPlan
from excise.model.partition import (
    Partition,
    ablate_,
    ablated,
    ablated_copy,
    apply_partition,
    build_model,
    build_partition,
    count_elements,
    mask_gradients,
    prune,
)
from excise.model.strategies import STRATEGIES, Strategy, get_strategy

__all__ = [
    "GPT", "LayerShape", "Mode", "Routing", "StepPlan", "Partition", "ablate_", "ablated",
    "ablated_copy", "apply_partition", "build_model", "build_partition", "count_elements",
    "mask_gradients", "prune", "STRATEGIES", "Strategy", "get_strategy",
]  # fmt: skip
