"""``excise eval``, ``excise relearn`` and ``excise sample``: thin wrappers over the library."""

from __future__ import annotations

import argparse
import json

from excise.config import DOMAINS


def cli_eval(args: argparse.Namespace) -> int:
    from excise.eval.evaluate import evaluate_run

    result = evaluate_run(args.run_dir, args.overrides, calibrate=not args.no_calibration)
    print(f"{'variant':<12}" + "".join(f"{d:>10}" for d in DOMAINS))
    for variant in ("full", "ablated", "calibrated"):
        if variant in result:
            row = result[variant]
            print(f"{variant:<12}" + "".join(f"{row[d]:>10.4f}" if d in row else f"{'-':>10}" for d in DOMAINS))
    if "probes" in result:
        print("probes:", json.dumps(result["probes"]))
    print(f"wrote {args.run_dir}/eval.json")
    return 0


def cli_relearn(args: argparse.Namespace) -> int:
    from excise.eval.relearn import relearn_run

    result = relearn_run(args.run_dir, args.overrides, steps=args.steps, reference_dir=args.reference)
    for step, f, r in zip(result["steps"], result["forget_loss"], result["retain_loss"]):
        print(f"step {step:>5}  forget {f:.4f}" + (f"  retain {r:.4f}" if r is not None else ""))
    ref = result["reference_forget_loss"]
    if ref is not None:
        print(f"reference forget loss {ref:.4f}; steps_to_recover {result['steps_to_recover']}")
    print(f"wrote {args.run_dir}/relearn.json")
    return 0


def cli_sample(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tokenizers import Tokenizer

    from excise.errors import UserError
    from excise.eval.probes import generate
    from excise.model.partition import ablated_copy
    from excise.run import TOKENIZER, load_run

    run = load_run(args.run_dir)
    tok_path = Path(args.run_dir) / TOKENIZER
    if not tok_path.is_file():
        raise UserError(f"{args.run_dir} has no {TOKENIZER}; cannot encode the prompt")
    tokenizer = Tokenizer.from_file(str(tok_path))
    model = run.model
    if args.ablated:
        if not run.partitioned:
            raise UserError(f"{args.run_dir} has no forget units to ablate (method {run.config.method.name})")
        model = ablated_copy(model, run.partition)
    prompt = tokenizer.encode(args.prompt).ids if args.prompt else []
    for i in range(args.n):
        ids = generate(model, prompt, args.tokens, seed=i)
        print(f"--- sample {i} ({'ablated' if args.ablated else 'full'})")
        print(args.prompt + tokenizer.decode(ids))
    return 0
