"""The ``excise`` command line (also ``python -m excise``).

Each subcommand is a thin wrapper that parses arguments and calls one library function,
imported lazily so ``excise --help`` stays fast. User errors (bad config, bad data, bad run
directory) print one paragraph and exit with code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

from excise.errors import PeerFailure, UserError
from excise.train.preemption import EXIT_PREEMPTED, Preempted

_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}

# subcommand -> "module:function"; each function takes the parsed argparse namespace.
COMMANDS = {
    "train": "excise.train.runner:cli_train",
    "config": "excise.config_keys:cli_config",
    "eval": "excise.eval.cli:cli_eval",
    "unlearn": "excise.methods.cli:cli_unlearn",
    "relearn": "excise.eval.cli:cli_relearn",
    "sample": "excise.eval.cli:cli_sample",
    "sweep": "excise.sweep:cli_sweep",
    "report": "excise.report.cli:cli_report",
    "demo": "excise.report.demo:cli_demo",
    "export": "excise.export:cli_export",
    "import": "excise.export.importer:cli_import",
    "bench": "excise.bench:cli_bench",
    "data": "excise.data.cli:cli_data",
}


TRAIN_EPILOG = f"""\
exit codes:
  0   the run finished
  1   a crash, or (several processes) another process died or hung past
      train.dist_timeout_s: continue from the last checkpoint with --resume
  2   a user error (config, data, run directory), explained in one paragraph
  {EXIT_PREEMPTED}  preempted: a signal of train.preempt_signals (default SIGTERM, SIGUSR1) stopped
      training after a whole step with a checkpoint (every rank at the same step) and
      RUN/preempted.json; continue with the same command plus --resume
      (docs/reliability.md has a SLURM script that requeues on it)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="excise",
        description="Train language models whose unwanted knowledge can be cut out afterwards.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for user errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "train", help="train one run from a YAML recipe",
        epilog=TRAIN_EPILOG + "\n`excise config [RECIPE]` lists every key with its type, default and description.\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("config", help="YAML recipe (see configs/)")
    p.add_argument("overrides", nargs="*", help="dotted.key=value overrides (any config key)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue a killed or preempted run in --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")

    p = sub.add_parser("config", help="every config key with its type, default and description")
    p.add_argument("config", nargs="?", default=None, help="a YAML recipe to show resolved (optional)")
    p.add_argument("overrides", nargs="*", help="dotted.key=value overrides")

    p = sub.add_parser("eval", help="evaluate a run: full / ablated / calibrated losses")
    p.add_argument("run_dir")
    p.add_argument("overrides", nargs="*", help="eval.* overrides, e.g. eval.max_tokens=32768")
    p.add_argument("--no-calibration", action="store_true")

    p = sub.add_parser("unlearn", help="post-hoc unlearning of a trained run")
    p.add_argument("method", help="rmu | gradient_ascent | gradient_difference | npo")
    p.add_argument("run_dir")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--out", required=True)

    p = sub.add_parser("relearn", help="relearning attack on the released model of a run")
    p.add_argument("run_dir")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--reference", default=None, help="no-filter run dir giving the target loss")

    p = sub.add_parser("sample", help="generate text from a run")
    p.add_argument("run_dir")
    p.add_argument("--prompt", default="")
    p.add_argument("--ablated", action="store_true")
    p.add_argument("--tokens", type=int, default=64, help="new tokens at most")
    p.add_argument("-n", type=int, default=3, help="samples")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=40, help="sample among the k likeliest (0 = all)")
    p.add_argument("--seed", type=int, default=0, help="sample i uses seed + i")
    p.add_argument("--no-stop", action="store_true", help="do not stop at the end-of-text token")

    p = sub.add_parser("sweep", help="run a grid of runs, then evaluate and attack them")
    p.add_argument("sweep", help="sweep YAML")
    p.add_argument("--out", required=True)
    p.add_argument("overrides", nargs="*")
    p.add_argument("--jobs", type=int, default=None, help="runs at once (threads are split)")

    p = sub.add_parser("report", help="markdown report with plots of sweep or demo directories")
    p.add_argument("dir", nargs="+", help="sweep / demo / run directories (several: merged)")
    p.add_argument("--out", default=None, help="where to write (default: the one DIR; required for several)")
    p.add_argument(
        "--table",
        default=None,
        help="print one table for a document instead (readme, "
        "demo-seeds, headline, paired-summary, paired, paired-curves, relearn, losses)",
    )

    p = sub.add_parser("demo", help="the whole pipeline on the built-in corpus")
    p.add_argument("--out", default="excise-demo")
    p.add_argument("--seed", type=int, default=None, help="seed of every run (default: the recipe's, 0)")
    p.add_argument("--quick", action="store_true", help="a one-minute version (for tests)")
    p.add_argument("--overwrite", action="store_true")

    p = sub.add_parser("export", help="export a run as a transformers model")
    p.add_argument("run_dir")
    p.add_argument("--format", default="hf", choices=["hf"])
    p.add_argument("--ablated", action="store_true", help="the safe model: forget units zeroed")
    p.add_argument("--prune", action="store_true", help="the safe model with forget units removed")
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true", help="replace an existing export folder")
    p.add_argument("--license", default=None, help="model card licence id (e.g. apache-2.0)")
    p.add_argument("--language", action="append", default=None, help="model card language (repeatable)")
    p.add_argument("--base-model", default=None, help="hub id of the checkpoint the run started from")
    p.add_argument(
        "--push-to-hub", default=None, metavar="REPO", help="then upload the folder to this hub repo"
    )
    p.add_argument("--private", action="store_true", help="create the hub repo private")
    p.add_argument("--dry-run", action="store_true", help="with --push-to-hub: list the upload, send nothing")

    p = sub.add_parser("import", help="a local GPT-Neo / Llama checkpoint as a run with forget units")
    p.add_argument("checkpoint", help="transformers checkpoint folder (config.json + safetensors)")
    p.add_argument("overrides", nargs="*", help="dotted.key=value for the run's config (data, method, ...)")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument(
        "--mode",
        choices=["expand", "designate"],
        default="expand",
        help="expand: add new inert forget units; designate: make the last existing ones forget units",
    )
    p.add_argument("--forget-heads", type=int, default=1, help="per masked layer")
    p.add_argument("--forget-mlp-units", type=int, default=64, help="per masked layer")
    p.add_argument("--layers", default=None, help="masked layers, e.g. 0,1,2 (default all)")
    p.add_argument("--config", default=None, help="recipe whose other sections the run keeps")
    p.add_argument("--base-model", default=None, help="hub id of the checkpoint, for model cards")
    p.add_argument("--overwrite", action="store_true")

    p = sub.add_parser("bench", help="training throughput benchmark")
    p.add_argument("--config", default=None)
    p.add_argument("--out", default=None, help="write the JSON results here")
    p.add_argument("--quick", action="store_true", help="2 rounds of one step each (a functional check)")
    p.add_argument("--rounds", type=int, default=None, help="timing rounds (default 6)")
    p.add_argument(
        "--window",
        type=float,
        default=None,
        help="seconds of back-to-back steps per configuration, mode and round (default 4)",
    )

    p = sub.add_parser("data", help="built-in corpus generation")
    p.add_argument("action", choices=["generate"])
    p.add_argument("--kind", choices=["bilingual", "topic"], required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--documents", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # dotted.key=value overrides may also follow the options (e.g. after --out DIR)
    if extra:
        if hasattr(args, "overrides") and all("=" in x and not x.startswith("-") for x in extra):
            args.overrides = list(args.overrides or []) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 2
    module_name, func_name = COMMANDS[args.command].split(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        result = func(args)
    except UserError as e:
        if args.debug:
            raise
        print(f"excise {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        # the user's environment, not a bug: no permission, disk or quota full, read-only
        if args.debug or not (isinstance(e, PermissionError) or e.errno in _ENVIRONMENT_ERRNOS):
            raise
        where = f": {e.filename}" if e.filename else ""
        print(f"excise {args.command}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Preempted as e:
        print(f"excise {args.command}: {e}", file=sys.stderr)
        return EXIT_PREEMPTED
    except PeerFailure as e:
        if args.debug:
            raise
        print(f"excise {args.command}: error: {e}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
