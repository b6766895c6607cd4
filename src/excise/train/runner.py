"""``excise train``: one training loop for 1 process or N under torchrun.

setup (:mod:`excise.train.setup`) → fit (:mod:`excise.train.loop`) → finish. Every method
runs through the same loop; a method decides only the mode of each step (SGTM-style
strategies) or whether the step is skipped (filters). The data order and labels come from a
schedule that is a pure function of (seed, step), so every rank sees the same labels and a
resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.distributed as dist

from excise.config import Config
from excise.run import save_model
from excise.run_files import SUMMARY, TrainSummary, write_record
from excise.runtime import resolve_device
from excise.train import checkpoints
from excise.train.distributed import barrier, in_collective, init_distributed, peer_failure
from excise.train.loop import fit, log_eval
from excise.train.monitor import eval_losses
from excise.train.preemption import Preempted, Preemption, clear_marker, write_marker
from excise.train.setup import Session, prepare_run_dir, setup
from excise.train.step import StepResult


def train(config: Config, out: str | Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Train one run into ``out`` and return its summary (rank 0; other ranks return {})."""
    out = Path(out)
    device = resolve_device(config)
    d = init_distributed(device, config.train.dist_timeout_s)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    if d.main and out.is_dir():
        checkpoints.RunLock(out).ensure_free()  # before --overwrite can delete a live run
    prepare_run_dir(out, resume, overwrite, d)
    lock = checkpoints.RunLock(out) if d.main else None
    try:
        if lock:
            lock.acquire()
            clear_marker(out)
        with Preemption(config.train.preempt_signals) as preempt:
            session = setup(config, out, resume, device, d)
            last = fit(session, preempt)
            return finish(session, last)
    except Preempted as e:
        if d.main:
            write_marker(out, e.step, e.signal_number, e.checkpoint)
        raise
    except Exception as e:
        if d.world_size > 1 and in_collective(e):
            raise peer_failure(e, config.train.dist_timeout_s, out) from e
        raise
    finally:
        if lock:
            lock.release()


def finish(s: Session, last: StepResult | None) -> dict:
    """The final evaluation, the released weights and ``summary.json``."""
    losses = eval_losses(s.model, s.partition, s.data.test, s.config, s.device, s.autocast)
    summary = {}
    if s.dist.main:
        log_eval(s, losses)
        save_model(s.out, s.model, s.partition)
        wall = time.time() - s.started
        fit_state = s.fit
        summary = {
            "method": s.config.method.name,
            "masking": s.config.method.masking,
            "steps": fit_state.step,
            "tokens": fit_state.tokens,
            "skipped_steps": fit_state.skipped,
            "nonfinite_steps": fit_state.nonfinite,
            "final_train_loss": last.loss if last else None,
            "eval": losses,
            "label_counts": fit_state.label_counts,
            "label_statistics": s.schedule.statistics(fit_state.step) if fit_state.step else {},
            "labeller": s.data.labeller_report,
            "data": s.data.stats,
            "wall_seconds": wall,
            "tokens_per_second": fit_state.tokens / wall if wall > 0 else None,
            "parameters": s.model.num_parameters(),
            "world_size": s.dist.world_size,
            "backend": s.dist.backend,
        }
        write_record(s.out / SUMMARY, TrainSummary, summary)
    s.logger.close()
    barrier(s.dist)
    return summary


def cli_train(args) -> int:
    from excise import api
    from excise.run_files import TrainSummary, read_record

    try:
        out = api.train(args.config, args.out, args.overrides, resume=args.resume, overwrite=args.overwrite)
    except Preempted:  # the CLI reports it and exits with EXIT_PREEMPTED
        if dist.is_initialized():
            dist.destroy_process_group()
        raise
    if not dist.is_initialized() or dist.get_rank() == 0:
        ev = read_record(out / SUMMARY, TrainSummary)["eval"]
        print(f"run written to {args.out}")
        for variant, losses in ev.items():
            figures = ", ".join(f"{k} {v:.3f}" for k, v in losses.items())
            print(f"  {variant:8s} test loss (nats): {figures}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0
