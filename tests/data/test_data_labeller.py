"""The real labeller: trained on a small seed set, measured on held-out documents."""

from __future__ import annotations

import numpy as np
import pytest

from excise.data import StepSchedule, prepare_data


def test_labeller_on_bilingual_corpus(make_config):
    config = make_config(
        labels__labeller="classifier",
        labels__seed_documents=60,
        data__builtin_documents=150,
        model__context=64,
    )
    prepared = prepare_data(config, progress=False)
    report = prepared.labeller_report
    assert report["held_out"]["support"]["forget"] == len(prepared.test["forget"])
    assert report["precision"] > 0.9 and report["recall"] > 0.9 and report["accuracy"] > 0.9
    assert report["seed_sequences"] <= 61
    flags = prepared.forget_flags
    assert set(flags) == set(prepared.train)
    assert all(len(flags[d]) == len(prepared.train[d]) and flags[d].dtype == bool for d in flags)
    assert flags["forget"].mean() > 0.9 and flags["retain"].mean() < 0.1
    # the schedule uses the classifier's decisions
    stats = StepSchedule(config, {d: len(a) for d, a in prepared.train.items()}, flags).statistics(500)
    assert stats["recall"] > 0.9 and stats["precision"] > 0.9


def test_labeller_is_deterministic(make_config):
    config = make_config(labels__labeller="classifier", labels__seed_documents=40)
    a = prepare_data(config, progress=False)
    b = prepare_data(config, progress=False)
    for d in a.forget_flags:
        np.testing.assert_array_equal(a.forget_flags[d], b.forget_flags[d])
    assert a.labeller_report == b.labeller_report


def test_dual_fit_equals_primal_gradient_descent_and_sparse_scores_equal_dense():
    from excise.data.labeller import TokenClassifier

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 50, size=(12, 9))
    labels = (tokens[:, 0] > 25).astype(float)
    model = TokenClassifier(vocab_size=50).fit(tokens, labels, steps=50, lr=1.0)
    x = model.features(tokens).astype(np.float64)
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(50):  # the primal iteration the dual form must reproduce
        p = 1 / (1 + np.exp(-(x @ w + b)))
        w -= 1.0 * (x.T @ (p - labels) / len(labels) + model.l2 * w)
        b -= 1.0 * float((p - labels).mean())
    np.testing.assert_allclose(model.weights, w, rtol=1e-4, atol=1e-6)
    assert model.bias == pytest.approx(b)
    np.testing.assert_allclose(model.decision(tokens), x @ model.weights + model.bias, rtol=1e-4, atol=1e-5)
