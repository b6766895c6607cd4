"""Documents → token stream → fixed windows, cached as memory-mapped ``.npy`` arrays.

Each domain's documents are split into train / test *by document* (seeded), then each split
is tokenized in batches and written as one stream ``doc0 EOS doc1 EOS ...`` in chunks to a
raw file (so a corpus larger than memory never sits in one Python list), and cut into
non-overlapping windows of ``context + 1`` tokens (inputs ``[:, :-1]``, targets ``[:, 1:]``).
The tail shorter than one window is dropped.

The cache directory for one key is built under a temporary name and renamed into place
when complete, so a reader sees either nothing or every file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from excise.checkpoint import make_temp_dir

CACHE_FORMAT = 1
ENCODE_BATCH = 512


def cache_root(cache_dir: str | None) -> Path:
    """``$EXCISE_CACHE`` if set, else ``data.cache_dir``, else ``~/.cache/excise``."""
    env = os.environ.get("EXCISE_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(cache_dir).expanduser() if cache_dir else Path.home() / ".cache" / "excise"


def stable_hash(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 65535 else np.dtype(np.int32)


def split_documents(
    n_documents: int, test_fraction: float, seed: int, domain: str
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (train, test) document indices, each sorted; at least one test document when n ≥ 2."""
    rng = np.random.default_rng([seed, 0x5_1177, sum(domain.encode())])
    order = rng.permutation(n_documents)
    n_test = int(round(test_fraction * n_documents))
    if n_documents >= 2:
        n_test = min(max(n_test, 1), n_documents - 1)
    else:
        n_test = 0
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def write_token_stream(
    documents: Sequence[str],
    tokenizer: Tokenizer,
    eos: int,
    raw_path: Path,
    dtype: np.dtype,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Append ``tokens(doc) + [eos]`` for every document to ``raw_path``; return the token count."""
    total = 0
    with open(raw_path, "wb") as f:
        for start in range(0, len(documents), ENCODE_BATCH):
            batch = documents[start : start + ENCODE_BATCH]
            encodings = tokenizer.encode_batch(list(batch), add_special_tokens=False)
            pieces = []
            for enc in encodings:
                pieces.append(np.asarray(enc.ids, dtype=dtype))
                pieces.append(np.asarray([eos], dtype=dtype))
            chunk = np.concatenate(pieces) if pieces else np.zeros(0, dtype)
            f.write(chunk.tobytes())
            total += len(chunk)
            if progress is not None:
                progress(len(batch))
    return total


def windows_from_stream(raw_path: Path, n_tokens: int, window: int, out_path: Path, dtype: np.dtype) -> int:
    """Cut the raw stream into ``n_tokens // window`` rows of ``window`` tokens, saved as .npy."""
    n_rows = n_tokens // window
    stream = np.memmap(raw_path, dtype=dtype, mode="r", shape=(n_tokens,)) if n_tokens else np.zeros(0, dtype)
    out = np.lib.format.open_memmap(out_path, mode="w+", dtype=dtype, shape=(n_rows, window))
    rows_per_chunk = max(1, (1 << 22) // window)
    for r in range(0, n_rows, rows_per_chunk):
        r2 = min(n_rows, r + rows_per_chunk)
        out[r:r2] = np.asarray(stream[r * window : r2 * window]).reshape(r2 - r, window)
    out.flush()
    del out, stream
    return n_rows


class CacheBuilder:
    """Builds one cache entry in a temporary directory and publishes it atomically."""

    def __init__(self, root: Path, key: str):
        self.final = root / "tokens" / key
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = make_temp_dir(self.final.parent, key)

    def path(self, name: str) -> Path:
        return self.tmp / name

    def publish(self, meta: dict) -> Path:
        (self.tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        for raw in self.tmp.glob("*.bin"):
            raw.unlink()
        try:
            os.replace(self.tmp, self.final)
        except OSError:  # another process published the same key first: keep theirs
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.final

    def abandon(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def load_cached(root: Path, key: str) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """(meta, train arrays, test arrays) of a complete cache entry, memory-mapped; None if absent."""
    folder = root / "tokens" / key
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    train, test = {}, {}
    for domain in meta["domains"]:
        train[domain] = np.load(folder / f"train_{domain}.npy", mmap_mode="r")
        test[domain] = np.load(folder / f"test_{domain}.npy", mmap_mode="r")
    return meta, train, test
