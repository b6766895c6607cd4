"""The forget/retain partition as data, and every generic operation over it.

A :class:`Partition` maps the name of every projection parameter of a *masked* layer to its
forget slices: half-open index ranges along one dimension (none for a parameter that is
all retain). Every element of every parameter is exactly one of

- *forget*: inside a forget range;
- *retain*: any other element of a parameter the partition names — the q/k/v/o and
  up/gate/down weights of masked layers, their q/k/v/up/gate biases, and their
  output-projection biases (``o_proj.bias``, ``down_proj.bias``: a forget step never
  updates them, as in the paper's code);
- *shared*: every parameter the partition does not name: embeddings, norms, the output
  head and output bias, and every parameter of an unmasked layer (trained by every step).
  ``mask_shared`` additionally masks, on forget steps, the embeddings (so a tied head) and
  the norms of masked layers (:func:`mask_shared_names`).

It is computed once from config, saved as ``partition.json``
(``{name: {"dim": d, "forget": [[start, stop], ...]}}``; an empty list marks an all-retain
parameter of a masked layer), and drives gradient masking, ablation, pruning and optimizer
parameter groups — written once, for every strategy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from excise.config import ModelConfig, PartitionConfig
from excise.model.gpt import GPT

_LAYER = re.compile(r"^blocks\.(\d+)\.")


def layer_of(name: str) -> int | None:
    """The block index of a parameter name (None for embeddings, final norm, head)."""
    m = _LAYER.match(name)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class ForgetSlices:
    dim: int
    ranges: tuple[tuple[int, int], ...]

    def to_json(self) -> dict:
        return {"dim": self.dim, "forget": [list(r) for r in self.ranges]}

    @property
    def width(self) -> int:
        return sum(b - a for a, b in self.ranges)


@dataclass(frozen=True)
class Partition:
    """Forget slices of every retain / forget parameter (names absent here are shared)."""

    slices: dict[str, ForgetSlices] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.slices

    @property
    def masked_layers(self) -> list[int]:
        return sorted({i for name in self.slices if (i := layer_of(name)) is not None})

    def is_shared(self, name: str) -> bool:
        return name not in self.slices

    def forget_mask(self, name: str, param: torch.Tensor) -> torch.Tensor:
        """Boolean tensor shaped like ``param``: True on forget elements."""
        mask = torch.zeros(param.shape, dtype=torch.bool, device=param.device)
        s = self.slices.get(name)
        if s is not None:
            for start, stop in s.ranges:
                mask.narrow(s.dim, start, stop - start).fill_(True)
        return mask

    def retain_mask(self, name: str, param: torch.Tensor) -> torch.Tensor:
        """True on retain elements (never on shared ones)."""
        if self.is_shared(name):
            return torch.zeros(param.shape, dtype=torch.bool, device=param.device)
        return ~self.forget_mask(name, param)

    def to_json(self) -> dict:
        return {name: s.to_json() for name, s in sorted(self.slices.items())}

    def save(self, path: str | Path) -> None:
        from excise.checkpoint import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def from_json(cls, data: dict) -> Partition:
        slices = {}
        for name, entry in data.items():
            ranges = tuple((int(a), int(b)) for a, b in entry["forget"])
            slices[name] = ForgetSlices(int(entry["dim"]), ranges)
        return cls(slices)

    @classmethod
    def load(cls, path: str | Path) -> Partition:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def mask_shared_names(model: nn.Module, partition: Partition) -> frozenset[str]:
    """Shared parameters that ``mask_shared`` masks on forget steps: token and position
    embeddings (a tied head is the token embedding) and the norms of masked layers. Never
    the final norm, the output bias, an untied head or an unmasked layer."""
    layers = set(partition.masked_layers)
    names = set()
    for name, _ in model.named_parameters():
        if name in ("embed.weight", "pos_embed.weight"):
            names.add(name)
        elif layer_of(name) in layers and ".norm" in name and partition.is_shared(name):
            names.add(name)
    return frozenset(names)


def build_partition(model: GPT) -> Partition:
    """The partition a model's declared masked layers and forget units imply (forget units
    are the last ones of each layer)."""
    slices: dict[str, ForgetSlices] = {}
    for i, block in enumerate(model.blocks):
        if not block.masked:
            continue
        attn, mlp = block.attn, block.mlp
        hs = attn.head_dim
        heads = ((attn.retain_heads * hs, attn.n_heads * hs),) if attn.forget_heads else ()
        for proj in ("q_proj", "k_proj", "v_proj"):
            slices[f"blocks.{i}.attn.{proj}.weight"] = ForgetSlices(0, heads)
            if getattr(attn, proj).bias is not None:
                slices[f"blocks.{i}.attn.{proj}.bias"] = ForgetSlices(0, heads)
        slices[f"blocks.{i}.attn.o_proj.weight"] = ForgetSlices(1, heads)
        if attn.o_proj.bias is not None:
            slices[f"blocks.{i}.attn.o_proj.bias"] = ForgetSlices(0, ())
        units = ((mlp.retain_units, mlp.d_ff),) if mlp.forget_units else ()
        for proj in ("up_proj", "gate_proj"):
            lin = getattr(mlp, proj)
            if lin is None:
                continue
            slices[f"blocks.{i}.mlp.{proj}.weight"] = ForgetSlices(0, units)
            if lin.bias is not None:
                slices[f"blocks.{i}.mlp.{proj}.bias"] = ForgetSlices(0, units)
        slices[f"blocks.{i}.mlp.down_proj.weight"] = ForgetSlices(1, units)
        if mlp.down_proj.bias is not None:
            slices[f"blocks.{i}.mlp.down_proj.bias"] = ForgetSlices(0, ())
    return Partition(slices)


def masked_layers(cfg: ModelConfig, pcfg: PartitionConfig) -> list[int]:
    return list(range(cfg.n_layers)) if pcfg.layers is None else sorted(set(pcfg.layers))


def build_model(
    cfg: ModelConfig, pcfg: PartitionConfig | None = None, seed: int | None = None
) -> tuple[GPT, Partition]:
    """A freshly initialised model with forget units declared from ``pcfg`` (None: none)."""
    if seed is not None:
        torch.manual_seed(seed)
    model = GPT(cfg)
    if pcfg is not None:
        layers = set(masked_layers(cfg, pcfg))
        model.set_forget_units(
            [pcfg.forget_heads if i in layers else 0 for i in range(cfg.n_layers)],
            [pcfg.forget_mlp_units if i in layers else 0 for i in range(cfg.n_layers)],
            [i in layers for i in range(cfg.n_layers)],
        )
    return model, build_partition(model)


def apply_partition(model: GPT, partition: Partition) -> Partition:
    """Declare on ``model`` the masked layers and forget units a loaded ``partition``
    describes; returns the model's full partition.

    A ``partition.json`` written before output-projection biases and all-retain parameters
    were listed names only the parameters with forget slices; its masked layers are the
    layers it names, and the returned partition lists the rest of them.
    """
    if partition.empty:
        return partition

    def width(name: str) -> int:
        sl = partition.slices.get(name)
        return sl.width if sl else 0

    layers = set(partition.masked_layers)
    heads, units = [], []
    for i, block in enumerate(model.blocks):
        heads.append(width(f"blocks.{i}.attn.q_proj.weight") // block.attn.head_dim)
        units.append(width(f"blocks.{i}.mlp.up_proj.weight"))
    model.set_forget_units(heads, units, [i in layers for i in range(len(model.blocks))])
    full = build_partition(model)
    stated = {k: v for k, v in partition.slices.items() if v.ranges}
    implied = {k: v for k, v in full.slices.items() if v.ranges}
    unknown = set(partition.slices) - set(full.slices)
    if stated != implied or unknown:
        raise ValueError(
            "partition does not fit the model: forget slices must be the last heads / MLP "
            "units of each layer of this shape"
        )
    return full


# ---------------------------------------------------------------------------------------
# masking


@torch.no_grad()
def mask_gradients(
    model: nn.Module, partition: Partition, keep: str = "forget", mask_shared: bool = False
) -> None:
    """Zero gradients so that only ``keep`` elements (``forget`` or ``retain``) may learn.

    ``keep="forget"`` (a forget step): retain elements get zero gradient, and so do the
    shared parameters of :func:`mask_shared_names` when ``mask_shared``. ``keep="retain"``: forget elements get zero gradient. Parameters
    without a gradient get an explicit zero one, so that a single AdamW still applies
    momentum and weight decay to them exactly as the paper's code does.
    """
    masked_shared = mask_shared_names(model, partition) if mask_shared and keep == "forget" else ()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
            continue
        s = partition.slices.get(name)
        if keep == "forget":
            if s is not None:
                _zero_outside(p.grad, s)
            elif name in masked_shared:
                p.grad.zero_()
        elif s is not None:
            for start, stop in s.ranges:
                p.grad.narrow(s.dim, start, stop - start).zero_()


def _zero_outside(t: torch.Tensor, s: ForgetSlices) -> None:
    pos = 0
    for start, stop in sorted(s.ranges):
        if start > pos:
            t.narrow(s.dim, pos, start - pos).zero_()
        pos = stop
    if pos < t.shape[s.dim]:
        t.narrow(s.dim, pos, t.shape[s.dim] - pos).zero_()
