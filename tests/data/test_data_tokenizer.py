"""Byte-level BPE: exact round trip (accents included), loading by path, vocabulary checks."""

from __future__ import annotations

import pytest

from excise.data.builtin import generate_bilingual
from excise.data.tokenizer import EOS, eos_id, load_tokenizer, train_tokenizer, training_texts
from excise.errors import UserError

SAMPLES = [
    "Once upon a time, a little girl named Lily found a red ball.",
    "«¿Dónde está mi pelota?», preguntó la niña. ¡Qué día tan bonito! Año, pingüino, corazón.",
    "  leading spaces, tabs\tand\nnewlines\n\n and emoji 🐢 and 中文 ",
    "",
]


@pytest.fixture(scope="module")
def tokenizer():
    rows = generate_bilingual(80, seed=0)
    docs = {d: [r["text"] for r in rows[d]] for d in rows}
    return train_tokenizer(training_texts(docs, 10**6), vocab_size=600)


def test_round_trip(tokenizer):
    for text in SAMPLES:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        assert tokenizer.decode(ids) == text
    assert tokenizer.get_vocab_size() <= 600
    assert tokenizer.token_to_id(EOS) == eos_id(tokenizer)


def test_eos_is_one_token_and_not_produced_by_plain_text(tokenizer):
    eos = eos_id(tokenizer)
    for text in SAMPLES:
        assert eos not in tokenizer.encode(text, add_special_tokens=False).ids


def test_learned_merges_cover_both_languages(tokenizer):
    # frequent words of each language become single tokens
    assert len(tokenizer.encode(" the", add_special_tokens=False).ids) == 1
    assert len(tokenizer.encode(" dijo", add_special_tokens=False).ids) == 1


def test_load_by_file_and_transformers_directory(tokenizer, tmp_path):
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    for path in (tmp_path / "tokenizer.json", tmp_path):
        loaded = load_tokenizer(path)
        assert loaded.to_str() == tokenizer.to_str()
        assert loaded.encode(SAMPLES[1]).ids == tokenizer.encode(SAMPLES[1]).ids
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(UserError, match="has no tokenizer.json"):
        load_tokenizer(tmp_path / "empty_dir")
    with pytest.raises(UserError, match="does not exist"):
        load_tokenizer(tmp_path / "nonexistent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="not a valid tokenizer.json"):
        load_tokenizer(tmp_path / "bad.json")


def test_vocab_too_small():
    with pytest.raises(UserError, match="at least 257"):
        train_tokenizer(["abc"], vocab_size=100)


def test_training_texts_budget_interleaves_domains():
    docs = {"retain": ["a" * 10] * 5, "forget": ["b" * 10] * 5}
    texts = list(training_texts(docs, 35))
    assert texts == ["a" * 10, "b" * 10, "a" * 10, "b" * 5]
