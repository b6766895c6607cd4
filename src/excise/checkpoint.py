"""Atomic file writes and safetensors weight I/O.

Every file is written to a temporary name in the same directory, flushed, fsynced and
renamed over the target, so a kill at any moment leaves either the old or the new file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_weights(state: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Save tensors as safetensors, atomically (tied weights are stored once per name)."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    from safetensors.torch import save

    atomic_write_bytes(Path(path), save(tensors, metadata=metadata))


def load_weights(path: Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Load a safetensors file (never a pickle); a damaged file is a UserError."""
    from safetensors import SafetensorError

    from excise.errors import UserError

    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError) as e:
        raise UserError(f"{path} is not a readable safetensors file ({e})") from None


__all__ = ["atomic_write_bytes", "atomic_write_text", "save_weights", "load_weights", "save_file"]
