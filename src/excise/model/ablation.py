"""Removing the forget units: zero-ablation (in place, on a copy, or temporarily), pruning
them physically, and counting elements by kind — generic functions over a
:class:`~excise.model.partition.Partition`, for every strategy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn

from excise.model.gpt import GPT, LayerShape
from excise.model.partition import Partition

# ---------------------------------------------------------------------------------------
# ablation


@torch.no_grad()
def ablate_(model: nn.Module, partition: Partition, how: str = "zero", seed: int = 0) -> None:
    """Remove the forget units in place.

    ``how="zero"``: set every forget element to zero (the safe model).
    ``how="reinit"``: redraw them from N(mean, std) of the same parameter's retain elements
    ("trainable ablation": the units can learn again, but hold nothing of the old domain).
    """
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        s = partition.slices.get(name)
        if s is None:
            continue
        for start, stop in s.ranges:
            view = p.narrow(s.dim, start, stop - start)
            if how == "zero":
                view.zero_()
            elif how == "reinit":
                retain = p[partition.retain_mask(name, p)]
                mean, std = retain.mean().item(), retain.std().item() if retain.numel() > 1 else 0.0
                noise = torch.randn(view.shape, generator=gen, dtype=torch.float64)
                view.copy_((noise * std + mean).to(view.dtype))
            else:
                raise ValueError(f"unknown ablation {how!r}; use 'zero' or 'reinit'")


@contextmanager
def ablated(model: nn.Module, partition: Partition) -> Iterator[nn.Module]:
    """Temporarily zero the forget units; the original values are restored on exit."""
    saved = {}
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in partition.slices:
            saved[name] = params[name].detach().clone()
        ablate_(model, partition)
    try:
        yield model
    finally:
        with torch.no_grad():
            for name, value in saved.items():
                params[name].copy_(value)


def ablated_copy(model: GPT, partition: Partition) -> GPT:
    """An independent copy of ``model`` with its forget units zeroed."""
    import copy

    clone = copy.deepcopy(model)
    ablate_(clone, partition)
    return clone


# ---------------------------------------------------------------------------------------
# pruning


@torch.no_grad()
def prune(model: GPT, partition: Partition) -> GPT:
    """A physically smaller plain model without the forget units.

    Its logits equal those of the zero-ablated model: a zeroed head outputs zero through a
    zeroed ``o_proj`` column, and a zeroed MLP unit contributes act(0) * 0 = 0.
    """
    cfg = model.config
    if cfg.head_dim is None:
        cfg = cfg.model_copy(update={"head_dim": cfg.resolved_head_dim})
    shapes = []
    for s, block in zip(model.layer_shapes, model.blocks):
        shapes.append(LayerShape(s.n_heads - block.attn.forget_heads, s.d_ff - block.mlp.forget_units))
    # (the pruned model has no partition: its layers are plain)
    reference = next(model.parameters())
    # Same dtype and device as the source (a float64 or GPU model stays one).
    pruned = GPT(cfg, shapes).to(device=reference.device, dtype=reference.dtype)
    source = model.state_dict()
    target = pruned.state_dict()
    for name, value in source.items():
        s = partition.slices.get(name)
        if s is not None:
            keep = value.shape[s.dim] - sum(b - a for a, b in s.ranges)
            value = value.narrow(s.dim, 0, keep)  # forget ranges are always the suffix
        target[name].copy_(value)
    return pruned


# ---------------------------------------------------------------------------------------
# element counts


def count_elements(model: nn.Module, partition: Partition) -> dict[str, int]:
    """Number of shared / retain / forget elements."""
    counts = {"shared": 0, "retain": 0, "forget": 0}
    for name, p in model.named_parameters():
        if partition.is_shared(name):
            counts["shared"] += p.numel()
            continue
        f = int(partition.forget_mask(name, p).sum())
        counts["forget"] += f
        counts["retain"] += p.numel() - f
    return counts
