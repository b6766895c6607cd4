import json

import pytest
import torch
from eval_test_helpers import make_run

import excise.eval.evaluate as evaluate_mod
from excise.config import DOMAINS
from excise.eval.evaluate import evaluate_run
from excise.model.partition import build_model
from excise.run import load_run, save_model


def check_contract(result: dict, variants: set[str]) -> None:
    for v in ("full", "ablated", "calibrated"):
        assert (v in result) == (v in variants), v
    for v in variants:
        assert set(result[v]) == set(DOMAINS)
        assert all(isinstance(x, float) for x in result[v].values())
        for d in DOMAINS:
            det = result["details"][v][d]
            assert det["mean"] == result[v][d]
            assert isinstance(det["n_tokens"], int) and det["n_tokens"] == 8 * 16
            assert det["ci_low"] <= det["mean"] <= det["ci_high"]
    assert isinstance(result["cache_key"], str)


def test_partitioned_run_reports_full_ablated_calibrated(tmp_path, data):
    run = make_run(tmp_path / "sgtm", "sgtm")
    result = evaluate_run(run, data=data)
    check_contract(result, {"full", "ablated", "calibrated"})
    assert result["calibration"]["applied_to"] == "ablated"
    assert result["full"]["forget"] != result["ablated"]["forget"]
    on_disk = json.loads((run / "eval.json").read_text())
    assert on_disk == result


def test_unpartitioned_run_calibrates_the_full_model(tmp_path, data):
    run = make_run(tmp_path / "nf", "no_filter")
    result = evaluate_run(run, data=data)
    check_contract(result, {"full", "calibrated"})
    assert result["calibration"]["applied_to"] == "full"
    assert result["partitioned"] is False


def test_absent_domain_is_omitted(tmp_path, data):
    run = make_run(tmp_path / "nf", "no_filter")
    del data.train["adjacent"], data.test["adjacent"]
    result = evaluate_run(run, data=data, calibrate=False)
    assert set(result["full"]) == {"forget", "retain"} and "calibrated" not in result


def test_cache_hit_on_same_inputs_and_miss_on_changed_weights_or_config(tmp_path, data, monkeypatch):
    run = make_run(tmp_path / "sgtm", "sgtm")
    first = evaluate_run(run, data=data)
    calls = []
    real = evaluate_mod.evaluate_model
    monkeypatch.setattr(evaluate_mod, "evaluate_model", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert evaluate_run(run, data=data) == first and calls == []
    changed = evaluate_run(run, ["eval.calibration_steps=3"], data=data)
    assert calls == [1] and changed["cache_key"] != first["cache_key"]
    # new weights, same everything else: recomputed
    loaded = load_run(run)
    model, _ = build_model(loaded.config.model, loaded.config.partition, seed=1)
    save_model(run, model, loaded.partition)
    again = evaluate_run(run, data=data)
    assert calls == [1, 1] and again["full"] != first["full"]
    # changed data: recomputed
    data.test["forget"] = data.test["forget"][:4]
    evaluate_run(run, data=data)
    assert len(calls) == 3


def test_eval_override_with_a_bad_key_is_a_user_error(tmp_path, data):
    from excise.errors import UserError

    run = make_run(tmp_path / "nf", "no_filter")
    with pytest.raises(UserError, match="eval.nonsense"):
        evaluate_run(run, ["eval.nonsense=1"], data=data)


def test_fact_probes_use_lowest_answer_loss(tmp_path, data):
    from types import SimpleNamespace

    from excise.eval.probes import choice_losses, fact_accuracy

    class ToyTokenizer:  # one token per character code
        def encode(self, text):
            return SimpleNamespace(ids=[ord(c) % 64 for c in text])

    run = load_run(make_run(tmp_path / "sgtm", "sgtm"))
    probe = SimpleNamespace(question="Q: x?", answer="ab", choices=["ab", "cd", "ef"], topic="t")
    losses = choice_losses(run.model, ToyTokenizer(), probe.question, probe.choices)
    best = probe.choices[min(range(3), key=losses.__getitem__)]
    acc = fact_accuracy(run.model, ToyTokenizer(), [probe])
    assert acc == (1.0 if best == "ab" else 0.0)
    assert torch.is_tensor(run.model.embed.weight)


def test_spanish_share():
    from excise.eval.probes import forget_language_share, spanish_share

    assert spanish_share("el perro y la casa de los niños") == 1.0
    assert spanish_share("the dog and the house of the children") == 0.0
    assert spanish_share("12 34") is None
    assert forget_language_share(["el y la", "the and", "123"]) == 0.5
