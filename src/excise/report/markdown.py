"""``excise report DIR [DIR ...]``: a markdown report with PNG plots of sweep / demo directories.

Records (:mod:`excise.report.records`) → numbers (:mod:`~excise.report.analysis`,
:mod:`~excise.report.baselines`, :mod:`~excise.report.leakage`) → text, here: one function
per section of the report, each returning its lines (none when there is nothing to show)
and naming what it lacks in ``missing``, which becomes the report's "Missing" section
instead of a failure. The plots are drawn by :mod:`excise.report.plots`.

Writes ``DIR/report.md`` and ``DIR/plots/*.png`` (or into ``--out``; several directories,
e.g. the seeds of one study run as separate sweeps, are merged into one report there);
returns the report path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from excise.errors import UserError
from excise.methods.registry import REFERENCE_METHOD
from excise.report import plots
from excise.report.analysis import (
    headline_rows,
    loss_domains,
    relearn_outcomes,
    training_rows,
    undiscovered_groups,
)  # fmt: skip
from excise.report.baselines import (
    RmuComparison,
    paired_comparisons,
    paired_curve_steps,
    paired_curves,
    paired_summary,
    rmu_comparisons,
)  # fmt: skip
from excise.report.cells import md_table, not_recovered, pm, signed, signed_pm
from excise.report.leakage import leakage
from excise.report.records import VARIANTS, RunRecord, failed_runs, load_many

# ---------------------------------------------------------------------------------------
# cells and tables


HEADLINE_HEADER = ["method", "run", "retain loss", "forget loss", "steps to recover"]


def format_headline(rows: list[dict]) -> list[list[Any]]:
    """:func:`~excise.report.analysis.headline_rows` as table rows (also printed by the demo)."""
    out = []
    for h in rows:
        if h["attacked"]:
            rec = not_recovered(h["steps_to_recover"], h["relearn_steps"])
        else:
            rec = "reference" if h["method"] == REFERENCE_METHOD else "–"
        out.append([h["method"], h["run"], h["retain"], h["forget"], rec])
    return out


def rmu_ratio_lines(comparisons: list[RmuComparison]) -> list[str]:
    """One line per attacked run: its steps to recover as a multiple of RMU's."""
    lines = []
    for c in comparisons:
        if c.steps_to_recover is not None:
            ratio = f"{c.ratio:.1f}x"
        else:
            ratio = f"> {c.ratio:.1f}x (not recovered in {c.steps} steps)"
        lines.append(f"- {c.run}: {ratio} the steps RMU needs ({c.rmu_steps})")
    return lines


# ---------------------------------------------------------------------------------------
# the sections, in report order


def header_section(loaded: list[tuple[dict, list[RunRecord]]], roots: list[Path]) -> list[str]:
    titles = [sw.get("title") or sw.get("name") or d.name for (sw, _), d in zip(loaded, roots)]
    out = [f"# excise report: {' + '.join(titles)}", ""]
    for (sweep, recs), d in zip(loaded, roots):
        if sweep:
            unlearn = f"; unlearning: {sweep['unlearn']}" if sweep.get("unlearn") else ""
            where = f"`{d}`: " if len(roots) > 1 else ""
            out += [f"{where}Base recipe `{sweep.get('base')}`; grid `{json.dumps(sweep.get('grid'))}`"
                    f"{unlearn}. {len(recs)} runs.", ""]  # fmt: skip
    out += ["Losses are mean next-token losses in nats on held-out test text. *Released* model: "
            "the ablated model for SGTM-style methods, the model itself otherwise; *calibrated*: "
            "after fitting only an output-logit bias (docs/method.md).", ""]  # fmt: skip
    return out


