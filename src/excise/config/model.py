"""The model, its partition into forget and retain units, and the training method."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from excise.config.base import Section
from excise.methods.registry import METHODS, get_method


class ModelConfig(Section):
    """Shape of the decoder-only transformer (see ``excise.model.gpt``)."""

    vocab_size: int = Field(4096, ge=2)
    context: int = Field(256, ge=2, description="maximum sequence length (tokens)")
    n_layers: int = Field(4, ge=1)
    d_model: int = Field(128, ge=1)
    n_heads: int = Field(4, ge=1)
    head_dim: int | None = Field(None, ge=1, description="default: d_model // n_heads")
    d_ff: int | None = Field(None, ge=1, description="MLP hidden units; default 4 * d_model")
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    mlp: Literal["gelu", "swiglu"] = "gelu"
    positions: Literal["learned", "rope"] = "learned"
    rope_theta: float = Field(10000.0, gt=0)
    tie_embeddings: bool = True
    bias: bool = Field(True, description="biases on MLP projections and attention output")
    qkv_bias: bool = False
    attention_scale: float | None = Field(
        None, gt=0, description="softmax scale; default 1/sqrt(head_dim), GPT-Neo uses 1.0"
    )
    norm_eps: float = Field(1e-5, gt=0)
    init_std: float = Field(0.02, gt=0)
    output_bias: bool = Field(
        False,
        description="a trainable output-logit bias, zero-initialised and trained by "
        "every batch (the paper's models have one; stock transformers heads do not)",
    )
    attention_pattern: list[Literal["global", "local"]] = Field(
        default_factory=lambda: ["global"],
        description="attention type per layer, repeated over the layers (GPT-Neo's paper "
        "models: [global, local]); n_layers must be a multiple of its length",
    )
    local_window: int = Field(
        256, ge=1, description="tokens a local-attention position sees, itself included"
    )

    @model_validator(mode="after")
    def _check_shapes(self) -> ModelConfig:
        if not self.attention_pattern:
            raise ValueError("model.attention_pattern must name at least one attention type")
        if self.n_layers % len(self.attention_pattern) != 0:
            raise ValueError(
                f"model.n_layers ({self.n_layers}) must be a multiple of the length of "
                f"model.attention_pattern ({len(self.attention_pattern)})"
            )
        if self.head_dim is None and self.d_model % self.n_heads != 0:
            raise ValueError(
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads}) "
                "unless head_dim is given"
            )
        if self.positions == "rope" and self.resolved_head_dim % 2 != 0:
            raise ValueError("rotary positions need an even head_dim")
        return self

    @property
    def resolved_head_dim(self) -> int:
        return self.head_dim if self.head_dim is not None else self.d_model // self.n_heads

    @property
    def resolved_d_ff(self) -> int:
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    def attention_type(self, layer: int) -> str:
        """``"global"`` or ``"local"`` for ``layer`` (the pattern repeats over the layers)."""
        return self.attention_pattern[layer % len(self.attention_pattern)]

    @property
    def has_local_attention(self) -> bool:
        return "local" in self.attention_pattern


class PartitionConfig(Section):
    """Which units of each masked layer are forget units (always the last ones)."""

    forget_mlp_units: int = Field(64, ge=0)
    forget_heads: int = Field(1, ge=0)
    layers: list[int] | None = Field(None, description="masked layers; default all")


class MethodConfig(Section):
    """Training method and how SGTM-style masking is applied."""

    name: str = Field("sgtm", description="training method: " + ", ".join(METHODS))
    masking: Literal["grads", "updates"] = Field(
        "grads",
        description="grads: zero gradients, one AdamW (paper default); "
        "updates: per-group AdamW, masked parameters stay bit-identical",
    )
    mask_shared: bool = Field(
        False,
        description="on forget steps also mask the token and position embeddings (so a tied "
        "output head) and the norms of masked layers; never the final norm, the output bias "
        "or unmasked layers (the paper's --mask-embeddings)",
    )

    @field_validator("name")
    @classmethod
    def _known_method(cls, name: str) -> str:
        get_method(name)  # raises, naming the known methods
        return name

    @property
    def partitioned(self) -> bool:
        return get_method(self.name).partitioned
