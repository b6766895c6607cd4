"""The transformer, its forget/retain partition and the masking strategies."""

from excise.model.ablation import ablate_, ablated, ablated_copy, count_elements, prune
from excise.model.gpt import GPT, LayerShape, Mode, Routing, StepPlan
from excise.model.partition import Partition, apply_partition, build_model, build_partition, mask_gradients
from excise.model.strategies import STRATEGIES, Strategy, get_strategy

__all__ = [
    "GPT", "LayerShape", "Mode", "Routing", "StepPlan", "Partition", "ablate_", "ablated",
    "ablated_copy", "apply_partition", "build_model", "build_partition", "count_elements",
    "mask_gradients", "prune", "STRATEGIES", "Strategy", "get_strategy",
]  # fmt: skip
