"""The relearning attack: fine-tune a released model on forget data and time its recovery.

The released model is the zero-ablated model for partitioned runs and the model as-is for
filters and unlearned runs. Every parameter is fine-tuned (AdamW, ``relearn.lr`` with the
``relearn.schedule`` over ``relearn.steps``) on batches that are ``forget_share`` forget
sequences and the rest other training data (adjacent + retain), drawn with replacement
(``max_examples`` caps the distinct forget sequences, the attacker's data budget). The
forget test loss is measured at step 0 and every ``eval_every`` steps.

Note: zeroed units are a fixed point of gradient descent (a zero MLP unit or head gets zero
gradient on both its input and output weights), so for partitioned runs the attack must
rebuild the domain in the remaining parameters — exactly what "removed" should mean.

``steps_to_recover`` is the first evaluated step whose forget loss is at or below the
reference (the no-filter model's full forget loss), or None when never reached.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from excise.config import Config, MethodConfig, RelearnConfig, TrainConfig
from excise.errors import UserError
from excise.eval.losses import as_tensor, domain_loss
from excise.model.ablation import ablated_copy
from excise.model.gpt import GPT, Mode
from excise.model.partition import Partition
from excise.run import load_run
from excise.run_files import EVAL, RELEARN, EvalRecord, RelearnRecord, read_record, write_record
from excise.runtime import prepare_run_data, resolve_device, with_overrides
from excise.train.step import build_optimizer, lr_at, train_step


def steps_to_recover(steps: list[int], forget_loss: list[float], reference: float | None) -> int | None:
    """First evaluated step whose forget loss is <= ``reference``; None if never (or no reference)."""
    if reference is None:
        return None
    for step, loss in zip(steps, forget_loss):
        if loss <= reference:
            return int(step)
    return None


def released_model(model: GPT, partition: Partition) -> GPT:
    """What a developer would release: forget units zeroed when there are any (a copy)."""
    import copy

    return ablated_copy(model, partition) if not partition.empty else copy.deepcopy(model)


def relearn_train_config(cfg: RelearnConfig) -> TrainConfig:
    return TrainConfig(
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        warmup_steps=cfg.warmup_steps,
        schedule=cfg.schedule,
        min_lr_ratio=0.0 if cfg.schedule != "constant" else 1.0,
    )


def relearn_model(
    model: GPT,
    forget_train,
    other_train,
    forget_test,
    retain_test,
    cfg: RelearnConfig,
    eval_batch_size: int = 16,
    eval_max_tokens: int | None = 16384,
    device: str = "cpu",
    reference: float | None = None,
) -> dict:
    """Fine-tune ``model`` in place (see module doc); returns the relearn.json payload."""
    forget_train = as_tensor(forget_train)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    forget_pool = rng.permutation(len(forget_train))
    if cfg.max_examples is not None:
        forget_pool = forget_pool[: cfg.max_examples]
    other = as_tensor(other_train) if other_train is not None and len(other_train) > 0 else None
    n_forget = cfg.batch_size if other is None else int(round(cfg.batch_size * cfg.forget_share))
    train_cfg = relearn_train_config(cfg)
    method = MethodConfig(name="no_filter")
    model = model.to(device)
    optimizer = build_optimizer(model, Partition(), method, train_cfg, device)

    def measure(arr) -> float | None:
        if arr is None or len(arr) == 0:
            return None
        return domain_loss(
            model, arr, batch_size=eval_batch_size, max_tokens=eval_max_tokens, device=device
        ).mean

    steps, forget_curve, retain_curve = [], [], []

    def record(step: int) -> None:
        steps.append(step)
        forget_curve.append(measure(forget_test))
        retain_curve.append(measure(retain_test))

    record(0)
    model.train()
    for step in range(cfg.steps):
        parts = [forget_train[forget_pool[rng.integers(0, len(forget_pool), n_forget)]]]
        if other is not None and cfg.batch_size - n_forget > 0:
            parts.append(other[rng.integers(0, len(other), cfg.batch_size - n_forget)])
        batch = torch.cat(parts).to(device)
        train_step(
            model, optimizer, Partition(), method, train_cfg, [batch], Mode.DEFAULT, lr_at(step, train_cfg)
        )
        done = step + 1
        if done % cfg.eval_every == 0 or done == cfg.steps:
            record(done)
    return {
        "steps": steps,
        "forget_loss": forget_curve,
        "retain_loss": retain_curve,
        "reference_forget_loss": reference,
        "steps_to_recover": steps_to_recover(steps, forget_curve, reference),
        "config": cfg.model_dump(mode="json"),
    }


def reference_forget_loss(reference_dir: str | Path, data, config: Config, device: str) -> float:
    """The no-filter run's full forget test loss: from its eval.json, else computed on ``data``."""
    reference_dir = Path(reference_dir)
    eval_path = reference_dir / EVAL
    if eval_path.is_file():
        value = read_record(eval_path, EvalRecord)["full"].get("forget")
        if value is not None:
            return float(value)
    ref = load_run(reference_dir, device=device)
    forget_test = data.test.get("forget")
    if forget_test is None:
        raise UserError(f"no forget test data to measure the reference {reference_dir} on")
    return domain_loss(
        ref.model,
        forget_test,
        batch_size=config.eval.batch_size,
        max_tokens=config.eval.max_tokens,
        device=device,
    ).mean


def relearn_run(
    run_dir: str | Path,
    overrides: list[str] | None = None,
    steps: int | None = None,
    reference_dir: str | Path | None = None,
    device: str | None = None,
    data=None,
) -> dict:
    """Attack the released model of ``run_dir``; write and return ``RUN_DIR/relearn.json``."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    config = with_overrides(run.config, overrides)
    if steps is not None:
        if steps < 0:
            raise UserError(f"--steps must be >= 0, got {steps}")
        config = config.model_copy(update={"relearn": config.relearn.model_copy(update={"steps": steps})})
    dev = resolve_device(config, device)
    if data is None:
        data = prepare_run_data(config, run_dir)
    forget_train = data.train.get("forget")
    if forget_train is None or len(forget_train) == 0:
        raise UserError(f"{run_dir}: the run's data has no forget training sequences to relearn on")
    others = [a for d, a in data.train.items() if d != "forget" and a is not None and len(a) > 0]
    other = np.concatenate([np.asarray(a) for a in others]) if others else None
    reference = reference_forget_loss(reference_dir, data, config, dev) if reference_dir is not None else None
    model = released_model(run.model, run.partition)
    result = relearn_model(
        model,
        forget_train,
        other,
        data.test.get("forget"),
        data.test.get("retain"),
        config.relearn,
        config.eval.batch_size,
        config.eval.max_tokens,
        dev,
        reference,
    )
    result["released"] = "ablated" if run.partitioned else "as-is"
    result["reference_run"] = None if reference_dir is None else str(reference_dir)
    write_record(run_dir / RELEARN, RelearnRecord, result)
    return result
