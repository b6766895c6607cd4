"""``data.corpus``: one mixed corpus → labelled pools of packed windows, in bounded memory.

Documents stream through in chunks of about ``CHUNK_CHARACTERS`` of text. Each chunk is
tokenized with one ``encode_batch_fast`` call (the tokenizer spreads it over every core) in a
thread, one chunk ahead of the labelling and writing, which are single-threaded. Each
document is labelled by ``labels.classifier`` and appended with EOS to the token stream of
its pool (``train_forget`` / ``train_adjacent`` / ``train_retain``: documents of one label
per sequence) or, for the labelled held-out documents, to ``test_<true domain>``. After
every chunk the streams are flushed and ``progress.json`` records how far they are valid,
so a killed preparation continues where it stopped. The entry is keyed by everything that
changes its arrays, built under a file lock (ranks and runs share it) and published by a
rename. The labeller's precision and recall on the held-out documents are measured on the
way and stored with the arrays.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from excise.checkpoint import atomic_write_text
from excise.config import Config
from excise.data import packing
from excise.data.classify import (
    CLASSIFIER_VERSION,
    PREDICTED,
    DocumentClassifier,
    build_classifier,
    map_label,
    measure,
    text_digest,
)
from excise.data.corpus_files import fingerprint, records
from excise.data.sources import DataError
from excise.data.tokenizer import eos_id, load_tokenizer, train_tokenizer
from excise.errors import UserError

CORPUS_FORMAT = 1
CHUNK_CHARACTERS = 2_000_000


def _log(progress: bool, message: str) -> None:
    if progress:
        print(f"[excise data] {message}", flush=True)


def held_out(indices: np.ndarray, seed: int, fraction: float) -> np.ndarray:
    """Whether each corpus document (by index) is held out: a counter-based draw, so the
    split needs no document count and is the same on every pass."""
    from excise.data.schedule import _splitmix64

    base = _splitmix64(np.asarray([seed & ((1 << 64) - 1)], dtype=np.uint64) ^ np.uint64(0xC0875))
    bits = _splitmix64(indices.astype(np.uint64) ^ base)
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53)) < fraction


def _corpus_tokenizer(config: Config, root: Path, corpus_fp: dict, progress: bool) -> Tokenizer:
    """``tokenizer.path``, or a BPE trained on the first ``max_train_characters`` of the
    corpus's training documents (cached by corpus and settings)."""
    if config.tokenizer.path is not None:
        tokenizer = load_tokenizer(config.tokenizer.path)
    else:
        budget = config.tokenizer.max_train_characters
        key = packing.stable_hash(
            {
                "corpus": corpus_fp,
                "vocab_size": config.model.vocab_size,
                "chars": budget,
                "seed": config.seed,
                "test_fraction": config.data.test_fraction,
            }
        )
        path = root / "tokenizers" / f"corpus-{key}.json"
        if path.is_file():
            tokenizer = Tokenizer.from_file(str(path))
        else:

            def texts() -> Iterator[str]:
                left = budget
                for index, (text, _) in enumerate(records(config.data.corpus)):
                    if left <= 0:
                        return
                    if not held_out(np.asarray([index]), config.seed, config.data.test_fraction)[0]:
                        piece = text[:left]
                        left -= len(piece)
                        yield piece

            t0 = time.perf_counter()
            tokenizer = train_tokenizer(texts(), config.model.vocab_size, progress)
            _log(progress, f"trained BPE tokenizer on the corpus in {time.perf_counter() - t0:.1f}s")
            atomic_write_text(path, tokenizer.to_str())
    if tokenizer.get_vocab_size() > config.model.vocab_size:
        raise UserError(
            f"the tokenizer has {tokenizer.get_vocab_size()} tokens but model.vocab_size is "
            f"{config.model.vocab_size}; raise model.vocab_size"
        )
    return tokenizer


def _chunks(stream: Iterator) -> Iterator[list]:
    """Consecutive records in lists of about CHUNK_CHARACTERS of text."""
    chunk, size, limit = [], 0, CHUNK_CHARACTERS
    for item in stream:
        chunk.append(item)
        size += len(item[0][0])
        if size >= limit:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


