"""Metrics logging: TensorBoard shows each step once after a resume."""

from __future__ import annotations

import pytest

from excise.config import load_config
from excise.train.logger import MetricsLogger


def test_tensorboard_steps_not_doubled_after_resume(tmp_path):
    """A run killed after logging steps 1-8 with its last checkpoint at step 5, resumed: the
    events of steps 6-8 from the killed run are purged, so every step has one value, the
    resumed run's (as in metrics.jsonl)."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = load_config(None, ["logging.tensorboard=true"])
    path = tmp_path / "metrics.jsonl"
    killed = MetricsLogger(path, config)
    for step in range(1, 9):
        killed.log({"event": "train", "step": step, "loss": 100.0 + step})
    killed.close()  # what is on disk when the process dies
    resumed = MetricsLogger(path, config, resume_step=5)
    for step in range(6, 11):
        resumed.log({"event": "train", "step": step, "loss": float(step)})
    resumed.close()

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    scalars = events.Scalars("train/loss")
    assert [s.step for s in scalars] == list(range(1, 11))
    assert [s.value for s in scalars] == [100.0 + s for s in range(1, 6)] + [float(s) for s in range(6, 11)]
