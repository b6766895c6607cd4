"""Files and folders: written atomically, with the umask's mode, never half a folder."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest

from excise.checkpoint import atomic_directory, atomic_write_text
from excise.errors import UserError


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes_under(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): mode(p) for p in [root, *root.rglob("*")]}


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_atomic_write_gets_the_umask_mode(tmp_path, mask):
    with umask(mask):
        atomic_write_text(tmp_path / "a.json", "{}\n")
        atomic_write_text(tmp_path / "a.json", "{}\n")  # replacing keeps it
    assert mode(tmp_path / "a.json") == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary left


def test_atomic_directory_publishes_whole_or_nothing(tmp_path):
    final = tmp_path / "export"
    with pytest.raises(RuntimeError):
        with atomic_directory(final) as tmp:
            (tmp / "config.json").write_text("{}")
            raise RuntimeError("killed half-way")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary

    with umask(0o022), atomic_directory(final) as tmp:
        (tmp / "a").write_text("1")
    assert (final / "a").read_text() == "1" and mode(final) == 0o755

    with pytest.raises(UserError, match="not empty.*--overwrite"):
        with atomic_directory(final) as tmp:
            pass
    with pytest.raises(RuntimeError):  # a failed overwrite keeps the old folder
        with atomic_directory(final, overwrite=True) as tmp:
            (tmp / "b").write_text("2")
            raise RuntimeError
    assert sorted(p.name for p in final.iterdir()) == ["a"]
    with atomic_directory(final, overwrite=True) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in final.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # old copy removed


TINY = [
    "model.vocab_size=320", "model.context=32", "model.n_layers=1", "model.d_model=16",
    "model.n_heads=2", "model.d_ff=32", "partition.forget_heads=1", "partition.forget_mlp_units=4",
    "data.builtin=bilingual", "data.builtin_documents=60", "train.batch_size=4",
    "eval.max_tokens=128", "logging.progress=false", "train.threads=1",
    "checkpoint.every=1", "checkpoint.keep=1", "train.steps=3",
]  # fmt: skip


def test_run_directory_files_readable_by_others(tmp_path):
    """Under umask 022 every file of a run (checkpoints included) is 0644, folders 0755."""
    from excise.config import load_config
    from excise.train.runner import train

    with umask(0o022):
        train(load_config(None, TINY), tmp_path / "run")
    modes = modes_under(tmp_path / "run")
    assert {"config.yaml", "model.safetensors", "meta.json", "summary.json", "partition.json"} <= set(modes)
    assert any(name.startswith("checkpoints/") for name in modes)
    wrong = {
        name: oct(m) for name, m in modes.items()
        if m != (0o755 if (tmp_path / "run" / name).is_dir() else 0o644)
    }  # fmt: skip
    assert not wrong


def test_failed_run_leaving_only_its_lock_can_be_rerun(tmp_path):
    from excise.train.checkpoints import LOCK
    from excise.train.distributed import Dist
    from excise.train.setup import prepare_run_dir

    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK).write_text("12345")  # what a run that failed before writing anything leaves
    prepare_run_dir(run, resume=False, overwrite=False, d=Dist())
    (run / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(UserError, match="not empty"):
        prepare_run_dir(run, resume=False, overwrite=False, d=Dist())
