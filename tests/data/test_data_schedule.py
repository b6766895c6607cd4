"""The step schedule: pure in (seed, step), domain mix, and label noise within sampling error."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from excise.data import StepSchedule
from excise.errors import UserError

SIZES = {"forget": 300, "adjacent": 200, "retain": 500}


def _close(measured, expected, n, sigmas=4.0):
    """|measured - expected| within `sigmas` binomial standard errors over n trials."""
    se = math.sqrt(max(expected * (1 - expected), 1e-12) / n)
    assert abs(measured - expected) <= sigmas * se + 1e-9, (measured, expected, n)


def test_at_is_pure_in_seed_and_step(make_config):
    config = make_config(train__batch_size=8)
    schedule = StepSchedule(config, SIZES)
    steps = list(range(200))
    forward = [schedule.at(s) for s in steps]
    shuffled = steps[:]
    random.Random(0).shuffle(shuffled)
    fresh = StepSchedule(config, dict(SIZES))
    by_step = {s: fresh.at(s) for s in shuffled}
    for s, a in zip(steps, forward):
        b = by_step[s]
        assert (a.step, a.domain, a.label) == (b.step, b.domain, b.label)
        np.testing.assert_array_equal(a.indices, b.indices)
        assert a.indices.dtype == np.int64 and len(a.indices) == 8
        assert len(set(a.indices.tolist())) == 8  # no repeats within a step
        assert a.indices.max() < SIZES[a.domain]
    other = StepSchedule(make_config(seed=1, train__batch_size=8), SIZES)
    assert [other.at(s).domain for s in steps] != [a.domain for a in forward]


def test_small_domain_samples_with_replacement(make_config):
    schedule = StepSchedule(make_config(train__batch_size=8), {"forget": 3, "retain": 5})
    for s in range(50):
        st = schedule.at(s)
        assert len(st.indices) == 8 and st.indices.max() < (3 if st.domain == "forget" else 5)


def test_natural_mix_and_weights(make_config):
    n = 20000
    stats = StepSchedule(make_config(), SIZES).statistics(n)
    for d, size in SIZES.items():
        _close(stats["domain_share"][d], size / 1000, n)
    weighted = make_config(
        data__builtin=None,
        data__forget={"path": "f.jsonl", "weight": 1.0},
        data__retain={"path": "r.jsonl", "weight": 3.0},
    )
    stats = StepSchedule(weighted, {"forget": 10, "retain": 1000}).statistics(n)
    _close(stats["domain_share"]["forget"], 0.25, n)


def test_recall_and_fpr_match_the_request(make_config):
    n = 20000
    config = make_config(
        labels__recall=0.8, labels__fpr=0.05, labels__adjacent_fpr=0.2, labels__retain_fraction=0.25
    )
    stats = StepSchedule(config, SIZES).statistics(n)
    forget_n = sum(stats["counts"]["forget"].values())
    _close(stats["recall"], 0.8, forget_n)
    assert stats["counts"]["forget"]["retain"] == 0  # undiscovered forget data is "default"
    for d, rate in (("retain", 0.05), ("adjacent", 0.2)):
        _close(stats["fpr_by_domain"][d], rate, sum(stats["counts"][d].values()))
    retain_n = sum(stats["counts"]["retain"].values())
    not_flagged = retain_n - stats["counts"]["retain"]["forget"]
    _close(stats["counts"]["retain"]["retain"] / not_flagged, 0.25, not_flagged)


def test_precision_is_met(make_config):
    n = 20000
    config = make_config(labels__recall=0.9, labels__precision=0.8)
    stats = StepSchedule(config, SIZES).statistics(n)
    flagged = sum(c["forget"] for c in stats["counts"].values())
    _close(stats["precision"], 0.8, flagged)
    _close(stats["recall"], 0.9, sum(stats["counts"]["forget"].values()))
    # fpr solved from precision: 0.3*0.9*(0.2/0.8) / 0.7
    assert stats["requested"]["fpr"]["retain"] == pytest.approx(0.3 * 0.9 * 0.25 / 0.7)


def test_perfect_labels_by_default(make_config):
    stats = StepSchedule(make_config(), SIZES).statistics(2000)
    assert stats["recall"] == 1.0 and stats["precision"] == 1.0 and stats["fpr"] == 0.0


def test_unreachable_precision_and_unknown_domain(make_config):
    with pytest.raises(UserError, match="unreachable"):
        StepSchedule(make_config(labels__recall=1.0, labels__precision=0.01), {"forget": 900, "retain": 100})
    with pytest.raises(UserError, match="unknown domain"):
        StepSchedule(make_config(), {"forget": 10, "spanish": 10})
    with pytest.raises(UserError, match="no training sequences"):
        StepSchedule(make_config(), {"forget": 10, "retain": 0})


def test_classifier_labels_follow_the_batch_majority(make_config):
    config = make_config(labels__labeller="classifier", labels__retain_fraction=0.0, train__batch_size=5)
    flags = {"forget": np.ones(300, bool), "adjacent": np.zeros(200, bool), "retain": np.zeros(500, bool)}
    flags["forget"][:100] = False
    flags["retain"][:250] = True
    schedule = StepSchedule(config, SIZES, flags)
    for s in range(300):
        st = schedule.at(s)
        majority = flags[st.domain][st.indices].sum() >= 3
        assert st.label == ("forget" if majority else "default")
    with pytest.raises(UserError, match="no classifier flags"):
        StepSchedule(config, SIZES)


def test_vectorised_statistics_equal_stepwise_counts(make_config):
    config = make_config(labels__recall=0.7, labels__fpr=0.1, labels__retain_fraction=0.3)
    schedule = StepSchedule(config, SIZES)
    counts = {d: {lab: 0 for lab in ("forget", "retain", "default")} for d in SIZES}
    for s in range(3000):
        st = schedule.at(s)
        counts[st.domain][st.label] += 1
    assert schedule.statistics(3000)["counts"] == counts
