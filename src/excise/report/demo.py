"""``excise demo``: the whole pipeline on the built-in bilingual corpus, as one small sweep.

Trains SGTM, no filter, weak filter and strict filter on ``configs/demo.yaml`` (retain
English, forget Spanish, recall 0.9 — a realistic 10% of forget data undiscovered),
unlearns the no-filter model with RMU, evaluates every model (full / ablated / calibrated),
runs the relearning attack on the released models with the no-filter forget loss as the
target, writes ``OUT/report.md`` and prints the headline table.

It is a sweep underneath (:mod:`excise.sweep`), so a rerun into the same directory
skips what is finished and resumes what was killed. ``--quick`` shrinks model, data and
steps to about a minute (for tests and a first look); the recipe itself is tuned in
``configs/demo.yaml``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from excise.errors import UserError
from excise.report.markdown import write_report
from excise.report.records import load_runs
from excise.report.tables import render_table
from excise.sweep import SWEEP_FILE, configs_dir, parse_spec, run_sweep

DEMO_METHODS = ["sgtm", "no_filter", "weak_filter", "strict_filter"]

# About a minute on a 2-core CPU: a 2-layer model on a few hundred documents. One thread,
# because tiny matmuls lose far more to thread synchronisation than they gain.
QUICK_OVERRIDES = [
    "model.vocab_size=512", "model.context=64", "model.n_layers=2", "model.d_model=64",
    "model.n_heads=4", "model.d_ff=256", "partition.forget_heads=1",
    "partition.forget_mlp_units=32", "data.builtin_documents=200", "train.steps=60",
    "train.batch_size=8", "train.warmup_steps=5", "train.threads=1", "eval.every=20",
    "eval.max_tokens=2048", "eval.calibration_steps=20", "eval.batch_size=16",
    "unlearn.steps=10", "unlearn.batch_size=8", "relearn.steps=20", "relearn.eval_every=5",
    "relearn.batch_size=8", "logging.every=10", "checkpoint.every=0",
]  # fmt: skip


def demo_spec(quick: bool = False):
    """The demo as a sweep over methods on ``configs/demo.yaml``."""
    base = configs_dir() / "demo.yaml"
    spec = parse_spec({
        "name": "demo-quick" if quick else "demo",
        "base": str(base),
        "grid": {"method.name": list(DEMO_METHODS)},
        "unlearn": "rmu",
        "after": ["eval", "relearn"],
    })  # fmt: skip
    return spec


def prepare_out(out: Path, identity: dict, overwrite: bool) -> str:
    """Decide what to do with ``out``: "new", "continue" (same demo) or "replaced".

    A non-empty directory is only reused when it holds an earlier run of the same demo,
    and only replaced (with ``--overwrite``) when it is an excise demo or sweep directory —
    never someone's unrelated files.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if not out.is_dir() or not any(out.iterdir()):
        return "new"
    previous = None
    if (out / SWEEP_FILE).is_file():
        import json

        try:
            previous = json.loads((out / SWEEP_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            previous = {}
    if overwrite:
        if previous is None:
            raise UserError(
                f"--out {out} is not empty and is not an excise demo or sweep directory "
                "(no sweep.json); refusing to delete it even with --overwrite — choose another --out"
            )
        shutil.rmtree(out)
        return "replaced"
    if previous is not None and previous.get("demo") == identity:
        return "continue"
    raise UserError(
        f"--out {out} is not empty"
        + (" and holds a different demo or sweep" if previous is not None else "")
        + "; use --overwrite to replace it or choose another --out"
    )


def cli_demo(args) -> int:
    out = Path(args.out)
    quick = bool(args.quick)
    seed = getattr(args, "seed", None)
    overrides = (QUICK_OVERRIDES if quick else []) + ([f"seed={seed}"] if seed is not None else [])
    identity = {"quick": quick, "overrides": overrides}
    spec = demo_spec(quick)
    state = prepare_out(out, identity, bool(args.overwrite))
    print(f"excise demo{' --quick' if quick else ''}: SGTM vs no / weak / strict filter and RMU "
          f"on the built-in bilingual corpus ({spec.base}) -> {out}"
          + (" (continuing: finished parts are skipped)" if state == "continue" else ""), flush=True)  # fmt: skip
    started = time.time()
    # Two small runs at a time, one thread each, use a 2-core CPU better than one run on two.
    jobs = 1 if quick else min(2, os.cpu_count() or 1)
    run_sweep(
        spec, out, overrides, jobs=jobs,
        extra_record={"demo": identity, "title": "demo" + (" (quick)" if quick else "")},
    )  # fmt: skip
    report = write_report(out)
    _, records = load_runs(out)
    print()
    print(render_table("readme", records, f"excise report {out} --table readme"))
    print(
        "\nLosses: nats per token on held-out text, calibrated released models (docs/method.md); "
        "Spanish is the domain removed (higher = more removed), English the one kept."
    )
    print(f"wall time {time.time() - started:.0f}s; report: {report}")
    return 0
