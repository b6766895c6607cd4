"""Damaged checkpoints, a full disk during a save, and two processes on one run directory."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
from reliability_helpers import TINY, assert_identical, tiny_config, weights

from excise.cli import main
from excise.errors import UserError
from excise.train import checkpoints
from excise.train.runner import train

RUN = ["train.steps=6", "checkpoint.every=2", "checkpoint.keep=2"]  # checkpoints at 2 and 4


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 6-step run whose checkpoints (steps 2 and 4) are whole."""
    base = tmp_path_factory.mktemp("finished")
    train(tiny_config(*RUN), base / "run")
    return base / "run"


def flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


CORRUPTIONS = {
    "flipped bytes in model.safetensors": (lambda d: flip_bytes(d / "model.safetensors"), "model.safetensors does not match its checksum"),
    "truncated train_state.pt": (lambda d: truncate(d / "train_state.pt"), "train_state.pt does not match its checksum"),
    "deleted manifest.json": (lambda d: (d / "manifest.json").unlink(), "manifest.json missing"),
    "deleted fit.json": (lambda d: (d / "fit.json").unlink(), "fit.json missing"),
    "manifest listing nothing": (lambda d: (d / "manifest.json").write_text('{"step": 4, "sha256": {}}'), "does not list every"),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_verify_names_what_is_damaged(kind, finished, tmp_path):
    step_dir = tmp_path / "step-0000004"
    shutil.copytree(finished / "checkpoints" / "step-0000004", step_dir)
    assert checkpoints.verify(step_dir) is None
    damage, expected = CORRUPTIONS[kind]
    damage(step_dir)
    assert expected in checkpoints.verify(step_dir)


RESUMED = [k if i < 3 else pytest.param(k, marks=pytest.mark.slow) for i, k in enumerate(CORRUPTIONS)]


@pytest.mark.parametrize("kind", RESUMED)
def test_damaged_checkpoint_is_reported_and_the_previous_one_used(kind, finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    damage, expected = CORRUPTIONS[kind]
    damage(run / "checkpoints" / "step-0000004")
    assert expected in checkpoints.verify(run / "checkpoints" / "step-0000004")
    assert checkpoints.verify(run / "checkpoints" / "step-0000002") is None
    train(tiny_config(*RUN), run, resume=True)
    err = capsys.readouterr().err
    assert "step-0000004 is damaged" in err and expected in err
    assert "resuming from checkpoint step-0000002" in err
    # retrained from step 2: the same weights as the run that was never damaged
    assert_identical(weights(finished), weights(run))


def test_every_checkpoint_damaged_starts_again_from_step_zero(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    for step_dir in checkpoints.step_dirs(run):
        flip_bytes(step_dir / "model.safetensors")
    train(tiny_config(*RUN), run, resume=True)
    assert "no whole checkpoint left; starting again from step 0" in capsys.readouterr().err
    assert_identical(weights(finished), weights(run))


def test_disk_full_during_a_save_keeps_the_previous_checkpoint(finished, tmp_path, monkeypatch):
    real_save_model = checkpoints.save_model

    def save_then_run_out_of_space(directory, model, partition):
        real_save_model(directory, model, partition)  # half the checkpoint is on disk
        if "step-0000004" in directory.name:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_model", save_then_run_out_of_space)
    run = tmp_path / "run"
    with pytest.raises(UserError) as e:
        train(tiny_config(*RUN), run)
    message = str(e.value)
    assert "could not write the checkpoint for step 4" in message
    assert "No space left on device" in message and "(step-0000002) is intact" in message
    assert [p.name for p in checkpoints.step_dirs(run)] == ["step-0000002"]
    assert checkpoints.verify(run / "checkpoints" / "step-0000002") is None
    assert not list((run / "checkpoints").glob(".tmp-*")), "half-written checkpoint left behind"
    assert not (run / "model.safetensors").exists()
    # space freed: --resume finishes the run exactly as if nothing had happened
    monkeypatch.setattr(checkpoints, "save_model", real_save_model)
    train(tiny_config(*RUN), run, resume=True)
    assert_identical(weights(finished), weights(run))


def test_disk_full_reaches_the_cli_as_exit_code_2(tmp_path, monkeypatch, capsys):
    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_model", no_space)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("{}\n")
    code = main(["train", str(recipe), *TINY, *RUN, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and "previous checkpoint (none)" in err
    assert "Traceback" not in err


def test_second_writer_of_a_run_directory_refuses(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = weights(run)
    holder = checkpoints.RunLock(run)  # stands for a training process that is still running
    holder.acquire()
    try:
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text("{}\n")
        for flag in ["--resume", "--overwrite"]:
            code = main(["train", str(recipe), *TINY, *RUN, "--out", str(run), flag])
            err = capsys.readouterr().err
            assert code == 2, err
            assert "is in use by another process" in err and "Traceback" not in err
        # --overwrite did not delete the live run's files
        assert_identical(before, weights(run))
        assert len(checkpoints.step_dirs(run)) == 2
    finally:
        holder.release()
    # once the first writer is gone, the lock is free again
    checkpoints.RunLock(run).ensure_free()


@pytest.mark.slow
def test_second_writer_refused_as_a_real_process(finished, tmp_path):
    from reliability_helpers import assert_user_error, empty_recipe, run_cli

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    holder = checkpoints.RunLock(run)
    holder.acquire()
    try:
        done = run_cli(
            "train",
            str(empty_recipe(tmp_path)),
            *TINY,
            *RUN,
            "--out",
            str(run),
            "--resume",
            cache=tmp_path / "cache",
        )
        assert_user_error(done, "is in use by another process")
    finally:
        holder.release()