class _Streams:
    """Append-only token streams of one partial cache entry, valid up to ``lengths``."""

    def __init__(self, folder: Path, dtype: np.dtype, lengths: dict[str, int]):
        self.folder, self.dtype, self.lengths = folder, dtype, dict(lengths)
        self.files = {}
        for name, n in self.lengths.items():  # drop whatever a killed run wrote past the mark
            with open(folder / f"{name}.bin", "r+b") as f:
                f.truncate(n * dtype.itemsize)

    def append(self, name: str, pieces: list[np.ndarray]) -> None:
        if name not in self.files:
            self.files[name] = open(self.folder / f"{name}.bin", "ab")
            self.lengths.setdefault(name, 0)
        data = np.concatenate(pieces)
        self.files[name].write(data.tobytes())
        self.lengths[name] += len(data)

    def sync(self) -> None:
        for f in self.files.values():
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _build(
    config: Config, tokenizer: Tokenizer, classifier: DocumentClassifier, folder: Path, progress: bool
) -> dict:
    """Stream, label, tokenize and append every document; resumable via progress.json."""
    data, evaluation = config.data, config.data.evaluation
    dtype = packing.token_dtype(config.model.vocab_size)
    eos = np.asarray([eos_id(tokenizer)], dtype=dtype)
    state_file = folder / "progress.json"
    state = (
        json.loads(state_file.read_text())
        if state_file.is_file()
        else {
            "phases": {"evaluation": 0, "corpus": 0},
            "lengths": {},
            "documents": {},
            "confusion": {},
            "seed_overlap": 0,
        }
    )
    if state["phases"]["corpus"] or state["phases"]["evaluation"]:
        _log(progress, f"resuming preparation after {state['phases']} documents")
    streams = _Streams(folder, dtype, state["lengths"])
    own_eval = evaluation.path is None
    fields = tuple(dict.fromkeys(classifier.fields + ((evaluation.field,) if own_eval else ())))
    phases = [("corpus", records(data.corpus, fields))]
    if not own_eval:
        phases.insert(
            0,
            (
                "evaluation",
                records(
                    evaluation,
                    tuple(dict.fromkeys(classifier.fields + (evaluation.field,))),
                    "data.evaluation.path",
                ),
            ),
        )
    try:
        for phase, stream in phases:
            done = state["phases"][phase]
            numbered = itertools.islice(enumerate(stream), done, None)
            tokenized = _tokenized(_chunks((r, i) for i, r in numbered), tokenizer, dtype)
            for chunk, ids in _prefetch(tokenized):
                texts = [r[0] for r, _ in chunk]
                indices = np.asarray([i for _, i in chunk])
                is_test = (
                    np.ones(len(chunk), bool)
                    if phase == "evaluation"
                    else (
                        held_out(indices, config.seed, data.test_fraction)
                        if own_eval
                        else np.zeros(len(chunk), bool)
                    )
                )
                predicted = classifier.label(texts, [r[1] for r, _ in chunk], ids)
                pieces: dict[str, list[np.ndarray]] = {}
                for (text, row), test, pred, tokens in zip((r for r, _ in chunk), is_test, predicted, ids):
                    if test:
                        if classifier.seed_digests and text_digest(text) in classifier.seed_digests:
                            state["seed_overlap"] += 1  # the labeller saw it: not a fair test
                            continue
                        true = map_label(evaluation, row[evaluation.field], "data.evaluation")
                        row_counts = state["confusion"].setdefault(true, {})
                        row_counts[pred] = row_counts.get(pred, 0) + 1
                        name = f"test_{true}"
                    else:
                        name = f"train_{pred}"
                    pieces.setdefault(name, []).extend((tokens, eos))
                    state["documents"][name] = state["documents"].get(name, 0) + 1
                for name, parts in pieces.items():
                    streams.append(name, parts)
                streams.sync()
                state["phases"][phase] = int(indices[-1]) + 1
                state["lengths"] = streams.lengths
                atomic_write_text(state_file, json.dumps(state))
    finally:
        streams.close()
    return state


def _finish(config: Config, state: dict, folder: Path, classifier: DocumentClassifier) -> dict:
    """Check the pools, cut every stream into windows, and write meta.json."""
    docs = state["documents"]
    if not docs.get("train_forget"):
        raise UserError(
            f"labels.classifier ({classifier.kind}) labels no training document as forget; "
            "check its keywords / values, or the corpus"
        )
    if not docs.get("train_retain"):
        raise UserError(
            f"labels.classifier ({classifier.kind}) leaves the retain pool empty: every "
            "training document was labelled forget or adjacent"
        )
    for domain in ("forget", "retain"):
        if not docs.get(f"test_{domain}"):
            raise DataError(
                f"data.evaluation: no held-out document is labelled {domain} (column "
                f"{config.data.evaluation.field!r}, values {getattr(config.data.evaluation, domain)})"
            )
    window = config.model.context + 1
    dtype = packing.token_dtype(config.model.vocab_size)
    sequences = {}
    for name, n_tokens in state["lengths"].items():
        raw = folder / f"{name}.bin"
        n_rows = _windows_file(raw, n_tokens, window, folder / f"{name}.npy", dtype)
        if n_rows < 1:
            raise DataError(
                f"{name.replace('_', ' pool ', 1)}: {docs[name]} documents, {n_tokens} tokens, fewer than "
                f"one sequence of {window} (model.context + 1); add documents or lower model.context"
            )
        sequences[name] = n_rows
        raw.unlink()
    report = {
        "kind": classifier.kind,
        **measure(state["confusion"]),
        "seed_overlap_skipped": state["seed_overlap"],
        "pool_documents": {n[6:]: c for n, c in docs.items() if n.startswith("train_")},
    }
    meta = {
        "format": CORPUS_FORMAT,
        "documents": docs,
        "tokens": state["lengths"],
        "sequences": sequences,
        "labeller": report,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    return meta


def _windows_file(raw: Path, n_tokens: int, window: int, out: Path, dtype: np.dtype) -> int:
    """The stream's first ``n_tokens // window`` windows as an (n, window) ``.npy``: a header,
    then the bytes copied in blocks with plain reads and writes (a memory map would count
    every page of a large stream as resident memory)."""
    n_rows = n_tokens // window
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n_rows, window)}
    left = n_rows * window * dtype.itemsize
    with open(raw, "rb") as src, open(out, "wb") as dst:
        np.lib.format.write_array_header_1_0(dst, header)
        while left > 0:
            block = src.read(min(left, 1 << 24))
            dst.write(block)
            left -= len(block)
    return n_rows


