"""Run directories for report tests, written the way the commands write them: every JSON
file through :func:`excise.run_files.write_record`, so a fixture that drifts from the
schema fails when it is written instead of silently reading as missing."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from excise.run_files import (
    CONFIG,
    EVAL,
    META,
    METRICS,
    RELEARN,
    SUMMARY,
    EvalRecord,
    Meta,
    MetricEvent,
    RelearnRecord,
    Summary,
    write_record,
)  # fmt: skip

DEFAULT_META = {"excise": "0.1.0", "git_commit": "0123456789abcdef", "git_dirty": False, "device": "cpu",
                "cpu_capability": "AVX2", "libraries": {"torch": "2.13.0+cpu", "tokenizers": "0.23.3", "numpy": "2.4.6"}}  # fmt: skip


def write_run_dir(
    root: Path,
    name: str,
    config: dict,
    *,
    meta: dict | None = None,
    summary: dict | None = None,
    eval: dict | None = None,
    relearn: dict | None = None,
    events: list[dict] | None = None,
    cut_line_at: int | None = None,
) -> Path:
    """``root/name`` with ``config.yaml`` and whichever other files are given.

    ``cut_line_at``: a line cut by a kill is inserted at that position of ``metrics.jsonl``.
    """
    d = root / name
    d.mkdir(parents=True)
    (d / CONFIG).write_text(yaml.safe_dump(config))
    write_record(d / META, Meta, meta if meta is not None else DEFAULT_META)
    for file, schema, data in (
        (SUMMARY, Summary, summary),
        (EVAL, EvalRecord, eval),
        (RELEARN, RelearnRecord, relearn),
    ):
        if data is not None:
            write_record(d / file, schema, data)
    if events is not None:
        for e in events:
            MetricEvent.model_validate(e)
        lines = [json.dumps(e) for e in events]
        if cut_line_at is not None:
            lines.insert(cut_line_at, '{"event": "train", "step": 4')
        (d / METRICS).write_text("\n".join(lines) + "\n")
    return d
