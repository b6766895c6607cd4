"""``excise report DIR [DIR ...]``: a markdown report with PNG plots of sweep / demo directories.

Reads only local files: ``sweep.json`` (when present) for the runs and their grid values,
and each run's ``eval.json``, ``relearn.json``, ``summary.json``, ``metrics.jsonl`` (eval
events along training, absorption records) and ``config.yaml``. A directory without
``sweep.json`` is read as a set of run directories (or one run). Whatever is missing is
named in the report's "Missing" section instead of failing.

Writes ``DIR/report.md`` and ``DIR/plots/*.png`` (or into ``--out``; several directories,
e.g. the seeds of one study run as separate sweeps, are merged into one report there);
returns the report path.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from excise.errors import UserError
from excise.report import plots
from excise.sweep import RESULTS_FILE, SWEEP_FILE, flatten_keys

VARIANTS = ("full", "ablated", "calibrated")
DOMAIN_ORDER = ("forget", "retain", "adjacent")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return rows
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        if isinstance(row, dict):
            rows.append(row)
    return rows


@dataclass
class RunRecord:
    """Everything the report knows about one run directory (any part may be missing)."""

    name: str
    dir: Path
    method: str
    kind: str = "train"
    values: dict = field(default_factory=dict)
    reference: str | None = None
    config: dict = field(default_factory=dict)
    eval: dict | None = None
    relearn: dict | None = None
    summary: dict | None = None
    eval_events: list[dict] = field(default_factory=list)
    absorption: list[dict] = field(default_factory=list)

    @property
    def vocab_size(self) -> int | None:
        v = (self.config.get("model") or {}).get("vocab_size")
        return int(v) if isinstance(v, (int, float)) else None

    @property
    def seed(self) -> Any:
        """The run's seed: its grid value, else its config's."""
        return self.values.get("seed", self.config.get("seed"))

    @property
    def tokens_per_step(self) -> int | None:
        """Batch size × context from the run's config (None when either is missing)."""
        batch = (self.config.get("train") or {}).get("batch_size")
        context = (self.config.get("model") or {}).get("context")
        return int(batch) * int(context) if batch and context else None

    @property
    def partitioned(self) -> bool:
        if self.eval is not None and "partitioned" in self.eval:
            return bool(self.eval["partitioned"])
        return self.method in ("sgtm", "gradient_routing", "activation_masking")

    @property
    def released_variant(self) -> str:
        return "ablated" if self.partitioned else "full"

    def final_losses(self, variant: str) -> dict[str, float]:
        """eval.json's figures for ``variant``, else the last eval event's."""
        if self.eval is not None and isinstance(self.eval.get(variant), dict):
            return self.eval[variant]
        for e in reversed(self.eval_events):
            if isinstance(e.get(variant), dict):
                return e[variant]
        return {}

    def released_losses(self) -> tuple[str, dict[str, float]]:
        """The headline figures: calibrated, else the released model's uncalibrated losses."""
        cal = self.final_losses("calibrated")
        if cal:
            return "calibrated", cal
        return self.released_variant, self.final_losses(self.released_variant)


def load_record(name: str, run_dir: Path, info: dict | None = None) -> RunRecord:
    info = info or {}
    config = {}
    if (run_dir / "config.yaml").is_file():
        try:
            config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            config = {}
    meta = _read_json(run_dir / "meta.json") or {}
    method = info.get("method") or meta.get("unlearn_method") or (config.get("method") or {}).get("name") or "?"
    events = _read_jsonl(run_dir / "metrics.jsonl")
    eval_events = sorted((e for e in events if e.get("event") == "eval"), key=lambda e: e.get("step", 0))
    absorption = [e for e in events if e.get("event") == "absorption"]
    extra = _read_json(run_dir / "absorption.json")
    if isinstance(extra, list):
        absorption += [e for e in extra if isinstance(e, dict)]
    kind = info.get("kind", "unlearn" if meta.get("unlearn_method") else "train")
    return RunRecord(
        name=name, dir=run_dir, method=str(method), kind=kind,
        values=info.get("values") or {}, reference=info.get("reference"), config=config,
        eval=_read_json(run_dir / "eval.json"), relearn=_read_json(run_dir / "relearn.json"),
        summary=_read_json(run_dir / "summary.json"), eval_events=eval_events, absorption=absorption,
    )  # fmt: skip


