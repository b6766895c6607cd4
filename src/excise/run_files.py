"""The run directory as a schema: its file names, a typed record per JSON file, one strict and
one lenient reader, and one writer.

Every command writes its files through :func:`write_record` (validated against the record,
then written atomically by :func:`excise.checkpoint.atomic_write_text`, with the mode the
umask gives), so a file that exists is whole and has the fields below. Two readers:

- :func:`read_record` (strict) for commands that need the file: a missing, unreadable or
  malformed file is a :class:`~excise.errors.UserError` naming the file and the field.
- :func:`read_record_lenient` for reports and cards, which show what there is: anything
  wrong gives ``None``; :func:`read_events` skips ``metrics.jsonl`` lines cut by a kill.

The records allow extra fields (files grow new keys; older readers ignore them) and the
readers return the file's own JSON object, so a value reads back exactly as written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from excise.checkpoint import atomic_write_text
from excise.errors import UserError

CONFIG = "config.yaml"
WEIGHTS = "model.safetensors"
PARTITION = "partition.json"
TOKENIZER = "tokenizer.json"
META = "meta.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
EVAL = "eval.json"
RELEARN = "relearn.json"

Losses = dict[str, float]  # domain -> mean held-out loss in nats


class Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class Meta(Record):
    """``meta.json``: how and where the run was made (versions, commit, machine, seed)."""

    excise: str
    seed: int | None = None
    world_size: int = 1
    git_commit: str | None = None


class TrainSummary(Record):
    """``summary.json`` of a trained run."""

    method: str
    steps: int
    tokens: int
    eval: dict[str, Losses]


class UnlearnSummary(Record):
    """``summary.json`` of a run written by ``excise unlearn``."""

    unlearn: dict[str, Any]


Summary = TrainSummary | UnlearnSummary


class EvalRecord(Record):
    """``eval.json``: full / ablated / calibrated losses per domain."""

    full: Losses
    ablated: Losses | None = None
    calibrated: Losses | None = None
    method: str | None = None
    partitioned: bool | None = None


class RelearnRecord(Record):
    """``relearn.json``: the attack's forget-loss curve and when it recovered."""

    steps: list[int]
    forget_loss: list[float]
    retain_loss: list[float] | None = None
    reference_forget_loss: float | None = None
    steps_to_recover: int | None = None
    released: str | None = None


class MetricEvent(Record):
    """One line of ``metrics.jsonl``: ``train``, ``eval``, ``absorption``, ``nonfinite``, ``preempted``."""

    event: str
    step: int


def _problem(data: Any, schema) -> str | None:
    """Why ``data`` is not a ``schema`` record (None when it is one)."""
    if not isinstance(data, dict):
        return f"holds {type(data).__name__}, not a JSON object"
    try:
        TypeAdapter(schema).validate_python(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if not str(p).endswith("Summary")) or "(top level)"
        return f"field {where}: {first['msg']}"
    return None


def write_record(path: Path, schema, data: dict) -> None:
    """Validate ``data`` against ``schema`` and write it atomically (a bug if invalid)."""
    problem = _problem(data, schema)
    if problem:
        raise ValueError(f"refusing to write {path}: {problem}")
    atomic_write_text(Path(path), json.dumps(data, indent=1, default=str) + "\n")


def read_record(path: Path, schema) -> dict:
    """The file's JSON object, checked against ``schema``; a clear UserError when it isn't one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path} cannot be read: {e}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON: {e}") from None
    problem = _problem(data, schema)
    if problem:
        raise UserError(f"{path} is not a {getattr(schema, '__name__', 'run')} file: {problem}")
    return data


def read_record_lenient(path: Path, schema) -> dict | None:
    """The file's JSON object if it is a valid ``schema`` record, else None (never raises)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return None if _problem(data, schema) else data


def read_jsonl(path: Path) -> list[dict]:
    """The JSON-object lines of a file; absent files and lines cut by a kill give nothing."""
    rows = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
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


def read_events(path: Path) -> list[dict]:
    """The valid :class:`MetricEvent` lines of ``metrics.jsonl`` (lenient, like :func:`read_jsonl`)."""
    return [row for row in read_jsonl(path) if _problem(row, MetricEvent) is None]
