"""Built-in corpora: determinism, two distinct languages, Spanish agreement, probe-able facts."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from excise.data import _lexicon as L
from excise.data.builtin import bilingual_story, generate_bilingual, generate_topic
from excise.data.cli import generate_to_dir

ES_STOP = {
    "de",
    "la",
    "que",
    "el",
    "en",
    "y",
    "a",
    "los",
    "se",
    "del",
    "las",
    "un",
    "una",
    "su",
    "al",
    "con",
    "por",
}
EN_STOP = {"the", "and", "to", "a", "of", "was", "he", "she", "it", "in", "his", "her", "with", "said"}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-záéíóúüñ]+", text.lower())


def _share(texts: list[str], stop: set[str]) -> float:
    words = [w for t in texts for w in _words(t)]
    return sum(w in stop for w in words) / len(words)


@pytest.fixture(scope="module")
def bilingual():
    return generate_bilingual(300, seed=0)


def test_bilingual_is_deterministic_by_seed():
    assert generate_bilingual(20, seed=3) == generate_bilingual(20, seed=3)
    assert generate_bilingual(20, seed=3) != generate_bilingual(20, seed=4)
    assert bilingual_story(5, 7) == bilingual_story(5, 7)


def test_languages_present_and_distinct(bilingual):
    en = [r["text"] for r in bilingual["retain"]]
    es = [r["text"] for r in bilingual["forget"]]
    assert _share(es, ES_STOP) > 0.2 and _share(en, ES_STOP - {"a"}) < 0.01
    assert _share(en, EN_STOP) > 0.2 and _share(es, EN_STOP - {"a"}) < 0.01
    # retain and forget hold different stories, not translations of each other
    assert {r["text"] for r in bilingual["retain"]}.isdisjoint({r["text"] for r in bilingual["forget"]})


def test_variety(bilingual):
    en_vocab = Counter(w for r in bilingual["retain"] for w in _words(r["text"]))
    es_vocab = Counter(w for r in bilingual["forget"] for w in _words(r["text"]))
    assert len(en_vocab) > 400 and len(es_vocab) > 400
    texts = [r["text"] for r in bilingual["retain"]]
    assert len(set(texts)) == len(texts)
    assert min(len(t) for t in texts) > 100


def _noun_forms():
    forms = {}
    for noun in L.OBJECTS + L.ANIMALS + L.PLACES + L.SPOTS + L.FOODS + L.PEOPLE:
        if noun.es == noun.es_pl or noun.es in {c.es_m for c in L.COLORS}:
            continue  # number is ambiguous (paraguas); "el naranja" is the colour, a masculine noun
        forms[noun.es] = (noun, False)
        forms[noun.es_pl] = (noun, True)
    return forms


ARTICLES = {
    "el": ("m", False),
    "la": ("f", False),
    "los": ("m", True),
    "las": ("f", True),
    "un": ("m", False),
    "una": ("f", False),
    "unos": ("m", True),
    "unas": ("f", True),
}


def test_spanish_article_and_adjective_agreement(bilingual):
    forms = _noun_forms()
    fits: dict[str, set] = {}  # adjective form -> the (gender, plural) it can agree with
    for adj in L.COLORS + L.SIZES_AND_LOOKS + L.FEELINGS + L.TRAITS + L.STATES:
        for g in "mf":
            for plural in (False, True):
                fits.setdefault(adj.es(g, plural), set()).add((g, plural))
    alternatives = "|".join(sorted((re.escape(f) for f in forms), key=len, reverse=True))
    pattern = re.compile(rf"\b(el|la|los|las|un|una|unos|unas) ({alternatives})\b(?: (\w+))?")
    checked_articles = checked_adjectives = 0
    for row in bilingual["forget"]:
        for art, form, nxt in pattern.findall(row["text"]):
            noun, plural = forms[form]
            assert ARTICLES[art] == (noun.gender, plural), (art, form, row["text"])
            checked_articles += 1
            if nxt in fits and len(fits[nxt]) < 4:  # a gender- or number-marked adjective
                assert (noun.gender, plural) in fits[nxt], (form, nxt, row["text"])
                checked_adjectives += 1
    assert checked_articles > 500 and checked_adjectives > 100


def test_spanish_predicate_agreement_with_character_gender():
    """Story-level spot checks: 'X estaba contenta' agrees with X's gender."""
    female, male = set(L.NAMES_F), set(L.NAMES_M)
    gendered = [a for a in L.FEELINGS + L.TRAITS if a.es_f != a.es_m]
    feelings = {a.es_m: "m" for a in gendered} | {a.es_f: "f" for a in gendered}
    checked = 0
    for i in range(400):
        _, es = bilingual_story(0, i)
        for name, adj in re.findall(r"\b([A-ZÁÉÍÓÚ]\w+) estaba (?:muy )?(\w+)", es):
            if adj in feelings and (name in female or name in male):
                assert feelings[adj] == ("f" if name in female else "m"), (name, adj, es)
                checked += 1
    assert checked > 30


