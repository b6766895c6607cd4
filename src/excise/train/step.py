"""One optimizer step of any method: micro-batches, all-reduce, masking, clipping, update.

The order: forward/backward every micro-batch (gradient sync only once, after the last),
then the strategy's gradient mask (after the all-reduce, same label on every rank), then
clipping of the masked gradients' global norm, then the optimizer. Filters skip a step
entirely before any of this happens (the caller decides).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

from excise.config import MethodConfig, TrainConfig
from excise.methods.registry import get_method
from excise.model.gpt import GPT, Mode, StepPlan
from excise.model.partition import Partition
from excise.model.strategies import Strategy, fill_missing_grads, get_strategy
from excise.train.optimizer import PartitionedAdamW, limit_to_mode, make_adamw, set_lr


class NonFiniteError(RuntimeError):
    """A loss or gradient was NaN/inf; ``where`` names the tensor."""

    def __init__(self, where: str) -> None:
        super().__init__(f"non-finite value in {where}")
        self.where = where


@dataclass
class StepResult:
    loss: float
    grad_norm: float
    tokens: int


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at ``step``: linear warm-up, then cosine / linear decay to min_lr_ratio.

    Warm-up: from ``warmup_start`` x lr at step 0 to lr at step ``warmup_steps`` (torch's
    ``LinearLR``, as the paper's code), or by default from lr / warmup_steps at step 0 to lr
    at step warmup_steps - 1. Decay runs over the remaining steps (cosine: torch's
    ``CosineAnnealingLR`` with ``eta_min = min_lr_ratio x lr``).
    """
    if cfg.warmup_steps and step < cfg.warmup_steps:
        if cfg.warmup_start is not None:
            return cfg.lr * (cfg.warmup_start + (1.0 - cfg.warmup_start) * step / cfg.warmup_steps)
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant" or cfg.steps <= cfg.warmup_steps:
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    if cfg.schedule == "linear":
        return floor + (cfg.lr - floor) * (1.0 - progress)
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(
    model: nn.Module, partition: Partition, method: MethodConfig, train: TrainConfig, device: str
):
    betas = (train.beta1, train.beta2)
    if method.partitioned and method.masking == "updates":
        return PartitionedAdamW(
            model, partition, lr=train.lr, betas=betas, weight_decay=train.weight_decay,
            decay_on=train.weight_decay_on,
        )  # fmt: skip
    return make_adamw(model, train.lr, betas, train.weight_decay, device, train.weight_decay_on)


def all_reduce_grads(model: nn.Module) -> None:
    """Average gradients over ranks (one flat buffer; every rank has the same label)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    fill_missing_grads(model)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def first_nonfinite_grad(model: nn.Module) -> str | None:
    for name, p in model.named_parameters():
        if p.grad is not None and not torch.isfinite(p.grad).all():
            return name
    return None


def train_step(
    model: GPT,
    optimizer,
    partition: Partition,
    method: MethodConfig,
    train: TrainConfig,
    micro_batches: list[torch.Tensor],
    mode: Mode,
    lr: float,
    autocast: contextlib.AbstractContextManager | None = None,
    check_finite: bool = True,
) -> StepResult:
    """Run one optimizer step over ``micro_batches`` (each (b, T+1) token ids) in ``mode``.

    Non-partitioned methods always run ``Mode.DEFAULT``. Raises :class:`NonFiniteError`
    before touching the weights if the loss or a gradient is not finite. ``model`` may be
    ``torch.compile(gpt)``: it runs the forward; masks and norms act on the GPT itself,
    whose parameter names are the partition's (the compiled wrapper prefixes them).
    """
    model, mode, total_loss, tokens = masked_gradients(
        model, optimizer, partition, method, micro_batches, mode, autocast, check_finite
    )
    limit_to_mode(optimizer, mode, method.mask_shared)
    norm = clip_and_update(model, optimizer, train.grad_clip, lr, check_finite)
    return StepResult(total_loss, norm, tokens)


def masked_gradients(
    model,
    optimizer,
    partition: Partition,
    method: MethodConfig,
    micro_batches: list[torch.Tensor],
    mode: Mode,
    autocast=None,
    check_finite: bool = True,
    weights: list[float] | None = None,
) -> tuple[GPT, Mode, float, int]:
    """The first half of a step: fresh gradients of ``micro_batches`` in ``mode``, averaged
    over ranks and masked by the strategy. Returns (the GPT, the mode actually used, mean
    loss, tokens). ``weights`` (default ``1 / len(micro_batches)`` each) weigh micro-batches
    of unequal size."""
    forward, model = model, getattr(model, "_orig_mod", model)
    strategy_name = get_method(method.name).strategy
    strategy: Strategy | None = get_strategy(strategy_name) if strategy_name else None
    if strategy is None:
        mode = Mode.DEFAULT
    plan = strategy.plan(mode, method.mask_shared) if strategy else StepPlan()
    optimizer.zero_grad(set_to_none=True)
    n_micro = len(micro_batches)
    total_loss = 0.0
    tokens = 0
    for i, batch in enumerate(micro_batches):
        inputs, targets = batch[:, :-1], batch[:, 1:]
        with autocast if autocast is not None else contextlib.nullcontext():
            loss = forward(inputs, targets, plan)
        if check_finite and not torch.isfinite(loss):
            raise NonFiniteError("loss")
        if weights is None:
            (loss / n_micro).backward()
            total_loss += float(loss.detach()) / n_micro
        else:
            (loss * weights[i]).backward()
            total_loss += float(loss.detach()) * weights[i]
        tokens += targets.numel()
    all_reduce_grads(model)
    if strategy is not None:
        strategy.after_backward(model, partition, mode, method.mask_shared)
    return model, mode, total_loss, tokens


def clip_and_update(
    model: nn.Module, optimizer: torch.optim.Optimizer, grad_clip: float, lr: float, check_finite: bool = True
) -> float:
    """The end of every optimizer step, training or unlearning: the global norm of the
    (masked) gradients, clipped to ``grad_clip`` (0: off), then the update at ``lr``.

    Returns the norm before clipping; raises :class:`NonFiniteError` before any weight
    changes if a gradient is not finite.
    """
    norm = clip_gradients(model, grad_clip, check_finite)
    set_lr(optimizer, lr)
    optimizer.step()
    return norm


def clip_gradients(model: nn.Module, grad_clip: float, check_finite: bool = True) -> float:
    """Clip the gradients' global norm to ``grad_clip`` (0: off); return the norm before."""
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    if check_finite and not torch.isfinite(norm):
        raise NonFiniteError(f"gradient of {first_nonfinite_grad(model)}")
    if grad_clip > 0:
        # takes the parameters (it scales their .grad), not the gradient tensors
        torch.nn.utils.clip_grads_with_norm_(params, grad_clip, norm)
    return float(norm)
