"""Masking strategies: how each mode's step is run over the same partition.

A strategy is a small value object, not a class hierarchy: which routing its forget steps
use in the forward pass, and whether gradients are masked after backward.

- ``sgtm``: forget steps zero the gradients of retain parameters (output-projection biases
  of masked layers included), and under ``mask_shared`` those of the embeddings and of the
  masked layers' norms; unmasked layers, the final norm and the output bias learn. The
  forward pass additionally uses retain weight slices detached, so their useless weight
  gradients are never computed; the post-backward mask makes the result exact whatever the
  forward did.
- ``gradient_routing`` (Cloud et al. 2024): forget steps detach retain units' activations
  in the forward pass; no gradient masking afterwards.
- ``activation_masking``: forget steps zero retain units' activations in the forward pass,
  so forget data is processed by forget units (and shared parameters) only.

On retain steps every strategy runs the forward with forget units ablated. Under
``mask_shared`` every strategy's forget steps leave the embeddings and masked layers' norms
without gradient (detached in the forward pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from excise.model.gpt import Mode, Routing, StepPlan
from excise.model.partition import Partition, mask_gradients


@dataclass(frozen=True)
class Strategy:
    name: str
    forget_routing: Routing
    mask_after_backward: bool

    def plan(self, mode: Mode, mask_shared: bool = False) -> StepPlan:
        """The forward-pass instructions for one step of ``mode``."""
        if mode is Mode.FORGET:
            return StepPlan(mode, self.forget_routing, freeze_shared=mask_shared)
        return StepPlan(mode)

    def after_backward(
        self, model: nn.Module, partition: Partition, mode: Mode, mask_shared: bool = False
    ) -> None:
        """Mask gradients for ``mode`` (call after the gradient all-reduce, before clipping)."""
        if mode is Mode.FORGET and self.mask_after_backward:
            mask_gradients(model, partition, keep="forget", mask_shared=mask_shared)
        else:
            fill_missing_grads(model)


def fill_missing_grads(model: nn.Module) -> None:
    """Give unused parameters an explicit zero gradient, as a masked full backward would."""
    for p in model.parameters():
        if p.requires_grad and p.grad is None:
            p.grad = p.new_zeros(p.shape)


STRATEGIES: dict[str, Strategy] = {
    "sgtm": Strategy("sgtm", Routing.FREEZE_RETAIN, mask_after_backward=True),
    "gradient_routing": Strategy("gradient_routing", Routing.DETACH_ACTIVATIONS, False),
    "activation_masking": Strategy("activation_masking", Routing.ZERO_ACTIVATIONS, False),
}


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; choose from {sorted(STRATEGIES)}") from None
