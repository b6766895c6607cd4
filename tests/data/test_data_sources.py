"""Loaders (jsonl / txt / parquet / hub), row filters, max_documents, and bad input."""

from __future__ import annotations

import json
import os
import time

import pytest

from excise.config import DataSource, load_config
from excise.data import sources
from excise.data.sources import parse_filter, read_documents
from excise.errors import UserError


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    {"text": "Cells divide.", "topic": "biology"},
    {"text": "Acids burn.", "topic": "chemistry"},
    {"text": "Rome fell.", "topic": "history"},
    {"text": "   ", "topic": "biology"},  # empty documents are skipped
    {"text": "Genes copy.", "topic": "biology"},
    {"text": "Pills help.", "topic": "medicine"},
]


def test_jsonl_reads_text_field_and_skips_empty(tmp_path):
    path = _write_jsonl(tmp_path / "a.jsonl", ROWS)
    assert read_documents(DataSource(path=str(path)), "retain") == [
        "Cells divide.",
        "Acids burn.",
        "Rome fell.",
        "Genes copy.",
        "Pills help.",
    ]
    other = _write_jsonl(tmp_path / "b.jsonl", [{"body": "x y"}, {"body": "z"}])
    assert read_documents(DataSource(path=str(other), text_field="body"), "retain") == ["x y", "z"]


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("topic == biology", ["Cells divide.", "Genes copy."]),
        ("topic == 'biology'", ["Cells divide.", "Genes copy."]),
        ("topic in [medicine, chemistry]", ["Acids burn.", "Pills help."]),
        ("topic not in [biology, medicine, chemistry]", ["Rome fell."]),
        ("topic != history and topic != biology", ["Acids burn.", "Pills help."]),
    ],
)
def test_filters(tmp_path, expression, expected):
    path = _write_jsonl(tmp_path / "a.jsonl", ROWS)
    assert read_documents(DataSource(path=str(path), filter=expression), "forget") == expected


def test_filter_parser_rejects_code():
    for bad in ("__import__('os').system('x')", "topic ~= x", "topic in biology", ""):
        with pytest.raises(UserError):
            parse_filter(bad)


def test_max_documents(tmp_path):
    path = _write_jsonl(tmp_path / "a.jsonl", ROWS)
    assert read_documents(DataSource(path=str(path), max_documents=2), "retain") == [
        "Cells divide.",
        "Acids burn.",
    ]
    assert read_documents(
        DataSource(path=str(path), filter="topic == biology", max_documents=1), "retain"
    ) == ["Cells divide."]


