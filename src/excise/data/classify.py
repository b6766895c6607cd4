"""Label each document of a corpus: forget, adjacent or retain (``labels.classifier``).

Three kinds, one interface (:meth:`DocumentClassifier.label`, called on a chunk of
documents after tokenization, so token-level classifiers cost no second tokenization):

- ``column``: the corpus already holds the label in ``field``;
- ``keywords``: whole-word (or regex) matches, ``min_matches`` hits needed;
- ``trained``: the built-in token logistic regression (:mod:`excise.data.labeller`) fitted
  on a small labelled seed file, whole documents as examples.

A label value in none of the recipe's lists is an error when ``retain`` is listed, so a typo
is caught instead of silently trained as retain.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from excise.config import ClassifierConfig, LabelMap
from excise.errors import UserError

PREDICTED = ("forget", "adjacent", "retain")
CLASSIFIER_VERSION = 2  # part of the token-cache key: bump when labelling changes


def map_label(labels: LabelMap, value: str, key: str) -> str:
    """The domain (forget / adjacent / retain) a label value stands for."""
    if value in labels.forget:
        return "forget"
    if value in labels.adjacent:
        return "adjacent"
    if labels.retain is None or value in labels.retain:
        return "retain"
    known = labels.forget + labels.adjacent + labels.retain
    raise UserError(
        f"{key}: unknown label value {value!r} in column {labels.field!r} "
        f"(known: {', '.join(known)}); add it to {key}.retain or fix the data"
    )


def text_digest(text: str) -> bytes:
    """A short fingerprint of a document, to keep seed documents out of the evaluation."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).digest()


def _pattern(words: list[str], regex: bool) -> re.Pattern | None:
    if not words:
        return None
    body = "|".join(words if regex else (re.escape(w) for w in words))
    try:
        return re.compile(body if regex else rf"\b(?:{body})\b", re.IGNORECASE)
    except re.error as e:
        raise UserError(f"labels.classifier.keywords: not a valid regular expression ({e})") from None


class DocumentClassifier:
    """Labels documents of one corpus; see the module doc for the kinds."""

    def __init__(self, config: ClassifierConfig, token_model=None, seed_digests: frozenset = frozenset()):
        self.config = config
        self.kind = config.kind
        self.fields: tuple[str, ...] = (config.field,) if config.kind == "column" else ()
        self.forget_re = _pattern(config.keywords, config.regex) if config.kind == "keywords" else None
        self.adjacent_re = (
            _pattern(config.adjacent_keywords, config.regex) if config.kind == "keywords" else None
        )
        self.token_model = token_model
        self.seed_digests = seed_digests  # documents the trained classifier saw

    def _hits(self, pattern: re.Pattern | None, text: str) -> bool:
        if pattern is None:
            return False
        if self.config.min_matches == 1:
            return pattern.search(text) is not None
        return sum(1 for _ in pattern.finditer(text)) >= self.config.min_matches

    def label(self, texts: list[str], fields: list[dict], tokens: list[np.ndarray]) -> list[str]:
        """One predicted domain per document of a chunk."""
        if self.kind == "column":
            return [map_label(self.config, f[self.config.field], "labels.classifier") for f in fields]
        if self.kind == "keywords":
            return [
                "forget"
                if self._hits(self.forget_re, t)
                else "adjacent"
                if self._hits(self.adjacent_re, t)
                else "retain"
                for t in texts
            ]
        return ["forget" if self.token_model.decision_document(t) > 0 else "retain" for t in tokens]


def build_classifier(
    config: ClassifierConfig, tokenizer, vocab_size: int, progress: bool = False
) -> DocumentClassifier:
    """The classifier of ``labels.classifier``; ``trained`` is fitted on its seed file here."""
    if config.kind != "trained":
        return DocumentClassifier(config)
    from excise.config import EvaluationSet
    from excise.data.corpus_files import records
    from excise.data.labeller import TokenClassifier

    seed = EvaluationSet(
        path=config.seed_path,
        field=config.field,
        forget=config.forget,
        adjacent=config.adjacent,
        retain=config.retain,
        max_documents=config.seed_documents,
    )
    # a reservoir sample of seed_documents over the whole file (a labelled file is often
    # sorted by label), in memory bounded by the sample
    rng = np.random.default_rng(0x5EED)
    sample: list[tuple[str, bool]] = []
    seed = seed.model_copy(update={"max_documents": None})
    for n, (text, fields) in enumerate(records(seed, (config.field,), key="labels.classifier.seed_path")):
        item = (text, map_label(config, fields[config.field], "labels.classifier") == "forget")
        if n < config.seed_documents:
            sample.append(item)
        elif (j := int(rng.integers(n + 1))) < config.seed_documents:
            sample[j] = item
    # balanced classes, as the per-batch labeller: a rare forget class would otherwise
    # leave the regression's bias below every document
    forget_items = [it for it in sample if it[1]]
    other_items = [it for it in sample if not it[1]]
    k = min(len(forget_items), len(other_items)) or max(len(forget_items), len(other_items))
    sample = forget_items[:k] + other_items[:k]
    texts = [t for t, _ in sample]
    labels = [f for _, f in sample]
    y = np.asarray(labels)
    if y.all() or not y.any():
        raise UserError(
            f"labels.classifier.seed_path: the {len(y)} seed documents must include both "
            "forget and other documents"
        )
    docs = [
        np.asarray(e.ids, dtype=np.int64) for e in tokenizer.encode_batch(texts, add_special_tokens=False)
    ]
    model = TokenClassifier(vocab_size).fit_documents(docs, y)
    if progress:
        print(
            f"[excise data] trained the labeller on {len(y)} seed documents ({int(y.sum())} forget)",
            flush=True,
        )
    return DocumentClassifier(config, model, frozenset(text_digest(t) for t in texts))


def measure(confusion: dict[str, dict[str, int]]) -> dict:
    """Document-level precision / recall of the forget label from ``confusion[true][predicted]``
    counts, plus the share flagged forget of each true domain."""

    def n(true=None, pred=None):
        return sum(
            c
            for t, row in confusion.items()
            for p, c in row.items()
            if (true is None or t == true) and (pred is None or p == pred)
        )

    tp, flagged, positives = n("forget", "forget"), n(pred="forget"), n(true="forget")
    return {
        "precision": tp / flagged if flagged else None,
        "recall": tp / positives if positives else None,
        "flagged_share_by_domain": {d: n(d, "forget") / n(d) for d in PREDICTED if n(d)},
        "support": {d: n(d) for d in PREDICTED},
        "confusion": confusion,
    }
