"""Step checkpoints: atomic, checksummed, resumable; and the run-directory lock.

A checkpoint is ``RUN_DIR/checkpoints/step-XXXXXXX/`` holding ``model.safetensors``,
``partition.json``, ``train_state.pt`` (optimizer state and RNG states, loaded with
``torch.load(weights_only=True)``), ``fit.json`` (step, token and label counters) and
``manifest.json`` with a SHA-256 of each file. It is written into a temporary directory and
renamed into place, so a kill leaves either no checkpoint or a whole one; a checkpoint whose
files do not match their checksums is reported and skipped in favour of the previous one.

Fault injection (tests only; inert unless the variable is set):

- ``EXCISE_FAULT_KILL_AT=checkpoint:<step>[:<phase>]`` SIGKILLs this process while it writes
  the checkpoint of ``<step>``; ``<phase>`` is ``weights`` (default: weights written, train
  state not), ``state`` (all files written, no manifest) or ``rename`` (whole temporary
  directory, not yet renamed into place).
- ``EXCISE_FAULT_DELAY_CHECKPOINT_S=<seconds>`` sleeps at each of those phases, so that a
  kill from outside at a random moment often lands in the middle of a checkpoint write.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import torch

from excise.checkpoint import load_weights
from excise.errors import UserError
from excise.run import PARTITION, WEIGHTS, model_state, save_model, write_json

DIR = "checkpoints"
STATE = "train_state.pt"
FIT = "fit.json"
MANIFEST = "manifest.json"
LOCK = ".lock"
REQUIRED = (WEIGHTS, PARTITION, STATE, FIT)
PHASES = ("weights", "state", "rename")


def _fault_point(step: int, phase: str) -> None:
    """Test hook: delay or die at ``phase`` of writing checkpoint ``step`` (see module doc)."""
    delay = os.environ.get("EXCISE_FAULT_DELAY_CHECKPOINT_S")
    if delay:
        time.sleep(float(delay))
    kill_at = os.environ.get("EXCISE_FAULT_KILL_AT")
    if kill_at:
        parts = kill_at.split(":")
        if parts[0] == "checkpoint" and int(parts[1]) == step and (parts[2:] or ["weights"])[0] == phase:
            os.kill(os.getpid(), signal.SIGKILL)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def step_dir(run_dir: Path, step: int) -> Path:
    """Where the checkpoint of ``step`` lives (whether or not it was written)."""
    return Path(run_dir) / DIR / f"step-{step:07d}"


def step_dirs(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / DIR
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-")]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def save(run_dir, step, model, partition, optimizer, config, fit: dict, keep: int = 2) -> Path:
    """Write a complete checkpoint for ``step`` atomically and keep the last ``keep``."""
    root = Path(run_dir) / DIR
    root.mkdir(parents=True, exist_ok=True)
    final = step_dir(run_dir, step)
    # Temporary directories left by killed writers (the run lock says none is alive).
    for stale in root.glob(".tmp-step-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".tmp-step-{step:07d}-{os.getpid()}"
    tmp.mkdir()
    try:
        save_model(tmp, model, partition)
        _fault_point(step, "weights")
        state = {"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        with open(tmp / STATE, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        write_json(tmp / FIT, fit)
        _fault_point(step, "state")
        write_json(tmp / MANIFEST, {"step": step, "sha256": {n: _sha256(tmp / n) for n in REQUIRED}})
        _fault_point(step, "rename")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        previous = step_dirs(run_dir)
        where = previous[-1].name if previous else "none"
        raise UserError(
            f"could not write the checkpoint for step {step} ({e}); the previous checkpoint "
            f"({where}) is intact"
        ) from None
    for old in step_dirs(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify(step_dir: Path) -> str | None:
    """None when the checkpoint is whole, else what is wrong with it."""
    try:
        manifest = json.loads((step_dir / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return "manifest.json missing or unreadable"
    digests = manifest.get("sha256") if isinstance(manifest, dict) else None
    if not isinstance(digests, dict) or any(n not in digests for n in REQUIRED):
        return "manifest.json does not list every checkpoint file"
    for name, digest in digests.items():
        path = step_dir / name
        if not path.is_file():
            return f"{name} missing"
        if _sha256(path) != digest:
            return f"{name} does not match its checksum"
    return None


def restore_latest(run_dir, model, optimizer, device: str) -> dict | None:
    """Load the newest whole checkpoint into ``model`` / ``optimizer``; return its fit state."""
    for step_dir in reversed(step_dirs(run_dir)):
        problem = verify(step_dir)
        if problem:
            print(
                f"excise: checkpoint {step_dir} is damaged ({problem}); skipping it and trying "
                "the previous one", file=sys.stderr,
            )  # fmt: skip
            continue
        state_dict = load_weights(step_dir / WEIGHTS, device=device)
        expected = model_state(model)
        if set(state_dict) != set(expected) or any(
            state_dict[k].shape != v.shape for k, v in expected.items()
        ):
            wrong = next(
                (k for k in expected if k in state_dict and state_dict[k].shape != expected[k].shape), None
            )
            detail = (
                f": {wrong} has shape {tuple(state_dict[wrong].shape)}, the config's model needs "
                f"{tuple(expected[wrong].shape)}"
                if wrong
                else ": its tensor names differ"
            )
            raise UserError(
                f"checkpoint {step_dir} was written for another model shape{detail}; resume "
                "with the run's own config.yaml or train into a new --out"
            )
        model.load_state_dict(state_dict, strict=False)
        state = torch.load(step_dir / STATE, map_location=device, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        print(f"excise: resuming from checkpoint {step_dir.name}", file=sys.stderr)
        return json.loads((step_dir / FIT).read_text())
    if step_dirs(run_dir):
        print("excise: no whole checkpoint left; starting again from step 0", file=sys.stderr)
    return None


def save_diagnostic(run_dir: Path, step: int, where: str, batches) -> None:
    """Keep the batch that produced a non-finite value, for inspection."""
    from safetensors.torch import save_file

    diag = Path(run_dir) / "diagnostics"
    diag.mkdir(exist_ok=True)
    save_file(
        {f"micro_batch_{i}": b.cpu() for i, b in enumerate(batches)},
        str(diag / f"step-{step:07d}.safetensors"),
    )
    write_json(diag / f"step-{step:07d}.json", {"step": step, "where": where})


class RunLock:
    """An exclusive lock on a run directory: a second writer refuses to start."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None

    def acquire(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)  # umask applies
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise UserError(
                f"run directory {self.path.parent} is in use by another process (it holds "
                f"{self.path}); wait for it to finish or use another --out"
            ) from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())

    def ensure_free(self) -> None:
        """Refuse (UserError) if another process holds the lock; check only, keep nothing."""
        if self.path.is_file():
            self.acquire()
            self.release()

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
