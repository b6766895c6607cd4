"""``excise unlearn METHOD RUN_DIR --out RUN_DIR2``."""

from __future__ import annotations

import argparse


def cli_unlearn(args: argparse.Namespace) -> int:
    from excise import api
    from excise.run_files import SUMMARY, UnlearnSummary, read_record

    out = api.unlearn(args.run_dir, args.out, args.method, args.overrides)
    log = read_record(out / SUMMARY, UnlearnSummary)["unlearn"]
    extra = f" (layer {log['layer']}, steering {log['steering_coef']:.2f})" if "layer" in log else ""
    print(f"{args.method}{extra}: loss {log['first_loss']} -> {log['last_loss']}; wrote {args.out}")
    return 0
