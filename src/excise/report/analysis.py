"""The numbers of a report, computed from run records; no formatting and no drawing.

Each function takes :class:`~excise.report.records.RunRecord` s and returns plain numbers
(or small dataclasses of them) for one part of the report: the headline, the
undiscovered-rate curves, the relearning attack, training summaries, the gradient-norm
split. The comparisons of each run with the baselines of its own seed (and RMU's) are in
:mod:`excise.report.baselines`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from excise.report.records import VARIANTS, RunRecord, run_label

DOMAIN_ORDER = ("forget", "retain", "adjacent")
MeanSpread = tuple[float | None, float]


def mean_spread(values: list[float]) -> MeanSpread:
    """Mean and standard deviation (0 for one value) of the non-missing values."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None, 0.0
    arr = np.asarray(vals, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def headline_rows(records: list[RunRecord]) -> list[dict]:
    """Per run: released model's retain / forget (/ adjacent) loss and steps to recover."""
    rows = []
    for r in records:
        variant, losses = r.released_losses()
        label = run_label(r, extras=False)
        rows.append({
            "run": r.name, "method": label, "variant": variant,
            "retain": losses.get("retain"), "forget": losses.get("forget"),
            "adjacent": losses.get("adjacent"),
            "steps_to_recover": (r.relearn or {}).get("steps_to_recover"),
            "relearn_steps": ((r.relearn or {}).get("steps") or [None])[-1],
            "attacked": r.relearn is not None,
        })  # fmt: skip
    return rows


def loss_domains(records: list[RunRecord]) -> list[str]:
    """The domains any run has a final loss for, in report order."""
    return [d for d in DOMAIN_ORDER if any(d in r.final_losses(v) for r in records for v in VARIANTS)]


# ---------------------------------------------------------------------------------------
# against the undiscovered-forget rate


@dataclass
class UndiscoveredCurve:
    """One run kind's released losses against the undiscovered-forget rate (1 - recall)."""

    method: str
    x: list[float]
    forget: list[MeanSpread]
    retain: list[MeanSpread]
    n: list[int]  # runs (seeds) with a forget loss at each rate


@dataclass
class UndiscoveredReference:
    """A run kind trained without a recall axis: a horizontal reference line."""

    method: str
    forget: MeanSpread
    retain: MeanSpread
    n: int


def undiscovered_groups(
    records: list[RunRecord],
) -> tuple[dict[str, UndiscoveredCurve], dict[str, UndiscoveredReference]]:
    """Mean ± spread over seeds of released forget / retain loss per (method, other axes, rate).

    Runs whose grid values include ``labels.recall`` form curves; those without (no_filter,
    strict_filter references) become horizontal reference lines. Both keyed by run label.
    """
    curves: dict[str, dict[float, dict[str, list]]] = {}
    methods: dict[str, str] = {}
    refs: dict[str, dict[str, list]] = {}
    for r in records:
        _, losses = r.released_losses()
        if not losses:
            continue
        label = run_label(r, skip=("labels.recall",), ablated=False)
        if "labels.recall" in r.values:
            rate = round(1.0 - float(r.values["labels.recall"]), 6)
            cell = curves.setdefault(label, {}).setdefault(rate, {"forget": [], "retain": []})
            methods[label] = r.method
        else:
            cell = refs.setdefault(label, {"forget": [], "retain": [], "method": r.method})
        cell["forget"].append(losses.get("forget"))
        cell["retain"].append(losses.get("retain"))
    groups = {}
    for label, by_rate in curves.items():
        xs = sorted(by_rate)
        groups[label] = UndiscoveredCurve(
            method=methods[label], x=xs,
            forget=[mean_spread(by_rate[x]["forget"]) for x in xs],
            retain=[mean_spread(by_rate[x]["retain"]) for x in xs],
            n=[len([v for v in by_rate[x]["forget"] if v is not None]) for x in xs],
        )  # fmt: skip
    references = {
        label: UndiscoveredReference(
            method=cell["method"],
            forget=mean_spread(cell["forget"]),
            retain=mean_spread(cell["retain"]),
            n=len([v for v in cell["forget"] if v is not None]),
        )  # fmt: skip
        for label, cell in refs.items()
    }
    return groups, references


# ---------------------------------------------------------------------------------------
# the relearning attack


@dataclass
class RelearnOutcome:
    """One attacked run: forget loss before and after, and when it reached the reference."""

    run: str
    method: str
    released: Any  # which model was attacked, as relearn.json names it
    forget_before: float | None
    reference_forget_loss: float | None
    steps_to_recover: int | None  # None: not recovered within ``steps``
    steps: int
    forget_after: float | None


def relearn_outcomes(records: list[RunRecord]) -> list[RelearnOutcome]:
    """Every run with a relearn.json, in record order."""
    rows = []
    for r in records:
        rl = r.relearn
        if not rl:
            continue
        curve = rl.get("forget_loss") or []
        rows.append(RelearnOutcome(
            run=r.name, method=r.method, released=rl.get("released"),
            forget_before=curve[0] if curve else None,
            reference_forget_loss=rl.get("reference_forget_loss"),
            steps_to_recover=rl.get("steps_to_recover"), steps=(rl.get("steps") or [0])[-1],
            forget_after=curve[-1] if curve else None,
        ))  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------------
# training and the gradient-norm split


def training_rows(records: list[RunRecord]) -> list[list[Any]]:
    """Per trained run: name, method, steps, skipped steps, tokens, wall seconds, tokens/s."""
    rows = []
    for r in records:
        s = r.summary or {}
        if "steps" not in s:
            continue
        rows.append([r.name, r.method, s.get("steps"), s.get("skipped_steps"), s.get("tokens"),
                     s.get("wall_seconds"), s.get("tokens_per_second")])  # fmt: skip
    return rows


def absorption_share(record: dict) -> dict[str, float]:
    """{batch kind: share of the squared gradient norm on forget units}, summed over layers."""
    norms = record.get("grad_norms", record)
    shares = {}
    for kind, layers in norms.items():
        if not isinstance(layers, list) or not layers or not isinstance(layers[0], dict):
            continue
        f = sum(float(x.get("forget", 0.0)) ** 2 for x in layers)
        r = sum(float(x.get("retain", 0.0)) ** 2 for x in layers)
        if f + r > 0:
            shares[kind] = f / (f + r)
    return shares
