"""Evaluation during training: held-out losses (full and ablated) and the per-layer
gradient norms that show whether forget data is absorbed by the forget units."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from excise.config import Config
from excise.model.gpt import GPT, Mode, StepPlan
from excise.model.partition import Partition


def eval_losses(
    model: GPT,
    partition: Partition,
    test: dict[str, np.ndarray],
    config: Config,
    device: str,
    autocast=None,
) -> dict[str, dict[str, float]]:
    """Held-out mean token loss per domain, full and (for partitioned runs) ablated."""
    from excise.eval.losses import domain_loss

    variants = {"full": StepPlan()}
    if not partition.empty:
        variants["ablated"] = StepPlan(Mode.RETAIN)  # forward equals the zero-ablated model
    out: dict[str, dict[str, float]] = {}
    was_training = model.training
    model.eval()
    with autocast if autocast is not None else contextlib.nullcontext():
        for variant, plan in variants.items():
            out[variant] = {
                domain: domain_loss(
                    model, arr, plan=plan, batch_size=config.eval.batch_size,
                    max_tokens=config.eval.max_tokens, device=device,
                ).mean
                for domain, arr in test.items()
            }  # fmt: skip
    model.train(was_training)
    return out


def absorption(model: GPT, partition: Partition, test: dict[str, np.ndarray], config: Config, device: str):
    """Per layer, the plain gradient norm a held-out batch of each domain puts on forget vs
    retain units: the paper's measure of whether unlabelled forget data is absorbed."""
    from excise.eval.absorption import gradient_norms

    rows = config.eval.batch_size
    batches = {
        domain: torch.from_numpy(np.asarray(arr[:rows], dtype=np.int64)) for domain, arr in test.items()
    }
    return gradient_norms(model, partition, batches, device)
