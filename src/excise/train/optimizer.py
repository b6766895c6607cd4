"""Optimizers: one AdamW (``masking: grads``) or a partition-aware AdamW (``masking: updates``).

``PartitionedAdamW`` runs AdamW over four element groups of the same parameter tensors:
``shared`` (never masked: final norm, output bias, untied head, unmasked layers),
``masked_shared`` (the shared parameters ``mask_shared`` masks: embeddings and the norms of
masked layers), ``retain`` and ``forget``. Forget slices are contiguous suffixes, so each
group is a set of views; each group keeps its own moments and step count. A step updates
only the groups it is told to, so on a forget step retain (and, under ``mask_shared``,
masked-shared) elements stay bit-identical, weight decay and momentum included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from excise.model.partition import Partition, mask_shared_names

GROUPS = ("shared", "masked_shared", "retain", "forget")


def decays(p: torch.Tensor, decay_on: str = "matrices") -> bool:
    """Whether weight decay applies: to matrices (projections, embeddings) only, or to every
    tensor (``decay_on="all"``, the paper's code: biases and norms too)."""
    return decay_on == "all" or p.dim() >= 2


def adamw_param_groups(model: nn.Module, weight_decay: float, decay_on: str = "matrices") -> list[dict]:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if decays(p, decay_on) else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def make_adamw(
    model: nn.Module, lr: float, betas, weight_decay: float, device: str, decay_on: str = "matrices"
) -> torch.optim.AdamW:
    # Fused AdamW exists on CPU too and is several times faster there than foreach
    # (benchmarks/README.md); the update rule is the same.
    kwargs = {"fused": True}
    return torch.optim.AdamW(adamw_param_groups(model, weight_decay, decay_on), lr=lr, betas=betas, **kwargs)


@dataclass
class _Segment:
    key: str  # "<param name>:<group>"
    param: nn.Parameter
    dim: int
    start: int
    length: int
    decay: bool

    def view(self, t: torch.Tensor) -> torch.Tensor:
        return t.narrow(self.dim, self.start, self.length)


class PartitionedAdamW(torch.optim.Optimizer):
    """AdamW whose shared / masked-shared / retain / forget element groups can be stepped
    independently, behind the torch optimizer interface.

    ``zero_grad``, ``param_groups[...]["lr"]``, ``state_dict`` and ``step()`` work as for any
    torch optimizer; :func:`limit_to_mode` (or ``step(groups=...)``) chooses which element
    groups the next step updates — the others stay bit-identical, moments included.
    """

    def __init__(
        self,
        model: nn.Module,
        partition: Partition,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decay_on: str = "matrices",
    ) -> None:
        params = [p for p in model.parameters() if p.requires_grad]
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})
        self.segments: dict[str, list[_Segment]] = {g: [] for g in GROUPS}
        masked_shared = mask_shared_names(model, partition)
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            dec = decays(p, decay_on)
            s = partition.slices.get(name)
            if s is None:
                group = "masked_shared" if name in masked_shared else "shared"
                self.segments[group].append(_Segment(f"{name}:{group}", p, 0, 0, p.shape[0], dec))
                continue
            if not s.ranges:
                self.segments["retain"].append(_Segment(f"{name}:retain", p, 0, 0, p.shape[0], dec))
                continue
            ((start, stop),) = s.ranges  # one suffix range by construction
            if start > 0:
                self.segments["retain"].append(_Segment(f"{name}:retain", p, s.dim, 0, start, dec))
            self.segments["forget"].append(_Segment(f"{name}:forget", p, s.dim, start, stop - start, dec))
        self.moments: dict[str, dict[str, torch.Tensor]] = {}
        self.steps = {g: 0 for g in GROUPS}
        self.active_groups: tuple[str, ...] = GROUPS
        for group in self.segments.values():
            for seg in group:
                z = torch.zeros_like(seg.view(seg.param.data))
                self.moments[seg.key] = {"exp_avg": z, "exp_avg_sq": z.clone()}

    @property
    def lr(self) -> float:
        return self.param_groups[0]["lr"]

    @torch.no_grad()
    def step(self, closure=None, groups: tuple[str, ...] | None = None):
        """One AdamW update of ``groups`` (default: :attr:`active_groups`); the others are
        left untouched."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        hp = self.param_groups[0]
        lr, (beta1, beta2), eps, weight_decay = hp["lr"], hp["betas"], hp["eps"], hp["weight_decay"]
        for g in groups if groups is not None else self.active_groups:
            segs = [s for s in self.segments[g] if s.param.grad is not None]
            if not segs:
                continue
            self.steps[g] += 1
            t = self.steps[g]
            params = [s.view(s.param.data) for s in segs]
            grads = [s.view(s.param.grad) for s in segs]
            m = [self.moments[s.key]["exp_avg"] for s in segs]
            v = [self.moments[s.key]["exp_avg_sq"] for s in segs]
            decayed = [p for p, s in zip(params, segs) if s.decay]
            if decayed and weight_decay:
                torch._foreach_mul_(decayed, 1.0 - lr * weight_decay)
            torch._foreach_lerp_(m, grads, 1.0 - beta1)
            torch._foreach_mul_(v, beta2)
            torch._foreach_addcmul_(v, grads, grads, 1.0 - beta2)
            bias1 = 1.0 - beta1**t
            bias2 = 1.0 - beta2**t
            denom = torch._foreach_sqrt(v)
            torch._foreach_div_(denom, math.sqrt(bias2))
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(params, m, denom, -lr / bias1)
        return loss

    def state_dict(self) -> dict:
        tensors = {f"{k}:{n}": t for k, st in self.moments.items() for n, t in st.items()}
        return {"tensors": tensors, "steps": dict(self.steps), "lr": self.lr}

    def load_state_dict(self, state: dict) -> None:
        for k, st in self.moments.items():
            for n in st:
                st[n].copy_(state["tensors"][f"{k}:{n}"])
        self.steps = {g: int(state["steps"][g]) for g in GROUPS}
        for hp in self.param_groups:
            hp["lr"] = float(state["lr"])


def update_groups(mode, mask_shared: bool) -> tuple[str, ...]:
    """Element groups a ``masking: updates`` step of ``mode`` (a ``Mode``) may change."""
    name = getattr(mode, "value", mode)
    if name == "forget":
        return ("forget", "shared") if mask_shared else ("forget", "shared", "masked_shared")
    if name == "retain":
        return ("retain", "shared", "masked_shared")
    return GROUPS


def limit_to_mode(optimizer: torch.optim.Optimizer, mode, mask_shared: bool) -> None:
    """Before ``optimizer.step()``: a :class:`PartitionedAdamW` updates only what ``mode``
    may change; any other optimizer updates everything (its masked gradients are zero)."""
    if isinstance(optimizer, PartitionedAdamW):
        optimizer.active_groups = update_groups(mode, mask_shared)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
