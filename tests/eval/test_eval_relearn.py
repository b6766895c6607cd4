import json

import pytest
import torch
from eval_test_helpers import make_run

from excise.eval.evaluate import evaluate_run
from excise.eval.losses import domain_loss
from excise.eval.relearn import relearn_run, steps_to_recover
from excise.model.ablation import ablated_copy
from excise.run import load_run, write_json


@pytest.mark.parametrize(
    "reference, expected",
    [
        (3.0, 20),  # reached exactly at a point
        (2.5, 30),
        (1.0, None),  # never reached
        (9.0, 0),  # already there at step 0
        (None, None),  # no reference
    ],
)
def test_steps_to_recover_on_synthetic_curves(reference, expected):
    steps, losses = [0, 10, 20, 30], [5.0, 4.0, 3.0, 2.0]
    assert steps_to_recover(steps, losses, reference) == expected


def test_steps_to_recover_takes_the_first_crossing_of_a_noisy_curve():
    assert steps_to_recover([0, 5, 10, 15], [4.0, 2.9, 3.2, 2.0], 3.0) == 5


def test_relearn_run_writes_curve_from_the_ablated_model(tmp_path, data):
    run_dir = make_run(tmp_path / "sgtm", "sgtm")
    ref_dir = make_run(tmp_path / "nf", "no_filter", seed=1)
    write_json(ref_dir / "eval.json", {"full": {"forget": 3.5}})
    result = relearn_run(
        run_dir, ["relearn.eval_every=4", "relearn.lr=1e-2"], steps=10, reference_dir=ref_dir, data=data
    )
    on_disk = json.loads((run_dir / "relearn.json").read_text())
    assert on_disk == result
    assert result["steps"] == [0, 4, 8, 10]
    assert len(result["forget_loss"]) == len(result["retain_loss"]) == 4
    assert result["reference_forget_loss"] == 3.5
    assert result["steps_to_recover"] == steps_to_recover(result["steps"], result["forget_loss"], 3.5)
    assert result["config"]["steps"] == 10 and result["released"] == "ablated"
    run = load_run(run_dir)
    start = domain_loss(ablated_copy(run.model, run.partition), data.test["forget"], max_tokens=4096).mean
    assert result["forget_loss"][0] == pytest.approx(start, rel=1e-9)
    assert result["forget_loss"][-1] < result["forget_loss"][0]
    # the run's own weights are not modified by the attack
    assert all(
        torch.equal(a, b)
        for a, b in zip(run.model.state_dict().values(), load_run(run_dir).model.state_dict().values())
    )


def test_reference_is_computed_when_the_reference_run_has_no_eval(tmp_path, data):
    run_dir = make_run(tmp_path / "wf", "weak_filter")
    ref_dir = make_run(tmp_path / "nf", "no_filter", seed=1)
    result = relearn_run(run_dir, ["relearn.eval_every=1"], steps=2, reference_dir=ref_dir, data=data)
    expected = evaluate_run(ref_dir, data=data, calibrate=False, probes=False)["full"]["forget"]
    assert result["reference_forget_loss"] == pytest.approx(expected, rel=1e-9)
    assert result["released"] == "as-is"


def test_forget_only_attack_and_example_cap(tmp_path, data):
    run_dir = make_run(tmp_path / "nf", "no_filter")
    del data.train["retain"], data.train["adjacent"]
    result = relearn_run(run_dir, ["relearn.max_examples=2", "relearn.eval_every=3"], steps=3, data=data)
    assert result["steps"] == [0, 3] and result["steps_to_recover"] is None
