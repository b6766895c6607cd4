"""The run directory: what a finished (or checkpointed) run holds, and how to load it.

Layout (the file contract other tools read)::

    RUN_DIR/
      config.yaml         resolved config
      model.safetensors   final weights (names as in ``GPT.state_dict()``, tied head omitted)
      partition.json      {name: {"dim": d, "forget": [[start, stop], ...]}}
      tokenizer.json      the run's tokenizer
      meta.json           versions, git commit, seed, world size, masking mode
      metrics.jsonl       one JSON object per log / eval event
      summary.json        final figures
      checkpoints/step-XXXXXXX/   resumable step checkpoints (same files + train_state)

Loading never unpickles: weights are safetensors, everything else JSON / YAML.
"""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

from excise.checkpoint import atomic_write_text, load_weights, save_weights
from excise.config import Config, config_from_dict, read_yaml
from excise.errors import UserError
from excise.model.gpt import GPT
from excise.model.partition import Partition, apply_partition
from excise.run_files import (  # noqa: F401  (the file names, re-exported)
    CONFIG,
    EVAL,
    META,
    METRICS,
    PARTITION,
    RELEARN,
    SUMMARY,
    TOKENIZER,
    WEIGHTS,
)  # fmt: skip


@dataclass
class LoadedRun:
    """A run directory's config, model (weights loaded) and partition."""

    dir: Path
    config: Config
    model: GPT
    partition: Partition

    @property
    def tokenizer_path(self) -> Path:
        return self.dir / TOKENIZER

    @property
    def partitioned(self) -> bool:
        return not self.partition.empty


def model_state(model: GPT) -> dict[str, torch.Tensor]:
    """Weights to save: the state dict without duplicated tied tensors or buffers."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith("rope_")}


def save_model(directory: Path, model: GPT, partition: Partition) -> None:
    """Write ``model.safetensors`` and ``partition.json`` into ``directory`` atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    save_weights(model_state(model), directory / WEIGHTS, metadata={"format": "pt"})
    partition.save(directory / PARTITION)


def load_model_dir(directory: Path, config: Config, device: str = "cpu") -> tuple[GPT, Partition]:
    """Build the model of ``config`` and load weights + partition from ``directory``."""
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise UserError(f"{directory} has no {WEIGHTS}: not a finished run or checkpoint")
    partition = Partition.load(directory / PARTITION) if (directory / PARTITION).is_file() else Partition()
    model = GPT(config.model)
    try:
        partition = apply_partition(model, partition)
    except ValueError as e:
        raise UserError(f"{directory / PARTITION}: {e}") from None
    state = load_weights(weights)
    expected = model_state(model)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = []
        if missing:
            detail.append(f"missing {missing[:3]}")
        if unexpected:
            detail.append(f"unexpected {unexpected[:3]}")
        if wrong:
            k = wrong[0]
            detail.append(
                f"{k} has shape {tuple(state[k].shape)}, the config's model needs {tuple(expected[k].shape)}"
            )
        raise UserError(
            f"{weights} does not match the model of its config ({'; '.join(detail)}): was it "
            "written for another model shape?"
        )
    model.load_state_dict(state, strict=False)
    return model.to(device), partition


def load_config_file(run_dir: Path) -> Config:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise UserError(f"{run_dir} is not a run directory: it has no {CONFIG}")
    return config_from_dict(read_yaml(path), origin=str(path))


def check_same_model(source_dir: Path, config: Config, key: str = "train.init_from") -> None:
    """Refuse (UserError) to start ``config`` from the run in ``source_dir`` when their
    ``model`` sections differ, naming each differing key: weights of another shape cannot be
    loaded, and other settings (attention scale, norms, positions) would change what the
    weights compute. ``init_std`` only matters for a fresh initialisation and is ignored.
    A folder without config.yaml is left to the weight-shape check of :func:`load_model_dir`."""
    if not (Path(source_dir) / CONFIG).is_file():
        return

    def settings(cfg) -> dict:  # defaults resolved: head_dim None and 16 can be the same
        values = {name: getattr(cfg, name) for name in type(cfg).model_fields if name != "init_std"}
        return values | {"head_dim": cfg.resolved_head_dim, "d_ff": cfg.resolved_d_ff}

    source, ours = settings(load_config_file(source_dir).model), settings(config.model)
    differ = [name for name in ours if source.get(name) != ours[name]]
    if differ:
        detail = ", ".join(
            f"model.{name} is {source.get(name)!r} there, {ours[name]!r} here" for name in differ
        )
        raise UserError(
            f"{key}: {source_dir} holds a model of another shape than this recipe's ({detail}). "
            f"Train with that run's recipe ({Path(source_dir) / CONFIG}) and your overrides, or "
            "set these model.* keys to match."
        )


def load_run(run_dir: str | Path, device: str = "cpu") -> LoadedRun:
    """Load a finished run directory (weights, config, partition)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    config = load_config_file(run_dir)
    model, partition = load_model_dir(run_dir, config, device)
    return LoadedRun(run_dir, config, model, partition)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit() -> str | None:
    """The commit of the excise checkout running (None outside a git checkout)."""
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    """Whether the checkout has uncommitted changes to tracked source files (None: unknown)."""
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return None if status is None else bool(status)


# Libraries whose version can change a result: kernels (torch), tokenizer training
# (tokenizers), array handling (numpy), file reading (datasets, pyarrow), weight files
# (safetensors), the transformers baseline / interop (transformers).
RESULT_LIBRARIES = ("torch", "numpy", "tokenizers", "safetensors", "transformers", "datasets", "pyarrow")


def library_versions() -> dict[str, str | None]:
    """Installed versions of :data:`RESULT_LIBRARIES` (None: not installed), read from the
    package metadata so nothing heavy is imported."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in RESULT_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_meta(config: Config, world_size: int = 1, **extra) -> dict:
    import excise

    meta = {
        "excise": excise.__version__,
        "torch": torch.__version__,
        "libraries": library_versions(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "seed": config.seed,
        "world_size": world_size,
        "method": config.method.name,
        "masking": config.method.masking,
        "mask_shared": config.method.mask_shared,
    }
    meta.update(extra)
    return meta


def write_json(path: Path, data) -> None:
    """Write a JSON file that has no record type (checkpoint internals); run files go
    through :func:`excise.run_files.write_record`."""
    atomic_write_text(Path(path), json.dumps(data, indent=1, default=str) + "\n")
