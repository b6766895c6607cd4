"""Read one domain's documents from a local file or a Hugging Face hub dataset.

Formats, chosen by file extension (``.gz`` / ``.bz2`` / ``.xz`` compression allowed on the
text formats, e.g. ``.jsonl.gz``):

- ``.jsonl`` / ``.ndjson`` / ``.json`` — one JSON object per line; the document is
  ``row[text_field]``. A ``.json`` file holding one JSON array of objects is read too.
- ``.csv`` — a header row, then one document per row (the ``text_field`` column).
- ``.txt`` — one document per *paragraph*: documents are separated by one or more blank
  lines; line breaks inside a paragraph are kept (this suits both prose files and files
  with one short document per line separated by blank lines).
- ``.parquet`` — one row per document (needs ``pyarrow``).
- ``hub`` ids go through ``datasets.load_dataset`` (imported lazily). When the hub cannot
  be reached, only a locally cached copy is tried, and otherwise a :class:`UserError` says so
  at once instead of waiting on the network.

JSON arrays and csv are read by the ``datasets`` loaders (the ``hf`` extra; streamed, no
cache written); JSON lines and txt by excise's own readers, which name the line of a
malformed row.

Rows can be filtered with a tiny, safe expression language (no ``eval``):
``topic == biology``, ``topic != history``, ``topic in [medicine, chemistry]``,
``topic not in [a, b]``, conditions joined by ``and``. Values may be quoted.
Empty documents (only whitespace) are skipped. Every problem is a :class:`UserError` naming
the file, the line (or row) and the key.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import lzma
import os
import re
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from excise.config import DataSource
from excise.errors import UserError


class DataError(UserError):
    """Bad input data: the message names the file, line and key."""


# ---------------------------------------------------------------------------------------
# row filters


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # "==" | "!=" | "in" | "not in"
    values: tuple[str, ...]

    def matches(self, row: dict, where: str) -> bool:
        if self.field not in row:
            raise DataError(
                f"{where}: filter key {self.field!r} is missing (keys: {', '.join(map(str, row))})"
            )
        value = str(row[self.field])
        inside = value in self.values
        return inside if self.op in ("==", "in") else not inside


_COND = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(==|!=|not\s+in\b|in\b)\s*(.+?)\s*$")


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_filter(expression: str) -> list[Condition]:
    """Parse ``field == value``-style conditions joined by ``and``; raise UserError if malformed."""
    conditions = []
    for part in re.split(r"\s+and\s+", expression.strip()):
        m = _COND.match(part)
        if not m:
            raise UserError(
                f"cannot parse data filter {expression!r}: expected e.g. 'topic == biology' or "
                "'topic in [medicine, chemistry]' (conditions joined by 'and')"
            )
        field, op, rhs = m.group(1), re.sub(r"\s+", " ", m.group(2)), m.group(3)
        if op in ("in", "not in"):
            if not (rhs.startswith("[") and rhs.endswith("]")):
                raise UserError(f"data filter {expression!r}: '{op}' needs a list like [a, b]")
            values = tuple(_unquote(v) for v in rhs[1:-1].split(",") if v.strip())
        else:
            values = (_unquote(rhs),)
        conditions.append(Condition(field, op, values))
    return conditions


# ---------------------------------------------------------------------------------------
# readers


def _text_of(row: object, text_field: str, where: str) -> str:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if text_field not in row:
        keys = ", ".join(map(str, row)) or "none"
        raise DataError(f"{where}: no key {text_field!r} (keys: {keys}); set text_field to the right key")
    text = row[text_field]
    if not isinstance(text, str):
        raise DataError(f"{where}: key {text_field!r} holds {type(text).__name__}, not text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:  # JSON escapes such as "\ud800" decode to lone surrogates
        raise DataError(
            f"{where}: key {text_field!r} holds a lone surrogate ({e.object[e.start]!r}), not Unicode text"
        ) from None
    return text


COMPRESSION = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _format_of(path: Path) -> tuple[str, str | None]:
    """(format suffix, compression suffix or None) of ``path``, e.g. ``.jsonl.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = suffixes.pop() if suffixes and suffixes[-1] in COMPRESSION else None
    return (suffixes[-1] if suffixes else ""), compression


