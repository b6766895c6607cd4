"""A real forget-data classifier, so label noise can be realistic rather than uniform.

Logistic regression (numpy, no sklearn) on bag-of-token features of packed sequences:
token-id unigram counts plus hashed token bigrams, ``log1p``-scaled and L2-normalised.
It is trained on a small labelled seed set (``labels.seed_documents`` training sequences,
half forget and half from the other domains — each a chunk of one or two labelled
documents), measured on the held-out test sequences (documents never seen in training),
and then applied to every training sequence.
"""

from __future__ import annotations

import numpy as np

BIGRAM_BUCKETS = 1 << 15
_CHUNK_ROWS = 128


class TokenClassifier:
    """Binary logistic regression on token unigram + hashed bigram features."""

    def __init__(self, vocab_size: int, l2: float = 1e-3):
        self.vocab_size = vocab_size
        self.dim = vocab_size + BIGRAM_BUCKETS
        self.l2 = l2
        self.weights = np.zeros(self.dim, dtype=np.float64)
        self.bias = 0.0

    def _columns(self, tokens: np.ndarray) -> np.ndarray:
        """(n, L) token rows → (n, 2L - 1) feature columns: unigrams, then hashed bigrams."""
        tokens = np.asarray(tokens, dtype=np.int64)
        bigram = (tokens[:, :-1] * 1_000_003 + tokens[:, 1:]) % BIGRAM_BUCKETS + self.vocab_size
        return np.concatenate([np.minimum(tokens, self.vocab_size - 1), bigram], axis=1)

    def features(self, tokens: np.ndarray) -> np.ndarray:
        """(n, L) token rows → dense (n, dim) float32 features (log1p counts, unit L2 norm)."""
        cols = self._columns(tokens)
        n = len(cols)
        x = np.zeros((n, self.dim), dtype=np.float32)
        np.add.at(x, (np.repeat(np.arange(n), cols.shape[1]), cols.reshape(-1)), 1.0)
        np.log1p(x, out=x)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)
        return x

    def fit(
        self, tokens: np.ndarray, labels: np.ndarray, steps: int = 300, lr: float = 2.0
    ) -> TokenClassifier:
        """Full-batch gradient descent on the L2-regularised mean log-loss.

        Started from w = 0, every iterate lies in the span of the seed rows, w = Xᵀα, so the
        same iteration runs on α with the n x n Gram matrix K = XXᵀ (exactly equivalent and
        independent of the feature dimension).
        """
        return self._fit_dense(self.features(tokens), labels, steps, lr)

    def fit_documents(
        self, documents: list[np.ndarray], labels: np.ndarray, steps: int = 300, lr: float = 2.0
    ) -> TokenClassifier:
        """:meth:`fit` on whole documents of any length (1-D token arrays), not windows."""
        x = np.zeros((len(documents), self.dim), dtype=np.float32)
        for i, doc in enumerate(documents):
            np.add.at(x[i], self._columns(np.asarray(doc)[None, :])[0], 1.0)
        np.log1p(x, out=x)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)
        return self._fit_dense(x, labels, steps, lr)

    def _fit_dense(self, x: np.ndarray, labels: np.ndarray, steps: int, lr: float) -> TokenClassifier:
        y = labels.astype(np.float64)
        n = len(y)
        gram = (x @ x.T).astype(np.float64)
        alpha, b = np.zeros(n), 0.0
        for _ in range(steps):
            p = 1.0 / (1.0 + np.exp(-(gram @ alpha + b)))
            grad = p - y
            alpha -= lr * (grad / n + self.l2 * alpha)
            b -= lr * float(grad.mean())
        self.weights = (x.T @ alpha.astype(np.float32)).astype(np.float32)
        self.bias = b
        return self

    def decision(self, tokens: np.ndarray) -> np.ndarray:
        """Logit of "forget" per row, computed sparsely (no dense feature matrix)."""
        scores = np.empty(len(tokens), dtype=np.float64)
        for start in range(0, len(tokens), _CHUNK_ROWS):
            for i, row in enumerate(self._columns(np.asarray(tokens[start : start + _CHUNK_ROWS]))):
                scores[start + i] = self._score(row)
        return scores

    def _score(self, row: np.ndarray) -> float:
        cols, counts = np.unique(row, return_counts=True)
        values = np.log1p(counts.astype(np.float32))
        norm = max(float(np.sqrt(values @ values)), 1e-8)
        return float(values @ self.weights[cols]) / norm + self.bias

    def decision_document(self, document: np.ndarray) -> float:
        """Logit of "forget" for one whole document (a 1-D token array of any length)."""
        return self._score(self._columns(np.asarray(document)[None, :])[0])

    def predict(self, tokens: np.ndarray) -> np.ndarray:
        """True where a row is classified as forget data."""
        return self.decision(tokens) > 0


def _measure(predicted: dict[str, np.ndarray]) -> dict:
    tp = int(predicted["forget"].sum()) if "forget" in predicted else 0
    fn = int((~predicted["forget"]).sum()) if "forget" in predicted else 0
    fp = sum(int(p.sum()) for d, p in predicted.items() if d != "forget")
    tn = sum(int((~p).sum()) for d, p in predicted.items() if d != "forget")
    total = tp + fn + fp + tn
    return {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "accuracy": (tp + tn) / total if total else None,
        "fpr": fp / (fp + tn) if fp + tn else None,
        "fpr_by_domain": {
            d: float(p.mean()) if len(p) else None for d, p in predicted.items() if d != "forget"
        },
        "support": {d: len(p) for d, p in predicted.items()},
    }


def train_labeller(
    train: dict[str, np.ndarray],
    test: dict[str, np.ndarray],
    vocab_size: int,
    seed_documents: int,
    seed: int,
) -> tuple[dict[str, np.ndarray], dict]:
    """Fit on a seed set, measure on held-out sequences, flag every train sequence.

    Returns ``(forget_flags, report)``; the report holds precision / recall / accuracy /
    false-positive rate on held-out data, and the same measured on all training sequences.
    """
    rng = np.random.default_rng([seed, 0x1ABE1])
    others = [d for d in train if d != "forget"]
    n_forget = min(len(train["forget"]), max(1, seed_documents // 2))
    other_total = sum(len(train[d]) for d in others)
    picks_x, picks_y = [], []
    rows = rng.choice(len(train["forget"]), size=n_forget, replace=False)
    picks_x.append(np.asarray(train["forget"][np.sort(rows)]))
    picks_y.append(np.ones(n_forget))
    for d in others:
        k = min(
            len(train[d]), max(1, round((seed_documents - n_forget) * len(train[d]) / max(1, other_total)))
        )
        rows = rng.choice(len(train[d]), size=k, replace=False)
        picks_x.append(np.asarray(train[d][np.sort(rows)]))
        picks_y.append(np.zeros(k))
    model = TokenClassifier(vocab_size).fit(np.concatenate(picks_x), np.concatenate(picks_y))
    held_out = {d: model.predict(test[d]) for d in test}
    flags = {d: model.predict(train[d]) for d in train}
    report = {
        "model": "logistic regression on token unigram + hashed bigram features",
        "seed_sequences": int(sum(len(x) for x in picks_x)),
        "held_out": _measure(held_out),
        "train": _measure(flags),
    }
    report.update({k: report["held_out"][k] for k in ("precision", "recall", "accuracy", "fpr")})
    return flags, report
