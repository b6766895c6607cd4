"""The training loop: each step's mode from the label schedule, the step itself, and what
runs between steps (metrics, evaluation, checkpoints, a preemption stop)."""

from __future__ import annotations

import time

import numpy as np
import torch

from excise.config import Config
from excise.errors import UserError
from excise.methods.registry import get_method
from excise.model.gpt import Mode
from excise.train import checkpoints
from excise.train.distributed import Dist, barrier
from excise.train.mixed import grouped_train_step, label_groups, mixed_mode
from excise.train.monitor import absorption, eval_losses
from excise.train.preemption import Preempted, Preemption, signal_name
from excise.train.setup import Session
from excise.train.step import NonFiniteError, StepResult, lr_at, train_step


def step_mode(method: str, label: str, domain: str) -> Mode | None:
    """The mode of a step for ``method``, or None when the method skips the step."""
    mode = get_method(method).mode(label, domain)
    return None if mode is None else Mode(mode)


def micro_batches(
    tokens: np.ndarray, indices: np.ndarray, config: Config, d: Dist, device: str
) -> list[torch.Tensor]:
    """This rank's share of the global batch, split into micro-batches."""
    batch = config.train.batch_size
    if batch % d.world_size != 0:
        raise UserError(f"train.batch_size ({batch}) must be divisible by the {d.world_size} processes")
    per_rank = batch // d.world_size
    mine = indices[d.rank * per_rank : (d.rank + 1) * per_rank]
    micro = min(config.train.micro_batch_size or per_rank, per_rank)
    if per_rank % micro != 0:
        raise UserError(
            f"per-process batch ({per_rank}) must be a multiple of train.micro_batch_size ({micro})"
        )
    rows = torch.from_numpy(np.asarray(tokens[np.sort(mine)], dtype=np.int64))
    return [rows[i : i + micro].to(device, non_blocking=True) for i in range(0, per_rank, micro)]


class _Throughput:
    """Tokens per second over the steps since the last logged one, and the progress bar."""

    def __init__(self, s: Session) -> None:
        self.tokens, self.start = 0, time.perf_counter()
        self.bar = None
        steps = s.config.train.steps
        if s.dist.main and s.config.logging.progress and steps > s.fit.step:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=steps, initial=s.fit.step, desc=f"train {s.config.method.name}", unit="step",
                            dynamic_ncols=True)  # fmt: skip

    def lap(self) -> float:
        elapsed = time.perf_counter() - self.start
        tps = self.tokens / elapsed if elapsed > 0 else 0.0
        self.tokens, self.start = 0, time.perf_counter()
        return tps

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_step(s: Session, sl, mode: Mode, lr: float) -> StepResult | None:
    """Train one scheduled step; None when its gradients were not finite (and it was skipped)."""
    mixed = s.config.train.batches == "mixed"
    if mixed:
        groups = label_groups(
            s.data.train,
            sl,
            s.config.method.name,
            s.config.train.micro_batch_size,
            s.dist.world_size,
            s.device,
        )
        batches = [b for _, group in groups for b in group]
    else:
        batches = micro_batches(s.data.train[sl.domain], sl.indices, s.config, s.dist, s.device)
    try:
        if mixed:
            result = grouped_train_step(
                s.forward_model,
                s.optimizer,
                s.partition,
                s.config.method,
                s.config.train,
                groups,
                lr,
                s.autocast,
            )
        else:
            result = train_step(
                s.forward_model, s.optimizer, s.partition, s.config.method, s.config.train,
                batches, mode, lr, autocast=s.autocast,
            )  # fmt: skip
    except NonFiniteError as e:
        s.fit.nonfinite += 1
        s.logger.log({"event": "nonfinite", "step": s.fit.step, "where": e.where, "domain": sl.domain})
        if s.dist.main:
            checkpoints.save_diagnostic(s.out, s.fit.step, e.where, batches)
        if s.config.train.on_nonfinite == "stop":
            raise UserError(
                f"step {s.fit.step}: non-finite {e.where}; training stopped (diagnostic in "
                f"{s.out / 'diagnostics'}). Set train.on_nonfinite=skip to skip such batches."
            ) from None
        return None
    s.fit.tokens += result.tokens * s.dist.world_size
    return result