def test_txt_one_document_per_paragraph(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("First line\nstill first.\n\n\nSecond doc.\n  \nThird\n", encoding="utf-8")
    assert read_documents(DataSource(path=str(path)), "retain") == [
        "First line\nstill first.",
        "Second doc.",
        "Third",
    ]


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "a.parquet"
    pq.write_table(
        pa.table({"content": [r["text"] for r in ROWS], "topic": [r["topic"] for r in ROWS]}), path
    )
    source = DataSource(path=str(path), text_field="content", filter="topic in [biology]")
    assert read_documents(source, "forget") == ["Cells divide.", "Genes copy."]
    assert read_documents(DataSource(path=str(path), text_field="content", max_documents=3), "forget") == [
        "Cells divide.",
        "Acids burn.",
        "Rome fell.",
    ]
    with pytest.raises(UserError, match=r"a\.parquet: no column 'text' \(columns: content, topic\)"):
        read_documents(DataSource(path=str(path)), "forget")


# --- bad input: a UserError naming the file, the line and the key


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(UserError, match=r"empty\.jsonl holds no documents"):
        read_documents(DataSource(path=str(path)), "forget")
    with pytest.raises(UserError, match="holds no documents matching filter"):
        read_documents(
            DataSource(path=str(_write_jsonl(tmp_path / "a.jsonl", ROWS)), filter="topic == art"), "forget"
        )


def test_missing_text_field(tmp_path):
    path = _write_jsonl(tmp_path / "a.jsonl", [{"text": "ok"}, {"body": "no text here"}])
    with pytest.raises(UserError, match=r"a\.jsonl, line 2: no key 'text' \(keys: body\)"):
        read_documents(DataSource(path=str(path)), "retain")


def test_missing_filter_key(tmp_path):
    path = _write_jsonl(tmp_path / "a.jsonl", [{"text": "ok"}])
    with pytest.raises(UserError, match=r"line 1: filter key 'topic' is missing"):
        read_documents(DataSource(path=str(path), filter="topic == x"), "retain")


def test_malformed_json_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "broken\n{"text": "fine"}\n')
    with pytest.raises(UserError, match=r"a\.jsonl, line 2: malformed JSON"):
        read_documents(DataSource(path=str(path)), "retain")
    path.write_text('{"text": "fine"}\n["a", "list"]\n')
    with pytest.raises(UserError, match=r"line 2: expected a JSON object"):
        read_documents(DataSource(path=str(path)), "retain")


def test_non_utf8_bytes(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(UserError, match=r"a\.jsonl, line 2: not valid UTF-8"):
        read_documents(DataSource(path=str(path)), "retain")
    txt = tmp_path / "b.txt"
    txt.write_bytes(b"ok\n\n\xff\xfe bad\n")
    with pytest.raises(UserError, match=r"b\.txt, line 3: not valid UTF-8"):
        read_documents(DataSource(path=str(txt)), "retain")


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_documents(DataSource(path=str(tmp_path / "nope.jsonl")), "retain")
    (tmp_path / "a.docx").write_text("text\nx\n")
    with pytest.raises(UserError, match="unknown format"):
        read_documents(DataSource(path=str(tmp_path / "a.docx")), "retain")
    (tmp_path / "a.parquet.gz").write_bytes(b"")
    with pytest.raises(UserError, match="unknown format"):  # parquet compresses inside
        read_documents(DataSource(path=str(tmp_path / "a.parquet.gz")), "retain")


FORMAT_ROWS = [
    {"text": 'doc 0, "quoted",\nsecond line', "topic": "biology"},
    {"text": "doc 1: ¿qué?", "topic": "chemistry"},
    {"text": "   ", "topic": "biology"},  # blank: skipped
    {"text": "doc 3", "topic": "biology"},
]


def _write_formats(tmp_path) -> dict[str, object]:
    import bz2
    import csv
    import gzip

    paths = {}
    lines = "".join(json.dumps(r) + "\n" for r in FORMAT_ROWS)
    paths["jsonl"] = tmp_path / "a.jsonl"
    paths["jsonl"].write_text(lines)
    paths["jsonl.gz"] = tmp_path / "a.jsonl.gz"
    paths["jsonl.gz"].write_bytes(gzip.compress(lines.encode()))
    paths["json.bz2 (lines)"] = tmp_path / "b.json.bz2"
    paths["json.bz2 (lines)"].write_bytes(bz2.compress(lines.encode()))
    paths["json array"] = tmp_path / "c.json"
    paths["json array"].write_text(json.dumps(FORMAT_ROWS, indent=2))
    paths["csv"] = tmp_path / "d.csv"
    with open(paths["csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "topic"])
        writer.writeheader()
        writer.writerows(FORMAT_ROWS)
    paths["csv.gz"] = tmp_path / "e.csv.gz"
    paths["csv.gz"].write_bytes(gzip.compress(paths["csv"].read_bytes()))
    return paths


def test_every_format_reads_the_same_documents(tmp_path):
    """A JSON array, compressed JSON lines and csv give jsonl's documents, filters included."""
    pytest.importorskip("datasets")  # JSON arrays and csv go through its loaders
    paths = _write_formats(tmp_path)
    expected = [r["text"] for r in FORMAT_ROWS if r["text"].strip() and r["topic"] == "biology"]
    for name, path in paths.items():
        got = read_documents(DataSource(path=str(path), filter="topic == biology"), "forget")
        assert got == expected, name
    txt = tmp_path / "f.txt.gz"
    import gzip

    txt.write_bytes(gzip.compress(b"first\nparagraph\n\nsecond\n"))
    assert read_documents(DataSource(path=str(txt)), "retain") == ["first\nparagraph", "second"]


def test_format_errors_name_file_and_key(tmp_path):
    pytest.importorskip("datasets")
    paths = _write_formats(tmp_path)
    with pytest.raises(UserError, match=r"d\.csv, row 1: no key 'body' \(keys: text, topic\)"):
        read_documents(DataSource(path=str(paths["csv"]), text_field="body"), "retain")
    with pytest.raises(UserError, match=r"c\.json, row 1: no key 'body'"):
        read_documents(DataSource(path=str(paths["json array"]), text_field="body"), "retain")
    bad = tmp_path / "bad.json"
    bad.write_text('[{"text": "a"}, {"text": ')
    with pytest.raises(UserError, match=r"bad\.json: not readable as a JSON array"):
        read_documents(DataSource(path=str(bad)), "retain")
    bad_gz = tmp_path / "bad.jsonl.gz"
    import gzip

    bad_gz.write_bytes(gzip.compress(b'{"text": "ok"}\n{"text": \n'))
    with pytest.raises(UserError, match=r"bad\.jsonl\.gz, line 2: malformed JSON"):
        read_documents(DataSource(path=str(bad_gz)), "retain")


def test_json_array_without_datasets_names_the_extra(tmp_path, monkeypatch):
    import sys

    path = tmp_path / "c.json"
    path.write_text(json.dumps(FORMAT_ROWS))
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(UserError, match=r"c\.json: reading a JSON array needs the datasets package"):
        read_documents(DataSource(path=str(path)), "retain")


def test_unknown_domain_name_in_config():
    with pytest.raises(UserError, match=r"data\.spanish: unknown key"):
        load_config(None, ["data.spanish.path=es.jsonl"])


def test_offline_hub_id_is_a_user_error(monkeypatch):
    """With the hub unreachable, only the local cache is tried (offline env set), then a UserError."""
    import sys
    import types

    seen = {}

    def load_dataset(name, config=None, split=None, streaming=False):
        seen.update(offline=os.environ.get("HF_HUB_OFFLINE"), streaming=streaming)
        raise ConnectionError("Couldn't reach the hub")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.setattr(sources, "hub_reachable", lambda timeout=3.0: False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(
        UserError, match=r"data\.forget\.hub 'roneneldan/TinyStories'.*cannot be reached.*data\.forget\.path"
    ):
        read_documents(DataSource(hub="roneneldan/TinyStories"), "forget")
    assert seen == {"offline": "1", "streaming": False}
    assert "HF_HUB_OFFLINE" not in os.environ  # restored


def test_hub_rows_are_read_filtered_and_capped(monkeypatch):
    import sys
    import types

    rows = [{"text": f"doc {i}", "lang": "es" if i % 2 else "en"} for i in range(10)]
    fake = types.SimpleNamespace(load_dataset=lambda *a, **k: iter(rows))
    monkeypatch.setitem(sys.modules, "datasets", fake)
    monkeypatch.setattr(sources, "hub_reachable", lambda timeout=3.0: True)
    docs = read_documents(DataSource(hub="x/y", filter="lang == es", max_documents=3), "forget")
    assert docs == ["doc 1", "doc 3", "doc 5"]


OFFLINE_CHILD = """
import sys, time
from excise.config import DataSource
from excise.data.sources import read_documents
from excise.errors import UserError
for attempt in ("fresh import", "datasets already imported"):
    t0 = time.perf_counter()
    try:
        read_documents(DataSource(hub="someone/not-a-dataset"), "retain")
    except UserError as e:
        assert "cannot be reached" in str(e), e
    print(attempt, round(time.perf_counter() - t0, 2))
    assert "datasets" in sys.modules
"""


def test_offline_hub_id_fails_in_seconds_with_real_datasets(tmp_path):
    """No network: the clear message comes without huggingface_hub's retries (~25 s), both
    when datasets is first imported for the hub source and when it was imported before."""
    import subprocess
    import sys

    pytest.importorskip("datasets")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
        "HF_HOME": str(tmp_path / "hf"),  # an empty cache
        "HF_ENDPOINT": "http://127.0.0.1:9",  # nothing listens: unreachable at once
    }  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_CHILD], capture_output=True, text=True, env=env, timeout=120
    )
    wall = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Retrying" not in done.stderr, done.stderr[-2000:]
    times = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in done.stdout.splitlines()}
    assert set(times) == {"fresh import", "datasets already imported"}
    assert times["datasets already imported"] < 3 and times["fresh import"] < 15, times
    assert wall < 30


# --- real sample data (skipped when absent)


def test_shared_openstax_biology_filter(shared_data):
    path = shared_data / "topics" / "openstax_textbooks.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    docs = read_documents(DataSource(path=str(path), filter="topic == biology", max_documents=50), "forget")
    assert len(docs) == 50 and all(len(d) >= 200 for d in docs)
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["topic"] == "biology":
                rows.append(row["text"])
                if len(rows) == 50:
                    break
    assert docs == rows
    adjacent = read_documents(
        DataSource(path=str(path), filter="topic in [medicine, chemistry]", max_documents=30), "adjacent"
    )
    assert len(adjacent) == 30 and set(adjacent).isdisjoint(docs)


def test_shared_literature_spanish(shared_data):
    path = shared_data / "literature" / "es.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    docs = read_documents(DataSource(path=str(path), max_documents=100), "forget")
    assert len(docs) == 100 and sum(" que " in d for d in docs) > 80
