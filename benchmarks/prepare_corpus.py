"""Preparation throughput and peak memory of ``data.corpus`` at two corpus sizes.

Builds a corpus by repeating the shared jsonl corpora (written to --work, never the repo),
trains one tokenizer, and for each size, in a fresh subprocess (so its peak RSS is its
own): prepares the corpus through ``excise.data.corpus`` (keyword classifier) and, on the
first pass of the same text, before and after, times the tokenizer's bare ``encode_batch``
(the limit; the ratio is against their mean) and its ``encode_batch_fast`` (the same ids
without character offsets, which is what preparation calls: the stricter limit)::

    python benchmarks/prepare_corpus.py --work /tmp/prep-bench --tokens 200e6 20e6
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path("/work/shared/data")
SOURCES = [
    "topics/openstax_textbooks.jsonl",
    "literature/en.jsonl",
    "literature/es.jsonl",
    "childrens_books/en.jsonl",
    "tinystories/en.jsonl",
]


def build_corpus(path: Path, target_chars: float) -> int:
    written = 0
    with open(path, "w") as out:
        while written < target_chars:
            for name in SOURCES:
                for line in open(SHARED / name):
                    row = json.loads(line)
                    out.write(json.dumps({"text": row["text"]}) + "\n")
                    written += len(row["text"])
                    if written >= target_chars:
                        return written
    return written


def measure(corpus: Path, tokenizer: Path, cache: Path) -> dict:
    """One size, in this process: preparation, then the bare encode_batch on one pass."""
    import os

    os.environ["EXCISE_CACHE"] = str(cache)
    from tokenizers import Tokenizer

    from excise.config import load_config
    from excise.data import prepare_data

    config = load_config(
        None,
        [
            "data.builtin=null",
            f"data.corpus.path={corpus}",
            f"tokenizer.path={tokenizer}",
            f"data.evaluation.path={SHARED / SOURCES[0]}",
            "data.evaluation.field=topic",
            "data.evaluation.forget=[biology]",
            "labels.classifier.kind=keywords",
            "labels.classifier.keywords=[cell, gene, protein]",
            "model.vocab_size=4096",
            "model.context=256",
        ],
    )

    def bare_encode(method: str) -> float:
        """A limit: bare ``method`` on the same text, chunks of the same size, one pass."""
        tok = Tokenizer.from_file(str(tokenizer))
        encode = getattr(tok, method)
        pass_chars = sum((SHARED / s).stat().st_size for s in SOURCES)
        n, spent, seen, chunk, size = 0, 0.0, 0, [], 0
        for line in open(corpus):
            text = json.loads(line)["text"]
            chunk.append(text)
            size += len(text)
            if size >= 2_000_000:
                t1 = time.perf_counter()
                n += sum(len(e.ids) for e in encode(chunk, add_special_tokens=False))
                spent += time.perf_counter() - t1
                seen, chunk, size = seen + size, [], 0
                if seen >= pass_chars:
                    break
        return n / spent

    # before and after: the cores may be shared with other jobs
    before = {m: bare_encode(m) for m in ("encode_batch", "encode_batch_fast")}
    t0 = time.perf_counter()
    data = prepare_data(config, progress=False)
    prep = time.perf_counter() - t0
    tokens = sum(data.stats["tokens"].values())
    after = {m: bare_encode(m) for m in ("encode_batch", "encode_batch_fast")}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "tokens": tokens,
        "prepare_s": prep,
        "prepare_tokens_per_s": tokens / prep,
        **{f"{m}_tokens_per_s": (before[m] + after[m]) / 2 for m in before},
        **{f"{m}_before_after": [before[m], after[m]] for m in before},
        "peak_rss_mb_process": peak,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/prep-bench"))
    ap.add_argument("--tokens", type=float, nargs="+", default=[200e6, 20e6])
    ap.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(*map(Path, args.one))))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    tokenizer = args.work / "tokenizer.json"
    if not tokenizer.is_file():
        from excise.data.tokenizer import train_tokenizer

        texts = (json.loads(line)["text"] for s in SOURCES for line in open(SHARED / s))
        tokenizer.write_text(train_tokenizer(texts, 4096, False).to_str())
    rows = []
    for target in args.tokens:
        corpus = args.work / f"corpus-{int(target / 1e6)}M.jsonl"
        if not corpus.is_file():
            build_corpus(corpus, target * 4.0)  # about 4 characters per token
        cache = args.work / f"cache-{int(target / 1e6)}M"
        subprocess.run(["rm", "-rf", str(cache)], check=True)
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(corpus), str(tokenizer), str(cache)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        limits = []
        for m in ("encode_batch", "encode_batch_fast"):
            r[f"ratio_{m}"] = r["prepare_tokens_per_s"] / r[f"{m}_tokens_per_s"]
            b, a = r[f"{m}_before_after"]
            limits.append(
                f"{m} {r[f'{m}_tokens_per_s'] / 1e6:.2f}M tok/s (before {b / 1e6:.2f}, after {a / 1e6:.2f}), "
                f"ratio {r[f'ratio_{m}']:.2f}"
            )
        print(
            f"{corpus.name}: {r['tokens'] / 1e6:.1f}M tokens prepared in {r['prepare_s']:.1f}s = "
            f"{r['prepare_tokens_per_s'] / 1e6:.2f}M tok/s; {'; '.join(limits)}; "
            f"peak RSS {r['peak_rss_mb_process']:.0f} MB",
            flush=True,
        )
        mb = corpus.stat().st_size / 1e6
        rows.append(
            f"| {mb:.0f} MB jsonl (`--tokens {target:.0e}`) | {r['tokens'] / 1e6:.1f} M "
            f"| {r['prepare_s']:.1f} s = {r['prepare_tokens_per_s'] / 1e6:.2f} M tok/s "
            f"| {r['encode_batch_tokens_per_s'] / 1e6:.2f} M tok/s | **{r['ratio_encode_batch']:.2f}** "
            f"| {r['encode_batch_fast_tokens_per_s'] / 1e6:.2f} M tok/s | {r['ratio_encode_batch_fast']:.2f} "
            f"| **{r['peak_rss_mb_process']:.0f} MB** |"
        )
    print(
        "\n| corpus | tokens prepared | preparation | bare `encode_batch` | ratio "
        "| bare `encode_batch_fast` | ratio | peak RSS |\n|---|---|---|---|---|---|---|---|"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
