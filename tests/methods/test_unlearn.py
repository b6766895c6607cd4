import json

import pytest
import torch
import torch.nn.functional as F
from methods_test_helpers import TINY, data, make_run

from excise.config import ModelConfig, UnlearnConfig
from excise.errors import UserError
from excise.eval.evaluate import evaluate_run
from excise.eval.relearn import relearn_run
from excise.methods.unlearn import UNLEARNERS, rmu_layers, unlearn_model, unlearn_run
from excise.model.gpt import GPT


def tiny_model() -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(**TINY))


def changed_names(before: dict, model: GPT) -> set[str]:
    return {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}


def test_rmu_updates_only_the_mlps_of_its_update_layers():
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    d = data()
    cfg = UnlearnConfig(layer=2, update_layers=[1, 2], steps=3, batch_size=4)
    _, log = unlearn_model(model, d.train["forget"], d.train["retain"], "rmu", cfg)
    changed = changed_names(before, model)
    allowed = {k for k in before if k.startswith(("blocks.1.mlp.", "blocks.2.mlp."))}
    assert changed <= allowed
    assert {k for k in allowed if k.endswith("weight")} <= changed  # every MLP weight moved
    assert log["layer"] == 2 and log["update_layers"] == [1, 2]
    assert all(p.requires_grad for p in model.parameters())  # flags restored


def test_rmu_defaults_and_steering():
    assert rmu_layers(UnlearnConfig(), 4) == (2, [0, 1, 2])
    assert rmu_layers(UnlearnConfig(layer=1), 4) == (1, [0, 1])
    with pytest.raises(UserError):
        rmu_layers(UnlearnConfig(layer=2, update_layers=[3]), 4)
    with pytest.raises(UserError):
        rmu_layers(UnlearnConfig(layer=7), 4)
    model = tiny_model()
    d = data()
    cfg = UnlearnConfig(layer=1, steps=30, batch_size=8, steering_coef=5.0, lr=1e-2, alpha=1.0)
    x = torch.from_numpy(d.train["forget"][:8, :-1])
    _, log = unlearn_model(model, d.train["forget"], d.train["retain"], "rmu", cfg)
    # forget activations at the steered layer move towards norm steering_coef
    assert log["steering_coef"] == 5.0 and log["last_loss"] < log["first_loss"]
    assert model.hidden_states(x, upto=1).norm(dim=-1).mean() > 1.5


@pytest.mark.parametrize("method", ["gradient_ascent", "gradient_difference", "npo"])
def test_loss_based_methods_raise_forget_loss(method):
    model = tiny_model()
    d = data()
    f = torch.from_numpy(d.train["forget"])
    with torch.no_grad():
        before = float(model(f[:, :-1], f[:, 1:]))
    unlearn_model(
        model, d.train["forget"], d.train["retain"], method, UnlearnConfig(steps=5, lr=1e-2, batch_size=8)
    )
    with torch.no_grad():
        assert float(model(f[:, :-1], f[:, 1:])) > before


def test_npo_loss_is_log2_scaled_at_the_reference():
    from excise.methods.unlearn import UnlearnState, npo_loss

    model = tiny_model().double()
    d = data()
    f = torch.from_numpy(d.train["forget"][:4])
    r = torch.from_numpy(d.train["retain"][:4])
    st = UnlearnState(UnlearnConfig(npo_beta=0.5), model)
    with torch.no_grad():
        excess = npo_loss(model, f, r, st) - model(r[:, :-1], r[:, 1:])
    assert float(excess) == pytest.approx((2 / 0.5) * -F.logsigmoid(torch.tensor(0.0)).item())


def test_unlearn_run_writes_an_evaluable_attackable_run(tmp_path):
    src = make_run(tmp_path / "nf")
    out = tmp_path / "rmu"
    d = data()
    unlearn_run(src, out, "rmu", ["unlearn.steps=2"], data=d)
    for name in (
        "config.yaml",
        "model.safetensors",
        "partition.json",
        "tokenizer.json",
        "meta.json",
        "summary.json",
    ):
        assert (out / name).is_file(), name
    assert json.loads((out / "partition.json").read_text()) == {}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["unlearn_method"] == "rmu" and meta["source_run"] == str(src.resolve())
    assert "unlearn:" in (out / "config.yaml").read_text() and "steps: 2" in (out / "config.yaml").read_text()
    result = evaluate_run(out, data=d)
    assert set(result) >= {"full", "calibrated"} and "ablated" not in result
    assert result["method"] == "unlearn:rmu"
    assert relearn_run(out, ["relearn.eval_every=1"], steps=1, data=d)["steps"] == [0, 1]
    unlearn_run(src, out, "gradient_ascent", data=d)  # re-running over an unlearn output is allowed
    with pytest.raises(UserError, match="not an earlier unlearning output"):
        unlearn_run(out, src, "rmu", data=d)  # would overwrite a trained run


def test_unknown_method_is_a_user_error(tmp_path):
    src = make_run(tmp_path / "nf")
    with pytest.raises(UserError, match="unknown unlearning method"):
        unlearn_run(src, tmp_path / "x", "lobotomy", data=data())
    assert set(UNLEARNERS) == {"rmu", "gradient_ascent", "gradient_difference", "npo"}
