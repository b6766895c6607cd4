"""Optimizers: one AdamW (``masking: grads``) or a partition-aware AdamW (``masking: updates``).

``PartitionedAdamW`` runs AdamW over three element groups — shared, retain, forget — of the
same parameter tensors. Forget slices are contiguous suffixes, so each group is a set of
views; each group keeps its own moments and step count. A step updates only the groups it
is told to, so on a forget step retain (and, under ``mask_shared``, shared) elements stay
bit-identical, weight decay and momentum included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from excise.model.partition import Partition, is_shared_name

GROUPS = ("shared", "retain", "forget")


def decays(name: str, p: torch.Tensor) -> bool:
    """Weight decay applies to matrices (projections, embeddings), not to biases or norms."""
    return p.dim() >= 2


def adamw_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if decays(name, p) else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_adamw(model: nn.Module, lr: float, betas, weight_decay: float, device: str) -> torch.optim.AdamW:
    # Fused AdamW exists on CPU too and is several times faster there than foreach
    # (benchmarks/README.md); the update rule is the same.
    kwargs = {"fused": True}
    return torch.optim.AdamW(adamw_param_groups(model, weight_decay), lr=lr, betas=betas, **kwargs)


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
    ) -> None:
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.segments: dict[str, list[_Segment]] = {g: [] for g in GROUPS}
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            dec = decays(name, p)
            if is_shared_name(name):
                self.segments["shared"].append(_Segment(f"{name}:shared", p, 0, 0, p.shape[0], dec))
                continue
            s = partition.slices.get(name)
            if s is None:
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
