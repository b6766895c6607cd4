"""``excise train``: one training loop for 1 process or N under torchrun.

setup → fit → finish. Every method runs through the same loop; a method decides only the
mode of each step (SGTM-style strategies) or whether the step is skipped (filters). The
data order and labels come from a schedule that is a pure function of (seed, step), so
every rank sees the same labels and a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from excise.config import Config, save_config
from excise.errors import PeerFailure, UserError
from excise.methods.registry import get_method
from excise.model.gpt import GPT, Mode, StepPlan
from excise.model.partition import Partition, build_model
from excise.run import (
    CONFIG, META, METRICS, SUMMARY, run_meta, save_model, write_json,
)  # fmt: skip
from excise.train import checkpoints
from excise.train.logger import MetricsLogger
from excise.train.preemption import Preempted, Preemption, clear_marker, signal_name, write_marker
from excise.train.step import NonFiniteError, build_optimizer, lr_at, train_step


# ---------------------------------------------------------------------------------------
# processes and devices


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: no process group

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str, timeout_s: float | None = None) -> Dist:
    """Join the process group when launched by torchrun (or with WORLD_SIZE > 1 in the
    environment): gloo on CPU, NCCL on GPU. A torchrun launch with one process joins too,
    so a one-GPU torchrun run exercises NCCL. ``timeout_s`` bounds every collective: a
    rank that waits longer for its peers (one hung or gone) fails instead of hanging."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and "TORCHELASTIC_RUN_ID" not in os.environ:
        return Dist()
    if not dist.is_initialized():
        timeout = {"timeout": timedelta(seconds=timeout_s)} if timeout_s else {}
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo", **timeout)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
    return Dist(dist.get_rank(), dist.get_world_size(), local, dist.get_backend())


def barrier(d: Dist) -> None:
    if d.world_size > 1:
        dist.barrier()


def resolve_device(config: Config) -> str:
    want = config.train.device
    if want == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device is cuda but no CUDA device is available")
    return want


def autocast_for(config: Config, device: str):
    dtype = config.train.dtype
    if dtype == "auto":
        dtype = "bfloat16" if device == "cuda" else "float32"
    if dtype == "bfloat16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return None


# ---------------------------------------------------------------------------------------
# the run directory


def prepare_run_dir(out: Path, resume: bool, overwrite: bool, d: Dist) -> None:
    """Refuse to clobber a user's run directory unless asked to."""
    if d.main:
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} exists and is not a directory")
        # a lone .lock is what a run that failed before writing anything leaves (the lock is
        # free: train() checked), so it does not make the directory a run to protect
        non_empty = out.is_dir() and any(p.name != checkpoints.LOCK for p in out.iterdir())
        if non_empty and not resume:
            if not overwrite:
                raise UserError(
                    f"run directory {out} is not empty; use --resume to continue the run in "
                    "it or --overwrite to replace it"
                )
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
    barrier(d)


def step_mode(method: str, label: str, domain: str) -> Mode | None:
    """The mode of a step for ``method``, or None when the method skips the step."""
    mode = get_method(method).mode(label, domain)
    return None if mode is None else Mode(mode)


@dataclass
class Fit:
    """State of a fit that checkpoints must capture (besides model and optimizer)."""

    step: int = 0
    tokens: int = 0
    skipped: int = 0
    label_counts: dict = field(default_factory=dict)
    nonfinite: int = 0

    def domain_steps(self) -> dict[str, int]:
        """Steps drawn from each true domain so far (trained or skipped by a filter)."""
        steps: dict[str, int] = {}
        for key, n in self.label_counts.items():
            domain = key.split("/", 1)[0]
            steps[domain] = steps.get(domain, 0) + n
        return steps

    def to_json(self) -> dict:
        return {
            "step": self.step, "tokens": self.tokens, "skipped": self.skipped,
            "label_counts": self.label_counts, "nonfinite": self.nonfinite,
        }  # fmt: skip

    @classmethod
    def from_json(cls, d: dict) -> Fit:
        return cls(d["step"], d["tokens"], d["skipped"], d["label_counts"], d.get("nonfinite", 0))


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


# ---------------------------------------------------------------------------------------
# evaluation during training


