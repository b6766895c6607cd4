"""One optimizer step over a mixed batch: label-grouped micro-batches, each masked by its
own label before the gradients are summed (``train.batches: mixed``).

Per label group: the ordinary step's first half (:func:`excise.train.step.masked_gradients`:
forward with the mode's plan, backward, the strategy's mask), then the group's gradient is
clipped on its own to ``train.grad_clip``, weighted by its share of the batch's sequences
and added to the sum. Clipping per group, not after the sum, is what keeps the masking
exact per sequence: a global clip would scale the retain gradient by a norm that depends on
the forget sequences. The optimizer then updates the union of the element groups the
present labels may change. With one label the step is bit-identical to the pure step.
"""

from __future__ import annotations

import numpy as np
import torch

from excise.data.mixed import MixedStep
from excise.errors import UserError
from excise.methods.registry import get_method
from excise.model.gpt import Mode
from excise.train.optimizer import GROUPS, PartitionedAdamW, set_lr, update_groups
from excise.train.step import StepResult, clip_gradients, masked_gradients

MODE_ORDER = (Mode.FORGET, Mode.RETAIN, Mode.DEFAULT)  # fixed: the sum's order never depends on data


def label_groups(train: dict, step: MixedStep, method: str, micro: int | None, world_size: int, device: str):
    """``[(mode, [micro-batch tensors])]`` of a mixed step, sequences the method skips left
    out; empty when it skips them all."""
    if world_size > 1:
        raise UserError(
            "train.batches mixed runs in one process for now; use train.batches pure with torchrun"
        )
    rows: dict[Mode, list[np.ndarray]] = {}
    for domain, index, label in zip(step.domains, step.indices, step.labels):
        mode = get_method(method).mode(label, domain)
        if mode is not None:
            rows.setdefault(Mode(mode), []).append(np.asarray(train[domain][index], dtype=np.int64))
    groups = []
    for mode in MODE_ORDER:
        if mode in rows:
            tokens = torch.from_numpy(np.stack(rows[mode]))
            size = micro or len(tokens)
            groups.append((mode, [tokens[i : i + size].to(device) for i in range(0, len(tokens), size)]))
    return groups


def mixed_mode(method: str, step: MixedStep) -> Mode | None:
    """``Mode.DEFAULT`` (the step trains) unless the method skips every sequence of it."""
    kept = any(get_method(method).mode(lab, d) is not None for d, lab in zip(step.domains, step.labels))
    return Mode.DEFAULT if kept else None


def grouped_train_step(
    model, optimizer, partition, method, train, groups, lr: float, autocast=None, check_finite: bool = True
) -> StepResult:
    """One update from label groups (see the module doc)."""
    gpt = getattr(model, "_orig_mod", model)
    total_rows = sum(b.shape[0] for _, batches in groups for b in batches)
    summed: list[torch.Tensor] | None = None
    loss_sum, tokens, norm, modes = 0.0, 0, 0.0, []
    for mode, batches in groups:
        sizes = [b.shape[0] for b in batches]
        rows = sum(sizes)
        weights = None if len(set(sizes)) == 1 else [n / rows for n in sizes]
        _, used, loss, n_tokens = masked_gradients(
            model, optimizer, partition, method, batches, mode, autocast, check_finite, weights
        )
        modes.append(used)
        norm = clip_gradients(gpt, train.grad_clip, check_finite)
        loss_sum += loss * rows
        tokens += n_tokens
        if len(groups) == 1:
            break  # the gradient is the step's as it stands
        share = rows / total_rows
        grads = [p.grad for p in gpt.parameters()]
        if summed is None:
            summed = [torch.zeros_like(p) for p in gpt.parameters()]
        for acc, g in zip(summed, grads):
            if g is not None:
                acc.add_(g, alpha=share)
    if summed is not None:
        for p, acc in zip(gpt.parameters(), summed):
            p.grad = acc
        norm = float(torch.nn.utils.get_total_norm([p.grad for p in gpt.parameters()]))
    if isinstance(optimizer, PartitionedAdamW):
        allowed = {g for m in modes for g in update_groups(m, method.mask_shared)}
        optimizer.active_groups = tuple(g for g in GROUPS if g in allowed)
    set_lr(optimizer, lr)
    optimizer.step()
    return StepResult(loss_sum / total_rows, norm, tokens)