def demo_section(loaded: list[tuple[dict, list[RunRecord]]], records: list[RunRecord]) -> list[str]:
    """For a demo directory: its table, summary and conclusions (docs/method.md defines them)."""
    if len(loaded) != 1 or "demo" not in loaded[0][0]:
        return []
    from excise.report import findings

    f = findings.demo_findings(records)
    held = findings.check_conclusions(f)
    return ["## The demo", "", findings.readme_table(records), "", findings.demo_summary(f), "",
            "Its conclusions, checked on this run:", "",
            *[f"- {'holds' if held[c.name] else 'does NOT hold'}: {c.statement}" for c in findings.DEMO_CONCLUSIONS],
            "", f"_{findings.provenance(records)}_", ""]  # fmt: skip


def results_section(records: list[RunRecord], missing: list[str]) -> list[str]:
    """The headline table of released losses, and relearning resistance against RMU's."""
    no_eval = [r.name for r in records if r.eval is None]
    if no_eval:
        missing.append(f"eval.json for {', '.join(no_eval)} (run `excise eval RUN_DIR`)")
    headline = headline_rows(records)
    which = (
        "calibrated" if all(h["variant"] == "calibrated" for h in headline) else "calibrated where available"
    )
    out = ["## Results", "",
           f"Released model, {which} losses; steps to recover = relearning steps until the forget "
           "loss reaches the no-filter model's.", "", headline_table(records), ""]  # fmt: skip
    ratio_lines = rmu_ratio_lines(rmu_comparisons(records))
    if ratio_lines:
        out += ["Relearning resistance relative to RMU:", "", *ratio_lines, ""]
    return out


PAIRED_HEADER = ["run kind", "run", "seed", "retain", "no-filter retain", "retain vs no filter",
                 "forget", "weak-filter forget", "forget vs weak filter"]  # fmt: skip
PAIRED_SUMMARY_HEADER = ["run kind", "retain vs no filter", "forget vs weak filter", "seeds"]


def headline_table(records: list[RunRecord]) -> str:
    return md_table(HEADLINE_HEADER, format_headline(headline_rows(records)))


def paired_summary_table(records: list[RunRecord]) -> str:
    """Per run kind, mean ± sd over seeds of the two same-seed comparisons."""
    summary = [[s.label, signed_pm(s.retain_vs_no_filter, "%", 1), signed_pm(s.forget_vs_weak_filter, "", 3),
                s.seeds] for s in paired_summary(paired_comparisons(records))]  # fmt: skip
    return md_table(PAIRED_SUMMARY_HEADER, summary)


def paired_table(records: list[RunRecord]) -> str:
    """Per released model, its seed's no-filter retain and weak-filter forget loss."""
    rows = [[c.label, c.run, c.seed, c.retain, c.no_filter_retain, signed(c.retain_vs_no_filter, "%", 1),
             c.forget, c.weak_filter_forget, signed(c.forget_vs_weak_filter, "", 3)]
            for c in paired_comparisons(records)]  # fmt: skip
    return md_table(PAIRED_HEADER, rows)


def paired_section(records: list[RunRecord]) -> list[str]:
    """Each released model against the no-filter and weak-filter runs of its seed."""
    if not paired_comparisons(records):
        return []
    return ["## Against the baselines of the same seed", "",
            "Each released model's calibrated retain loss relative to the no-filter model of "
            "its seed, and its forget loss minus the weak filter's (same seed and recall): "
            "seed-to-seed swings of the baselines cancel.", "",
            paired_summary_table(records), "", paired_table(records), ""]  # fmt: skip


def paired_curves_section(records: list[RunRecord], plot_dir: Path) -> list[str]:
    """The same comparison at every eval along training, with its plot."""
    curves = paired_curves(records)
    if not curves:
        return []
    plots.plot_paired_curves(curves, plot_dir / "paired.png")
    return ["## Against the same seed's baselines along training", "",
            "At every eval during training (uncalibrated): the released model's retain loss "
            "relative to the no-filter model's at the same step, and its forget loss minus the "
            "weak filter's; mean ± standard deviation over seeds. Dotted lines in the plot: "
            "3% retain cost and +0.1 nats (the bar docs/results.md §5 judges the novels by).", "",
            "![paired along training](plots/paired.png)", "", paired_curves_table(records), ""]  # fmt: skip