def _tokenized(chunks: Iterator[list], tokenizer: Tokenizer, dtype: np.dtype) -> Iterator[tuple]:
    """Each chunk with its documents' token ids. ``encode_batch_fast`` gives the ids of
    ``encode_batch`` without computing character offsets, which nothing here reads."""
    for chunk in chunks:
        encoded = tokenizer.encode_batch_fast([r[0][0] for r in chunk], add_special_tokens=False)
        yield chunk, [np.asarray(e.ids, dtype=dtype) for e in encoded]


def _prefetch(items: Iterator) -> Iterator:
    """The next item is produced in a thread while the caller works on the current one:
    the next chunk is read, parsed and tokenized (``encode_batch_fast`` releases the GIL
    and uses every core) while this one is labelled and written, so that single-threaded
    work does not leave a core idle."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item


def _cache_key(config: Config, tokenizer: Tokenizer, corpus_fp: dict) -> str:
    classifier = {**config.labels.classifier.model_dump(mode="json"), "version": CLASSIFIER_VERSION}
    if classifier["seed_path"]:
        classifier["seed_file"] = fingerprint(
            config.data.evaluation.model_copy(update={"path": classifier["seed_path"]})
        )
    evaluation = config.data.evaluation
    return packing.stable_hash(
        {
            "format": CORPUS_FORMAT,
            "corpus": corpus_fp,
            "classifier": classifier,
            "evaluation": fingerprint(evaluation) if evaluation.path else evaluation.model_dump(mode="json"),
            "tokenizer": packing.stable_hash(tokenizer.to_str()),
            "context": config.model.context,
            "dtype": str(packing.token_dtype(config.model.vocab_size)),
            "test_fraction": config.data.test_fraction,
            "seed": config.seed,
        }
    )


def prepare_corpus(config: Config, run_dir: Path | None = None, progress: bool = True):
    """The ``PreparedData`` of a ``data.corpus`` run: train arrays by predicted label pool,
    test arrays by true evaluation label, and the labeller's measured report."""
    from excise.data.prepare import PreparedData

    root = packing.cache_root(config.data.cache_dir)
    corpus_fp = fingerprint(config.data.corpus)
    tokenizer = _corpus_tokenizer(config, root, corpus_fp, progress)
    key = _cache_key(config, tokenizer, corpus_fp)
    tokens_dir = root / "tokens"
    final = tokens_dir / key
    t0 = time.perf_counter()
    if not (final / "meta.json").is_file():
        tokens_dir.mkdir(parents=True, exist_ok=True)
        with open(tokens_dir / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per entry; the others wait, then read it
            if not (final / "meta.json").is_file():
                partial = tokens_dir / f"{key}.partial"
                partial.mkdir(exist_ok=True)
                classifier = build_classifier(
                    config.labels.classifier, tokenizer, config.model.vocab_size, progress
                )
                state = _build(config, tokenizer, classifier, partial, progress)
                _finish(config, state, partial, classifier)
                os.replace(partial, final)
    meta = json.loads((final / "meta.json").read_text())
    arrays = {name: np.load(final / f"{name}.npy", mmap_mode="r") for name in meta["sequences"]}
    train = {n[6:]: a for n, a in arrays.items() if n.startswith("train_")}
    test = {n[5:]: a for n, a in arrays.items() if n.startswith("test_")}
    report = meta["labeller"]
    # printed for every run (rank 0 writes the run directory), progress bars or not
    _log(
        progress or run_dir is not None,
        f"labeller ({report['kind']}) on {sum(report['support'].values())} labelled held-out documents: "
        f"precision {_fmt(report['precision'])}, recall {_fmt(report['recall'])}; pools {report['pool_documents']}",
    )
    if run_dir is not None:
        atomic_write_text(Path(run_dir) / "tokenizer.json", tokenizer.to_str())
        atomic_write_text(Path(run_dir) / "labeller.json", json.dumps(report, indent=1, sort_keys=True))
    stats = {
        "cache_key": key,
        "documents": meta["documents"],
        "tokens": meta["tokens"],
        "sequences": meta["sequences"],
        "timings_s": {"prepare": round(time.perf_counter() - t0, 3)},
    }
    return PreparedData(tokenizer=tokenizer, train=train, test=test, labeller_report=report, stats=stats)


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


__all__ = ["PREDICTED", "held_out", "prepare_corpus"]
