"""Packing and the token cache: no token lost or duplicated, document-disjoint split,
cache hits equal, keys change with inputs, nothing half-written on failure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from excise.data import packing, prepare_data
from excise.data.builtin import generate_bilingual
from excise.data.prepare import BUILTIN_CORPUS_SEED
from excise.data.tokenizer import eos_id
from excise.errors import UserError


def _docs(config, domain):
    rows = generate_bilingual(config.data.builtin_documents, BUILTIN_CORPUS_SEED)
    return [r["text"] for r in rows[domain]]


def _stream(tokenizer, docs):
    eos = eos_id(tokenizer)
    out = []
    for d in docs:
        out += tokenizer.encode(d, add_special_tokens=False).ids + [eos]
    return np.asarray(out)


def test_windows_reproduce_the_stream_exactly(make_config, tmp_path):
    config = make_config()
    prepared = prepare_data(config, run_dir=tmp_path, progress=False)
    window = config.model.context + 1
    for domain in ("retain", "forget"):
        docs = _docs(config, domain)
        train_idx, test_idx = packing.split_documents(
            len(docs), config.data.test_fraction, config.seed, domain
        )
        for split, idx, arrays in (("train", train_idx, prepared.train), ("test", test_idx, prepared.test)):
            stream = _stream(prepared.tokenizer, [docs[i] for i in idx])
            rows = arrays[domain]
            assert rows.shape == (len(stream) // window, window)
            assert rows.dtype == np.uint16
            np.testing.assert_array_equal(np.asarray(rows).reshape(-1), stream[: rows.size])
            assert len(stream) - rows.size < window  # only the last partial window is dropped
            assert prepared.stats["tokens"][domain][split] == len(stream)
            assert prepared.stats["documents"][domain][split] == len(idx)
    assert (tmp_path / "tokenizer.json").read_text() == prepared.tokenizer.to_str()
    assert prepared.probes is None and prepared.forget_flags is None


def test_split_is_disjoint_by_document_and_seeded():
    train, test = packing.split_documents(100, 0.1, 0, "forget")
    assert len(test) == 10 and len(train) == 90
    assert set(train).isdisjoint(test) and set(train) | set(test) == set(range(100))
    again = packing.split_documents(100, 0.1, 0, "forget")
    assert all(np.array_equal(a, b) for a, b in zip((train, test), again))
    assert not np.array_equal(test, packing.split_documents(100, 0.1, 1, "forget")[1])
    assert len(packing.split_documents(3, 0.01, 0, "x")[1]) == 1  # at least one test document


def test_test_documents_never_in_train(make_config):
    config = make_config()
    prepared = prepare_data(config, progress=False)
    tok = prepared.tokenizer
    eos = eos_id(tok)
    for domain in ("retain", "forget"):

        def documents(arr):
            text = np.asarray(arr).reshape(-1).tolist()
            pieces, cur = set(), []
            for t in text:
                if t == eos:
                    pieces.add(tuple(cur))
                    cur = []
                else:
                    cur.append(t)
            return pieces - {()}

        train_docs, test_docs = documents(prepared.train[domain]), documents(prepared.test[domain])
        assert test_docs and train_docs.isdisjoint(test_docs)


def test_cache_hit_returns_equal_arrays_and_inputs_change_the_key(make_config, isolated_cache):
    config = make_config()
    first = prepare_data(config, progress=False)
    entries = sorted(p.name for p in (isolated_cache / "tokens").iterdir())
    second = prepare_data(config, progress=False)
    assert second.stats["cache_key"] == first.stats["cache_key"]
    for domain in first.train:
        np.testing.assert_array_equal(first.train[domain], second.train[domain])
        np.testing.assert_array_equal(first.test[domain], second.test[domain])
    assert sorted(p.name for p in (isolated_cache / "tokens").iterdir()) == entries  # nothing rebuilt
    keys = {first.stats["cache_key"]}
    for changed in (
        make_config(model__context=16),
        make_config(seed=1),
        make_config(data__test_fraction=0.2),
        make_config(data__builtin_documents=61),
        make_config(model__vocab_size=400),
    ):
        keys.add(prepare_data(changed, progress=False).stats["cache_key"])
    assert len(keys) == 6
    assert not list((isolated_cache / "tokens").glob(".*"))  # no temporary leftovers


def test_changed_file_changes_the_key(make_config, tmp_path):
    en, es = tmp_path / "en.jsonl", tmp_path / "es.jsonl"
    rows = generate_bilingual(40, 0)
    for path, domain in ((en, "retain"), (es, "forget")):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows[domain]))
    overrides = dict(data__builtin=None, data__retain={"path": str(en)}, data__forget={"path": str(es)})
    first = prepare_data(make_config(**overrides), progress=False)
    with open(es, "a") as f:
        f.write(json.dumps({"text": "Una frase más para cambiar el archivo."}) + "\n")
    second = prepare_data(make_config(**overrides), progress=False)
    assert first.stats["cache_key"] != second.stats["cache_key"]
    assert second.stats["documents"]["forget"]["train"] + second.stats["documents"]["forget"]["test"] == 41


def test_tokenizer_path_is_reused(make_config, tmp_path):
    prepared = prepare_data(make_config(), run_dir=tmp_path, progress=False)
    again = prepare_data(make_config(tokenizer__path=str(tmp_path / "tokenizer.json")), progress=False)
    assert again.tokenizer.to_str() == prepared.tokenizer.to_str()
    np.testing.assert_array_equal(again.train["forget"], prepared.train["forget"])
    with pytest.raises(UserError, match="model.vocab_size is 300"):
        prepare_data(
            make_config(tokenizer__path=str(tmp_path / "tokenizer.json"), model__vocab_size=300),
            progress=False,
        )


def test_train_on_retain_only(make_config):
    prepared = prepare_data(make_config(tokenizer__train_on="retain"), progress=False)
    both = prepare_data(make_config(), progress=False)
    # Spanish needs more tokens with an English-only tokenizer
    assert prepared.stats["tokens"]["forget"]["train"] > both.stats["tokens"]["forget"]["train"]


def test_domain_too_small_leaves_nothing_behind(make_config, tmp_path, isolated_cache):
    rows = generate_bilingual(40, 0)
    en, es = tmp_path / "en.jsonl", tmp_path / "es.jsonl"
    en.write_text("".join(json.dumps(r) + "\n" for r in rows["retain"]))
    es.write_text(json.dumps({"text": "Hola."}) + "\n" + json.dumps({"text": "Adiós."}) + "\n")
    config = make_config(data__builtin=None, data__retain={"path": str(en)}, data__forget={"path": str(es)})
    with pytest.raises(
        UserError,
        match=r"domain 'forget' is too small: its train split has 1 documents and \d+ tokens, but one sequence needs 33",
    ):
        prepare_data(config, progress=False)
    assert list((isolated_cache / "tokens").iterdir()) == []  # no partial cache entry


def test_topic_builtin_has_probes_and_three_domains(make_config):
    prepared = prepare_data(make_config(data__builtin="topic", data__builtin_documents=40), progress=False)
    assert set(prepared.train) == {"forget", "adjacent", "retain"}
    assert prepared.probes and {p.topic for p in prepared.probes} >= {"biology", "chemistry", "history"}


def test_large_vocab_uses_int32():
    assert packing.token_dtype(65535) == np.uint16 and packing.token_dtype(65536) == np.int32


def test_prepare_on_shared_openstax_by_topic_filter(make_config, shared_data):
    path = shared_data / "topics" / "openstax_textbooks.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    config = make_config(
        data__builtin=None,
        data__forget={"path": str(path), "filter": "topic == biology", "max_documents": 40},
        data__adjacent={"path": str(path), "filter": "topic in [medicine, chemistry]", "max_documents": 40},
        data__retain={
            "path": str(path),
            "filter": "topic not in [biology, medicine, chemistry]",
            "max_documents": 40,
        },
        model__context=64,
        labels__labeller="classifier",
        labels__seed_documents=60,
    )
    prepared = prepare_data(config, progress=False)
    assert set(prepared.train) == {"forget", "adjacent", "retain"}
    assert all(
        prepared.stats["documents"][d]["train"] + prepared.stats["documents"][d]["test"] == 40
        for d in prepared.train
    )
    report = prepared.labeller_report
    assert report["held_out"]["support"]["forget"] == len(prepared.test["forget"])
    assert 0.0 <= report["accuracy"] <= 1.0
