"""Stream the documents of ``data.corpus`` (or of a labelled file) one record at a time.

A record is ``(text, fields)``: the document and only the columns asked for (the
classifier's label column, the evaluation label), so no other column of the data ever
reaches training. Files are read lazily, line by line (jsonl / txt, optionally compressed)
or batch by batch (parquet); a directory is every supported file under it, in sorted
order; a hub dataset is streamed. Nothing holds more than one parquet batch in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from excise.data.sources import DataError, _format_of, _open, _text_of, hub_reachable, open_parquet
from excise.errors import UserError

SUPPORTED = (".jsonl", ".ndjson", ".json", ".txt", ".parquet")
Record = tuple[str, dict]


def corpus_files(path: str, key: str) -> list[Path]:
    """The files a corpus path names: the file itself, or every supported file under a
    directory (sorted, so the document order is stable)."""
    root = Path(path).expanduser()
    if root.is_file():
        return [root]
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and _format_of(p)[0] in SUPPORTED)
        if not files:
            raise UserError(f"{key}: directory {root} holds no .jsonl / .txt / .parquet file")
        return files
    raise UserError(f"{key}: {root} does not exist")


def _jsonl_records(path: Path, text_field: str, fields: tuple[str, ...]) -> Iterator[Record]:
    with _open(path) as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}, line {lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{where}: not valid UTF-8 (byte {e.start})") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
            yield _text_of(row, text_field, where), _pick(row, fields, where)


def _txt_records(path: Path, fields: tuple[str, ...]) -> Iterator[Record]:
    if fields:
        raise UserError(f"{path}: plain .txt files have no columns (asked for {', '.join(fields)})")
    paragraph: list[str] = []
    with _open(path) as f:
        for raw in f:
            line = raw.decode("utf-8", errors="strict").rstrip("\r\n")
            if line.strip():
                paragraph.append(line)
            elif paragraph:
                yield "\n".join(paragraph), {}
                paragraph = []
    if paragraph:
        yield "\n".join(paragraph), {}


def _parquet_records(path: Path, text_field: str, fields: tuple[str, ...]) -> Iterator[Record]:
    pf = open_parquet(path, [text_field, *fields])
    for batch in pf.iter_batches(columns=sorted({text_field, *fields}), batch_size=2048):
        for index, row in enumerate(batch.to_pylist()):
            if row[text_field] is not None:
                yield _text_of(row, text_field, f"{path}, row {index}"), _pick(row, fields, str(path))


def _hub_records(
    hub: str, config: str | None, split: str, text_field: str, fields: tuple[str, ...]
) -> Iterator[Record]:
    if not hub_reachable():  # streamed only: a corpus is never downloaded whole
        raise UserError(
            f"data.corpus.hub {hub!r}: the Hugging Face hub cannot be reached; "
            "download it and point data.corpus.path at the files"
        )
    try:
        import datasets
    except ImportError:
        raise UserError("data.corpus.hub needs the datasets package (pip install 'excise[hf]')") from None
    rows = datasets.load_dataset(hub, config, split=split, streaming=True)
    for index, row in enumerate(rows, 1):
        where = f"hub dataset {hub}, row {index}"
        yield _text_of(dict(row), text_field, where), _pick(row, fields, where)


def _pick(row: dict, fields: tuple[str, ...], where: str) -> dict:
    out = {}
    for name in fields:
        if name not in row:
            raise DataError(f"{where}: no key {name!r} (keys: {', '.join(map(str, row))})")
        out[name] = str(row[name])
    return out


def file_records(path: Path, text_field: str, fields: tuple[str, ...] = ()) -> Iterator[Record]:
    """The non-empty records of one file, by its format."""
    suffix, compression = _format_of(path)
    if suffix in (".jsonl", ".ndjson", ".json"):
        reader = _jsonl_records(path, text_field, fields)
    elif suffix == ".txt":
        reader = _txt_records(path, fields)
    elif suffix == ".parquet" and compression is None:
        reader = _parquet_records(path, text_field, fields)
    else:
        raise UserError(f"{path}: unknown format for a corpus (use .jsonl, .txt or .parquet)")
    for text, picked in reader:
        if text.strip():
            yield text, picked


def records(source, fields: tuple[str, ...] = (), key: str = "data.corpus") -> Iterator[Record]:
    """Every record of a corpus source (``CorpusSource`` or ``EvaluationSet``), in order,
    up to its ``max_documents``."""
    hub = getattr(source, "hub", None)
    if hub is not None:
        stream = _hub_records(hub, source.hub_config, source.split, source.text_field, fields)
    else:
        stream = (
            r for f in corpus_files(source.path, key) for r in file_records(f, source.text_field, fields)
        )
    limit = source.max_documents
    for n, record in enumerate(stream):
        if limit is not None and n >= limit:
            return
        yield record


def fingerprint(source, key: str = "data.corpus") -> dict:
    """Settings plus size and mtime of every file: what identifies the corpus's content."""
    info = source.model_dump(mode="json")
    if getattr(source, "hub", None) is None and source.path is not None:
        info["files"] = [
            [str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in corpus_files(source.path, key)
        ]
    return info