def log_eval(s: Session, losses: dict) -> None:
    s.logger.log({"event": "eval", "step": s.fit.step, "tokens": s.fit.tokens,
                  "domain_steps": s.fit.domain_steps(), **losses})  # fmt: skip


def maybe_eval(s: Session) -> None:
    """The held-out losses (and absorption) every ``eval.every`` steps, before the last."""
    every = s.config.eval.every
    if not every or s.fit.step % every or s.fit.step >= s.config.train.steps:
        return
    log_eval(s, eval_losses(s.model, s.partition, s.data.test, s.config, s.device, s.autocast))
    if s.dist.main and not s.partition.empty:
        norms = absorption(s.model, s.partition, s.data.test, s.config, s.device)
        s.logger.log({"event": "absorption", "step": s.fit.step, "grad_norms": norms})


def maybe_checkpoint(s: Session) -> bool:
    """A checkpoint every ``checkpoint.every`` steps, before the last; whether one was saved."""
    every = s.config.checkpoint.every
    if not every or s.fit.step % every or s.fit.step >= s.config.train.steps:
        return False
    if s.dist.main:
        s.save_checkpoint()
    barrier(s.dist)
    return True


def stop_if_preempted(s: Session, preempt: Preemption, saved: bool, throughput: _Throughput) -> None:
    """After a signal, every rank stops after this same step, with a checkpoint of it."""
    if not (signum := preempt.agreed(s.device)):
        return
    if s.dist.main and not saved:
        s.save_checkpoint()
    barrier(s.dist)
    s.logger.log({"event": "preempted", "step": s.fit.step, "signal": signal_name(signum)})
    s.logger.close()
    throughput.close()
    raise Preempted(s.fit.step, signum, checkpoints.step_dir(s.out, s.fit.step))


def fit(s: Session, preempt: Preemption) -> StepResult | None:
    """Train from ``s.fit.step`` to ``train.steps``; the last trained step's result."""
    config, fit_state, steps = s.config, s.fit, s.config.train.steps
    throughput = _Throughput(s)
    last = None
    saved_at = None  # step of the checkpoint written last by this loop
    preempt.start_training()
    while fit_state.step < steps:
        sl = s.schedule.at(fit_state.step)
        if config.train.batches == "mixed":
            mode = mixed_mode(config.method.name, sl)
        else:
            mode = step_mode(config.method.name, sl.label, sl.domain)
        key = f"{sl.domain}/{sl.label}"
        fit_state.label_counts[key] = fit_state.label_counts.get(key, 0) + 1
        lr = lr_at(fit_state.step, config.train)
        if mode is None:  # a filter drops this step's data
            fit_state.skipped += 1
        else:
            last = run_step(s, sl, mode, lr)
            if last is not None:
                throughput.tokens += last.tokens * s.dist.world_size
        fit_state.step += 1

        if (
            s.dist.main
            and (fit_state.step % config.logging.every == 0 or fit_state.step == steps)
            and last is not None
        ):
            tps = throughput.lap()
            s.logger.log({
                "event": "train", "step": fit_state.step, "loss": last.loss, "lr": lr,
                "grad_norm": last.grad_norm, "tokens": fit_state.tokens, "tokens_per_second": tps,
                "domain": sl.domain, "label": sl.label, "mode": mode.value if mode else "skipped",
                "skipped": fit_state.skipped,
            })  # fmt: skip
            if throughput.bar is not None:
                throughput.bar.set_postfix(loss=f"{last.loss:.3f}", tok_s=f"{tps:,.0f}")
        if throughput.bar is not None:
            throughput.bar.update(1)
        maybe_eval(s)
        if maybe_checkpoint(s):
            saved_at = fit_state.step
        stop_if_preempted(s, preempt, saved_at == fit_state.step, throughput)
    throughput.close()
    return last
