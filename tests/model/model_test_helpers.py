"""Shared builders for the core invariant tests: tiny float64 models in every variant.

Every model here has 2 layers with only layer 0 masked (``PartitionConfig(layers=[0])``),
so each test sees a masked and an unmasked layer. Parameters are redrawn from a seeded
distribution wider than the init (non-zero biases, norms away from 1) so that a slice
that is wrongly left out or wrongly included changes the numbers.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from excise.config import ModelConfig, PartitionConfig
from excise.model.gpt import GPT, PLAIN, StepPlan
from excise.model.partition import Partition, build_model, mask_shared_names

BASE_SHAPE = dict(vocab_size=64, context=16, n_layers=2, d_model=16, n_heads=4, d_ff=32)

VARIANTS: dict[str, dict] = {
    # GPT-Neo-like: LayerNorm, GELU, learned positions, tied head, biases, no qkv bias.
    "neo": dict(norm="layernorm", mlp="gelu", positions="learned", tie_embeddings=True,
                bias=True, qkv_bias=False),
    # Same with q/k/v biases, GPT-Neo's unscaled attention, the paper's output-logit bias
    # and a local-attention masked layer (window 4 < the 12 tokens of a test batch).
    "neo_qkv_bias": dict(norm="layernorm", mlp="gelu", positions="learned",
                         tie_embeddings=True, bias=True, qkv_bias=True, attention_scale=1.0,
                         output_bias=True, attention_pattern=["local", "global"],
                         local_window=4),
    # Llama-like: RMSNorm, SwiGLU, rotary positions, untied head, no biases.
    "llama": dict(norm="rmsnorm", mlp="swiglu", positions="rope", tie_embeddings=False,
                  bias=False, qkv_bias=False),
    # Llama-like with every bias switched on.
    "llama_bias": dict(norm="rmsnorm", mlp="swiglu", positions="rope", tie_embeddings=False,
                       bias=True, qkv_bias=True),
}  # fmt: skip

PARTITION = PartitionConfig(forget_heads=1, forget_mlp_units=8, layers=[0])
MASKED_LAYER, UNMASKED_LAYER = 0, 1
INIT_SEED, PARAM_SEED, DATA_SEED = 0, 1, 2

# Float64 results that must be "equal" may differ only by summation order.
EXACT = dict(rtol=1e-10, atol=1e-12)


def model_config(variant: str, **overrides) -> ModelConfig:
    return ModelConfig(**{**BASE_SHAPE, **VARIANTS[variant], **overrides})


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int = PARAM_SEED) -> None:
    """Redraw every parameter (same order, same seed -> same values on equal shapes)."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        if "norm" in name and name.endswith("weight"):
            p.copy_(1.0 + 0.2 * noise)
        else:
            p.copy_(0.3 * noise)


def partitioned_model(variant: str, pcfg: PartitionConfig = PARTITION) -> tuple[GPT, Partition]:
    model, partition = build_model(model_config(variant), pcfg, seed=INIT_SEED)
    model.double()
    randomize_(model)
    return model, partition


def plain_model(variant: str) -> GPT:
    """The same network without a partition, built from the same seeds."""
    model, _ = build_model(model_config(variant), None, seed=INIT_SEED)
    model.double()
    randomize_(model)
    return model


def batch(cfg: ModelConfig, B: int = 2, T: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(DATA_SEED)
    idx = torch.randint(0, cfg.vocab_size, (B, T + 1), generator=gen)
    return idx[:, :-1], idx[:, 1:]


def loss_and_logits(
    model: GPT, idx: torch.Tensor, targets: torch.Tensor, plan: StepPlan = PLAIN
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 mean next-token loss (computed here so no dtype cast hides differences)."""
    logits = model(idx, plan=plan)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten()), logits


def backward(model: GPT, plan: StepPlan = PLAIN) -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
    """Logits and per-parameter gradients of one forward/backward (grads not masked)."""
    model.zero_grad(set_to_none=True)
    idx, targets = batch(model.config)
    loss, logits = loss_and_logits(model, idx, targets, plan)
    loss.backward()
    grads = {n: None if p.grad is None else p.grad.detach().clone() for n, p in model.named_parameters()}
    return logits.detach(), grads


def is_output_projection_bias(name: str) -> bool:
    return name.endswith(("o_proj.bias", "down_proj.bias"))


@torch.no_grad()
def zero_retain_in_masked_layers_(model: GPT, partition: Partition) -> None:
    """Zero the retain units of masked layers: the retain elements of their q/k/v/o and
    up/gate/down projections (output-projection biases are not units and stay)."""
    params = dict(model.named_parameters())
    for name in partition.slices:
        if is_output_projection_bias(name):
            continue
        p = params[name]
        p[partition.retain_mask(name, p)] = 0.0


def retain_zeroed_copy(model: GPT, partition: Partition) -> GPT:
    clone = copy.deepcopy(model)
    zero_retain_in_masked_layers_(clone, partition)
    return clone


KINDS = ("forget", "retain_in", "retain_out", "retain_bias", "unmasked", "masked_shared", "shared")


def element_kinds(
    partition: Partition, name: str, p: torch.Tensor, model: GPT | None = None
) -> dict[str, torch.Tensor]:
    """Boolean masks of one parameter's elements by the role they play in the tables.

    - ``forget``: forget elements;
    - ``retain_in``: retain rows (and bias entries) of q/k/v/up/gate in masked layers,
      i.e. the producers of retain units' activations;
    - ``retain_out``: retain columns of o_proj/down_proj in masked layers, the consumers;
    - ``retain_bias``: the output-projection biases of masked layers (retain parameters);
    - ``unmasked``: every parameter of an unmasked layer (shared: trained by every step);
    - ``masked_shared``: embeddings and masked layers' norms (what mask_shared masks);
    - ``shared``: final norm, untied output head, output bias.
    """
    none = torch.zeros(p.shape, dtype=torch.bool)
    kinds = {k: none.clone() for k in KINDS}
    layer = int(name.split(".")[1]) if name.startswith("blocks.") else None
    if name in partition.slices:
        kinds["forget"] = partition.forget_mask(name, p)
        retain = partition.retain_mask(name, p)
        if is_output_projection_bias(name):
            kinds["retain_bias"] = retain
        else:
            kinds["retain_in" if partition.slices[name].dim == 0 else "retain_out"] = retain
    elif layer is not None and layer not in partition.masked_layers:
        kinds["unmasked"][...] = True
    elif name in ("embed.weight", "pos_embed.weight") or layer is not None:
        kinds["masked_shared"][...] = True
    else:
        kinds["shared"][...] = True
    if model is not None:  # the helper's classification must be the library's
        assert (name in mask_shared_names(model, partition)) == bool(kinds["masked_shared"].any()), name
    return kinds


def site_of(name: str) -> str:
    """Which part of the network a parameter belongs to (the test tables' columns)."""
    for layer, tag in ((MASKED_LAYER, "masked"), (UNMASKED_LAYER, "unmasked")):
        for part in ("attn", "mlp"):
            if (
                name.startswith(f"blocks.{layer}.{part}.")
                or (part == "attn" and name.startswith(f"blocks.{layer}.norm1."))
                or (part == "mlp" and name.startswith(f"blocks.{layer}.norm2."))
            ):
                return f"{part}@{tag}"
    return "global"


SITES = ("attn@masked", "mlp@masked", "attn@unmasked", "mlp@unmasked", "global")
