"""A fingerprint of what excise computes, to prove a refactor changed no behaviour.

Runs a small fixed-seed sweep through the command line — every training method (SGTM with
``masking: grads`` and with ``masking: updates`` + ``mask_shared``, gradient routing,
activation masking, no / weak / strict filter), RMU on the no-filter run, the calibrated
eval and a short relearning attack on every released model — then the report, and prints
one SHA-256 per output: each run's weights, ``eval.json``, ``relearn.json``, and
``report.md`` without its timing columns. Two checkouts agree in behaviour when their
fingerprints are equal::

    python benchmarks/behaviour_fingerprint.py --out /tmp/fp-a > a.txt   # in checkout A
    python benchmarks/behaviour_fingerprint.py --out /tmp/fp-b > b.txt   # in checkout B
    diff a.txt b.txt

It uses only the CLI and the files of the run-directory contract, so it runs unchanged on
older commits. About a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SWEEP = """
name: fingerprint
base: {base}
overrides:
  model: {{vocab_size: 320, context: 32, n_layers: 2, d_model: 32, n_heads: 4, d_ff: 64}}
  partition: {{forget_heads: 1, forget_mlp_units: 16}}
  data: {{builtin: bilingual, builtin_documents: 60}}
  train: {{batch_size: 4, steps: 12, warmup_steps: 2, threads: 1}}
  eval: {{every: 6, max_tokens: 512, calibration_steps: 5}}
  unlearn: {{steps: 4, batch_size: 4}}
  logging: {{progress: false, every: 3}}
grid:
  method.name: [sgtm, gradient_routing, activation_masking, no_filter, weak_filter, strict_filter]
include:
  - {{method.name: sgtm, method.masking: updates, method.mask_shared: true}}
unlearn: rmu
after: [eval, relearn]
relearn: {{steps: 6, overrides: [relearn.eval_every=3, relearn.batch_size=4]}}
"""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "absent"


def json_digest(path: Path, drop: tuple[str, ...]) -> str:
    """A JSON file's content without the keys that name paths or hash files."""
    if not path.is_file():
        return "absent"
    data = json.loads(path.read_text())
    for key in drop:
        data.pop(key, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def report_digest(path: Path) -> str:
    """report.md without the Training section's wall-time and tokens/s columns and the
    checkout's path."""
    lines, training = [], False
    for line in path.read_text().replace(str(REPO), "<checkout>").splitlines():
        if line.startswith("## "):
            training = line == "## Training"
        if training and line.startswith("|"):
            line = "|".join(line.split("|")[:6])
        lines.append(line)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="a scratch directory (replaced)")
    args = parser.parse_args(argv)
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    spec = args.out / "fingerprint.yaml"
    spec.write_text(SWEEP.format(base=REPO / "configs" / "bilingual-tiny.yaml"))
    env = {**os.environ, "EXCISE_CACHE": str(args.out / "cache")}
    excise = [sys.executable, "-m", "excise"]
    subprocess.run(
        excise + ["sweep", str(spec), "--out", str(args.out / "sweep")],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        excise + ["report", str(args.out / "sweep"), "--out", str(args.out / "report")],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    sweep = json.loads((args.out / "sweep" / "sweep.json").read_text())
    for run in sorted(r["name"] for r in sweep["runs"]):
        d = args.out / "sweep" / run
        print(
            f"{run:40s} weights {digest(d / 'model.safetensors')}  "
            f"eval {json_digest(d / 'eval.json', ('cache_key',))}  "
            f"relearn {json_digest(d / 'relearn.json', ('reference_run',))}"
        )
    print(f"{'report.md':40s} {report_digest(args.out / 'report' / 'report.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
