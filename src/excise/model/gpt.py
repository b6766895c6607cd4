"""A decoder-only transformer whose masked layers carry removable forget units.

One readable file. It expresses GPT-Neo-style shapes (LayerNorm, GELU, learned positions,
tied embeddings, optional no-scaling attention, global / local attention layers, an output
bias) and Llama-style ones (RMSNorm, SwiGLU, rotary positions, untied head).

Layout that makes SGTM cheap: in every masked layer the forget units are the *last*
``forget_heads`` heads and the *last* ``forget_mlp_units`` MLP units. Q, K, V are separate
projections, so every forget slice is one contiguous range:
rows ``[r, n)`` of q/k/v/up/gate weights (and biases), columns ``[r, n)`` of o/down weights.
Each step's ``Mode`` and the strategy's ``Routing`` decide per masked layer how the two
halves are computed; unmasked layers always run plainly:

- ``Mode.RETAIN``: only the retain slices are multiplied (forget units cost nothing and
  their output is exactly that of the zero-ablated model).
- ``Mode.FORGET`` with ``Routing.FREEZE_RETAIN`` (SGTM): the retain weight slices and the
  output-projection biases are used detached, so autograd never computes their weight
  gradients (input gradients still flow).
- ``Routing.DETACH_ACTIVATIONS`` (gradient routing): retain units' activations are detached.
- ``Routing.ZERO_ACTIVATIONS`` (activation masking): retain units' activations are zeroed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from excise.config import ModelConfig
from excise.model.forget_linear import detached_if, forget_grad_linear, route_retain, split_linear
from excise.model.plan import PLAIN, Mode, Routing, StepPlan

__all__ = ["GPT", "LayerShape", "Mode", "Routing", "StepPlan", "PLAIN", "forget_grad_linear"]


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, freeze: bool = False) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), detached_if(self.weight, freeze), self.eps)


class LayerNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor, freeze: bool = False) -> torch.Tensor:
        return F.layer_norm(
            x, (x.shape[-1],), detached_if(self.weight, freeze), detached_if(self.bias, freeze), self.eps
        )


def make_norm(cfg: ModelConfig) -> nn.Module:
    return (
        RMSNorm(cfg.d_model, cfg.norm_eps) if cfg.norm == "rmsnorm" else LayerNorm(cfg.d_model, cfg.norm_eps)
    )


def rope_tables(head_dim: int, context: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (context, head_dim) in the rotate-half convention used by Llama."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    t = torch.arange(context, dtype=torch.float64)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().float(), emb.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (B, nh, T, hs); cos/sin: (T, hs)
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    """Multi-head causal self-attention; heads [n_heads - forget_heads, n_heads) are forget."""

    def __init__(self, cfg: ModelConfig, n_heads: int, forget_heads: int, masked: bool, local: bool) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.forget_heads = forget_heads
        self.masked = masked  # a layer of the partition (else every step trains it plainly)
        self.local = local  # sliding-window attention (GPT-Neo's "local" layers)
        self.head_dim = cfg.resolved_head_dim
        inner = n_heads * self.head_dim
        self.q_proj = nn.Linear(cfg.d_model, inner, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(cfg.d_model, inner, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(cfg.d_model, inner, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(inner, cfg.d_model, bias=cfg.bias)
        self.scale = cfg.attention_scale  # None: SDPA's default 1/sqrt(head_dim)

    @property
    def retain_heads(self) -> int:
        return self.n_heads - self.forget_heads

    def forward(
        self,
        x: torch.Tensor,
        plan: StepPlan,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        local_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, T, _ = x.shape
        hs = self.head_dim
        ablate = plan.ablate_forget and self.masked and self.forget_heads > 0
        routing = plan.route_retain if self.masked else Routing.NONE
        n_retain = self.retain_heads * hs
        # An SGTM forget step learns nothing in a masked sublayer without forget units.
        freeze_all = routing is Routing.FREEZE_RETAIN and self.forget_heads == 0
        if freeze_all:
            routing = Routing.NONE
        heads = self.retain_heads if ablate else self.n_heads
        qkv = []
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            w, b = detached_if(proj.weight, freeze_all), detached_if(proj.bias, freeze_all)
            y = split_linear(x, w, b, n_retain, ablate, routing)
            qkv.append(y.view(B, T, heads, hs).transpose(1, 2))  # (B, nh, T, hs)
        q, k, v = qkv
        if rope is not None:
            cos, sin = rope[0][:T], rope[1][:T]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.local and local_mask is not None and T > 1:
            mask = local_mask[:T, :T]  # (T, T), True where a position may attend
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        y = route_retain(y, self.retain_heads, routing, dim=1)  # heads are dim 1 of (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, heads * hs)  # (B, T, nh*hs)
        w_o = detached_if(self.o_proj.weight, freeze_all)
        if ablate:
            w_o = w_o[:, :n_retain]
        # The output bias of a masked layer is a retain parameter (the paper's App. F).
        b_o = detached_if(self.o_proj.bias, freeze_all or routing is Routing.FREEZE_RETAIN)
        if routing is Routing.FREEZE_RETAIN:
            return forget_grad_linear(y, w_o, b_o, 1, n_retain)
        return F.linear(y, w_o, b_o)


class MLP(nn.Module):
    """GELU or SwiGLU MLP; hidden units [d_ff - forget_units, d_ff) are forget units."""

    def __init__(self, cfg: ModelConfig, d_ff: int, forget_units: int, masked: bool) -> None:
        super().__init__()
        self.d_ff = d_ff
        self.forget_units = forget_units
        self.masked = masked
        self.gated = cfg.mlp == "swiglu"
        self.up_proj = nn.Linear(cfg.d_model, d_ff, bias=cfg.bias)
        self.gate_proj = nn.Linear(cfg.d_model, d_ff, bias=cfg.bias) if self.gated else None
        self.down_proj = nn.Linear(d_ff, cfg.d_model, bias=cfg.bias)

    @property
    def retain_units(self) -> int:
        return self.d_ff - self.forget_units

    def forward(self, x: torch.Tensor, plan: StepPlan) -> torch.Tensor:
        ablate = plan.ablate_forget and self.masked and self.forget_units > 0
        routing = plan.route_retain if self.masked else Routing.NONE
        freeze_all = routing is Routing.FREEZE_RETAIN and self.forget_units == 0
        if freeze_all:
            routing = Routing.NONE
        r = self.retain_units
        up = split_linear(
            x,
            detached_if(self.up_proj.weight, freeze_all),
            detached_if(self.up_proj.bias, freeze_all),
            r,
            ablate,
            routing,
        )
        if self.gated:
            gate = split_linear(
                x,
                detached_if(self.gate_proj.weight, freeze_all),
                detached_if(self.gate_proj.bias, freeze_all),
                r,
                ablate,
                routing,
            )
            h = F.silu(gate) * up
        else:
            h = F.gelu(up, approximate="tanh")
        h = route_retain(h, r, routing)
        w_d = detached_if(self.down_proj.weight, freeze_all)
        if ablate:
            w_d = w_d[:, :r]
        b_d = detached_if(self.down_proj.bias, freeze_all or routing is Routing.FREEZE_RETAIN)  # retain
        if routing is Routing.FREEZE_RETAIN:
            return forget_grad_linear(h, w_d, b_d, 1, r)
        return F.linear(h, w_d, b_d)


@dataclass(frozen=True)
class LayerShape:
    """Per-layer unit counts; a pruned model has fewer heads / MLP units in masked layers."""

    n_heads: int
    d_ff: int
    forget_heads: int = 0
    forget_mlp_units: int = 0
    masked: bool = False  # in the partition: its projections are retain / forget parameters


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, shape: LayerShape, local: bool) -> None:
        super().__init__()
        self.norm1 = make_norm(cfg)
        self.attn = Attention(cfg, shape.n_heads, shape.forget_heads, shape.masked, local)
        self.norm2 = make_norm(cfg)
        self.mlp = MLP(cfg, shape.d_ff, shape.forget_mlp_units, shape.masked)

    @property
    def masked(self) -> bool:
        return self.attn.masked

    def forward(self, x: torch.Tensor, plan: StepPlan, rope, local_mask=None) -> torch.Tensor:
        # the norms of a masked layer are shared parameters that mask_shared masks
        freeze_norms = plan.freeze_shared and self.masked
        x = x + self.attn(self.norm1(x, freeze_norms), plan, rope, local_mask)
        x = x + self.mlp(self.norm2(x, freeze_norms), plan)
        return x


class GPT(nn.Module):
    """Decoder-only transformer. ``layer_shapes`` fixes heads / MLP units per layer."""

    def __init__(self, cfg: ModelConfig, layer_shapes: list[LayerShape] | None = None) -> None:
        super().__init__()
        self.config = cfg
        if layer_shapes is None:
            layer_shapes = [LayerShape(cfg.n_heads, cfg.resolved_d_ff)] * cfg.n_layers
        if len(layer_shapes) != cfg.n_layers:
            raise ValueError(f"{len(layer_shapes)} layer shapes for {cfg.n_layers} layers")
        self.layer_shapes = list(layer_shapes)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_embed = nn.Embedding(cfg.context, cfg.d_model) if cfg.positions == "learned" else None
        self.blocks = nn.ModuleList(
            Block(cfg, s, cfg.attention_type(i) == "local") for i, s in enumerate(layer_shapes)
        )
        self.norm_f = make_norm(cfg)
        self.lm_head = None if cfg.tie_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        # The paper's models add a trainable logit bias that every batch trains.
        self.output_bias = nn.Parameter(torch.zeros(cfg.vocab_size)) if cfg.output_bias else None
        if cfg.has_local_attention and cfg.local_window < cfg.context:
            i = torch.arange(cfg.context)
            offset = i[:, None] - i[None, :]  # (T, T): query position - key position
            local = (offset >= 0) & (offset < cfg.local_window)
            self.register_buffer("local_mask", local, persistent=False)
        else:
            self.local_mask = None  # the window covers the context: local equals causal
        if cfg.positions == "rope":
            cos, sin = rope_tables(cfg.resolved_head_dim, cfg.context, cfg.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        else:
            self.rope_cos = self.rope_sin = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 style init: N(0, std), residual projections scaled by 1/sqrt(2 * layers)."""
        std = self.config.init_std
        residual_std = std / math.sqrt(2 * self.config.n_layers)
        for name, module in self.named_modules():
            if isinstance(module, (LayerNorm, RMSNorm)):
                nn.init.ones_(module.weight)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                is_residual = name.endswith(("o_proj", "down_proj"))
                nn.init.normal_(module.weight, 0.0, residual_std if is_residual else std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, 0.0, std)
        if self.output_bias is not None:
            nn.init.zeros_(self.output_bias)

    def set_forget_units(
        self, forget_heads: list[int], forget_mlp_units: list[int], masked: list[bool] | None = None
    ) -> None:
        """Declare which layers are masked and how many trailing heads / MLP units of each
        are forget units (``masked`` default: the layers that have forget units)."""
        if masked is None:
            masked = [fh > 0 or fu > 0 for fh, fu in zip(forget_heads, forget_mlp_units)]
        shapes = []
        for block, fh, fu, m, s in zip(
            self.blocks, forget_heads, forget_mlp_units, masked, self.layer_shapes
        ):
            block.attn.forget_heads, block.mlp.forget_units = fh, fu
            block.attn.masked = block.mlp.masked = bool(m)
            shapes.append(LayerShape(s.n_heads, s.d_ff, fh, fu, bool(m)))
        self.layer_shapes = shapes

    @property
    def output_weight(self) -> torch.Tensor:
        return self.embed.weight if self.lm_head is None else self.lm_head.weight

    def hidden_states(
        self, idx: torch.Tensor, plan: StepPlan = PLAIN, upto: int | None = None
    ) -> torch.Tensor:
        """Residual stream after block ``upto`` (all blocks + final norm when None)."""
        B, T = idx.shape
        if T > self.config.context:
            raise ValueError(f"sequence length {T} exceeds model context {self.config.context}")
        fs = plan.freeze_shared
        x = F.embedding(idx, detached_if(self.embed.weight, fs))  # (B, T, d)
        if self.pos_embed is not None:
            x = x + detached_if(self.pos_embed.weight, fs)[:T]
        rope = (self.rope_cos, self.rope_sin) if self.rope_cos is not None else None
        for i, block in enumerate(self.blocks):
            x = block(x, plan, rope, self.local_mask)
            if upto is not None and i == upto:
                return x
        return self.norm_f(x)  # the final norm is never masked

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        plan: StepPlan = PLAIN,
        output_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, T, vocab), or the mean next-token loss when ``targets`` is given.

        ``output_bias`` (vocab,) replaces the model's own output bias (none: no bias), as
        logit calibration does.
        """
        x = self.hidden_states(idx, plan)
        tied = self.lm_head is None  # mask_shared masks a tied head with the embeddings
        bias = self.output_bias if output_bias is None else output_bias
        logits = F.linear(x, detached_if(self.output_weight, plan.freeze_shared and tied), bias)
        if targets is None:
            return logits
        # Low-precision logits are upcast for the loss; float64 stays float64.
        logits = logits.flatten(0, 1)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        return F.cross_entropy(logits, targets.flatten(), ignore_index=-100)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            n -= self.embed.weight.numel()
            if self.pos_embed is not None:
                n -= self.pos_embed.weight.numel()
        return n
