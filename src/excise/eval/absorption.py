"""Absorption analysis: where does a batch's gradient want to go — forget or retain units?

The paper explains why undiscovered (``default``-trained) forget data still ends up in the
forget units: once forget units specialise, the plain gradient of forget data is larger on
forget parameters than on retain ones, and the reverse for retain data. This module
measures that: for each batch kind, a plain (``Mode.DEFAULT``) forward/backward, then per
layer the L2 norm of the gradient restricted to forget elements and to retain elements.
Norms are also given per element (norm / sqrt(n elements)) because forget slices are much
smaller than retain slices. The model's weights and gradients are left as they were.
"""

from __future__ import annotations

import math

import torch

from excise.eval.losses import as_tensor
from excise.model.gpt import GPT, PLAIN
from excise.model.partition import Partition


def _layer_of(name: str) -> int | None:
    parts = name.split(".")
    return int(parts[1]) if parts[0] == "blocks" else None


def gradient_norms(
    model: GPT, partition: Partition, batches_by_label: dict, device: str | torch.device = "cpu"
) -> dict[str, list[dict[str, float]]]:
    """``{kind: [per layer {"forget", "retain", "forget_per_element", "retain_per_element"}]}``.

    ``batches_by_label`` maps a batch kind ("forget" / "retain" / "default", or any name) to
    a (b, T+1) token batch. Gradient norms are of the mean next-token loss of that batch.
    """
    saved = {n: (None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()}
    was_training = model.training
    model.eval()
    result: dict[str, list[dict[str, float]]] = {}
    try:
        for kind, batch in batches_by_label.items():
            batch = as_tensor(batch).to(device)
            model.zero_grad(set_to_none=True)
            model(batch[:, :-1], batch[:, 1:], PLAIN).backward()
            sq = [{"forget": 0.0, "retain": 0.0, "nf": 0, "nr": 0} for _ in model.blocks]
            for name, p in model.named_parameters():
                layer = _layer_of(name)
                if layer is None or p.grad is None or partition.is_shared(name):
                    continue
                g = p.grad.detach().double()
                fmask = partition.forget_mask(name, p)
                acc = sq[layer]
                acc["forget"] += float((g[fmask] ** 2).sum())
                acc["retain"] += float((g[~fmask] ** 2).sum())
                acc["nf"] += int(fmask.sum())
                acc["nr"] += int((~fmask).sum())
            result[kind] = [
                {
                    "forget": math.sqrt(a["forget"]),
                    "retain": math.sqrt(a["retain"]),
                    "forget_per_element": math.sqrt(a["forget"] / a["nf"]) if a["nf"] else 0.0,
                    "retain_per_element": math.sqrt(a["retain"] / a["nr"]) if a["nr"] else 0.0,
                }
                for a in sq
            ]
    finally:
        for n, p in model.named_parameters():
            p.grad = saved[n]
        model.train(was_training)
    return result
