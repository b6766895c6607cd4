"""``prepare_data``: text by domain → tokenizer → packed, cached train/test token arrays.

The token cache is keyed by a hash of everything that changes the arrays: the data
sources (settings plus file size and mtime, or the built-in corpus kind/size), the
tokenizer's full JSON, the context, the test fraction and the seed (which draws the split).
A trained tokenizer is cached too, keyed by the sources, vocabulary size, training
domains, character budget and seed. The built-in corpus text itself is always generated
with corpus seed 0, so runs with different ``seed`` see the same text (split differently).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from excise.checkpoint import atomic_write_text
from excise.config import DOMAINS, Config
from excise.data import packing
from excise.data.builtin import GENERATOR_VERSION, FactProbe, generate_builtin
from excise.data.sources import DataError, read_documents, source_fingerprint
from excise.data.tokenizer import eos_id, load_tokenizer, train_tokenizer, training_texts
from excise.errors import UserError

BUILTIN_CORPUS_SEED = 0


@dataclass
class PreparedData:
    tokenizer: Tokenizer
    train: dict[str, np.ndarray]  # domain -> (n_seq, context + 1); inputs [:, :-1], targets [:, 1:]
    test: dict[str, np.ndarray]  # same, from held-out documents
    forget_flags: dict[str, np.ndarray] | None = None  # per train sequence, classifier says forget
    labeller_report: dict | None = None
    probes: list[FactProbe] | None = None
    stats: dict = field(default_factory=dict)


class _Corpus:
    """The domains' documents, loaded only when needed (a cache hit needs no text)."""

    def __init__(self, config: Config):
        self.config = config
        data = config.data
        self.sources = data.sources()
        self.builtin_domains: tuple[str, ...] = ()
        if data.builtin == "bilingual":
            self.builtin_domains = ("retain", "forget")
        elif data.builtin == "topic":
            self.builtin_domains = DOMAINS
        self.domains = [d for d in DOMAINS if d in self.sources or d in self.builtin_domains]
        self._documents: dict[str, list[str]] | None = None
        self.timings: dict[str, float] = {}  # seconds spent in this call, by phase
        self._probes: list[FactProbe] | None = None

    def fingerprint(self) -> dict:
        data = self.config.data
        out: dict = {"format": packing.CACHE_FORMAT}
        if data.builtin:
            out["builtin"] = {
                "kind": data.builtin,
                "documents": data.builtin_documents,
                "seed": BUILTIN_CORPUS_SEED,
                "version": GENERATOR_VERSION,
            }
        out["sources"] = {d: source_fingerprint(s) for d, s in self.sources.items()}
        return out

    def _load_builtin(self) -> None:
        data = self.config.data
        if data.builtin and self._probes is None and self._documents is None:
            t0 = time.perf_counter()
            rows, probes = generate_builtin(data.builtin, data.builtin_documents, BUILTIN_CORPUS_SEED)
            self.timings["generate"] = time.perf_counter() - t0
            self._builtin_docs = {d: [r["text"] for r in rows[d]] for d in rows}
            self._probes = probes

    @property
    def probes(self) -> list[FactProbe] | None:
        if self.config.data.builtin == "topic":
            self._load_builtin()
            return self._probes
        return None

    def documents(self, progress: bool = False) -> dict[str, list[str]]:
        if self._documents is None:
            self._load_builtin()
            t0 = time.perf_counter()
            docs = {}
            for d in self.domains:
                if d in self.sources:  # an explicit source overrides the built-in domain
                    docs[d] = read_documents(self.sources[d], d)
                else:
                    docs[d] = self._builtin_docs[d]
            if self.sources:
                self.timings["read"] = time.perf_counter() - t0
            self._documents = docs
        return self._documents


def _log(progress: bool, message: str) -> None:
    if progress:
        print(f"[excise data] {message}", flush=True)


