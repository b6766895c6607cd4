"""Interleaved step timing of (method, mode) pairs, for A/B-testing an optimisation.

    python benchmarks/compare_steps.py [--config configs/bench.yaml] [--rounds 5]
        [--pairs no_filter:default sgtm:forget sgtm:retain] [--cat-freeze]

``--cat-freeze`` adds ``sgtm_cat:forget``: SGTM forget steps through the former
implementation (retain weight slices detached and ``torch.cat``-ed with the forget slices,
so the full weight gradient is computed) to measure what the custom autograd function saves.
Prints per-pair median step seconds and the ratio to the first pair.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import excise.model.gpt as gpt
from excise.bench import DEFAULT_CONFIG, excise_runner, random_batch
from excise.config import load_config
from excise.model import Mode


def cat_freeze_linear(x, weight, bias, dim, start):
    """The former FREEZE_RETAIN projection: torch.cat of detached retain + forget slices."""
    if dim == 0:
        w = torch.cat([weight[:start].detach(), weight[start:]], dim=0)
        b = None if bias is None else torch.cat([bias[:start].detach(), bias[start:]])
        return F.linear(x, w, b)
    w = torch.cat([weight[:, :start].detach(), weight[:, start:]], dim=1)
    return F.linear(x, w, bias)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pairs", nargs="+", default=["no_filter:default", "sgtm:forget"])
    parser.add_argument("--cat-freeze", action="store_true")
    args = parser.parse_args()
    config = load_config(args.config)
    m = config.model
    b = config.train.micro_batch_size or config.train.batch_size
    gen = torch.Generator().manual_seed(0)
    new_linear = gpt.forget_grad_linear
    pairs = [p.split(":") for p in args.pairs]
    if args.cat_freeze:
        pairs.append(["sgtm_cat", "forget"])
    runners = {}
    for method, _ in pairs:
        if method not in runners:
            runners[method] = excise_runner(config, method.removesuffix("_cat"), 0)()
    samples: dict[str, list[float]] = {f"{a}:{mo}": [] for a, mo in pairs}
    for r in range(args.rounds + 1):  # round 0 is warm-up
        for method, mode in pairs:
            gpt.forget_grad_linear = cat_freeze_linear if method.endswith("_cat") else new_linear
            batch = random_batch(gen, b, m.context, m.vocab_size)
            t0 = time.perf_counter()
            runners[method].step(batch, Mode(mode))
            if r:
                samples[f"{method}:{mode}"].append(time.perf_counter() - t0)
    gpt.forget_grad_linear = new_linear
    base = None
    for key, s in samples.items():
        med = statistics.median(s)
        base = base or med
        print(
            f"{key:<28} median {med:.3f} s  ratio {med / base:.3f}  samples "
            + " ".join(f"{x:.2f}" for x in s)
        )


if __name__ == "__main__":
    main()
