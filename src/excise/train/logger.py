"""Metrics logging: ``metrics.jsonl`` always; TensorBoard / W&B when asked (lazy imports)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from excise.checkpoint import atomic_write_text
from excise.config import Config


class MetricsLogger:
    """Appends one JSON object per event; on resume drops events past the checkpoint."""

    def __init__(self, path: Path, config: Config, enabled: bool = True, resume_step: int | None = None):
        self.enabled = enabled
        self.path = Path(path)
        self.file = None
        self.trackers = []
        if not enabled:
            return
        if resume_step is not None and self.path.exists():
            kept = [
                line for line in self.path.read_text().splitlines()
                if line.strip() and _step_of(line) <= resume_step
            ]  # fmt: skip
            # atomic: a kill (or a preemption signal during setup) must not lose the history
            atomic_write_text(self.path, "".join(k + "\n" for k in kept))
        elif resume_step is None and self.path.exists():
            self.path.unlink()
        self.file = open(self.path, "a", encoding="utf-8")
        if config.logging.tensorboard:
            purge = None if resume_step is None else resume_step + 1
            self.trackers.append(_TensorBoard(self.path.parent / "tensorboard", purge_step=purge))
        if config.logging.wandb:
            self.trackers.append(_WandB(config))

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        record = {"time": time.time(), **record}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        for t in self.trackers:
            t.log(record)

    def close(self) -> None:
        if self.file:
            self.file.close()
            self.file = None
        for t in self.trackers:
            t.close()


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, TypeError, ValueError):
        return 1 << 62


def _scalars(record: dict, prefix: str = ""):
    for k, v in record.items():
        if k in ("time", "step", "event"):
            continue
        if isinstance(v, dict):
            yield from _scalars(v, f"{prefix}{k}/")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield f"{prefix}{k}", v


class _TensorBoard:
    """Scalars per event. On resume a new event file starts with ``purge_step``: TensorBoard
    then drops the older files' events from that step on, which the killed run had logged
    past its checkpoint (as metrics.jsonl is cut back), so no step is shown twice."""

    def __init__(self, logdir: Path, purge_step: int | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            from excise.errors import UserError

            raise UserError(
                "logging.tensorboard needs the tensorboard package (pip install excise[tracking])"
            ) from e
        self.writer = SummaryWriter(str(logdir), purge_step=purge_step)

    def log(self, record: dict) -> None:
        for k, v in _scalars(record, f"{record.get('event', 'log')}/"):
            self.writer.add_scalar(k, v, record.get("step", 0))

    def close(self) -> None:
        self.writer.close()


class _WandB:
    def __init__(self, config: Config) -> None:
        try:
            import wandb
        except ImportError as e:
            from excise.errors import UserError

            raise UserError("logging.wandb needs the wandb package (pip install excise[tracking])") from e
        self.run = wandb.init(project=config.logging.wandb_project, config=config.model_dump(mode="json"))

    def log(self, record: dict) -> None:
        self.run.log(dict(_scalars(record, f"{record.get('event', 'log')}/")), step=record.get("step"))

    def close(self) -> None:
        self.run.finish()