def _get_tokenizer(config: Config, corpus: _Corpus, splits: dict, root: Path, progress: bool) -> Tokenizer:
    tok_cfg = config.tokenizer
    if tok_cfg.path is not None:
        tokenizer = load_tokenizer(tok_cfg.path)
    else:
        chosen = {"all": corpus.domains, "retain": ["retain"], "retain+adjacent": ["retain", "adjacent"]}[
            tok_cfg.train_on
        ]
        chosen = [d for d in chosen if d in corpus.domains]
        key = packing.stable_hash(
            {
                "corpus": corpus.fingerprint(),
                "train_on": chosen,
                "vocab_size": config.model.vocab_size,
                "max_train_characters": tok_cfg.max_train_characters,
                "seed": config.seed,
                "test_fraction": config.data.test_fraction,
            }
        )
        path = root / "tokenizers" / f"{key}.json"
        if path.is_file():
            tokenizer = Tokenizer.from_file(str(path))
        else:
            docs = corpus.documents()
            train_docs = {d: [docs[d][i] for i in splits[d][0]] for d in chosen}
            t0 = time.perf_counter()
            tokenizer = train_tokenizer(
                training_texts(train_docs, tok_cfg.max_train_characters), config.model.vocab_size, progress
            )
            corpus.timings["tokenizer"] = time.perf_counter() - t0
            _log(
                progress,
                f"trained BPE tokenizer ({tokenizer.get_vocab_size()} tokens) on {'+'.join(chosen)} in {time.perf_counter() - t0:.1f}s",
            )
            atomic_write_text(path, tokenizer.to_str())
    if tokenizer.get_vocab_size() > config.model.vocab_size:
        raise UserError(
            f"the tokenizer has {tokenizer.get_vocab_size()} tokens but model.vocab_size is "
            f"{config.model.vocab_size}; raise model.vocab_size"
        )
    return tokenizer


def _pack_all(
    config: Config, corpus: _Corpus, splits: dict, tokenizer: Tokenizer, root: Path, key: str, progress: bool
) -> None:
    docs = corpus.documents()
    window = config.model.context + 1
    dtype = packing.token_dtype(config.model.vocab_size)
    eos = eos_id(tokenizer)
    builder = packing.CacheBuilder(root, key)
    stats: dict = {"documents": {}, "tokens": {}, "sequences": {}, "dropped_tail_tokens": {}}
    try:
        total_docs = sum(len(docs[d]) for d in corpus.domains)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total_docs, desc="tokenizing", unit="doc", leave=False)
        for d in corpus.domains:
            for split_name, indices in zip(("train", "test"), splits[d]):
                subset = [docs[d][i] for i in indices]
                raw = builder.path(f"{split_name}_{d}.bin")
                n_tokens = packing.write_token_stream(
                    subset, tokenizer, eos, raw, dtype, bar.update if bar else None
                )
                n_rows = packing.windows_from_stream(
                    raw, n_tokens, window, builder.path(f"{split_name}_{d}.npy"), dtype
                )
                if n_rows < 1:
                    hint = "data.test_fraction" if split_name == "test" else "the data"
                    raise DataError(
                        f"domain {d!r} is too small: its {split_name} split has {len(subset)} documents and "
                        f"{n_tokens} tokens, but one sequence needs {window} (model.context + 1); add documents "
                        f"or lower model.context (or raise {hint})"
                    )
                stats["documents"].setdefault(d, {})[split_name] = len(subset)
                stats["tokens"].setdefault(d, {})[split_name] = n_tokens
                stats["sequences"].setdefault(d, {})[split_name] = n_rows
                stats["dropped_tail_tokens"].setdefault(d, {})[split_name] = n_tokens - n_rows * window
                raw.unlink()
        if bar is not None:
            bar.close()
        probes = corpus.probes
        if probes is not None:  # so a cache hit needs no corpus generation
            builder.path("probes.json").write_text(json.dumps([asdict(p) for p in probes]))
        builder.publish(
            {"domains": corpus.domains, "stats": stats, "key": key, "context": config.model.context}
        )
    except BaseException:
        builder.abandon()
        raise