def test_specific_agreement_examples():
    from excise.data._stories import noun_phrase

    ball = next(n for n in L.OBJECTS if n.es == "pelota")
    red = next(a for a in L.COLORS if a.en == "red")
    hat = next(n for n in L.OBJECTS if n.es == "sombrero")
    assert noun_phrase(ball, "the", red) == ("the red ball", "la pelota roja")
    assert noun_phrase(ball, "a", red, plural=True) == ("red balls", "unas pelotas rojas")
    assert noun_phrase(hat, "the", red, plural=True) == ("the red hats", "los sombreros rojos")
    assert noun_phrase(hat, "a") == ("a hat", "un sombrero")
    pencil = next(n for n in L.OBJECTS if n.es == "lápiz")
    assert pencil.es_pl == "lápices"
    mouse = next(n for n in L.ANIMALS if n.es == "ratón")
    assert mouse.es_pl == "ratones"


@pytest.fixture(scope="module")
def topic():
    return generate_topic(200, seed=0)


def test_topic_corpus_deterministic_and_labelled(topic):
    rows, probes = topic
    again_rows, again_probes = generate_topic(200, seed=0)
    assert rows == again_rows and probes == again_probes
    assert generate_topic(200, seed=1)[0] != rows
    assert {r["topic"] for r in rows["forget"]} == {"biology"}
    assert {r["topic"] for r in rows["adjacent"]} == {"chemistry", "medicine", "environment"}
    assert {r["topic"] for r in rows["retain"]} >= {"history", "geography", "sports", "arts"}
    assert all(len(rows[d]) == 200 for d in rows)


def test_facts_are_probe_able(topic):
    rows, probes = topic
    by_topic = {}
    for domain in rows:
        for r in rows[domain]:
            by_topic.setdefault(r["topic"], []).append(r)
    titles = {t: {r["title"] for r in docs} for t, docs in by_topic.items()}
    assert {p.topic for p in probes} == set(by_topic)
    for p in probes:
        assert p.answer in p.choices and len(set(p.choices)) == len(p.choices) == 4
        entity = max((t for t in titles[p.topic] if t in p.question), key=len)
        # the fact is stated in an article of its own topic's domain that names the entity
        assert any(entity in r["text"] and p.answer in r["text"] for r in by_topic[p.topic]), p
    # the probe's cloze prompt + answer appears verbatim for most facts (first phrasing)
    forget_text = "\n".join(r["text"] for r in rows["forget"])
    bio = [p for p in probes if p.topic == "biology"]
    verbatim = sum(f"{p.question} {p.answer}" in forget_text for p in bio)
    assert verbatim / len(bio) > 0.3


def test_facts_are_consistent_across_articles(topic):
    """An entity's attribute has one value in every article that states it."""
    rows, probes = topic
    text = "\n".join(r["text"] for r in rows["forget"])
    for p in [p for p in probes if p.topic == "biology"][:40]:
        for wrong in set(p.choices) - {p.answer}:
            assert f"{p.question} {wrong}." not in text


def test_cli_generate_writes_jsonl(tmp_path):
    counts = generate_to_dir("topic", tmp_path, 30, 0)
    assert counts["forget"] == counts["retain"] == counts["adjacent"] == 30
    probes = [json.loads(line) for line in (tmp_path / "probes.jsonl").read_text().splitlines()]
    assert len(probes) == counts["probes"] and set(probes[0]) == {"question", "answer", "choices", "topic"}
    rows = [json.loads(line) for line in (tmp_path / "forget.jsonl").read_text().splitlines()]
    assert rows == generate_topic(30, 0)[0]["forget"]

    from excise.cli import main

    assert (
        main(["data", "generate", "--kind", "bilingual", "--out", str(tmp_path / "b"), "--documents", "5"])
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["forget.jsonl", "retain.jsonl"]
