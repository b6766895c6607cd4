"""Which stock transformers architecture expresses an excise model, and the weight mapping.

Two families cover the two shapes excise trains:

- ``gpt_neo`` (``GPTNeoForCausalLM``): LayerNorm + GELU (tanh) + learned positions,
  q/k/v without bias, biases on the attention output and MLP, global and local (sliding
  window) attention layers. GPT-Neo does not scale attention scores by 1/sqrt(head_dim), so
  an excise model with the default scale is exported with that factor folded into the q
  projection.
- ``llama`` (``LlamaForCausalLM``): RMSNorm + SwiGLU + rotary (rotate-half) positions; any
  ``head_dim``. Missing biases are written as zeros where Llama's flags demand a bias.

Everything here is pure tensor bookkeeping: no transformers import, so the mapping is usable
(and testable) without the ``hf`` extra.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from excise.config import ModelConfig
from excise.errors import UserError

GPT_NEO = "gpt_neo"
LLAMA = "llama"
FAMILIES = (GPT_NEO, LLAMA)
ARCHITECTURES = {GPT_NEO: "GPTNeoForCausalLM", LLAMA: "LlamaForCausalLM"}


def hf_family(cfg: ModelConfig) -> str:
    """The stock family that expresses ``cfg`` exactly; ``UserError`` naming why if none does.

    Neither family has an output-logit bias: a model trained with ``model.output_bias`` is
    checked separately (:func:`excise.export.hf.check_output_bias`).
    """
    shape = (cfg.norm, cfg.mlp, cfg.positions)
    if shape == ("layernorm", "gelu", "learned"):
        if cfg.qkv_bias:
            raise UserError(
                "model.qkv_bias: true cannot be exported: the matching stock family "
                "(GPT-Neo: layernorm + gelu + learned positions) has no bias on its q/k/v "
                "projections. Train with model.qkv_bias=false to export to transformers."
            )
        if cfg.resolved_head_dim * cfg.n_heads != cfg.d_model:
            raise UserError(
                f"model.head_dim ({cfg.resolved_head_dim}) x model.n_heads ({cfg.n_heads}) must "
                f"equal model.d_model ({cfg.d_model}) for GPT-Neo, which derives head_dim = "
                "hidden_size / num_heads."
            )
        return GPT_NEO
    if shape == ("rmsnorm", "swiglu", "rope"):
        if cfg.has_local_attention:
            raise UserError(
                "model.attention_pattern with local layers cannot be exported as Llama, whose "
                "attention is global in every layer; local attention exports with the GPT-Neo "
                "shape (norm=layernorm, mlp=gelu, positions=learned)"
            )
        return LLAMA
    raise UserError(
        f"no stock transformers family expresses model.norm={cfg.norm}, model.mlp={cfg.mlp}, "
        f"model.positions={cfg.positions}. Exportable shapes: GPT-Neo (norm=layernorm, "
        "mlp=gelu, positions=learned) and Llama (norm=rmsnorm, mlp=swiglu, positions=rope)."
    )


def target_attention_scale(family: str, head_dim: int) -> float:
    """The softmax scale the stock family applies (GPT-Neo: none)."""
    return 1.0 if family == GPT_NEO else 1.0 / math.sqrt(head_dim)


def q_fold_factor(cfg: ModelConfig, family: str) -> float | None:
    """Factor to multiply q_proj by so the family's fixed scale gives excise's; None if 1."""
    hd = cfg.resolved_head_dim
    if cfg.attention_scale is None and family == LLAMA:
        return None
    if cfg.attention_scale == 1.0 and family == GPT_NEO:
        return None
    ours = cfg.attention_scale if cfg.attention_scale is not None else 1.0 / math.sqrt(hd)
    return ours / target_attention_scale(family, hd)


def layer_name_map(family: str, i: int) -> dict[str, str]:
    """excise parameter name → transformers name, for block ``i`` (every possible tensor)."""
    e = f"blocks.{i}."
    if family == GPT_NEO:
        h = f"transformer.h.{i}."
        pairs = {
            "norm1.weight": "ln_1.weight", "norm1.bias": "ln_1.bias",
            "attn.q_proj.weight": "attn.attention.q_proj.weight",
            "attn.k_proj.weight": "attn.attention.k_proj.weight",
            "attn.v_proj.weight": "attn.attention.v_proj.weight",
            "attn.o_proj.weight": "attn.attention.out_proj.weight",
            "attn.o_proj.bias": "attn.attention.out_proj.bias",
            "norm2.weight": "ln_2.weight", "norm2.bias": "ln_2.bias",
            "mlp.up_proj.weight": "mlp.c_fc.weight", "mlp.up_proj.bias": "mlp.c_fc.bias",
            "mlp.down_proj.weight": "mlp.c_proj.weight", "mlp.down_proj.bias": "mlp.c_proj.bias",
        }  # fmt: skip
    else:
        h = f"model.layers.{i}."
        pairs = {"norm1.weight": "input_layernorm.weight", "norm2.weight": "post_attention_layernorm.weight"}
        for p in "qkvo":
            for kind in ("weight", "bias"):
                pairs[f"attn.{p}_proj.{kind}"] = f"self_attn.{p}_proj.{kind}"
        for p in ("up", "gate", "down"):
            for kind in ("weight", "bias"):
                pairs[f"mlp.{p}_proj.{kind}"] = f"mlp.{p}_proj.{kind}"
    return {e + k: h + v for k, v in pairs.items()}


def name_map(family: str, n_layers: int) -> dict[str, str]:
    """Full excise → transformers parameter-name map."""
    if family == GPT_NEO:
        names = {
            "embed.weight": "transformer.wte.weight",
            "pos_embed.weight": "transformer.wpe.weight",
            "norm_f.weight": "transformer.ln_f.weight",
            "norm_f.bias": "transformer.ln_f.bias",
        }
    else:
        names = {"embed.weight": "model.embed_tokens.weight", "norm_f.weight": "model.norm.weight"}
    names["lm_head.weight"] = "lm_head.weight"
    for i in range(n_layers):
        names.update(layer_name_map(family, i))
    return names


@dataclass(frozen=True)
class BiasLayout:
    """Which biases the transformers model holds (excise biases absent there become zeros)."""

    qkv: bool
    out: bool
    mlp: bool


def bias_layout(cfg: ModelConfig, family: str) -> BiasLayout:
    if family == GPT_NEO:
        return BiasLayout(qkv=False, out=True, mlp=True)
    attention_bias = cfg.qkv_bias or cfg.bias  # Llama: one flag for q, k, v and o
    return BiasLayout(qkv=attention_bias, out=attention_bias, mlp=cfg.bias)


def expected_hf_names(family: str, n_layers: int, gated: bool, tied: bool, biases: BiasLayout) -> list[str]:
    """Every tensor name the transformers checkpoint must hold."""
    out = []
    for ename, hname in name_map(family, n_layers).items():
        suffix = ename.split(".", 2)[-1] if ename.startswith("blocks.") else ename
        if ename == "lm_head.weight" and tied:
            continue
        if ename == "pos_embed.weight" and family != GPT_NEO:
            continue
        if "gate_proj" in suffix and not gated:
            continue
        if suffix.endswith("bias"):
            if suffix.startswith("attn.o_proj"):
                if not biases.out:
                    continue
            elif suffix.startswith("attn."):
                if not biases.qkv:
                    continue
            elif suffix.startswith("mlp."):
                if not biases.mlp:
                    continue
        out.append(hname)
    return out


def to_hf_tensors(
    state: dict[str, torch.Tensor], cfg: ModelConfig, family: str, n_layers: int, gated: bool
) -> dict[str, torch.Tensor]:
    """Rename an excise state dict to transformers names, zero-filling biases it lacks and
    folding the attention scale into q (and its bias)."""
    names = name_map(family, n_layers)
    biases = bias_layout(cfg, family)
    fold = q_fold_factor(cfg, family)
    reverse = {h: e for e, h in names.items()}
    out: dict[str, torch.Tensor] = {}
    for hname in expected_hf_names(family, n_layers, gated, cfg.tie_embeddings, biases):
        ename = reverse[hname]
        if ename in state:
            t = state[ename]
            if fold is not None and ".attn.q_proj." in ename:
                t = t * fold
        else:
            if not ename.endswith(".bias"):
                raise KeyError(f"excise state dict lacks {ename}")
            weight = state[ename[: -len("bias")] + "weight"]
            t = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
        out[hname] = t.detach().contiguous()
    return out
