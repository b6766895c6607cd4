"""What every command that works on a run needs, in one place: the device, the run's config
with command-line overrides, and the run's data.

``excise train`` (:mod:`excise.train.runner`), ``eval``, ``relearn`` and ``unlearn`` all
resolve these the same way.
"""

from __future__ import annotations

from pathlib import Path

import torch

from excise.config import Config, apply_overrides, config_from_dict
from excise.errors import UserError


def resolve_device(config: Config, device: str | None = None) -> str:
    """``device`` if given, else ``train.device``; ``auto`` is CUDA when present, else CPU."""
    want = device or config.train.device
    if want == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device is cuda but no CUDA device is available")
    return want


def with_overrides(config: Config, overrides: list[str] | None) -> Config:
    """``config`` with dotted ``key=value`` overrides applied and validated again."""
    if not overrides:
        return config
    data = config.model_dump(mode="json")
    apply_overrides(data, list(overrides))
    return config_from_dict(data, origin="run config + overrides")


def prepare_run_data(config: Config, run_dir: Path | None = None):
    """The run's data (``excise.data.prepare_data``, cached by the data module), tokenized
    with the run's own ``tokenizer.json`` when it has one (never retrained, never rewritten)."""
    from excise.run import TOKENIZER

    try:
        from excise.data import prepare_data
    except ImportError as e:
        raise UserError(f"data preparation is unavailable ({e})") from None
    if run_dir is not None and (Path(run_dir) / TOKENIZER).is_file():
        tok = config.tokenizer.model_copy(update={"path": str(Path(run_dir) / TOKENIZER)})
        config = config.model_copy(update={"tokenizer": tok})
        run_dir = None
    return prepare_data(config, run_dir=run_dir, progress=False)