def paired_curves_table(records: list[RunRecord]) -> str:
    """Per run kind and eval step, the same-seed comparisons along training."""
    rows = [[s.label, s.step, "–" if s.tokens is None else f"{s.tokens / 1e6:.1f}M",
             signed_pm(s.retain_vs_no_filter, "%", 1), signed_pm(s.forget_vs_weak_filter, "", 3), s.seeds]
            for s in paired_curve_steps(paired_curves(records))]  # fmt: skip
    return md_table(
        ["run kind", "step", "tokens", "retain vs no filter", "forget vs weak filter", "seeds"], rows
    )


def tradeoff_section(records: list[RunRecord], plot_dir: Path, missing: list[str]) -> list[str]:
    out = ["## Trade-off along training", ""]
    if plots.plot_tradeoff(records, plot_dir / "tradeoff.png"):
        out += ["Retain (x) against forget (y) test loss at every eval during training; dashed: full "
                "model, solid: ablated model; big dot: end of training; star: random init; X: no-filter "
                "model.", "", "![trade-off](plots/tradeoff.png)", ""]  # fmt: skip
        with_events = [r.name for r in records if r.eval_events]
        if len(with_events) > plots.TRADEOFF_MAX_RUNS:
            out += [f"_Only the first {plots.TRADEOFF_MAX_RUNS} of {len(with_events)} runs are drawn._", ""]
    else:
        msg = "eval events in metrics.jsonl (train with eval.every > 0)"
        missing.append(msg)
        out += [f"_Not drawn: no {msg}._", ""]
    return out


def undiscovered_section(records: list[RunRecord], plot_dir: Path) -> list[str]:
    """Released losses against the undiscovered-forget rate (needs two rates or more)."""
    groups, references = undiscovered_groups(records)
    if len({x for g in groups.values() for x in g.x}) < 2:
        return []
    plots.plot_undiscovered(groups, plot_dir / "undiscovered.png", references)
    table = [[label, x, pm(f), pm(rt), n] for label, g in groups.items()
             for x, f, rt, n in zip(g.x, g.forget, g.retain, g.n)]  # fmt: skip
    table += [
        [label, "(reference)", pm(ref.forget), pm(ref.retain), ref.n] for label, ref in references.items()
    ]
    return ["## Loss against the undiscovered-forget rate", "",
            "Released, calibrated losses; mean ± standard deviation over seeds (n runs); dotted "
            "lines: references trained without a recall axis.", "",
            "![undiscovered](plots/undiscovered.png)", "",
            md_table(["method", "undiscovered rate", "forget loss", "retain loss", "n"], table), ""]  # fmt: skip


def relearn_section(records: list[RunRecord], plot_dir: Path, missing: list[str]) -> list[str]:
    out = ["## Relearning attack", ""]
    if plots.plot_relearn(records, plot_dir / "relearn.png"):
        out += ["![relearn](plots/relearn.png)", "", relearn_table(records), ""]
    else:
        msg = "relearn.json in any run (run `excise relearn RUN_DIR --reference NO_FILTER_RUN`)"
        missing.append(msg)
        out += [f"_Not drawn: no {msg}._", ""]
    return out


def relearn_table(records: list[RunRecord]) -> str:
    rows = [[o.run, o.method, o.released, o.forget_before, o.reference_forget_loss,
             not_recovered(o.steps_to_recover, o.steps), o.forget_after]
            for o in relearn_outcomes(records)]  # fmt: skip
    return md_table(["run", "method", "released", "forget loss before", "no-filter forget loss",
                     "steps to recover", "forget loss after"], rows)  # fmt: skip


