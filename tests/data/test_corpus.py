"""data.corpus: one mixed corpus labelled by a classifier, prepared in chunks, resumable."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from excise.config import ConfigError, load_config
from excise.errors import UserError

TOPICS = {
    "biology": "the cell divides and each gene of the protein enzyme inside the membrane",
    "medicine": "the patient received a dose and the doctor checked the clinic records",
    "history": "the empire fell after the war and the king signed a treaty with the council",
}


def _corpus(path, n=240):
    rng = random.Random(0)
    with open(path, "w") as f:
        for i in range(n):
            topic = list(TOPICS)[i % 3]
            words = TOPICS[topic].split()
            text = " ".join(rng.choice(words) for _ in range(120))
            if topic == "history" and i % 30 == 2:
                text += " one cell of the gene"  # keyword false positives, measured below
            f.write(json.dumps({"text": text, "topic": topic}) + "\n")
    return path


def _config(tmp_path, *extra):
    path = _corpus(tmp_path / "corpus.jsonl")
    return load_config(
        None,
        [
            "model.vocab_size=300",
            "model.context=32",
            "model.n_layers=1",
            "model.d_model=16",
            "model.n_heads=2",
            "model.d_ff=32",
            "partition.forget_heads=1",
            "partition.forget_mlp_units=8",
            "data.builtin=null",
            f"data.corpus.path={path}",
            "data.test_fraction=0.25",
            "data.evaluation.field=topic",
            "data.evaluation.forget=[biology]",
            "data.evaluation.adjacent=[medicine]",
            "labels.classifier.kind=keywords",
            "labels.classifier.keywords=[cell, gene]",
            "labels.classifier.min_matches=1",
            "train.batch_size=4",
            "train.steps=4",
            "logging.progress=false",
            "eval.max_tokens=256",
            "eval.batch_size=4",
            "train.threads=1",
            *extra,
        ],
    )


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXCISE_CACHE", str(tmp_path / "cache"))


def _prepare(config, run_dir=None):
    from excise.data import prepare_data

    return prepare_data(config, run_dir=run_dir, progress=False)


def test_keyword_labels_give_pools_and_a_measured_report(tmp_path):
    from excise.data.corpus import held_out

    data = _prepare(_config(tmp_path), tmp_path)
    assert set(data.train) == {"forget", "retain"} and set(data.test) == {"forget", "adjacent", "retain"}
    test = held_out(np.arange(240), 0, 0.25)
    # biology is every third document; history docs 2, 32, ... carry the keywords too
    truth = ["biology" if i % 3 == 0 else "medicine" if i % 3 == 1 else "history" for i in range(240)]
    flagged = [t == "biology" or (t == "history" and i % 30 == 2) for i, t in enumerate(truth)]
    tp = sum(1 for i in range(240) if test[i] and flagged[i] and truth[i] == "biology")
    fp = sum(1 for i in range(240) if test[i] and flagged[i] and truth[i] != "biology")
    report = data.labeller_report
    assert report["recall"] == 1.0 and report["precision"] == tp / (tp + fp) < 1.0
    assert report["pool_documents"]["forget"] == sum(1 for i in range(240) if not test[i] and flagged[i])
    assert json.loads((tmp_path / "labeller.json").read_text())["precision"] == report["precision"]


def test_pools_are_the_documents_encode_batch_gives_in_corpus_order(tmp_path, monkeypatch):
    """Chunks are tokenized ahead in a thread with ``encode_batch_fast``: every pool must
    still be its documents' ``encode_batch`` ids plus EOS, in corpus order, cut into windows."""
    import excise.data.corpus as corpus
    from excise.data.corpus import held_out
    from excise.data.tokenizer import eos_id

    monkeypatch.setattr(corpus, "CHUNK_CHARACTERS", 2000)  # many chunks in flight
    config = _config(tmp_path)
    data = _prepare(config)
    rows = [json.loads(line) for line in open(config.data.corpus.path)]
    test = held_out(np.arange(len(rows)), 0, 0.25)
    encoded = data.tokenizer.encode_batch([r["text"] for r in rows], add_special_tokens=False)
    streams: dict[str, list[int]] = {}
    for row, is_test, e in zip(rows, test, encoded, strict=True):
        if is_test:
            true = {"biology": "forget", "medicine": "adjacent"}.get(row["topic"], "retain")
            name = "t" + true
        else:
            name = "forget" if any(w in row["text"].split() for w in ("cell", "gene")) else "retain"
        streams.setdefault(name, []).extend(e.ids + [eos_id(data.tokenizer)])
    window = config.model.context + 1
    got = {**data.train, **{"t" + k: v for k, v in data.test.items()}}
    assert got.keys() == streams.keys()
    for name, ids in streams.items():
        n = len(ids) // window
        assert np.array_equal(np.array(got[name]), np.asarray(ids[: n * window]).reshape(n, window)), name


