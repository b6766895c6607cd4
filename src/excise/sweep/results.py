"""What a sweep directory records: ``sweep.json`` (the spec and its runs) and
``results.jsonl`` (one row per run: grid values, eval.json figures, relearn and training
summaries). ``excise report`` reads both; so can any tool, without importing excise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from excise.run_files import (
    EVAL,
    RELEARN,
    SUMMARY,
    EvalRecord,
    RelearnRecord,
    Summary,
    read_record_lenient,
)
from excise.sweep.plan import PlannedRun

SWEEP_FILE = "sweep.json"
RESULTS_FILE = "results.jsonl"

VARIANTS = ("full", "ablated", "calibrated")
TRAIN_SUMMARY_KEYS = ("steps", "tokens", "wall_seconds", "tokens_per_second", "skipped_steps")


def result_row(root: Path, run: PlannedRun, error: str | None = None) -> dict:
    """One results.jsonl row: grid values, eval figures, relearn and training summaries."""
    d = root / run.name
    row: dict[str, Any] = {
        "run": run.name, "dir": str(d), "method": run.method, "kind": run.kind,
        "values": run.values, "reference": run.reference,
    }  # fmt: skip
    if error:
        row["error"] = error
    ev = read_record_lenient(d / EVAL, EvalRecord)
    if isinstance(ev, dict):
        for variant in VARIANTS:
            if variant in ev:
                row[variant] = ev[variant]
    rl = read_record_lenient(d / RELEARN, RelearnRecord)
    if isinstance(rl, dict):
        curve = rl.get("forget_loss") or []
        row["relearn"] = {
            "steps_to_recover": rl.get("steps_to_recover"),
            "reference_forget_loss": rl.get("reference_forget_loss"),
            "steps": (rl.get("steps") or [None])[-1],
            "initial_forget_loss": curve[0] if curve else None,
            "final_forget_loss": curve[-1] if curve else None,
        }
    summary = read_record_lenient(d / SUMMARY, Summary)
    if isinstance(summary, dict):
        row["train"] = {k: summary.get(k) for k in TRAIN_SUMMARY_KEYS if k in summary}
    return row


def write_results(path: Path, rows: list[dict]) -> None:
    """Write ``rows`` as JSON lines, atomically."""
    from excise.checkpoint import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r, default=str) + "\n" for r in rows))


def read_results(path: Path) -> list[dict]:
    """The rows of a results.jsonl (none if absent; lines cut by a kill are skipped)."""
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return rows