def _open(path: Path):
    """``path`` opened for binary reading, decompressed by its suffix."""
    _, compression = _format_of(path)
    return COMPRESSION[compression](path, "rb") if compression else open(path, "rb")


def _is_json_array(path: Path) -> bool:
    """Whether a ``.json`` file starts with ``[`` (an array), not with an object per line."""
    with _open(path) as f:
        while chunk := f.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return stripped.startswith(b"[")
    return False


def _iter_datasets(path: Path, builder: str, text_field: str, conditions: list[Condition]) -> Iterator[str]:
    """Rows of a local file read by the ``datasets`` ``builder`` ("json", "csv"), streamed."""
    kind = {"json": "a JSON array", "csv": "csv"}[builder]
    try:
        import datasets
    except ImportError:
        raise UserError(
            f"{path}: reading {kind} needs the datasets package (pip install 'excise[hf]')"
        ) from None
    try:
        rows = iter(datasets.load_dataset(builder, data_files=str(path), split="train", streaming=True))
    except Exception as e:  # datasets raises many types for unreadable files
        raise DataError(f"{path}: not readable as {kind} ({e})") from None
    index = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as e:
            raise DataError(f"{path}: not readable as {kind} after row {index} ({e})") from None
        index += 1
        where = f"{path}, row {index}"
        if isinstance(row, dict) and text_field in row and row[text_field] is None:
            continue  # an empty csv cell / JSON null: no document
        text = _text_of(dict(row), text_field, where)
        if all(c.matches(row, where) for c in conditions):
            yield text


def _iter_jsonl(path: Path, text_field: str, conditions: list[Condition]) -> Iterator[str]:
    with _open(path) as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}, line {lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{where}: not valid UTF-8 (byte {e.start}: {raw[e.start : e.start + 1]!r})"
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
            text = _text_of(row, text_field, where)
            if all(c.matches(row, where) for c in conditions):
                yield text


def _iter_txt(path: Path, conditions: list[Condition]) -> Iterator[str]:
    if conditions:
        raise UserError(f"{path}: a row filter needs fields; plain .txt files have none")
    paragraph: list[str] = []
    with _open(path) as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}, line {lineno}: not valid UTF-8 (byte {e.start})") from None
            if line.strip():
                paragraph.append(line)
            elif paragraph:
                yield "\n".join(paragraph)
                paragraph = []
    if paragraph:
        yield "\n".join(paragraph)


