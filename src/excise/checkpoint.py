"""Atomic file and folder writes, and safetensors weight I/O.

Every file is written to a temporary name in the same directory, flushed, fsynced and
renamed over the target, so a kill at any moment leaves either the old or the new file.
A folder (an export) is filled under a temporary name and renamed into place the same way.

Files and folders get the mode of the process's umask (0644 / 0755 under the usual 022),
like files written with ``open``: the temporary file is created with mode 0666 and the kernel
applies the umask. (``tempfile.mkstemp`` would give 0600 whatever the umask, so on a shared
cluster nobody else could read a run or an export.)

torch is imported only by the weight functions, so data and config code can write files
without it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def _new_temp_file(parent: Path, name: str) -> tuple[int, Path]:
    """Create a fresh file beside ``parent / name`` (mode 0666 less the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = parent / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def make_temp_dir(parent: Path, name: str) -> Path:
    """Create a fresh hidden directory in ``parent`` (mode 0777 less the umask)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = parent / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            tmp.mkdir(mode=0o777)
            return tmp
        except FileExistsError:
            continue


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temp_file(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(final: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; when the block succeeds, it becomes ``final``.

    A failure (any exception, including KeyboardInterrupt) removes the temporary folder and
    leaves ``final`` as it was. An existing non-empty ``final`` is replaced only with
    ``overwrite`` (the old one is moved aside first, then deleted); an empty one always.
    """
    from excise.errors import UserError

    final = Path(final)
    if final.exists() and not final.is_dir():
        raise UserError(f"{final} exists and is not a directory")
    if final.is_dir() and any(final.iterdir()) and not overwrite:
        raise UserError(f"{final} exists and is not empty; choose another folder or pass --overwrite")
    tmp = make_temp_dir(final.parent, final.name)
    try:
        yield tmp
        old = None
        if final.is_dir():
            old = final.parent / f".{final.name}.{secrets.token_hex(6)}.old"
            os.replace(final, old)
        os.replace(tmp, final)
        fsync_dir(final.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_weights(state: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Save tensors as safetensors, atomically (tied weights are stored once per name)."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    atomic_write_bytes(Path(path), save(tensors, metadata=metadata))


def load_weights(path: Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Load a safetensors file (never a pickle); a damaged file is a UserError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from excise.errors import UserError

    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError) as e:
        raise UserError(f"{path} is not a readable safetensors file ({e})") from None


__all__ = [
    "atomic_directory", "atomic_write", "atomic_write_bytes", "atomic_write_text", "fsync_dir",
    "load_weights", "make_temp_dir", "save_weights",
]  # fmt: skip
