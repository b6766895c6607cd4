"""Evaluate an exported model with plain transformers or lm-evaluation-harness (optional).

- :func:`transformers_losses`: mean next-token loss (nats) per domain on jsonl / txt text,
  computed by the transformers model itself; needs only the ``hf`` extra. Same definition as
  ``excise eval``: documents tokenized and concatenated, cut into context-length windows,
  every predicted token counts once.
- :func:`write_perplexity_tasks` + :func:`evaluate_lm_eval`: lm-eval tasks
  ``excise_ppl_<domain>`` (``loglikelihood_rolling`` over a local jsonl / json / csv /
  parquet file, metrics word / byte perplexity and bits per byte, each with its aggregation
  and direction, as lm-eval's own wikitext task declares them), run in-process on an export;
  needs the ``lmeval`` extra (``pip install 'excise[lmeval]'``). Everything is local: no
  download. The task files go to a temporary folder (or ``--task-dir``), never into the
  export, which is what gets uploaded to the hub.

Command line: ``python -m excise.export.lmeval EXPORT_DIR --forget f.jsonl --retain r.jsonl
[--adjacent a.jsonl] [--lm-eval] [--limit N] [--task-dir DIR]``; errors go to stderr (exit 2).
The same task files work with the stock CLI: ``lm_eval --model hf --model_args
pretrained=EXPORT_DIR --include_path DIR --tasks excise_ppl_forget``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from pathlib import Path

from excise.errors import UserError

TASK_PREFIX = "excise_ppl_"


def read_texts(path: Path, text_field: str = "text", max_documents: int | None = None) -> list[str]:
    """Documents of a ``.jsonl`` / ``.txt`` / ``.parquet`` file, read by the data module's
    loader (same formats, same error messages)."""
    from excise.config import DataSource
    from excise.data.sources import read_documents

    path = Path(path)
    if not path.is_file():
        raise UserError(f"text file {path} does not exist")
    source = DataSource(path=str(path), text_field=text_field, max_documents=max_documents)
    return read_documents(source, path.stem)


def transformers_losses(
    model_dir: str | Path,
    files: Mapping[str, Path],
    *,
    text_field: str = "text",
    max_documents: int | None = 200,
    batch_size: int = 8,
    device: str = "cpu",
) -> dict[str, float]:
    """Mean next-token loss in nats per domain, computed by transformers on the export."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), use_safetensors=True).to(device).eval()
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    context = model.config.max_position_embeddings
    eos = tok.eos_token_id
    out: dict[str, float] = {}
    for domain, path in files.items():
        ids: list[int] = []
        for text in read_texts(path, text_field, max_documents):
            ids += tok(text, add_special_tokens=False)["input_ids"]
            if eos is not None:
                ids.append(eos)
        windows = [ids[i : i + context] for i in range(0, len(ids) - 1, context)]
        windows = [w for w in windows if len(w) > 1]
        if not windows:
            raise UserError(f"{path}: no text to evaluate")
        total, count = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(windows), batch_size):
                batch = windows[start : start + batch_size]
                width = max(len(w) for w in batch)
                x = torch.zeros(len(batch), width, dtype=torch.long)
                y = torch.full((len(batch), width), -100, dtype=torch.long)
                for row, w in enumerate(batch):
                    x[row, : len(w)] = torch.tensor(w)
                    y[row, : len(w) - 1] = torch.tensor(w[1:])
                logits = model(x.to(device)).logits.float()
                loss = torch.nn.functional.cross_entropy(
                    logits.flatten(0, 1), y.to(device).flatten(), ignore_index=-100, reduction="sum"
                )
                total += loss.item()
                count += int((y != -100).sum())
        out[domain] = total / count
    return out