def test_fast_encoding_gives_the_ids_of_encode_batch(tmp_path):
    from excise.data.corpus import _tokenized
    from excise.data.tokenizer import train_tokenizer

    texts = [
        "plain words here",
        "",
        "  leading spaces\tand\ttabs\n",
        "naïve café — ñandú 日本語 🙂",
        "x" * 5000,
    ]
    tokenizer = train_tokenizer(iter(texts * 20), 300, False)
    chunks = [[((t, {}), i)] for i, t in enumerate(texts)]
    got = [ids for _, (ids,) in _tokenized(iter(chunks), tokenizer, np.dtype(np.uint16))]
    want = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    assert [g.tolist() for g in got] == want


def test_a_killed_preparation_continues_to_the_same_arrays(tmp_path, monkeypatch):
    import excise.data.corpus as corpus
    from excise.data.classify import DocumentClassifier

    monkeypatch.setattr(corpus, "CHUNK_CHARACTERS", 3000)
    calls = {"n": 0, "die_at": None}
    original = DocumentClassifier.label

    def counting(self, *args):
        calls["n"] += 1
        if calls["n"] == calls["die_at"]:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(DocumentClassifier, "label", counting)
    config = _config(tmp_path)  # once: rewriting the corpus file would change the cache key
    reference = _prepare(config)
    full_pass = calls["n"]
    assert full_pass > 10
    ref = {
        k: np.array(v)
        for k, v in {**reference.train, **{"t" + k: v for k, v in reference.test.items()}}.items()
    }
    monkeypatch.setenv("EXCISE_CACHE", str(tmp_path / "cache2"))
    calls.update(n=0, die_at=4)
    with pytest.raises(KeyboardInterrupt):
        _prepare(config)
    partial = next((tmp_path / "cache2" / "tokens").glob("*.partial"))
    assert json.loads((partial / "progress.json").read_text())["phases"]["corpus"] > 0
    calls.update(n=0, die_at=None)
    resumed = _prepare(config)
    assert calls["n"] == full_pass - 3  # the three finished chunks are not redone
    got = {**resumed.train, **{"t" + k: v for k, v in resumed.test.items()}}
    assert got.keys() == ref.keys()
    for k in ref:
        assert np.array_equal(np.array(got[k]), ref[k]), k


def test_column_and_trained_classifiers(tmp_path):
    column = _prepare(
        _config(
            tmp_path,
            "labels.classifier.kind=column",
            "labels.classifier.field=topic",
            "labels.classifier.forget=[biology]",
            "labels.classifier.adjacent=[medicine]",
        )
    )
    assert column.labeller_report["precision"] == column.labeller_report["recall"] == 1.0
    assert set(column.train) == {"forget", "adjacent", "retain"}
    trained = _prepare(
        _config(
            tmp_path,
            "labels.classifier.kind=trained",
            "labels.classifier.field=topic",
            "labels.classifier.forget=[biology]",
            f"labels.classifier.seed_path={tmp_path / 'corpus.jsonl'}",
            "labels.classifier.seed_documents=40",
        )
    )
    assert trained.labeller_report["recall"] > 0.9 and trained.labeller_report["precision"] > 0.9
    assert trained.labeller_report["seed_overlap_skipped"] > 0  # seed documents are not evaluated


def test_bad_input_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="unknown label value 'history'"):
        _prepare(_config(tmp_path, "data.evaluation.retain=[politics]"))
    with pytest.raises(UserError, match="labels no training document as forget"):
        _prepare(_config(tmp_path, "labels.classifier.keywords=[zebra]"))
    with pytest.raises(UserError, match="retain pool empty"):
        _prepare(_config(tmp_path, "labels.classifier.keywords=[the]"))
    with pytest.raises(ConfigError, match="data.corpus needs labels.classifier"):
        _config(tmp_path, "labels.classifier=null")


@pytest.mark.parametrize("method", ["sgtm", "weak_filter", "strict_filter"])
@pytest.mark.parametrize("batches", ["pure", "mixed"])
def test_train_on_a_corpus(tmp_path, method, batches):
    from excise.train.runner import train

    summary = train(
        _config(tmp_path, f"method.name={method}", f"train.batches={batches}", "labels.retain_fraction=0.5"),
        tmp_path / "run",
    )
    assert summary["labeller"]["recall"] == 1.0
    assert set(summary["eval"]["full"]) == {"forget", "adjacent", "retain"}
    assert (tmp_path / "run" / "labeller.json").is_file()
