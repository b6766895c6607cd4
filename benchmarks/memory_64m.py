"""Peak memory of training the paper's 64M shape on CPU (must stay under 8 GiB).

    python benchmarks/memory_64m.py [--steps 2] [--methods no_filter sgtm] [--out mem.json]

Shape: 8 layers, width 512, 32 heads, MLP 2048, vocabulary 50257, context 512, micro-batch 8
(1 forget head and 128 forget MLP units per layer for the partitioned methods). Each method
runs in a fresh subprocess (``--worker``) so that the monotone ``ru_maxrss`` — the process's
peak resident set, which covers everything torch allocates — belongs to that method alone.
Steps cycle default → forget → retain for partitioned methods (default only otherwise).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

SHAPE = dict(n_layers=8, d_model=512, n_heads=32, d_ff=2048, vocab_size=50257, context=512)
MICRO_BATCH = 8
LIMIT_GIB = 8.0


def worker(method: str, steps: int) -> dict:
    import torch

    from excise.config import MethodConfig, ModelConfig, PartitionConfig, TrainConfig
    from excise.model import Mode, build_model
    from excise.train.step import build_optimizer, train_step

    model_cfg = ModelConfig(**SHAPE)
    method_cfg = MethodConfig(name=method)
    train_cfg = TrainConfig(batch_size=MICRO_BATCH, warmup_steps=0)
    model, partition = build_model(model_cfg, PartitionConfig(forget_heads=1, forget_mlp_units=128), 0)
    opt = build_optimizer(model, partition, method_cfg, train_cfg, "cpu")
    gen = torch.Generator().manual_seed(0)
    cycle = [Mode.DEFAULT, Mode.FORGET, Mode.RETAIN] if method_cfg.partitioned else [Mode.DEFAULT]
    times = []
    for i in range(steps):
        batch = torch.randint(0, SHAPE["vocab_size"], (MICRO_BATCH, SHAPE["context"] + 1), generator=gen)
        t0 = time.perf_counter()
        train_step(model, opt, partition, method_cfg, train_cfg, [batch], cycle[i % len(cycle)], 1e-3)
        times.append(time.perf_counter() - t0)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "method": method,
        "parameters": model.num_parameters(),
        "steps": steps,
        "step_seconds": times,
        "peak_rss_mib": peak_mib,
        "under_limit": peak_mib < LIMIT_GIB * 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=["no_filter"])
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps)))
        return
    results = []
    for method in args.methods:
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", method, "--steps", str(args.steps)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        print(
            f"{method:<18} params {r['parameters'] / 1e6:.1f}M  peak RSS "
            f"{r['peak_rss_mib'] / 1024:.2f} GiB  (limit {LIMIT_GIB} GiB: "
            f"{'ok' if r['under_limit'] else 'OVER'})  step s "
            + " ".join(f"{t:.1f}" for t in r["step_seconds"])
        )
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"shape": SHAPE, "micro_batch": MICRO_BATCH, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
