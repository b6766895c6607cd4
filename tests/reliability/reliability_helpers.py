"""Shared helpers for the reliability tests: a tiny run, its weights, and the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from excise.config import Config, load_config

# A model and corpus small enough that a run takes a few seconds on one shared core.
TINY = [
    "model.vocab_size=320", "model.context=32", "model.n_layers=2", "model.d_model=32",
    "model.n_heads=4", "model.d_ff=64", "partition.forget_heads=1", "partition.forget_mlp_units=16",
    "data.builtin=bilingual", "data.builtin_documents=60", "train.batch_size=4",
    "train.lr=3e-3", "train.warmup_steps=2", "eval.max_tokens=256", "eval.batch_size=4",
    "logging.progress=false", "logging.every=1", "train.threads=1",
]  # fmt: skip


def tiny_config(*overrides: str) -> Config:
    return load_config(None, TINY + list(overrides))


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(run) / "model.safetensors"))


def assert_identical(a: dict, b: dict) -> None:
    """Bit-for-bit equal tensors under the same names."""
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def events(run: Path, kind: str | None = None) -> list[dict]:
    lines = (Path(run) / "metrics.jsonl").read_text().splitlines()
    found = [json.loads(line) for line in lines if line.strip()]
    return [e for e in found if kind is None or e["event"] == kind]


def cli_env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCISE_FAULT")}
    env.update({"EXCISE_CACHE": str(cache), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})
    env.update(extra)
    return env


def excise_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "excise", *args]


def run_cli(*args: str, cache: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        excise_cmd(*args), env=cli_env(cache, **env), capture_output=True, text=True, timeout=timeout
    )


def empty_recipe(directory: Path) -> Path:
    recipe = Path(directory) / "recipe.yaml"
    recipe.write_text("{}\n")
    return recipe


def assert_user_error(done: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit code 2, one paragraph on stderr naming ``needles``, no traceback."""
    err = done.stderr
    assert done.returncode == 2, (done.returncode, err[-2000:])
    assert "Traceback" not in err, err
    message = err.strip()
    assert message, "no message"
    assert "\n\n" not in message, message  # one paragraph
    for needle in needles:
        assert needle in message, (needle, message)
    return message