def transformers_sequence_losses(
    model_dir: str | Path,
    sequences: Mapping[str, object],
    *,
    max_tokens: int | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> dict[str, float]:
    """Mean next-token loss per domain of the export on pre-tokenized sequences.

    ``sequences[domain]`` is an integer array (n_seq, T + 1), the layout of excise's packed
    test data; the first ceil(max_tokens / T) sequences count, as in ``excise eval``, so the
    figures are directly comparable with ``eval.json``.
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), use_safetensors=True).to(device).eval()
    out: dict[str, float] = {}
    for domain, array in sequences.items():
        tokens = torch.as_tensor(array, dtype=torch.long)
        T = tokens.shape[1] - 1
        n = tokens.shape[0] if max_tokens is None else min(tokens.shape[0], math.ceil(max_tokens / T))
        total = 0.0
        with torch.no_grad():
            for start in range(0, n, batch_size):
                batch = tokens[start : min(n, start + batch_size)].to(device)
                logits = model(batch[:, :-1]).logits.double()
                total += torch.nn.functional.cross_entropy(
                    logits.flatten(0, 1), batch[:, 1:].flatten(), reduction="sum"
                ).item()
        out[domain] = total / (n * T)
    return out


# lm-eval's builder for each local file format (``datasets`` loaders: compressed json works)
LOADERS = {".jsonl": "json", ".json": "json", ".ndjson": "json", ".csv": "csv", ".parquet": "parquet"}
# metric -> (aggregation, higher_is_better), as lm-eval's wikitext task declares them
METRICS = {
    "word_perplexity": ("weighted_perplexity", False),
    "byte_perplexity": ("weighted_perplexity", False),
    "bits_per_byte": ("bits_per_byte", False),
}


def task_loader(path: Path) -> str:
    """The lm-eval ``dataset_path`` (a datasets builder) reading ``path``."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".xz", ".zst"):
        suffixes = suffixes[:-1]
    loader = LOADERS.get(suffixes[-1] if suffixes else "")
    if loader is None:
        raise UserError(
            f"lm-eval tasks read {', '.join(LOADERS)} files (optionally compressed); {path} is "
            "none of them (plain .txt paragraphs have no lm-eval loader: convert them to jsonl)"
        )
    return loader


def write_perplexity_tasks(
    task_dir: str | Path, files: Mapping[str, Path], text_field: str = "text"
) -> list[str]:
    """Write one lm-eval task YAML per domain into ``task_dir``; returns the task names."""
    task_dir = Path(task_dir)
    task_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for domain, path in files.items():
        path = Path(path).resolve()
        name = f"{TASK_PREFIX}{domain}"
        # JSON is valid YAML, and quoting every string keeps paths with odd characters safe
        task = {
            "task": name,
            "dataset_path": task_loader(path),
            "dataset_kwargs": {"data_files": {"test": str(path)}},
            "test_split": "test",
            "output_type": "loglikelihood_rolling",
            "doc_to_text": "",
            "doc_to_target": "{{" + text_field + "}}",
            "metric_list": [
                {"metric": metric, "aggregation": aggregation, "higher_is_better": higher}
                for metric, (aggregation, higher) in METRICS.items()
            ],
            "metadata": {"version": 1.0},
        }
        (task_dir / f"{name}.yaml").write_text(json.dumps(task, indent=1) + "\n", encoding="utf-8")
        names.append(name)
    return names


def require_lm_eval():
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise UserError("lm-evaluation-harness is not installed: pip install 'excise[lmeval]'") from None
    return lm_eval


def evaluate_lm_eval(
    model_dir: str | Path,
    files: Mapping[str, Path],
    task_dir: str | Path | None = None,
    *,
    text_field: str = "text",
    limit: int | None = None,
    batch_size: int = 1,
    device: str = "cpu",
) -> dict[str, dict[str, float]]:
    """Run the local perplexity tasks with lm-eval in-process; {domain: {metric: value}}.

    The task YAMLs are written to ``task_dir`` (default: a temporary folder, removed after).
    """
    require_lm_eval()
    if task_dir is None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="excise-lm-eval-tasks-") as tmp:
            return evaluate_lm_eval(
                model_dir, files, tmp, text_field=text_field, limit=limit, batch_size=batch_size,
                device=device,
            )  # fmt: skip
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    names = write_perplexity_tasks(task_dir, files, text_field)
    lm = HFLM(pretrained=str(model_dir), batch_size=batch_size, device=device)
    manager = TaskManager(include_path=str(task_dir))
    results = simple_evaluate(model=lm, tasks=names, task_manager=manager, limit=limit)
    if results is None:  # lm-eval returns None on ranks other than 0
        return {}
    out: dict[str, dict[str, float]] = {}
    for name in names:
        metrics = results["results"][name]
        domain = name.removeprefix(TASK_PREFIX)
        out[domain] = {
            k.split(",")[0]: float(v)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and "stderr" not in k and math.isfinite(float(v))
        }
    return out


def main(argv: list[str] | None = None) -> int:
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m excise.export.lmeval", description=__doc__.split("\n")[0]
    )
    parser.add_argument("model_dir")
    for domain in ("forget", "retain", "adjacent"):
        parser.add_argument(
            f"--{domain}", type=Path, help=f"{domain}-domain jsonl / json / csv / parquet / txt"
        )
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--max-documents", type=int, default=200)
    parser.add_argument("--lm-eval", action="store_true", help="also run lm-eval's perplexity tasks")
    parser.add_argument("--limit", type=int, default=None, help="lm-eval: documents per task")
    parser.add_argument(
        "--task-dir", default=None, help="keep the lm-eval task YAMLs here (not in the export)"
    )
    args = parser.parse_args(argv)
    files = {d: getattr(args, d) for d in ("forget", "retain", "adjacent") if getattr(args, d)}
    if not files:
        parser.error("give at least one of --forget, --retain, --adjacent")
    try:
        if args.lm_eval:  # fail before minutes of loss computation, not after
            require_lm_eval()
            if args.task_dir is not None and _inside(Path(args.task_dir), Path(args.model_dir)):
                raise UserError(
                    f"--task-dir {args.task_dir} is inside the export {args.model_dir}: the task "
                    "files (with local data paths) would be uploaded with the model; choose "
                    "another folder"
                )
            for path in files.values():
                task_loader(path)
        result: dict = {
            "transformers_loss": transformers_losses(
                args.model_dir, files, text_field=args.text_field, max_documents=args.max_documents
            )
        }
        if args.lm_eval:
            result["lm_eval"] = evaluate_lm_eval(
                args.model_dir, files, args.task_dir, text_field=args.text_field, limit=args.limit
            )
    except UserError as e:
        print(f"python -m excise.export.lmeval: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    return 0


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


if __name__ == "__main__":
    raise SystemExit(main())
