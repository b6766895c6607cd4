"""Profile one training step of the bench shape with torch.profiler, per method and mode.

    python benchmarks/profile_step.py [--config configs/bench.yaml] [--method sgtm]
        [--mode forget] [--steps 2] [--rows 25]

Prints the operators sorted by self CPU time (the table explains where a step's time goes).
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from excise.bench import DEFAULT_CONFIG, random_batch
from excise.config import load_config
from excise.model import Mode, build_model
from excise.train.step import build_optimizer, train_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--method", default="no_filter")
    parser.add_argument("--mode", default="default", choices=[m.value for m in Mode])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args()
    config = load_config(args.config)
    method = config.method.model_copy(update={"name": args.method})
    model, partition = build_model(config.model, config.partition, config.seed)
    opt = build_optimizer(model, partition, method, config.train, "cpu")
    gen = torch.Generator().manual_seed(0)
    b = config.train.micro_batch_size or config.train.batch_size
    m = config.model
    mode = Mode(args.mode)

    def step() -> None:
        batch = random_batch(gen, b, m.context, m.vocab_size)
        train_step(model, opt, partition, method, config.train, [batch], mode, config.train.lr)

    step()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
