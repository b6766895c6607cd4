"""A NaN/inf loss or gradient never reaches the weights: skipped or stopped, logged, kept."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from reliability_helpers import TINY, assert_identical, events, tiny_config, weights
from safetensors.torch import load_file

from excise.cli import main
from excise.errors import UserError
from excise.train import loop, runner

# constant schedule: a run of N steps is a prefix of a run of N + 1 steps
COMMON = ["train.schedule=constant"]
POISONED_PARAM = "blocks.1.norm2.weight"  # shared: gets a gradient on every kind of step


@contextlib.contextmanager
def _poison(model: torch.nn.Module, kind: str):
    """Make this step's loss (``loss``) or one gradient (``grad``) non-finite."""
    if kind == "loss":
        forward = model.forward
        model.forward = lambda *a, **k: forward(*a, **k) * float("nan")
        try:
            yield
        finally:
            del model.forward
    else:
        param = dict(model.named_parameters())[POISONED_PARAM]
        handle = param.register_hook(lambda g: torch.full_like(g, float("inf")))
        try:
            yield
        finally:
            handle.remove()


@pytest.fixture
def poison_step(monkeypatch):
    """``poison_step(k, kind)``: the k-th optimizer step (0-based) of the next run goes bad."""

    def arm(bad_step: int, kind: str) -> None:
        real = loop.train_step
        calls = {"n": 0}

        def train_step(model, *args, **kwargs):
            step = calls["n"]
            calls["n"] += 1
            with _poison(model, kind) if step == bad_step else contextlib.nullcontext():
                return real(model, *args, **kwargs)

        monkeypatch.setattr(loop, "train_step", train_step)

    return arm


def assert_finite(state: dict) -> None:
    for k, v in state.items():
        assert torch.isfinite(v).all(), k


@pytest.mark.parametrize("kind", ["loss", "grad"])
def test_skip_leaves_the_weights_of_the_step_before(kind, tmp_path, poison_step):
    runner.train(tiny_config(*COMMON, "train.steps=3"), tmp_path / "clean")
    poison_step(3, kind)  # the 4th and last step is bad
    run = tmp_path / "skipped"
    summary = runner.train(tiny_config(*COMMON, "train.steps=4", "train.on_nonfinite=skip"), run)
    assert summary["nonfinite_steps"] == 1
    after = weights(run)
    assert_finite(after)
    assert_identical(weights(tmp_path / "clean"), after)  # the bad step changed nothing
    where = "loss" if kind == "loss" else f"gradient of {POISONED_PARAM}"
    bad = events(run, "nonfinite")
    assert [(e["step"], e["where"]) for e in bad] == [(3, where)]
    diag = json.loads((run / "diagnostics" / "step-0000003.json").read_text())
    assert diag == {"step": 3, "where": where}
    batch = load_file(str(run / "diagnostics" / "step-0000003.safetensors"))
    assert batch["micro_batch_0"].shape == (4, 33)  # the offending token rows, kept


def test_skip_goes_on_training_after_the_bad_batch(tmp_path, poison_step):
    poison_step(1, "grad")
    run = tmp_path / "run"
    summary = runner.train(tiny_config(*COMMON, "train.steps=4", "train.on_nonfinite=skip"), run)
    assert summary["nonfinite_steps"] == 1 and summary["steps"] == 4
    assert_finite(weights(run))
    assert [e["step"] for e in events(run, "train")] == [1, 3, 4]  # step 2 had no result
    assert all(e["loss"] == e["loss"] for e in events(run, "train"))  # no NaN logged as a loss


@pytest.mark.parametrize("kind", ["loss", "grad"])
def test_stop_ends_the_run_with_a_user_error(kind, tmp_path, poison_step):
    poison_step(2, kind)
    run = tmp_path / "run"
    with pytest.raises(UserError, match="step 2: non-finite .*training stopped"):
        runner.train(tiny_config(*COMMON, "train.steps=4", "train.on_nonfinite=stop"), run)
    assert (run / "diagnostics" / "step-0000002.safetensors").is_file()
    assert [e["step"] for e in events(run, "nonfinite")] == [2]
    assert not (run / "model.safetensors").exists()  # nothing trained on past the bad step
    assert not (run / "summary.json").exists()


def test_stop_from_the_cli_exits_2_without_traceback(tmp_path, poison_step, capsys):
    poison_step(0, "loss")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("{}\n")
    code = main(["train", str(recipe), *TINY, *COMMON, "train.steps=2", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "non-finite loss" in err and "train.on_nonfinite=skip" in err and "Traceback" not in err