def prepare_data(config: Config, run_dir: Path | None = None, progress: bool = True) -> PreparedData:
    """Load or generate the text by domain, get the tokenizer, pack and cache the windows.

    With ``run_dir``, the tokenizer is written to ``run_dir/tokenizer.json``. Cached arrays
    are returned memory-mapped (read-only).
    """
    if config.data.corpus is not None:  # one mixed corpus labelled by a classifier
        from excise.data.corpus import prepare_corpus

        return prepare_corpus(config, run_dir, progress)
    corpus = _Corpus(config)
    if "forget" not in corpus.domains or "retain" not in corpus.domains:
        raise UserError("data needs a forget and a retain domain")
    root = packing.cache_root(config.data.cache_dir)
    fingerprint = corpus.fingerprint()

    splits_cache: dict = {}

    def splits() -> dict:
        if not splits_cache:
            docs = corpus.documents()
            for d in corpus.domains:
                splits_cache[d] = packing.split_documents(
                    len(docs[d]), config.data.test_fraction, config.seed, d
                )
        return splits_cache

    # a cached (or given) tokenizer needs no documents; a fresh one reads the train splits
    tokenizer = _get_tokenizer(config, corpus, _LazySplits(splits), root, progress)
    key = packing.stable_hash(
        {
            "corpus": fingerprint,
            "tokenizer": packing.stable_hash(tokenizer.to_str()),
            "context": config.model.context,
            "vocab_size_dtype": str(packing.token_dtype(config.model.vocab_size)),
            "test_fraction": config.data.test_fraction,
            "seed": config.seed,
        }
    )
    cached = packing.load_cached(root, key)
    if cached is None:
        t0 = time.perf_counter()
        splits()  # documents are loaded (and timed) before packing starts
        t0 = time.perf_counter()
        _pack_all(config, corpus, splits(), tokenizer, root, key, progress)
        corpus.timings["pack"] = time.perf_counter() - t0
        _log(
            progress,
            f"tokenized and packed in {time.perf_counter() - t0:.1f}s (cache {root / 'tokens' / key})",
        )
        cached = packing.load_cached(root, key)
        assert cached is not None
    meta, train, test = cached
    probes = None
    if config.data.builtin == "topic":
        probes_file = root / "tokens" / key / "probes.json"
        if probes_file.is_file() and not corpus.timings.get("generate"):
            probes = [FactProbe(**p) for p in json.loads(probes_file.read_text())]
        else:
            probes = corpus.probes
    stats = dict(meta["stats"])
    stats["cache_key"] = key
    stats["cache_hit"] = "pack" not in corpus.timings
    stats["timings_s"] = {k: round(v, 3) for k, v in corpus.timings.items()}

    forget_flags = labeller_report = None
    if config.labels.labeller == "classifier":
        from excise.data.labeller import train_labeller

        forget_flags, labeller_report = train_labeller(
            train, test, config.model.vocab_size, config.labels.seed_documents, config.seed
        )
        _log(
            progress,
            f"labeller held-out precision {labeller_report['precision']} recall {labeller_report['recall']}",
        )

    if run_dir is not None:
        atomic_write_text(Path(run_dir) / "tokenizer.json", tokenizer.to_str())
    return PreparedData(
        tokenizer=tokenizer,
        train=train,
        test=test,
        forget_flags=forget_flags,
        labeller_report=labeller_report,
        probes=probes,
        stats=stats,
    )


class _LazySplits(dict):
    """A mapping that computes the document splits on first access."""

    def __init__(self, compute):
        super().__init__()
        self._compute = compute

    def __getitem__(self, domain):
        return self._compute()[domain]


def describe(prepared: PreparedData) -> str:
    """One line per domain: documents / tokens / sequences of train and test."""
    lines = []
    for d, split in prepared.stats.get("sequences", {}).items():
        toks = prepared.stats["tokens"][d]
        docs = prepared.stats["documents"][d]
        lines.append(
            f"{d:8s} train {docs['train']} docs {toks['train']} tokens {split['train']} seqs | "
            f"test {docs['test']} docs {toks['test']} tokens {split['test']} seqs"
        )
    return "\n".join(lines)


__all__ = ["PreparedData", "prepare_data", "describe"]
