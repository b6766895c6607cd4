"""Each run against the baselines of its own seed: the comparisons a report makes.

Seed-to-seed swings of a baseline can be as large as the effect measured, so every run is
compared with the no-filter and weak-filter runs that share its seed and its learning
settings (:func:`comparable_key`), at the end of training and at every eval along it; its
relearning resistance with the RMU run of its seed; and its released forget loss is
expressed as the forget-domain tokens a no-filter run needed to get that low (leakage).
Numbers only; :mod:`excise.report.markdown` formats them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from excise.methods.registry import REFERENCE_METHOD
from excise.report.analysis import MeanSpread, mean_spread
from excise.report.records import COMPARABLE_TRAIN_KEYS, RunRecord, run_label

WEAK_FILTER = "weak_filter"  # the data-filtering baseline a partitioned model must beat


def comparable_key(r: RunRecord) -> tuple:
    """Runs whose losses may be compared: same seed, model, data, tokenizer, length and
    optimisation (a run at another learning rate is not its seed's baseline)."""
    c = r.config
    train = c.get("train") or {}
    shared = [
        c.get("model"),
        c.get("data"),
        c.get("tokenizer"),
        {k: train.get(k) for k in COMPARABLE_TRAIN_KEYS},
    ]
    return r.seed, json.dumps(shared, sort_keys=True, default=str)


def recall_of(r: RunRecord) -> Any:
    """The run's label recall: its grid value, else its config's."""
    if "labels.recall" in r.values:
        return r.values["labels.recall"]
    return (r.config.get("labels") or {}).get("recall")


def partner(records: list[RunRecord], r: RunRecord, method: str, same_recall: bool) -> RunRecord | None:
    """The trained ``method`` run comparable with ``r`` (see :func:`comparable_key`)."""
    for o in records:
        if (
            o.method == method
            and o.kind == "train"
            and comparable_key(o) == comparable_key(r)
            and (not same_recall or recall_of(o) == recall_of(r))
        ):
            return o
    return None


def _relative(value: float | None, base: float | None) -> float | None:
    """``value`` relative to ``base`` in %; None when either is missing (or base is 0)."""
    return 100 * (value - base) / base if value is not None and base else None


def _difference(value: float | None, base: float | None) -> float | None:
    return value - base if value is not None and base is not None else None


# ---------------------------------------------------------------------------------------
# at the end of training


@dataclass
class PairedComparison:
    """A released model against the no-filter and weak-filter runs of its own seed."""

    label: str  # the run kind (:func:`~excise.report.records.run_label`)
    run: str
    seed: Any
    retain: float | None
    no_filter_retain: float | None
    retain_vs_no_filter: float | None  # retain loss relative to the no-filter model's, %
    forget: float | None
    weak_filter_forget: float | None
    forget_vs_weak_filter: float | None  # forget loss minus the weak filter's, nats


@dataclass
class PairedSummary:
    """Mean ± standard deviation over the seeds of one run kind's paired comparisons."""

    label: str
    retain_vs_no_filter: MeanSpread
    forget_vs_weak_filter: MeanSpread
    seeds: int


def paired_comparisons(records: list[RunRecord]) -> list[PairedComparison]:
    """Each released model against the no-filter and weak-filter runs of its own seed.

    Per run: retain loss relative to the no-filter model (%) and forget loss minus the weak
    filter's at the same recall (nats) — the comparison docs/method.md describes, taken
    seed by seed so that seed-to-seed swings of the baselines cancel. Runs with neither
    partner are left out.
    """
    rows = []
    for r in records:
        if r.method == REFERENCE_METHOD and r.kind == "train":
            continue
        _, own = r.released_losses()
        nf, weak = partner(records, r, REFERENCE_METHOD, False), partner(records, r, WEAK_FILTER, True)
        nf_retain = nf.released_losses()[1].get("retain") if nf else None
        weak_forget = weak.released_losses()[1].get("forget") if weak and weak is not r else None
        retain, forget = own.get("retain"), own.get("forget")
        pct, gain = _relative(retain, nf_retain), _difference(forget, weak_forget)
        if pct is None and gain is None:
            continue
        rows.append(PairedComparison(run_label(r), r.name, comparable_key(r)[0], retain, nf_retain, pct,
                                     forget, weak_forget, gain))  # fmt: skip
    return rows


def paired_summary(rows: list[PairedComparison]) -> list[PairedSummary]:
    """Per run kind, in first-seen order: mean ± sd of the paired figures over its seeds."""
    by_label: dict[str, tuple[list, list]] = {}
    for row in rows:
        cell = by_label.setdefault(row.label, ([], []))
        cell[0].append(row.retain_vs_no_filter)
        cell[1].append(row.forget_vs_weak_filter)
    return [
        PairedSummary(
            label,
            mean_spread(pcts),
            mean_spread(gains),
            sum(p is not None or g is not None for p, g in zip(pcts, gains)),
        )  # fmt: skip
        for label, (pcts, gains) in by_label.items()
    ]


# ---------------------------------------------------------------------------------------
# along training

# {run kind: [(run, [(eval step, retain vs no filter %, forget vs weak filter or None)])]}
PairedCurves = dict[str, list[tuple[RunRecord, list[tuple[int, float, float | None]]]]]


def _released_at_steps(r: RunRecord) -> dict[int, dict[str, float]]:
    """{eval step: the released model's (uncalibrated) losses} along a run's training."""
    variant = r.released_variant
    return {int(e["step"]): e[variant] for e in r.eval_events
            if isinstance(e.get(variant), dict) and isinstance(e.get("step"), (int, float))}  # fmt: skip


def paired_curves(records: list[RunRecord]) -> PairedCurves:
    """The same-seed comparison at every eval during training, per trained run kind.

    For each trained run other than the no-filter model that has a comparable no-filter run
    (:func:`comparable_key`) evaluated at the same steps: (step, released retain loss
    relative to the no-filter model's at that step in %, released forget loss minus the weak
    filter's at that step — None without a weak-filter eval there). Uncalibrated: only the
    end of training is calibrated. Grouped by :func:`run_label`; runs without a partner are
    left out.
    """
    curves: PairedCurves = {}
    for r in records:
        if r.kind != "train" or r.method == REFERENCE_METHOD or not r.eval_events:
            continue
        nf = partner(records, r, REFERENCE_METHOD, False)
        weak = partner(records, r, WEAK_FILTER, True)
        if nf is None:
            continue
        own, base = _released_at_steps(r), _released_at_steps(nf)
        rival = _released_at_steps(weak) if weak is not None and weak is not r else {}
        points = []
        for step in sorted(own):
            retain, nf_retain = own[step].get("retain"), base.get(step, {}).get("retain")
            if retain is None or not nf_retain:
                continue
            gain = _difference(own[step].get("forget"), rival.get(step, {}).get("forget"))
            points.append((step, 100 * (retain - nf_retain) / nf_retain, gain))
        if points:
            curves.setdefault(run_label(r), []).append((r, points))
    return curves


@dataclass
class PairedCurveStep:
    """One run kind at one eval step: mean ± sd over seeds of the two paired figures."""

    label: str
    step: int
    tokens: int | None  # training tokens at that step (None without batch size and context)
    retain_vs_no_filter: MeanSpread
    forget_vs_weak_filter: MeanSpread
    seeds: int


def paired_curve_steps(curves: PairedCurves) -> list[PairedCurveStep]:
    """Per run kind and eval step: mean ± sd over seeds of the two paired figures."""
    rows = []
    for label, runs in curves.items():
        tokens_per_step = runs[0][0].tokens_per_step
        by_step: dict[int, list[tuple[float, float | None]]] = {}
        for _, points in runs:
            for step, pct, gain in points:
                by_step.setdefault(step, []).append((pct, gain))
        for step in sorted(by_step):
            pcts, gains = zip(*by_step[step])
            rows.append(PairedCurveStep(
                label, step, step * tokens_per_step if tokens_per_step else None,
                mean_spread(list(pcts)), mean_spread(list(gains)), len(pcts),
            ))  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------------
# relearning resistance against RMU's


@dataclass
class RmuComparison:
    """An attacked run's steps-to-recover against RMU's (the paper: SGTM needs ≥ 7x)."""

    run: str
    steps_to_recover: int | None  # None: not recovered within ``steps``
    steps: int
    rmu_steps: int  # the RMU run's steps to recover

    @property
    def ratio(self) -> float:
        """Steps to recover (or the whole attack, if not recovered) over RMU's."""
        return (self.steps_to_recover if self.steps_to_recover is not None else self.steps) / self.rmu_steps


def rmu_comparisons(records: list[RunRecord]) -> list[RmuComparison]:
    """Each attacked run against the RMU run of the same seed when there is one, else the
    fastest-recovering RMU run; empty without a recovered RMU run."""
    rmu = [r for r in records if r.kind == "unlearn" and r.relearn and r.relearn.get("steps_to_recover")]
    if not rmu:
        return []
    rows = []
    for r in records:
        if r.kind == "unlearn" or not r.relearn:
            continue
        same_seed = [u for u in rmu if comparable_key(u) == comparable_key(r)]
        rows.append(RmuComparison(
            run=r.name, steps_to_recover=r.relearn.get("steps_to_recover"),
            steps=(r.relearn.get("steps") or [0])[-1],
            rmu_steps=min(u.relearn["steps_to_recover"] for u in same_seed or rmu),
        ))  # fmt: skip
    return rows
