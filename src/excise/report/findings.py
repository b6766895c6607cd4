"""The demo's findings and the published tables, computed from run directories.

Everything a document states about a run — the README's demo table, its summary sentence,
the tables of ``docs/results.md`` — is produced here from the runs' own files, never typed
by hand, and stamped with the commit and library versions that produced the runs
(``meta.json``). ``excise report DIR --table NAME`` prints one of :data:`TABLES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from excise.report.cells import md_table
from excise.report.records import RunRecord
from excise.run_files import META, Meta, read_record_lenient

LIBRARIES_SHOWN = ("torch", "tokenizers", "numpy")


def _meta(r: RunRecord) -> dict:
    return read_record_lenient(Path(r.dir) / META, Meta) or {}


def provenance(records: list[RunRecord]) -> str:
    """One line naming the commit(s), library versions and CPU path the runs came from."""
    stamps = []
    for r in records:
        m = _meta(r)
        if not m:
            continue
        libs = m.get("libraries") or {"torch": m.get("torch")}
        commit = (m.get("git_commit") or "unknown commit")[:10]
        if m.get("git_dirty"):
            commit += " (with uncommitted changes)"
        versions = ", ".join(f"{k} {libs[k]}" for k in LIBRARIES_SHOWN if libs.get(k))
        cpu = (
            f"; CPU kernels {m['cpu_capability']}"
            if m.get("cpu_capability") and m.get("device", "cpu") == "cpu"
            else ""
        )
        stamp = f"excise {m.get('excise', '?')} at commit {commit}; {versions}{cpu}"
        if stamp not in stamps:
            stamps.append(stamp)
    if not stamps:
        return "Measured with: unknown (the runs have no meta.json)."
    return "Measured with " + " | ".join(stamps) + "."


# ---------------------------------------------------------------------------------------
# the demo


def _first(records: list[RunRecord], method: str, kind: str = "train") -> RunRecord | None:
    return next((r for r in records if r.method == method and r.kind == kind), None)


def _recovery(r: RunRecord | None) -> str:
    if r is None or not r.relearn:
        return "–"
    rec = r.relearn.get("steps_to_recover")
    return str(rec) if rec is not None else f"> {(r.relearn.get('steps') or [0])[-1]}"


def demo_rows(records: list[RunRecord]) -> list[list[Any]]:
    """The demo table: SGTM's full and safe model, the filters, RMU (released models,
    calibrated; the SGTM full model is not released and shows uncalibrated losses)."""
    rows = []
    sgtm = _first(records, "sgtm")
    if sgtm is not None:
        full = sgtm.final_losses("full")
        rows.append(["SGTM, full model (uncalibrated)", full.get("retain"), full.get("forget"), "–"])
        _, safe = sgtm.released_losses()
        rows.append(
            [
                "SGTM, safe model (forget units ablated)",
                safe.get("retain"),
                safe.get("forget"),
                _recovery(sgtm),
            ]
        )
    names = {"no_filter": "no filter", "weak_filter": "weak filter (skips labelled Spanish)",
             "strict_filter": "strict filter (never sees Spanish)"}  # fmt: skip
    for method, name in names.items():
        r = _first(records, method)
        if r is None:
            continue
        _, losses = r.released_losses()
        rows.append([name, losses.get("retain"), losses.get("forget"),
                     "reference" if method == "no_filter" else _recovery(r)])  # fmt: skip
    rmu = next((r for r in records if r.kind == "unlearn"), None)
    if rmu is not None:
        _, losses = rmu.released_losses()
        rows.append(
            [
                f"no filter + {rmu.method.upper()} unlearning",
                losses.get("retain"),
                losses.get("forget"),
                _recovery(rmu),
            ]
        )
    return rows


DEMO_HEADER = [
    "model",
    "English (retain) loss ↓",
    "Spanish (forget) loss ↑",
    "attack steps to recover Spanish",
]


@dataclass
class DemoFindings:
    """The numbers the demo's conclusions are stated in (None where a run is missing)."""

    ablation_forget_gain: float | None  # SGTM safe minus full model, forget loss (nats)
    ablation_retain_cost: float | None  # same, retain loss (%), uncalibrated
    forget_vs_weak: float | None  # SGTM safe minus weak filter, calibrated forget (nats)
    retain_vs_no_filter: float | None  # SGTM safe vs no filter, calibrated retain (%)
    retain_vs_weak: float | None  # SGTM safe vs weak filter, calibrated retain (%)
    sgtm_recovery: int | None  # attack steps to recover (None: not within the budget)
    rmu_recovery: int | None
    attack_budget: int | None