def open_parquet(path: Path, columns: list[str]):
    """A ``pyarrow.parquet.ParquetFile`` that has every one of ``columns``; clear errors
    for a missing pyarrow, a corrupt file or a missing column."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"{path}: reading parquet needs pyarrow (pip install 'excise[hf]')") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataError(f"{path}: not a readable parquet file ({e})") from None
    names = pf.schema_arrow.names
    for name in columns:
        if name not in names:
            raise DataError(f"{path}: no column {name!r} (columns: {', '.join(names)})")
    return pf


def _iter_parquet(path: Path, text_field: str, conditions: list[Condition]) -> Iterator[str]:
    wanted = [text_field] + [c.field for c in conditions if c.field != text_field]
    pf = open_parquet(path, wanted)
    row_index = 0
    for batch in pf.iter_batches(columns=sorted(set(wanted)), batch_size=4096):
        for row in batch.to_pylist():
            row_index += 1
            where = f"{path}, row {row_index}"
            text = row[text_field]
            if text is None:
                continue
            if not isinstance(text, str):
                raise DataError(f"{where}: column {text_field!r} holds {type(text).__name__}, not text")
            if all(c.matches(row, where) for c in conditions):
                yield text


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether huggingface.co answers on port 443 within ``timeout`` seconds."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = re.sub(r"^https?://", "", endpoint).split("/")[0].split(":")[0]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


# (module, attribute) holding the offline switch once huggingface_hub / datasets are imported
_OFFLINE_SWITCHES = (
    ("huggingface_hub.constants", "HF_HUB_OFFLINE"),
    ("datasets.config", "HF_HUB_OFFLINE"),
    ("datasets.config", "HF_DATASETS_OFFLINE"),
)


@contextlib.contextmanager
def offline_hub() -> Iterator[None]:
    """Hugging Face offline mode for the block, so a missing network fails at once.

    huggingface_hub and datasets read ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` when they
    are imported, so the variables must be set before the first import (setting them later
    leaves ~30 s of retries); modules imported earlier (a csv read before) get their
    switches set too. Everything is restored after the block.
    """
    saved_env = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    saved_attrs = []
    for module_name, attr in _OFFLINE_SWITCHES:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, attr):
            saved_attrs.append((module, attr, getattr(module, attr)))
            setattr(module, attr, True)
    try:
        yield
    finally:
        for module, attr, value in saved_attrs:
            setattr(module, attr, value)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _iter_hub(source: DataSource, domain: str, conditions: list[Condition]) -> Iterator[str]:
    online = hub_reachable()  # before importing datasets: see offline_hub
    with offline_hub() if not online else contextlib.nullcontext():
        try:
            import datasets
        except ImportError:
            raise UserError(
                f"data.{domain}.hub needs the datasets package (pip install 'excise[hf]')"
            ) from None
        try:
            ds = datasets.load_dataset(source.hub, source.hub_config, split=source.split, streaming=online)
        except Exception as e:
            reason = (
                "the Hugging Face hub cannot be reached and no cached copy exists" if not online else str(e)
            )
            raise UserError(
                f"data.{domain}.hub {source.hub!r} (split {source.split!r}) could not be loaded: {reason}. "
                f"Download it where there is network and point data.{domain}.path at a local file."
            ) from None
    for index, row in enumerate(ds, 1):
        where = f"hub dataset {source.hub}, row {index}"
        text = _text_of(dict(row), source.text_field, where)
        if all(c.matches(row, where) for c in conditions):
            yield text


def read_documents(source: DataSource, domain: str) -> list[str]:
    """All non-empty documents of one domain's source (after the filter and max_documents)."""
    conditions = parse_filter(source.filter) if source.filter else []
    if source.hub is not None:
        iterator = _iter_hub(source, domain, conditions)
        origin = f"hub dataset {source.hub}"
    else:
        path = Path(source.path).expanduser()
        origin = str(path)
        if not path.is_file():
            raise UserError(f"data.{domain}.path: file {path} does not exist")
        suffix, compression = _format_of(path)
        if suffix == ".json" and _is_json_array(path):
            iterator = _iter_datasets(path, "json", source.text_field, conditions)
        elif suffix in (".jsonl", ".json", ".ndjson"):
            iterator = _iter_jsonl(path, source.text_field, conditions)
        elif suffix == ".csv":
            iterator = _iter_datasets(path, "csv", source.text_field, conditions)
        elif suffix == ".txt":
            iterator = _iter_txt(path, conditions)
        elif suffix == ".parquet" and compression is None:
            iterator = _iter_parquet(path, source.text_field, conditions)
        else:
            raise UserError(
                f"data.{domain}.path: {path} has an unknown format (use .jsonl, .json, .csv, .txt "
                "or .parquet; the text formats may be .gz / .bz2 / .xz compressed)"
            )
    documents = []
    for text in iterator:
        if text.strip():
            documents.append(text)
            if source.max_documents is not None and len(documents) >= source.max_documents:
                break
    if not documents:
        extra = f" matching filter {source.filter!r}" if source.filter else ""
        raise DataError(f"data.{domain}: {origin} holds no documents{extra} (empty file?)")
    return documents


def source_fingerprint(source: DataSource) -> dict:
    """What identifies a source's content for the token cache: settings + file size/mtime."""
    info = source.model_dump(mode="json")
    info.pop("weight", None)  # sampling weight does not change the tokens
    if source.path is not None:
        path = Path(source.path).expanduser()
        try:
            st = path.stat()
            info["file"] = {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        except OSError:
            info["file"] = None
    return info