def load_runs(root: Path) -> tuple[dict, list[RunRecord]]:
    """(sweep record or {}, run records) of a sweep / demo directory, or of one run."""
    sweep = _read_json(root / SWEEP_FILE)
    if isinstance(sweep, dict) and isinstance(sweep.get("runs"), list):
        records = []
        for info in sweep["runs"]:
            d = root / info["name"]  # the directory may have moved since the sweep ran
            if not d.is_dir() and info.get("dir"):
                d = Path(info["dir"])
            records.append(load_record(info["name"], d, info))
        return sweep, records
    if (root / "config.yaml").is_file():
        return {}, [load_record(root.name, root)]
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and (p / "config.yaml").is_file())
    return {}, [load_record(p.name, p) for p in subdirs]


# ---------------------------------------------------------------------------------------
# tables


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}f}"
    return str(value)


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def run_label(r: RunRecord, extras: bool = True, skip: tuple[str, ...] = (), ablated: bool = True) -> str:
    """How tables and plots name a run's kind: the method ("(ablated)" for partitioned runs
    when ``ablated``), then the grid values that set it apart (seed and ``skip`` excluded)."""
    if r.kind == "unlearn":
        return f"no_filter + {r.method}"
    label = f"{r.method} (ablated)" if ablated and r.partitioned else r.method
    if extras:
        label += "".join(f" {setting_label(k)}={plots_value(v)}" for k, v in r.values.items()
                         if k not in ("method.name", "seed", "unlearn", *skip))  # fmt: skip
    return label


def setting_label(key: str) -> str:
    """A setting's short name in labels: the last part of its key, except for a data
    source's settings, which keep their domain (``forget.weight``, not ``weight``)."""
    parts = key.split(".")
    return ".".join(parts[1:]) if parts[0] == "data" and len(parts) > 2 else parts[-1]


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


def format_headline(rows: list[dict]) -> list[list[Any]]:
    out = []
    for h in rows:
        if h["attacked"]:
            rec = h["steps_to_recover"] if h["steps_to_recover"] is not None else f"> {h['relearn_steps']}"
        else:
            rec = "reference" if h["method"] == "no_filter" else "–"
        out.append([h["method"], h["run"], h["retain"], h["forget"], rec])
    return out


HEADLINE_HEADER = ["method", "run", "retain loss", "forget loss", "steps to recover"]


def losses_table(records: list[RunRecord]) -> str:
    domains = [d for d in DOMAIN_ORDER if any(d in r.final_losses(v) for r in records for v in VARIANTS)]
    header = ["run", "method"] + [f"{v} {d}" for v in VARIANTS for d in domains]
    rows = []
    for r in records:
        row: list[Any] = [r.name, r.method]
        for v in VARIANTS:
            losses = r.final_losses(v)
            row += [losses.get(d) for d in domains]
        rows.append(row)
    return md_table(header, rows)