def _pct(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else 100.0 * (a - b) / b


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def demo_findings(records: list[RunRecord]) -> DemoFindings:
    sgtm, nf, weak = _first(records, "sgtm"), _first(records, "no_filter"), _first(records, "weak_filter")
    rmu = next((r for r in records if r.kind == "unlearn"), None)
    full = sgtm.final_losses("full") if sgtm else {}
    ablated = sgtm.final_losses("ablated") if sgtm else {}
    safe = sgtm.released_losses()[1] if sgtm else {}
    nf_l = nf.released_losses()[1] if nf else {}
    weak_l = weak.released_losses()[1] if weak else {}
    relearn = (sgtm.relearn or {}) if sgtm else {}
    return DemoFindings(
        ablation_forget_gain=_diff(ablated.get("forget"), full.get("forget")),
        ablation_retain_cost=_pct(ablated.get("retain"), full.get("retain")),
        forget_vs_weak=_diff(safe.get("forget"), weak_l.get("forget")),
        retain_vs_no_filter=_pct(safe.get("retain"), nf_l.get("retain")),
        retain_vs_weak=_pct(safe.get("retain"), weak_l.get("retain")),
        sgtm_recovery=relearn.get("steps_to_recover"),
        rmu_recovery=((rmu.relearn or {}).get("steps_to_recover") if rmu else None),
        attack_budget=(relearn.get("steps") or [None])[-1],
    )


def demo_summary(f: DemoFindings) -> str:
    """Where SGTM wins and where it pays, in words chosen by the signs of this run's numbers."""
    parts = []
    if f.ablation_forget_gain is not None and f.ablation_retain_cost is not None:
        parts.append(
            f"One SGTM run gives two models: ablating its forget units raises the Spanish loss by "
            f"{f.ablation_forget_gain:.2f} nats and changes the English loss by "
            f"{f.ablation_retain_cost:+.1f}%."
        )
    if f.forget_vs_weak is not None:
        side = "above" if f.forget_vs_weak > 0 else "below"
        parts.append(
            f"Its safe model's Spanish loss is {abs(f.forget_vs_weak):.2f} nats {side} the weak "
            "filter's, which trains on the Spanish its labeller misses."
        )
    if f.sgtm_recovery is None and f.rmu_recovery is not None and f.attack_budget:
        parts.append(
            f"Fine-tuning on Spanish undoes RMU's unlearning in {f.rmu_recovery} steps; SGTM's safe "
            f"model is not back at the no-filter model's Spanish after {f.attack_budget}."
        )
    elif f.sgtm_recovery is not None and f.rmu_recovery is not None:
        parts.append(
            f"Fine-tuning on Spanish recovers SGTM's safe model in {f.sgtm_recovery} steps and RMU's in "
            f"{f.rmu_recovery} ({f.sgtm_recovery / f.rmu_recovery:.1f}x)."
        )
    if f.retain_vs_no_filter is not None:
        cost = "pays" if f.retain_vs_no_filter > 0 else "gains"
        weak = "" if f.retain_vs_weak is None else f" ({f.retain_vs_weak:+.1f}% against the weak filter)"
        parts.append(
            f"Where SGTM {cost}: its safe model's English loss is {f.retain_vs_no_filter:+.1f}% "
            f"against the no-filter model's{weak}."
        )
    return " ".join(parts)


@dataclass(frozen=True)
class Conclusion:
    """A claim the demo makes, and the test of it on one run's findings."""

    name: str
    statement: str
    holds: Callable[[DemoFindings], bool]


def _outlasts_rmu(f: DemoFindings) -> bool:
    if f.rmu_recovery is None:
        return False  # RMU was not undone within the budget: nothing to outlast
    return f.sgtm_recovery is None or f.sgtm_recovery > f.rmu_recovery


# What `excise demo` concludes; the README states them, and a slow test checks them on
# two seeds (tests/report/test_demo_conclusions.py).
DEMO_CONCLUSIONS: tuple[Conclusion, ...] = (
    Conclusion("two models", "ablating SGTM's forget units raises its Spanish loss by at least "
               "1 nat and changes its English loss by at most 3%",
               lambda f: f.ablation_forget_gain is not None and f.ablation_forget_gain >= 1.0
               and abs(f.ablation_retain_cost) <= 3.0),
    Conclusion("removal beyond the weak filter", "SGTM's safe model's Spanish loss is at least "
               "0.25 nats above the weak filter's",
               lambda f: f.forget_vs_weak is not None and f.forget_vs_weak >= 0.25),
    Conclusion("outlasts RMU", "fine-tuning on Spanish undoes RMU's unlearning before it undoes "
               "SGTM's removal", _outlasts_rmu),
    Conclusion("pays in English", "SGTM's safe model's English loss is above the no-filter "
               "model's", lambda f: f.retain_vs_no_filter is not None and f.retain_vs_no_filter > 0),
)  # fmt: skip


def check_conclusions(f: DemoFindings) -> dict[str, bool]:
    return {c.name: bool(c.holds(f)) for c in DEMO_CONCLUSIONS}


def readme_table(records: list[RunRecord]) -> str:
    return md_table(DEMO_HEADER, demo_rows(records))


def seeds_table(records: list[RunRecord]) -> str:
    """The demo's findings and conclusions per seed (runs of several demos merged)."""
    by_seed: dict = {}
    for r in records:
        by_seed.setdefault(r.seed, []).append(r)
    rows = []
    for seed in sorted(by_seed, key=str):
        f = demo_findings(by_seed[seed])
        held = check_conclusions(f)
        rows.append([
            seed, f.ablation_forget_gain, None if f.ablation_retain_cost is None else f"{f.ablation_retain_cost:+.1f}%",
            f.forget_vs_weak, None if f.retain_vs_no_filter is None else f"{f.retain_vs_no_filter:+.1f}%",
            None if f.retain_vs_weak is None else f"{f.retain_vs_weak:+.1f}%",
            f.sgtm_recovery if f.sgtm_recovery is not None else f"> {f.attack_budget}", f.rmu_recovery,
            "all hold" if all(held.values()) else "fails: " + ", ".join(n for n, ok in held.items() if not ok),
        ])  # fmt: skip
    header = ["seed", "ablation: Spanish gain (nats)", "ablation: English change", "Spanish vs weak filter (nats)",
              "English vs no filter", "English vs weak filter", "SGTM recovered in", "RMU recovered in",
              "the demo's conclusions"]  # fmt: skip
    return md_table(header, rows)
