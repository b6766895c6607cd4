"""Optimisation and what runs around it: training, evaluation, unlearning, the
relearning attack, checkpoints and logging."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from excise.config.base import Section


class TrainConfig(Section):
    """Optimisation: AdamW, warm-up then cosine decay, gradient clipping.

    The paper's code: one AdamW (0.9, 0.95) decaying every tensor by 0.1, no clipping,
    warm-up linear from 0.1 x lr, cosine to 0 (``warmup_start: 0.1``, ``min_lr_ratio: 0``,
    ``weight_decay_on: all``, ``grad_clip: 0``); the paper-size recipes
    (``configs/bilingual-*.yaml``, ``configs/topic-*.yaml``) set that.
    """

    steps: int = Field(1000, ge=0, description="optimizer steps")
    batch_size: int = Field(16, ge=1, description="sequences per optimizer step (global)")
    micro_batch_size: int | None = Field(None, ge=1, description="per process; default batch")
    batches: Literal["pure", "mixed"] = Field(
        "pure",
        description="pure: each step from one label pool; mixed: sequences of any "
        "label in one step, each masked by its own label (excise.train.mixed)",
    )
    lr: float = Field(1e-3, gt=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="learning rate at the end, x lr")
    warmup_steps: int = Field(50, ge=0)
    warmup_start: float | None = Field(
        None,
        ge=0,
        le=1,
        description="warm-up starts at this x lr and reaches lr at step warmup_steps "
        "(torch LinearLR; the paper: 0.1); default: lr / warmup_steps at step 0, lr at step "
        "warmup_steps - 1",
    )
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: float = Field(0.1, ge=0)
    weight_decay_on: Literal["matrices", "all"] = Field(
        "matrices",
        description="matrices: projections and embeddings only; all: every "
        "tensor, biases and norms too (the paper's code)",
    )
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    grad_clip: float = Field(
        1.0, ge=0, description="clip the global gradient norm (after masking) to this; 0 = off"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="auto: bf16 autocast on CUDA, fp32 on CPU"
    )
    compile: bool = False
    threads: int | None = Field(None, ge=1, description="CPU threads; default all cores")
    on_nonfinite: Literal["skip", "stop"] = "stop"
    init_from: str | None = Field(
        None,
        description="run directory whose weights (and partition, if any) start training, "
        "e.g. a transformers checkpoint imported with excise.export.import_hf_run",
    )
    preempt_signals: list[str] = Field(
        ["SIGTERM", "SIGUSR1"],
        description="signals that stop training after the current "
        "step with a checkpoint, exit code 75 (excise.train.preemption); [] = default actions",
    )
    dist_timeout_s: float = Field(
        1800.0,
        gt=0,
        description="seconds a collective between processes may wait for the "
        "others before failing; must exceed rank 0's solo work (first data preparation)",
    )

    @field_validator("preempt_signals")
    @classmethod
    def _catchable_signals(cls, names: list[str]) -> list[str]:
        from excise.train.preemption import signal_name, signal_number

        return [signal_name(signal_number(n)) for n in names]


class EvalConfig(Section):
    """Held-out loss during and after training; logit calibration."""

    every: int = Field(0, ge=0, description="steps between evals; 0 = only at the end")
    max_tokens: int = Field(65536, ge=1, description="test tokens per domain")
    batch_size: int = Field(16, ge=1)
    calibration_steps: int = Field(200, ge=0)
    calibration_lr: float = Field(1e-2, gt=0)
    calibration_alpha: float = Field(100.0, ge=0, description="weight of retain loss")
    calibration_beta: float = Field(1.0, ge=0, description="weight of adjacent loss")
    calibration_batch_size: int = Field(16, ge=1)


class UnlearnConfig(Section):
    """Post-hoc unlearning of a trained run (``excise unlearn``; see excise.methods.unlearn).

    Defaults are for CPU-size models (2-8 layers): ``layer`` None = n_layers // 2,
    ``update_layers`` None = the up-to-3 layers ending at ``layer``, ``steering_coef`` None =
    4x the mean hidden-state norm at ``layer`` on forget data (the paper's 20 on a 254M model
    is likewise several times its typical activation norm).
    """

    method: Literal["rmu", "gradient_ascent", "gradient_difference", "npo"] = "rmu"
    layer: int | None = Field(None, ge=0)
    steering_coef: float | None = Field(None, gt=0)
    alpha: float = Field(100.0, ge=0, description="weight of the retain term")
    lr: float = Field(1e-3, gt=0)
    grad_clip: float = Field(1.0, ge=0, description="clip the gradients' global norm; 0 = off")
    steps: int = Field(100, ge=0)
    batch_size: int = Field(8, ge=1)
    update_layers: list[int] | None = None
    npo_beta: float = Field(0.1, gt=0)
    seed: int = 0


class RelearnConfig(Section):
    """Relearning attack: fine-tune the released model on a forget/other mix."""

    steps: int = Field(200, ge=0)
    lr: float = Field(5e-4, gt=0)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    batch_size: int = Field(8, ge=1)
    eval_every: int = Field(20, ge=1)
    forget_share: float = Field(0.5, ge=0.0, le=1.0)
    max_examples: int | None = Field(None, ge=1, description="distinct forget sequences used")
    seed: int = 0


class CheckpointConfig(Section):
    every: int = Field(0, ge=0, description="steps between checkpoints; 0 = off")
    keep: int = Field(2, ge=1, description="step checkpoints kept")


class LoggingConfig(Section):
    every: int = Field(10, ge=1)
    progress: bool = True
    tensorboard: bool = False
    wandb: bool = False
    wandb_project: str = "excise"