def losses_table(records: list[RunRecord]) -> str:
    """Every final loss of every run: full, ablated and calibrated, per domain."""
    domains = loss_domains(records)
    header = ["run", "method"] + [f"{v} {d}" for v in VARIANTS for d in domains]
    rows = [
        [r.name, r.method] + [r.final_losses(v).get(d) for v in VARIANTS for d in domains] for r in records
    ]
    return md_table(header, rows)


def losses_section(records: list[RunRecord]) -> list[str]:
    return ["## All losses", "", losses_table(records), ""]


def leakage_section(records: list[RunRecord]) -> list[str]:
    rows = [[x.run, x.released, x.forget_loss, x.reference,
             ("" if x.relation == "=" else f"{x.relation} ") + f"{x.equivalent_tokens:,.0f}",
             None if x.trained_tokens is None else f"{x.trained_tokens:,}", x.share]
            for x in leakage(records)]  # fmt: skip
    if not rows:
        return []
    return ["## Leakage", "", "The released model's forget loss (uncalibrated) expressed as the forget-domain "
            "tokens the no-filter run had trained on when its own forget loss got that low "
            "(interpolated between its evals; `<=` / `>`: before its first / after its last eval), "
            "and as a share of the forget tokens the run itself trained on.", "",
            md_table(["run", "released", "forget loss", "no-filter run", "equivalent forget tokens",
                      "forget tokens trained on", "share"], rows), ""]  # fmt: skip


def absorption_section(records: list[RunRecord], plot_dir: Path, missing: list[str]) -> list[str]:
    if not plots.plot_absorption(records, plot_dir / "absorption.png"):
        missing.append("absorption records (gradient-norm split) in metrics.jsonl")
        return []
    return ["## Gradient-norm split", "", "Share of each batch kind's squared gradient norm that "
            "falls on the forget units (absorption: undiscovered forget data should pull towards "
            "them).", "", "![absorption](plots/absorption.png)", ""]  # fmt: skip


def training_section(records: list[RunRecord]) -> list[str]:
    rows = training_rows(records)
    if not rows:
        return []
    header = ["run", "method", "steps", "skipped", "tokens", "wall s", "tokens/s"]
    return ["## Training", "", md_table(header, rows), ""]


def failed_section(roots: list[Path]) -> list[str]:
    failed = failed_runs(roots)
    if not failed:
        return []
    return ["## Failed runs", ""] + [f"- {row['run']}: {row['error']}" for row in failed] + [""]


def missing_section(missing: list[str]) -> list[str]:
    return ["## Missing", ""] + [f"- {m}" for m in missing] + [""] if missing else []


# ---------------------------------------------------------------------------------------
# the report


def write_report(root: str | Path | list[str | Path], out_dir: str | Path | None = None) -> Path:
    """Write ``report.md`` and ``plots/*.png`` into ``out_dir`` (default: the one directory
    reported on); return the report's path."""
    roots = [Path(p) for p in root] if isinstance(root, (list, tuple)) else [Path(root)]
    if not roots:
        raise UserError("name at least one directory to report on")
    if out_dir is None and len(roots) > 1:
        raise UserError("a report on several directories needs --out for where to write it")
    dest = Path(out_dir) if out_dir is not None else roots[0]
    loaded = load_many(roots)
    records = [r for _, recs in loaded for r in recs]
    dest.mkdir(parents=True, exist_ok=True)
    plot_dir = dest / "plots"
    missing: list[str] = []
    out = header_section(loaded, roots)
    out += demo_section(loaded, records)
    out += results_section(records, missing)
    out += paired_section(records)
    out += paired_curves_section(records, plot_dir)
    out += tradeoff_section(records, plot_dir, missing)
    out += undiscovered_section(records, plot_dir)
    out += relearn_section(records, plot_dir, missing)
    out += losses_section(records)
    out += leakage_section(records)
    out += absorption_section(records, plot_dir, missing)
    out += training_section(records)
    out += failed_section(roots)
    out += missing_section(missing)
    path = dest / "report.md"
    from excise.checkpoint import atomic_write_text

    atomic_write_text(path, "\n".join(out))
    return path