def undiscovered_groups(records: list[RunRecord]) -> tuple[dict, dict, list[list[Any]]]:
    """Mean ± spread over seeds of released forget / retain loss per (method, other axes, rate).

    Runs whose grid values include ``labels.recall`` form curves; those without (no_filter,
    strict_filter references) become horizontal reference lines. Returns (groups, references,
    table rows).
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
    groups, table = {}, []
    for label, by_rate in curves.items():
        xs = sorted(by_rate)
        g = {"x": xs, "forget": [], "retain": [], "method": methods[label]}
        for x in xs:
            f = plots.mean_spread(by_rate[x]["forget"])
            rt = plots.mean_spread(by_rate[x]["retain"])
            g["forget"].append(f)
            g["retain"].append(rt)
            n = len([v for v in by_rate[x]["forget"] if v is not None])
            table.append([label, x, _pm(f), _pm(rt), n])
        groups[label] = g
    references = {}
    for label, cell in refs.items():
        f, rt = plots.mean_spread(cell["forget"]), plots.mean_spread(cell["retain"])
        references[label] = {"forget": f[0], "retain": rt[0], "method": cell["method"]}
        table.append([label, "(reference)", _pm(f), _pm(rt), len([v for v in cell["forget"] if v is not None])])
    return groups, references, table


def plots_value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _pm(ms: tuple[float | None, float]) -> str:
    mean, spread = ms
    return "–" if mean is None else f"{mean:.3f} ± {spread:.3f}"


def relearn_table(records: list[RunRecord]) -> list[list[Any]]:
    rows = []
    for r in records:
        rl = r.relearn
        if not rl:
            continue
        curve = rl.get("forget_loss") or []
        rec = rl.get("steps_to_recover")
        rows.append([
            r.name, r.method, rl.get("released"), curve[0] if curve else None,
            rl.get("reference_forget_loss"), rec if rec is not None else f"> {(rl.get('steps') or [0])[-1]}",
            curve[-1] if curve else None,
        ])  # fmt: skip
    return rows


def training_table(records: list[RunRecord]) -> list[list[Any]]:
    rows = []
    for r in records:
        s = r.summary or {}
        if "steps" not in s:
            continue
        rows.append([r.name, r.method, s.get("steps"), s.get("skipped_steps"), s.get("tokens"),
                     s.get("wall_seconds"), s.get("tokens_per_second")])  # fmt: skip
    return rows


def rmu_ratio(records: list[RunRecord]) -> list[str]:
    """Lines comparing each attacked method's steps-to-recover with RMU's (the paper: ≥ 7x):
    the RMU run of the same seed when there is one, else the fastest-recovering RMU run."""
    rmu = [r for r in records if r.kind == "unlearn" and r.relearn and r.relearn.get("steps_to_recover")]
    if not rmu:
        return []
    lines = []
    for r in records:
        if r.kind == "unlearn" or not r.relearn:
            continue
        same_seed = [u for u in rmu if _comparable(u) == _comparable(r)]
        base = min(u.relearn["steps_to_recover"] for u in same_seed or rmu)
        rec = r.relearn.get("steps_to_recover")
        steps = (r.relearn.get("steps") or [0])[-1]
        if rec is not None:
            ratio = f"{rec / base:.1f}x"
        else:
            ratio = f"> {steps / base:.1f}x (not recovered in {steps} steps)"
        lines.append(f"- {r.name}: {ratio} the steps RMU needs ({base})")
    return lines


# Training settings that change what a model learns; device, threads and the like do not.
COMPARABLE_TRAIN_KEYS = ("steps", "batch_size", "lr", "min_lr_ratio", "warmup_steps", "warmup_start", "schedule",
                         "weight_decay", "weight_decay_on", "beta1", "beta2", "grad_clip", "init_from")  # fmt: skip


def _comparable(r: RunRecord) -> tuple:
    """Runs whose losses may be compared: same seed, model, data, tokenizer, length and
    optimisation (a run at another learning rate is not its seed's baseline)."""
    c = r.config
    train = c.get("train") or {}
    shared = [c.get("model"), c.get("data"), c.get("tokenizer"), {k: train.get(k) for k in COMPARABLE_TRAIN_KEYS}]
    return r.seed, json.dumps(shared, sort_keys=True, default=str)


def _recall(r: RunRecord) -> Any:
    if "labels.recall" in r.values:
        return r.values["labels.recall"]
    return (r.config.get("labels") or {}).get("recall")


def _partner(records: list[RunRecord], r: RunRecord, method: str, same_recall: bool) -> RunRecord | None:
    """The trained ``method`` run comparable with ``r`` (see :func:`_comparable`)."""
    for o in records:
        if o.method == method and o.kind == "train" and _comparable(o) == _comparable(r) \
                and (not same_recall or _recall(o) == _recall(r)):
            return o
    return None


def paired_rows(records: list[RunRecord]) -> tuple[list[list[Any]], list[list[Any]]]:
    """Each released model against the no-filter and weak-filter runs of its own seed.

    Per run: retain loss relative to the no-filter model (%) and forget loss minus the weak
    filter's at the same recall (nats) — the comparison docs/method.md describes, taken
    seed by seed so that seed-to-seed swings of the baselines cancel. Returns (per-run rows,
    per-label mean ± standard deviation rows); both empty when no run has a partner.
    """
    rows, by_label = [], {}
    for r in records:
        if r.method == "no_filter" and r.kind == "train":
            continue
        _, own = r.released_losses()
        nf, weak = _partner(records, r, "no_filter", False), _partner(records, r, "weak_filter", True)
        nf_retain = nf.released_losses()[1].get("retain") if nf else None
        weak_forget = weak.released_losses()[1].get("forget") if weak and weak is not r else None
        retain, forget = own.get("retain"), own.get("forget")
        pct = 100 * (retain - nf_retain) / nf_retain if retain is not None and nf_retain else None
        gain = forget - weak_forget if forget is not None and weak_forget is not None else None
        if pct is None and gain is None:
            continue
        label = run_label(r)
        rows.append([label, r.name, _comparable(r)[0], retain, nf_retain, _signed(pct, "%", 1),
                     forget, weak_forget, _signed(gain, "", 3)])  # fmt: skip
        cell = by_label.setdefault(label, ([], []))
        cell[0].append(pct)
        cell[1].append(gain)
    summary = []
    for label, (pcts, gains) in by_label.items():
        (pm, ps), (gm, gs) = plots.mean_spread(pcts), plots.mean_spread(gains)
        summary.append([label, "–" if pm is None else f"{pm:+.1f}% ± {ps:.1f}",
                        "–" if gm is None else f"{gm:+.3f} ± {gs:.3f}",
                        sum(p is not None or g is not None for p, g in zip(pcts, gains))])  # fmt: skip
    return rows, summary


def _released_at_steps(r: RunRecord) -> dict[int, dict[str, float]]:
    """{eval step: the released model's (uncalibrated) losses} along a run's training."""
    variant = r.released_variant
    return {int(e["step"]): e[variant] for e in r.eval_events
            if isinstance(e.get(variant), dict) and isinstance(e.get("step"), (int, float))}  # fmt: skip


def paired_curves(records: list[RunRecord]) -> dict[str, list[tuple[RunRecord, list[tuple[int, float, float | None]]]]]:
    """The same-seed comparison at every eval during training, per trained run kind.

    For each trained run other than the no-filter model that has a comparable no-filter run
    (:func:`_comparable`) evaluated at the same steps: (step, released retain loss
    relative to the no-filter model's at that step in %, released forget loss minus the weak
    filter's at that step — None without a weak-filter eval there). Uncalibrated: only the
    end of training is calibrated. Grouped by :func:`run_label`; runs without a partner are
    left out.
    """
    curves: dict[str, list] = {}
    for r in records:
        if r.kind != "train" or r.method == "no_filter" or not r.eval_events:
            continue
        nf = _partner(records, r, "no_filter", False)
        weak = _partner(records, r, "weak_filter", True)
        if nf is None:
            continue
        own, base = _released_at_steps(r), _released_at_steps(nf)
        rival = _released_at_steps(weak) if weak is not None and weak is not r else {}
        points = []
        for step in sorted(own):
            retain, nf_retain = own[step].get("retain"), base.get(step, {}).get("retain")
            if retain is None or not nf_retain:
                continue
            forget, weak_forget = own[step].get("forget"), rival.get(step, {}).get("forget")
            gain = forget - weak_forget if forget is not None and weak_forget is not None else None
            points.append((step, 100 * (retain - nf_retain) / nf_retain, gain))
        if points:
            curves.setdefault(run_label(r), []).append((r, points))
    return curves


def paired_curve_rows(curves: dict[str, list]) -> list[list[Any]]:
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
            (pm, ps), (gm, gs) = plots.mean_spread(list(pcts)), plots.mean_spread(list(gains))
            tokens = f"{step * tokens_per_step / 1e6:.1f}M" if tokens_per_step else "–"
            rows.append([label, step, tokens, f"{pm:+.1f}% ± {ps:.1f}",
                         "–" if gm is None else f"{gm:+.3f} ± {gs:.3f}", len(pcts)])  # fmt: skip
    return rows


def _signed(value: float | None, unit: str, digits: int) -> str:
    return "–" if value is None else f"{value:+.{digits}f}{unit}"


PAIRED_HEADER = ["run kind", "run", "seed", "retain", "no-filter retain", "retain vs no filter",
                 "forget", "weak-filter forget", "forget vs weak filter"]  # fmt: skip
PAIRED_SUMMARY_HEADER = ["run kind", "retain vs no filter", "forget vs weak filter", "seeds"]


def forget_learning_curve(record: RunRecord) -> list[tuple[float, float]]:
    """(forget-domain tokens drawn, full-model forget loss) at each eval of a run.

    Exact where the eval events carry ``domain_steps``; otherwise the forget share of the
    whole run (``summary.json`` label counts) is assumed constant along training.
    """
    per_step = record.tokens_per_step
    counts = (record.summary or {}).get("label_counts") or {}
    total = sum(counts.values())
    share = sum(n for k, n in counts.items() if k.startswith("forget/")) / total if total else None
    points = []
    for e in record.eval_events:
        step, loss = e.get("step"), (e.get("full") or {}).get("forget")
        if not step or loss is None or per_step is None:
            continue
        forget_steps = (e.get("domain_steps") or {}).get("forget")
        if forget_steps is None:
            if share is None:
                continue
            forget_steps = share * step
        points.append((forget_steps * per_step, float(loss)))
    return points


def forget_tokens_trained(record: RunRecord) -> int | None:
    """Forget-domain tokens a finished run trained on (filters skip some or all of them)."""
    counts = (record.summary or {}).get("label_counts")
    per_step = record.tokens_per_step
    if not counts or per_step is None:
        return None
    if record.method == "strict_filter":
        return 0
    skipped = ("forget/forget",) if record.method == "weak_filter" else ()
    return per_step * sum(n for k, n in counts.items() if k.startswith("forget/") and k not in skipped)


def tokens_to_reach(curve: list[tuple[float, float]], loss: float) -> tuple[str, float] | None:
    """Forget tokens a run on ``curve`` needed to bring its forget loss down to ``loss``.

    Returns ("=", tokens) interpolated between evals, ("<=", first eval's tokens) when the
    first eval was already there, (">", last eval's tokens) when it never got there.
    """
    if not curve:
        return None
    if curve[0][1] <= loss:
        return "<=", curve[0][0]
    for (t0, l0), (t1, l1) in zip(curve, curve[1:]):
        if l1 <= loss:
            return "=", t0 + (t1 - t0) * (l0 - loss) / (l0 - l1)
    return ">", curve[-1][0]


def leakage_rows(records: list[RunRecord]) -> list[list[Any]]:
    """Released forget loss of every run as the forget tokens a no-filter run needed for it.

    The measure of leakage in the paper's sense: how much forget-domain training the
    released model's remaining knowledge is worth. Uncalibrated losses on both sides.
    """
    references = {r.name: r for r in records if r.method == "no_filter" and r.kind == "train"}
    rows = []
    for r in records:
        if r.method == "no_filter" and r.kind == "train":
            continue
        ref = references.get(r.reference or "")
        if ref is None:
            seed = r.values.get("seed")
            same_seed = [x for x in references.values() if x.values.get("seed") == seed]
            ref = (same_seed or list(references.values()) or [None])[0]
        if ref is None:
            continue
        loss = r.final_losses(r.released_variant).get("forget")
        reached = tokens_to_reach(forget_learning_curve(ref), loss) if loss is not None else None
        if reached is None:
            continue
        relation, tokens = reached
        seen_tokens = forget_tokens_trained(r)
        prefix = "" if relation == "=" else f"{relation} "
        rows.append([r.name, r.released_variant, loss, ref.name, f"{prefix}{tokens:,.0f}",
                     None if seen_tokens is None else f"{seen_tokens:,}",
                     None if seen_tokens in (None, 0) else tokens / seen_tokens])  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------------
# the report


def load_many(roots: list[Path]) -> list[tuple[dict, list[RunRecord]]]:
    """(sweep record, run records) of each directory; run names get their directory's name
    in front when there is more than one, so that seeds run as separate sweeps merge."""
    loaded = []
    for root in roots:
        if not root.is_dir():
            raise UserError(f"report directory {root} does not exist")
        sweep, recs = load_runs(root)
        if not recs:
            raise UserError(
                f"{root} holds no runs: expected a sweep / demo directory (sweep.json) or run "
                "directories (config.yaml)"
            )
        if len(roots) > 1:
            for r in recs:
                r.name = f"{root.name}/{r.name}"
        loaded.append((sweep, recs))
    if len(roots) > 1:
        label_hidden_settings([r for _, recs in loaded for r in recs])
    return loaded


# Config sections whose values decide what a run learns (data paths, threads, logging and
# checkpointing do not); of ``train``, only COMPARABLE_TRAIN_KEYS count; of each data
# source, only what sets the mix.
SETTING_SECTIONS = ("model", "partition", "method", "labels", "tokenizer")
DATA_MIX_KEYS = ("weight", "max_documents")


def _settings(r: RunRecord) -> dict[str, Any]:
    c = r.config
    flat = {k: v for k, v in flatten_keys({s: c.get(s) for s in SETTING_SECTIONS if c.get(s)}).items()
            if k != "method.name"}  # fmt: skip
    train = c.get("train") or {}
    flat.update({f"train.{k}": train[k] for k in COMPARABLE_TRAIN_KEYS if k in train})
    for domain, source in (c.get("data") or {}).items():
        if isinstance(source, dict):
            flat.update({f"data.{domain}.{k}": source.get(k) for k in DATA_MIX_KEYS})
    return flat


def label_hidden_settings(records: list[RunRecord]) -> None:
    """Give runs of merged sweeps the settings that set them apart from the other runs of
    their method but are no sweep's grid axis (a sweep's fixed overrides, such as the model
    width of a model-size sweep): they join the run's values, so that tables and plots name
    them and per-kind means do not average different models into one row."""
    axes = {k for r in records for k in r.values}
    by_method: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.kind == "train" and r.config:
            by_method.setdefault(r.method, []).append(r)
    for runs in by_method.values():
        settings = [_settings(r) for r in runs]
        keys = dict.fromkeys(k for s in settings for k in s if k not in axes)
        hidden = [k for k in keys
                  if len({json.dumps(s.get(k), sort_keys=True, default=str) for s in settings}) > 1]  # fmt: skip
        if hidden:
            for r, s in zip(runs, settings):
                r.values = {**r.values, **{k: s.get(k) for k in hidden}}


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

    no_eval = [r.name for r in records if r.eval is None]
    if no_eval:
        missing.append(f"eval.json for {', '.join(no_eval)} (run `excise eval RUN_DIR`)")

    headline = headline_rows(records)
    which = "calibrated" if all(h["variant"] == "calibrated" for h in headline) else "calibrated where available"
    out += ["## Results", "",
            f"Released model, {which} losses; steps to recover = relearning steps until the forget "
            "loss reaches the no-filter model's.", "",
            md_table(HEADLINE_HEADER, format_headline(headline)), ""]  # fmt: skip
    ratio_lines = rmu_ratio(records)
    if ratio_lines:
        out += ["Relearning resistance relative to RMU:", "", *ratio_lines, ""]

    paired, summary = paired_rows(records)
    if paired:
        out += ["## Against the baselines of the same seed", "",
                "Each released model's calibrated retain loss relative to the no-filter model of "
                "its seed, and its forget loss minus the weak filter's (same seed and recall): "
                "seed-to-seed swings of the baselines cancel.", "",
                md_table(PAIRED_SUMMARY_HEADER, summary), "", md_table(PAIRED_HEADER, paired), ""]  # fmt: skip

    curves = paired_curves(records)
    if curves:
        plots.plot_paired_curves(curves, plot_dir / "paired.png")
        out += ["## Against the same seed's baselines along training", "",
                "At every eval during training (uncalibrated): the released model's retain loss "
                "relative to the no-filter model's at the same step, and its forget loss minus the "
                "weak filter's; mean ± standard deviation over seeds. Dotted lines in the plot: "
                "3% retain cost and +0.1 nats (the bar docs/results.md §5 judges the novels by).", "",
                "![paired along training](plots/paired.png)", "",
                md_table(["run kind", "step", "tokens", "retain vs no filter", "forget vs weak filter",
                          "seeds"], paired_curve_rows(curves)), ""]  # fmt: skip

    out += ["## Trade-off along training", ""]
    p = plots.plot_tradeoff(records, plot_dir / "tradeoff.png")
    if p:
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

    groups, references, table = undiscovered_groups(records)
    if len({x for g in groups.values() for x in g["x"]}) >= 2:
        plots.plot_undiscovered(groups, plot_dir / "undiscovered.png", references)
        out += ["## Loss against the undiscovered-forget rate", "",
                "Released, calibrated losses; mean ± standard deviation over seeds (n runs); dotted "
                "lines: references trained without a recall axis.", "",
                "![undiscovered](plots/undiscovered.png)", "",
                md_table(["method", "undiscovered rate", "forget loss", "retain loss", "n"], table), ""]  # fmt: skip

    out += ["## Relearning attack", ""]
    p = plots.plot_relearn(records, plot_dir / "relearn.png")
    if p:
        out += ["![relearn](plots/relearn.png)", "",
                md_table(["run", "method", "released", "forget loss before", "no-filter forget loss",
                          "steps to recover", "forget loss after"], relearn_table(records)), ""]  # fmt: skip
    else:
        msg = "relearn.json in any run (run `excise relearn RUN_DIR --reference NO_FILTER_RUN`)"
        missing.append(msg)
        out += [f"_Not drawn: no {msg}._", ""]

    out += ["## All losses", "", losses_table(records), ""]

    rows = leakage_rows(records)
    if rows:
        out += ["## Leakage", "", "The released model's forget loss (uncalibrated) expressed as the forget-domain "
                "tokens the no-filter run had trained on when its own forget loss got that low "
                "(interpolated between its evals; `<=` / `>`: before its first / after its last eval), "
                "and as a share of the forget tokens the run itself trained on.", "",
                md_table(["run", "released", "forget loss", "no-filter run", "equivalent forget tokens",
                          "forget tokens trained on", "share"], rows), ""]  # fmt: skip

    p = plots.plot_absorption(records, plot_dir / "absorption.png")
    if p:
        out += ["## Gradient-norm split", "", "Share of each batch kind's squared gradient norm that "
                "falls on the forget units (absorption: undiscovered forget data should pull towards "
                "them).", "", "![absorption](plots/absorption.png)", ""]  # fmt: skip
    else:
        missing.append("absorption records (gradient-norm split) in metrics.jsonl")

    rows = training_table(records)
    if rows:
        header = ["run", "method", "steps", "skipped", "tokens", "wall s", "tokens/s"]
        out += ["## Training", "", md_table(header, rows), ""]
    failed = [row for r in roots for row in _read_jsonl(r / RESULTS_FILE) if row.get("error")]
    if failed:
        out += ["## Failed runs", ""] + [f"- {row['run']}: {row['error']}" for row in failed] + [""]
    if missing:
        out += ["## Missing", ""] + [f"- {m}" for m in missing] + [""]
    path = dest / "report.md"
    from excise.checkpoint import atomic_write_text

    atomic_write_text(path, "\n".join(out))
    return path


def cli_report(args) -> int:
    path = write_report(args.dir, args.out)
    print(f"report written to {path}")
    return 0
