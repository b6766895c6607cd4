"""What a report knows about each run: :class:`RunRecord`, loaded from local files only.

Reads ``sweep.json`` (when present) for the runs and their grid values, and each run's
``eval.json``, ``relearn.json``, ``summary.json``, ``metrics.jsonl`` (eval events along
training, absorption records), ``absorption.json``, ``meta.json`` and ``config.yaml``. A
directory without ``sweep.json`` is read as a set of run directories (or one run). Every
file may be missing or cut short by a kill; the record then holds what there is.

Also here: how tables and plots name a run (:func:`run_label`), and the settings that set
the runs of merged directories apart (:func:`label_hidden_settings`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from excise.errors import UserError
from excise.methods.registry import METHODS, REFERENCE_METHOD
from excise.run_files import (
    EVAL,
    META,
    METRICS,
    RELEARN,
    SUMMARY,
    EvalRecord,
    Meta,
    RelearnRecord,
    Summary,
    read_events,
    read_jsonl,
    read_record_lenient,
)  # fmt: skip
from excise.sweep import RESULTS_FILE, SWEEP_FILE, flatten_keys

VARIANTS = ("full", "ablated", "calibrated")

# Training settings that change what a model learns; device, threads and the like do not.
COMPARABLE_TRAIN_KEYS = ("steps", "batch_size", "lr", "min_lr_ratio", "warmup_steps", "warmup_start", "schedule",
                         "weight_decay", "weight_decay_on", "beta1", "beta2", "grad_clip", "init_from")  # fmt: skip


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


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
        """Trained forget units (so releases the ablated model): as eval.json says, else as
        the method registry says; unlearning methods and unknown names are not."""
        if self.eval is not None and "partitioned" in self.eval:
            return bool(self.eval["partitioned"])
        return self.method in METHODS and METHODS[self.method].partitioned

    @property
    def released_variant(self) -> str:
        """Which model of the run is released: ``"ablated"`` or ``"full"``."""
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


# ---------------------------------------------------------------------------------------
# loading


def load_record(name: str, run_dir: Path, info: dict | None = None) -> RunRecord:
    """One run directory; ``info`` is its entry in sweep.json (method, kind, values, reference)."""
    info = info or {}
    config = {}
    if (run_dir / "config.yaml").is_file():
        try:
            config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            config = {}
    meta = read_record_lenient(run_dir / META, Meta) or {}
    method = (
        info.get("method") or meta.get("unlearn_method") or (config.get("method") or {}).get("name") or "?"
    )
    events = read_events(run_dir / METRICS)
    eval_events = sorted((e for e in events if e.get("event") == "eval"), key=lambda e: e.get("step", 0))
    absorption = [e for e in events if e.get("event") == "absorption"]
    extra = _read_json(run_dir / "absorption.json")
    if isinstance(extra, list):
        absorption += [e for e in extra if isinstance(e, dict)]
    kind = info.get("kind", "unlearn" if meta.get("unlearn_method") else "train")
    return RunRecord(
        name=name, dir=run_dir, method=str(method), kind=kind,
        values=info.get("values") or {}, reference=info.get("reference"), config=config,
        eval=read_record_lenient(run_dir / EVAL, EvalRecord),
        relearn=read_record_lenient(run_dir / RELEARN, RelearnRecord),
        summary=read_record_lenient(run_dir / SUMMARY, Summary), eval_events=eval_events, absorption=absorption,
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


def failed_runs(roots: list[Path]) -> list[dict]:
    """The results.jsonl rows of runs whose sweep recorded an error."""
    return [row for r in roots for row in read_jsonl(r / RESULTS_FILE) if row.get("error")]


# ---------------------------------------------------------------------------------------
# names and settings


def value_text(v: Any) -> str:
    """A grid value in a label: floats shortest (``0.9``), others as text."""
    return f"{v:g}" if isinstance(v, float) else str(v)


def setting_label(key: str) -> str:
    """A setting's short name in labels: the last part of its key, except for a data
    source's settings, which keep their domain (``forget.weight``, not ``weight``)."""
    parts = key.split(".")
    return ".".join(parts[1:]) if parts[0] == "data" and len(parts) > 2 else parts[-1]


def run_label(r: RunRecord, extras: bool = True, skip: tuple[str, ...] = (), ablated: bool = True) -> str:
    """How tables and plots name a run's kind: the method ("(ablated)" for partitioned runs
    when ``ablated``), then the grid values that set it apart (seed and ``skip`` excluded)."""
    if r.kind == "unlearn":
        return f"{REFERENCE_METHOD} + {r.method}"  # unlearning starts from the reference
    label = f"{r.method} (ablated)" if ablated and r.partitioned else r.method
    if extras:
        label += "".join(f" {setting_label(k)}={value_text(v)}" for k, v in r.values.items()
                         if k not in ("method.name", "seed", "unlearn", *skip))  # fmt: skip
    return label


# Config sections whose values decide what a run learns (data paths, threads, logging and
# checkpointing do not); of ``train``, only COMPARABLE_TRAIN_KEYS count; of each data
# source, only what sets the mix.
SETTING_SECTIONS = ("model", "partition", "method", "labels", "tokenizer")
DATA_MIX_KEYS = ("weight", "max_documents")


def learning_settings(r: RunRecord) -> dict[str, Any]:
    """{dotted key: value} of the run's settings that decide what it learns (not its method)."""
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
        settings = [learning_settings(r) for r in runs]
        keys = dict.fromkeys(k for s in settings for k in s if k not in axes)
        hidden = [k for k in keys
                  if len({json.dumps(s.get(k), sort_keys=True, default=str) for s in settings}) > 1]  # fmt: skip
        if hidden:
            for r, s in zip(runs, settings):
                r.values = {**r.values, **{k: s.get(k) for k in hidden}}
