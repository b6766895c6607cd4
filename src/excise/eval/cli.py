"""``excise eval``, ``excise relearn`` and ``excise sample``: thin wrappers over the library."""

from __future__ import annotations

import argparse
import json

from excise.config import DOMAINS


def cli_eval(args: argparse.Namespace) -> int:
    from excise import api

    result = api.evaluate(args.run_dir, args.overrides, calibrate=not args.no_calibration)
    print(f"{'variant':<12}" + "".join(f"{d:>10}" for d in DOMAINS))
    for variant in ("full", "ablated", "calibrated"):
        if variant in result:
            row = result[variant]
            print(
                f"{variant:<12}" + "".join(f"{row[d]:>10.4f}" if d in row else f"{'-':>10}" for d in DOMAINS)
            )
    if "probes" in result:
        print("probes:", json.dumps(result["probes"]))
    print(f"wrote {args.run_dir}/eval.json")
    return 0


def cli_relearn(args: argparse.Namespace) -> int:
    from excise import api

    result = api.relearn(args.run_dir, steps=args.steps, reference=args.reference, overrides=args.overrides)
    for step, f, r in zip(result["steps"], result["forget_loss"], result["retain_loss"]):
        print(f"step {step:>5}  forget {f:.4f}" + (f"  retain {r:.4f}" if r is not None else ""))
    ref = result["reference_forget_loss"]
    if ref is not None:
        print(f"reference forget loss {ref:.4f}; steps_to_recover {result['steps_to_recover']}")
    print(f"wrote {args.run_dir}/relearn.json")
    return 0


def cli_sample(args: argparse.Namespace) -> int:
    from excise import api

    texts = api.sample(
        args.run_dir, args.prompt, n=args.n, max_new_tokens=args.tokens,
        temperature=args.temperature, top_k=args.top_k or None, ablated=args.ablated,
        stop_at_end=not args.no_stop, seed=args.seed,
    )  # fmt: skip
    for i, text in enumerate(texts):
        print(f"--- sample {i} ({'ablated' if args.ablated else 'full'})")
        print(text)
    return 0