def eval_losses(
    model: GPT, partition: Partition, test: dict[str, np.ndarray], config: Config, device: str,
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
    batches = {domain: torch.from_numpy(np.asarray(arr[:rows], dtype=np.int64)) for domain, arr in test.items()}
    return gradient_norms(model, partition, batches, device)


# ---------------------------------------------------------------------------------------
# the loop


def train(
    config: Config, out: str | Path, resume: bool = False, overwrite: bool = False
) -> dict:
    """Train one run into ``out`` and return its summary (rank 0; other ranks return {})."""
    from excise.data import StepSchedule, prepare_data

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
            return _fit(config, out, resume, device, d, prepare_data, StepSchedule, preempt)
    except Preempted as e:
        if d.main:
            write_marker(out, e.step, e.signal_number, e.checkpoint)
        raise
    except Exception as e:
        if d.world_size > 1 and _in_collective(e):
            raise _peer_failure(e, config, out) from e
        raise
    finally:
        if lock:
            lock.release()


def _in_collective(e: BaseException) -> bool:
    """Whether ``e`` was raised inside torch.distributed (gloo raises plain RuntimeErrors)."""
    if isinstance(e, getattr(dist, "DistError", ())):
        return True
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and f"torch{os.sep}distributed{os.sep}" in tb.tb_frame.f_code.co_filename


def _peer_failure(e: BaseException, config: Config, out: Path) -> PeerFailure:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    saved = checkpoints.step_dirs(out)
    where = f"its last checkpoint ({saved[-1].name})" if saved else "step 0 (no checkpoint was written)"
    return PeerFailure(
        f"a collective with the other processes failed ({first[:300]}): one of them died, or "
        f"hung for longer than train.dist_timeout_s ({config.train.dist_timeout_s:g} s). "
        f"The run continues from {where} with the same command and --resume."
    )


def start_from(config: Config, model: GPT, partition: Partition) -> tuple[GPT, Partition]:
    """Initialise from ``train.init_from``: its weights, and its partition when it has one."""
    from excise.run import check_same_model, load_model_dir

    source_dir = Path(config.train.init_from)
    if not source_dir.is_dir():
        raise UserError(f"train.init_from: {source_dir} is not a directory")
    check_same_model(source_dir, config)
    source, source_partition = load_model_dir(source_dir, config)
    if config.method.partitioned and not source_partition.empty:
        return source, source_partition
    model.load_state_dict(source.state_dict(), strict=False)
    return model, partition


def _fit(config, out, resume, device, d, prepare_data, StepSchedule, preempt: Preemption) -> dict:
    started = time.time()
    if config.train.init_from and not resume:  # before minutes of data preparation
        from excise.run import check_same_model

        check_same_model(Path(config.train.init_from), config)
    if config.train.init_from and config.tokenizer.path is None:
        inherited = Path(config.train.init_from) / "tokenizer.json"
        if inherited.is_file():  # the starting weights only make sense with their tokenizer
            config = config.model_copy(deep=True)
            config.tokenizer.path = str(inherited)
    # Rank 0 builds the token cache first; the others then read it.
    if d.main:
        data = prepare_data(config, run_dir=out, progress=config.logging.progress)
    barrier(d)
    if not d.main:
        data = prepare_data(config, run_dir=None, progress=False)
    for domain, arr in data.train.items():
        if len(arr) == 0:
            raise UserError(f"data.{domain} has no training sequence of {config.model.context + 1} tokens")

    partition_cfg = config.partition if config.method.partitioned else None
    model, partition = build_model(config.model, partition_cfg, seed=config.seed)
    if config.train.init_from and not resume:
        model, partition = start_from(config, model, partition)
    model.to(device)
    optimizer = build_optimizer(model, partition, config.method, config.train, device)
    if config.train.batches == "mixed":  # per-sequence labels (excise.train.mixed)
        from excise.data.mixed import MixedSchedule as StepSchedule
        from excise.train.mixed import grouped_train_step, label_groups
    schedule = StepSchedule(config, {k: len(v) for k, v in data.train.items()}, data.forget_flags)
    fit = Fit()

    if resume:
        restored = checkpoints.restore_latest(out, model, optimizer, device)
        if restored is not None:
            fit = Fit.from_json(restored)
    if d.main:
        save_config(config, out / CONFIG)
        write_json(out / META, run_meta(config, d.world_size, device=device, backend=d.backend, resumed_from=fit.step or None))
    logger = MetricsLogger(out / METRICS, config, enabled=d.main, resume_step=fit.step if resume else None)

    forward_model = torch.compile(model) if config.train.compile else model
    autocast = autocast_for(config, device)
    steps = config.train.steps
    progress = None
    if d.main and config.logging.progress and steps > fit.step:
        from tqdm.auto import tqdm

        progress = tqdm(total=steps, initial=fit.step, desc=f"train {config.method.name}", unit="step", dynamic_ncols=True)

    window_tokens, window_start = 0, time.perf_counter()
    last = None
    saved_at = None  # step of the checkpoint written last by this loop
    preempt.start_training()
    while fit.step < steps:
        step = fit.step
        sl = schedule.at(step)
        groups = None
        if config.train.batches == "mixed":
            groups = label_groups(data.train, sl, config.method.name, config.train.micro_batch_size, d.world_size, device)
            mode = Mode.DEFAULT if groups else None
        else:
            mode = step_mode(config.method.name, sl.label, sl.domain)
        key = f"{sl.domain}/{sl.label}"
        fit.label_counts[key] = fit.label_counts.get(key, 0) + 1
        lr = lr_at(step, config.train)
        if mode is None:
            fit.skipped += 1
        else:
            if groups is None:
                batches = micro_batches(data.train[sl.domain], sl.indices, config, d, device)
            else:
                batches = [b for _, group in groups for b in group]
            try:
                if groups is None:
                    last = train_step(
                        forward_model, optimizer, partition, config.method, config.train,
                        batches, mode, lr, autocast=autocast,
                    )  # fmt: skip
                else:
                    last = grouped_train_step(
                        forward_model, optimizer, partition, config.method, config.train, groups, lr, autocast
                    )
            except NonFiniteError as e:
                fit.nonfinite += 1
                logger.log({"event": "nonfinite", "step": step, "where": e.where, "domain": sl.domain})
                if d.main:
                    checkpoints.save_diagnostic(out, step, e.where, batches)
                if config.train.on_nonfinite == "stop":
                    raise UserError(
                        f"step {step}: non-finite {e.where}; training stopped (diagnostic in "
                        f"{out / 'diagnostics'}). Set train.on_nonfinite=skip to skip such batches."
                    ) from None
                last = None
            else:
                global_tokens = last.tokens * d.world_size
                fit.tokens += global_tokens
                window_tokens += global_tokens
        fit.step += 1

        if d.main and (fit.step % config.logging.every == 0 or fit.step == steps) and last is not None:
            elapsed = time.perf_counter() - window_start
            tps = window_tokens / elapsed if elapsed > 0 else 0.0
            logger.log({
                "event": "train", "step": fit.step, "loss": last.loss, "lr": lr,
                "grad_norm": last.grad_norm, "tokens": fit.tokens, "tokens_per_second": tps,
                "domain": sl.domain, "label": sl.label, "mode": mode.value if mode else "skipped",
                "skipped": fit.skipped,
            })  # fmt: skip
            if progress is not None:
                progress.set_postfix(loss=f"{last.loss:.3f}", tok_s=f"{tps:,.0f}")
            window_tokens, window_start = 0, time.perf_counter()
        if progress is not None:
            progress.update(1)

        if config.eval.every and fit.step % config.eval.every == 0 and fit.step < steps:
            losses = eval_losses(model, partition, data.test, config, device, autocast)
            logger.log({"event": "eval", "step": fit.step, "tokens": fit.tokens,
                        "domain_steps": fit.domain_steps(), **losses})
            if d.main and not partition.empty:
                logger.log({"event": "absorption", "step": fit.step,
                            "grad_norms": absorption(model, partition, data.test, config, device)})
        if config.checkpoint.every and fit.step % config.checkpoint.every == 0 and fit.step < steps:
            if d.main:
                checkpoints.save(out, fit.step, model, partition, optimizer, config, fit.to_json(), keep=config.checkpoint.keep)
            barrier(d)
            saved_at = fit.step
        if signum := preempt.agreed(device):  # every rank stops after this same step
            if d.main and saved_at != fit.step:
                checkpoints.save(out, fit.step, model, partition, optimizer, config, fit.to_json(), keep=config.checkpoint.keep)
            barrier(d)
            logger.log({"event": "preempted", "step": fit.step, "signal": signal_name(signum)})
            logger.close()
            if progress is not None:
                progress.close()
            raise Preempted(fit.step, signum, checkpoints.step_dir(out, fit.step))
    if progress is not None:
        progress.close()

    losses = eval_losses(model, partition, data.test, config, device, autocast)
    summary = {}
    if d.main:
        logger.log({"event": "eval", "step": fit.step, "tokens": fit.tokens,
                    "domain_steps": fit.domain_steps(), **losses})
        save_model(out, model, partition)
        wall = time.time() - started
        summary = {
            "method": config.method.name,
            "masking": config.method.masking,
            "steps": fit.step,
            "tokens": fit.tokens,
            "skipped_steps": fit.skipped,
            "nonfinite_steps": fit.nonfinite,
            "final_train_loss": last.loss if last else None,
            "eval": losses,
            "label_counts": fit.label_counts,
            "label_statistics": schedule.statistics(fit.step) if fit.step else {},
            "labeller": data.labeller_report,
            "data": data.stats,
            "wall_seconds": wall,
            "tokens_per_second": fit.tokens / wall if wall > 0 else None,
            "parameters": model.num_parameters(),
            "world_size": d.world_size,
            "backend": d.backend,
        }
        write_json(out / SUMMARY, summary)
    logger.close()
    barrier(d)
    return summary


def cli_train(args) -> int:
    from excise import api
    from excise.run import read_json

    try:
        out = api.train(args.config, args.out, args.overrides, resume=args.resume, overwrite=args.overwrite)
    except Preempted:  # the CLI reports it and exits with EXIT_PREEMPTED
        if dist.is_initialized():
            dist.destroy_process_group()
        raise
    if not dist.is_initialized() or dist.get_rank() == 0:
        ev = read_json(out / SUMMARY)["eval"]
        print(f"run written to {args.out}")
        for variant, losses in ev.items():
            figures = ", ".join(f"{k} {v:.3f}" for k, v in losses.items())
            print(f"  {variant:8s} test loss (nats): {figures}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0
