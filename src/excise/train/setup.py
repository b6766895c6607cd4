"""Setting a run up: its directory, data, model, optimizer, label schedule and restored
state, everything the loop (:mod:`excise.train.loop`) needs, in one :class:`Session`."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from excise.config import Config, save_config
from excise.errors import UserError
from excise.model.gpt import GPT
from excise.model.partition import Partition, build_model
from excise.run import run_meta
from excise.run_files import CONFIG, META, METRICS, Meta, write_record
from excise.train import checkpoints
from excise.train.distributed import Dist, barrier
from excise.train.logger import MetricsLogger
from excise.train.step import build_optimizer


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


@dataclass
class Session:
    """One process's view of a run being trained."""

    config: Config
    out: Path
    device: str
    dist: Dist
    data: object  # excise.data.PreparedData
    model: GPT
    forward_model: torch.nn.Module  # the model, or its torch.compile wrapper
    partition: Partition
    optimizer: torch.optim.Optimizer
    schedule: object  # excise.data.StepSchedule
    fit: Fit
    logger: MetricsLogger
    autocast: object | None
    started: float

    def save_checkpoint(self) -> None:
        c = self.config.checkpoint
        checkpoints.save(self.out, self.fit.step, self.model, self.partition, self.optimizer, self.config,
                         self.fit.to_json(), keep=c.keep)  # fmt: skip


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


def autocast_for(config: Config, device: str):
    """bf16 autocast on CUDA unless ``train.dtype`` says otherwise; none (fp32) on CPU."""
    dtype = config.train.dtype
    if dtype == "auto":
        dtype = "bfloat16" if device == "cuda" else "float32"
    if dtype == "bfloat16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return None


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


def _inherit_init_tokenizer(config: Config, resume: bool) -> Config:
    """Check ``train.init_from`` early (before minutes of data preparation) and use its
    tokenizer: the starting weights only make sense with it."""
    if not config.train.init_from:
        return config
    if not resume:
        from excise.run import check_same_model

        check_same_model(Path(config.train.init_from), config)
    if config.tokenizer.path is None:
        inherited = Path(config.train.init_from) / "tokenizer.json"
        if inherited.is_file():
            config = config.model_copy(deep=True)
            config.tokenizer.path = str(inherited)
    return config


def setup(config: Config, out: Path, resume: bool, device: str, d: Dist) -> Session:
    """Everything before the first step; on ``resume``, the state of the latest checkpoint."""
    from excise.data import StepSchedule, prepare_data

    started = time.time()
    config = _inherit_init_tokenizer(config, resume)
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
    schedule = StepSchedule(config, {k: len(v) for k, v in data.train.items()}, data.forget_flags)
    fit = Fit()
    if resume:
        restored = checkpoints.restore_latest(out, model, optimizer, device)
        if restored is not None:
            fit = Fit.from_json(restored)
    if d.main:
        save_config(config, out / CONFIG)
        meta = run_meta(config, d.world_size, device=device, backend=d.backend, resumed_from=fit.step or None)
        write_record(out / META, Meta, meta)
    logger = MetricsLogger(out / METRICS, config, enabled=d.main, resume_step=fit.step if resume else None)
    forward_model = torch.compile(model) if config.train.compile else model
    return Session(config, out, device, d, data, model, forward_model, partition, optimizer, schedule, fit,
                   logger, autocast_for(config, device), started)  # fmt: skip
