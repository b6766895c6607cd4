"""``excise data generate``: write the built-in corpus as jsonl files, one per domain."""

from __future__ import annotations

import json
import time
from argparse import Namespace
from dataclasses import asdict
from pathlib import Path

from excise.checkpoint import atomic_write_text
from excise.data.builtin import generate_builtin
from excise.errors import UserError


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def generate_to_dir(kind: str, out: Path, documents: int, seed: int) -> dict[str, int]:
    """Write ``out/{retain,forget[,adjacent]}.jsonl`` (+ ``probes.jsonl`` for topic)."""
    if documents < 1:
        raise UserError(f"--documents must be at least 1, got {documents}")
    rows, probes = generate_builtin(kind, documents, seed)
    counts = {}
    for domain, domain_rows in rows.items():
        atomic_write_text(out / f"{domain}.jsonl", _jsonl(domain_rows))
        counts[domain] = len(domain_rows)
    if probes is not None:
        atomic_write_text(out / "probes.jsonl", _jsonl([asdict(p) for p in probes]))
        counts["probes"] = len(probes)
    return counts


def cli_data(args: Namespace) -> int:
    if args.action != "generate":
        raise UserError(f"unknown data action {args.action!r}")
    out = Path(args.out)
    t0 = time.perf_counter()
    counts = generate_to_dir(args.kind, out, args.documents, args.seed)
    summary = ", ".join(f"{name} {n}" for name, n in counts.items())
    print(f"wrote {args.kind} corpus to {out} ({summary}) in {time.perf_counter() - t0:.1f}s")
    return 0
