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
    return torch.optim.AdamW(
        adamw_param_groups(model, weight_decay, decay_on), lr=lr, betas=betas, **kwargs
    )


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


class PartitionedAdamW:
    """AdamW whose shared / retain / forget element groups can be stepped independently."""

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
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
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
            (start, stop), = s.ranges  # one suffix range by construction
            if start > 0:
                self.segments["retain"].append(_Segment(f"{name}:retain", p, s.dim, 0, start, dec))
            self.segments["forget"].append(
                _Segment(f"{name}:forget", p, s.dim, start, stop - start, dec)
            )
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        self.steps = {g: 0 for g in GROUPS}
        for group in self.segments.values():
            for seg in group:
                z = torch.zeros_like(seg.view(seg.param.data))
                self.state[seg.key] = {"exp_avg": z, "exp_avg_sq": z.clone()}

    def zero_grad(self) -> None:
        for group in self.segments.values():
            for seg in group:
                seg.param.grad = None

    @torch.no_grad()
    def step(self, groups: tuple[str, ...] = GROUPS) -> None:
        """One AdamW update of the named element groups; the others are left untouched."""
        beta1, beta2 = self.betas
        for g in groups:
            segs = [s for s in self.segments[g] if s.param.grad is not None]
            if not segs:
                continue
            self.steps[g] += 1
            t = self.steps[g]
            params = [s.view(s.param.data) for s in segs]
            grads = [s.view(s.param.grad) for s in segs]
            m = [self.state[s.key]["exp_avg"] for s in segs]
            v = [self.state[s.key]["exp_avg_sq"] for s in segs]
            decayed = [p for p, s in zip(params, segs) if s.decay]
            if decayed and self.weight_decay:
                torch._foreach_mul_(decayed, 1.0 - self.lr * self.weight_decay)
            torch._foreach_lerp_(m, grads, 1.0 - beta1)
            torch._foreach_mul_(v, beta2)
            torch._foreach_addcmul_(v, grads, grads, 1.0 - beta2)
            bias1 = 1.0 - beta1**t
            bias2 = 1.0 - beta2**t
            denom = torch._foreach_sqrt(v)
            torch._foreach_div_(denom, math.sqrt(bias2))
            torch._foreach_add_(denom, self.eps)
            torch._foreach_addcdiv_(params, m, denom, -self.lr / bias1)

    def state_dict(self) -> dict:
        tensors = {f"{k}:{n}": t for k, st in self.state.items() for n, t in st.items()}
        return {"tensors": tensors, "steps": dict(self.steps), "lr": self.lr}

    def load_state_dict(self, state: dict) -> None:
        for k, st in self.state.items():
            for n in st:
                st[n].copy_(state["tensors"][f"{k}:{n}"])
        self.steps = {g: int(state["steps"][g]) for g in GROUPS}
        self.lr = float(state["lr"])
