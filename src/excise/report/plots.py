"""PNG plots of a sweep or demo directory (matplotlib, Agg backend; local files only).

Every function takes already-loaded run records (:class:`excise.report.records.RunRecord`)
or numbers computed from them (:mod:`excise.report.analysis`, :mod:`excise.report.baselines`)
and a destination path, draws one figure, and returns the path — or None when the runs
hold nothing to draw (the report then says what is missing). Drawing only: what the
figures show is computed elsewhere.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from excise.methods.registry import METHODS, REFERENCE_METHOD, UNLEARNING_COLORS, method_color  # noqa: E402
from excise.report.analysis import UndiscoveredCurve, UndiscoveredReference, absorption_share  # noqa: E402
from excise.report.baselines import PairedCurves  # noqa: E402
from excise.report.records import RunRecord  # noqa: E402

# {method: colour} of every training and unlearning method the registry gives one.
COLORS = {**{name: m.color for name, m in METHODS.items()}, **UNLEARNING_COLORS}


# For a method's second and later run kinds; none is in COLORS.
EXTRA_COLORS = ["tab:pink", "tab:olive", "tab:cyan", "goldenrod", "black", "darkred", "navy",
                "lime", "magenta", "teal", "sienna", "slategray"]  # fmt: skip

TRADEOFF_MAX_RUNS = 12  # more trajectories than this are unreadable in one plot


def color_of(method: str, index: int = 0) -> str:
    """The method's registry colour, else matplotlib's ``index``-th default colour."""
    return method_color(method) or f"C{index % 10}"


def kind_colors(kinds: list[tuple[str, str]]) -> list[str]:
    """Colours for (label, method) run kinds: a method's colour for its first kind, then the
    extra colours in turn, so no two kinds share one until the extra colours run out."""
    colors, methods_drawn, extra = [], set(), 0
    for _, method in kinds:
        if method in methods_drawn:
            colors.append(EXTRA_COLORS[extra % len(EXTRA_COLORS)])
            extra += 1
        else:
            colors.append(color_of(method))
            methods_drawn.add(method)
    return colors


def run_colors(runs: list[RunRecord]) -> list[str]:
    """Method colours when each method appears once, else one colour per run."""
    methods = [r.method for r in runs]
    if len(set(methods)) == len(methods):
        return [color_of(m, i) for i, m in enumerate(methods)]
    return [f"C{i % 10}" for i in range(len(runs))]


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_tradeoff(runs: list[RunRecord], path: Path, max_runs: int = TRADEOFF_MAX_RUNS) -> Path | None:
    """Retain (x) vs forget (y) test loss along training: full dashed, ablated solid.

    Down-left is a better model, up-left is a better removal. References: the random-init
    point (the step-0 eval when logged, else the uniform loss log(vocab)) and each no-filter
    run's final full losses.
    """
    drawn = [r for r in runs if len(r.eval_events) > 0][:max_runs]
    if not drawn:
        return None
    fig, ax = plt.subplots(figsize=(7, 5.2))
    init_points = set()
    for r, c in zip(drawn, run_colors(drawn)):
        for variant, style in (("full", "--"), ("ablated", "-")):
            pts = [(e[variant].get("retain"), e[variant].get("forget"))
                   for e in r.eval_events if isinstance(e.get(variant), dict)]  # fmt: skip
            pts = [p for p in pts if p[0] is not None and p[1] is not None]
            if not pts:
                continue
            xs, ys = zip(*pts)
            label = f"{r.name} ({variant})" if r.partitioned else r.name
            ax.plot(xs, ys, style, color=c, marker=".", markersize=4, alpha=0.85, label=label)
            ax.plot(xs[-1], ys[-1], "o", color=c, markersize=7)
        first = r.eval_events[0]
        if first.get("step") == 0 and isinstance(first.get("full"), dict):
            init_points.add((first["full"].get("retain"), first["full"].get("forget")))
        elif r.vocab_size:
            init_points.add((math.log(r.vocab_size), math.log(r.vocab_size)))
    for j, (x, y) in enumerate(sorted(p for p in init_points if None not in p)):
        ax.plot(x, y, "*", color="black", markersize=12, label="random init" if j == 0 else None)
    refs = [r for r in runs if r.method == REFERENCE_METHOD and r.final_losses("full")]
    for j, r in enumerate(refs):
        f = r.final_losses("full")
        if "retain" in f and "forget" in f:
            ax.plot(f["retain"], f["forget"], "X", color="dimgray", markersize=10,
                    label="no filter (final)" if j == 0 else None)  # fmt: skip
    ax.set_xlabel("retain test loss (nats) - lower is better")
    ax.set_ylabel("forget test loss (nats) - higher is better removal")
    ax.set_title("Retain / forget trade-off along training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def plot_undiscovered(groups: dict[str, UndiscoveredCurve], path: Path,
                      references: dict[str, UndiscoveredReference] | None = None) -> Path | None:  # fmt: skip
    """Forget and retain loss against the undiscovered-forget rate (1 - recall): one curve
    with error bars per run kind, and the ``references`` (mean) as horizontal lines."""
    if not any(len(g.x) >= 1 for g in groups.values()):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, domain in zip(axes, ("forget", "retain")):
        for i, (label, g) in enumerate(groups.items()):
            pts = [(x, m, s) for x, (m, s) in zip(g.x, getattr(g, domain)) if m is not None]
            if not pts:
                continue
            xs, ms, ss = zip(*pts)
            ax.errorbar(xs, ms, yerr=ss, marker="o", capsize=3, color=color_of(g.method, i), label=label)
        for j, (label, ref) in enumerate((references or {}).items()):
            mean = getattr(ref, domain)[0]
            if mean is not None:
                ax.axhline(mean, linestyle=":", color=color_of(ref.method, j + 5), label=label)
        ax.set_xlabel("undiscovered forget rate (1 - recall)")
        ax.set_ylabel(f"{domain} test loss (nats, released model, calibrated)")
        ax.set_title(
            f"{domain.capitalize()} loss" + (" (higher = better removal)" if domain == "forget" else "")
        )
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def plot_relearn(runs: list[RunRecord], path: Path) -> Path | None:
    """Forget loss during the relearning attack, the no-filter reference, steps-to-recover."""
    drawn = [r for r in runs if r.relearn and r.relearn.get("steps")]
    if not drawn:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.6))
    refs = set()
    for r, c in zip(drawn, run_colors(drawn)):
        rl = r.relearn
        pts = [(s, f) for s, f in zip(rl["steps"], rl.get("forget_loss") or []) if f is not None]
        if not pts:
            continue
        xs, ys = zip(*pts)
        ax.plot(xs, ys, "-", marker=".", color=c, label=r.name)
        rec = rl.get("steps_to_recover")
        if rec is not None and rec in xs:
            ax.plot(rec, ys[xs.index(rec)], "v", color=c, markersize=10)
            ax.annotate(f"{rec}", (rec, ys[xs.index(rec)]), textcoords="offset points", xytext=(0, 8),
                        ha="center", fontsize=8, color=c)  # fmt: skip
        if rl.get("reference_forget_loss") is not None:
            refs.add(round(float(rl["reference_forget_loss"]), 6))
    for j, ref in enumerate(sorted(refs)):
        ax.axhline(ref, linestyle=":", color="dimgray", label="no-filter forget loss" if j == 0 else None)
    ax.set_xlabel("relearning steps (fine-tuning on a forget / other mix)")
    ax.set_ylabel("forget test loss (nats)")
    ax.set_title("Relearning attack (triangle: steps to recover)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_absorption(runs: list[RunRecord], path: Path) -> Path | None:
    """Share of each batch kind's gradient norm that falls on the forget units, over training."""
    drawn = [r for r in runs if r.absorption]
    if not drawn:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.4))
    styles = ["-", "--", ":", "-."]
    for r, c in zip(drawn, run_colors(drawn)):
        per_kind: dict[str, list[tuple[int, float]]] = {}
        for rec in r.absorption:
            for kind, share in absorption_share(rec).items():
                per_kind.setdefault(kind, []).append((int(rec.get("step", 0)), share))
        for k, (kind, pts) in enumerate(sorted(per_kind.items())):
            pts.sort()
            xs, ys = zip(*pts)
            ax.plot(xs, ys, styles[k % len(styles)], marker=".", color=c,
                    label=f"{r.name}: {kind} data")  # fmt: skip
    ax.set_xlabel("training step")
    ax.set_ylabel("share of squared gradient norm on forget units")
    ax.set_title("Gradient-norm split (absorption)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_paired_curves(curves: PairedCurves, path: Path) -> Path | None:
    """Retain cost vs the no-filter model (%) and forget gain over the weak filter (nats)
    against training tokens, one line per run, from :func:`excise.report.baselines.paired_curves`."""
    if not curves:
        return None
    fig, (ax_retain, ax_forget) = plt.subplots(1, 2, figsize=(13, 4.6))
    styles = ["-", "--", ":", "-."]
    seeds = sorted({str(r.seed) for runs in curves.values() for r, _ in runs})
    colors = kind_colors([(label, runs[0][0].method) for label, runs in curves.items()])
    for color, (label, runs) in zip(colors, curves.items()):
        for r, points in runs:
            xs = [step * (r.tokens_per_step or 1) / 1e6 for step, _, _ in points]
            style = dict(color=color, linestyle=styles[seeds.index(str(r.seed)) % len(styles)],
                         marker=".", label=f"{label} seed {r.seed}")  # fmt: skip
            ax_retain.plot(xs, [pct for _, pct, _ in points], **style)
            gains = [(x, g) for x, (_, _, g) in zip(xs, points) if g is not None]
            if gains:
                ax_forget.plot(*zip(*gains), **style)
    ax_retain.axhline(3.0, color="black", linestyle=":", linewidth=1)
    ax_retain.axhline(0.0, color="gray", linewidth=0.8)
    ax_forget.axhline(0.1, color="black", linestyle=":", linewidth=1)
    ax_forget.axhline(0.0, color="gray", linewidth=0.8)
    ax_retain.set_ylabel("retain loss vs no-filter model (%) - lower is better")
    ax_forget.set_ylabel("forget loss - weak filter's (nats) - higher is better")
    for ax in (ax_retain, ax_forget):
        ax.set_xlabel("training tokens (millions, incl. skipped batches)")
        ax.grid(alpha=0.3)
    ax_retain.set_title("Retain cost along training")
    ax_forget.set_title("Removal beyond the weak filter along training")
    handles, labels = ax_retain.get_legend_handles_labels()
    ax_forget.legend(handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return _save(fig, path)
