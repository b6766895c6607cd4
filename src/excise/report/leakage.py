"""Leakage: a released model's forget loss as the forget-domain tokens it is worth.

The measure of leakage in the paper's sense: how much forget-domain training the released
model's remaining knowledge is worth, read off the no-filter run's forget-loss curve along
training, and compared with the forget tokens the run itself trained on. Numbers only.
"""

from __future__ import annotations

from dataclasses import dataclass

from excise.methods.registry import METHODS, REFERENCE_METHOD
from excise.report.records import RunRecord


def forget_learning_curve(record: RunRecord) -> list[tuple[float, float]]:
    """(forget-domain tokens drawn, full-model forget loss) at each eval of a run.

    Exact where the eval events carry ``domain_steps``; otherwise the forget share of the
    whole run (``summary.json`` label counts) is assumed constant along training.
    """
    per_step = record.tokens_per_step
    counts = (record.summary or {}).get("label_counts") or {}
    total = sum(counts.values())
    share = sum(n for k, n in counts.items() if k.startswith("forget/")) / total if total else None
    points = []
    for e in record.eval_events:
        step, loss = e.get("step"), (e.get("full") or {}).get("forget")
        if not step or loss is None or per_step is None:
            continue
        forget_steps = (e.get("domain_steps") or {}).get("forget")
        if forget_steps is None:
            if share is None:
                continue
            forget_steps = share * step
        points.append((forget_steps * per_step, float(loss)))
    return points


def forget_tokens_trained(record: RunRecord) -> int | None:
    """Forget-domain tokens a finished run trained on: its forget-domain steps
    (``summary.json`` label counts, keyed ``"domain/label"``) less those its method skips
    (:meth:`excise.methods.registry.Method.skips`: filters skip some or all of them)."""
    counts = (record.summary or {}).get("label_counts")
    per_step = record.tokens_per_step
    if not counts or per_step is None:
        return None
    method = METHODS.get(record.method)  # None for unlearning methods: they skip nothing

    def trained(key: str) -> bool:
        domain, _, label = key.partition("/")
        return key.startswith("forget/") and not (method is not None and method.skips(label, domain))

    return per_step * sum(n for k, n in counts.items() if trained(k))


def tokens_to_reach(curve: list[tuple[float, float]], loss: float) -> tuple[str, float] | None:
    """Forget tokens a run on ``curve`` needed to bring its forget loss down to ``loss``.

    Returns ("=", tokens) interpolated between evals, ("<=", first eval's tokens) when the
    first eval was already there, (">", last eval's tokens) when it never got there.
    """
    if not curve:
        return None
    if curve[0][1] <= loss:
        return "<=", curve[0][0]
    for (t0, l0), (t1, l1) in zip(curve, curve[1:]):
        if l1 <= loss:
            return "=", t0 + (t1 - t0) * (l0 - loss) / (l0 - l1)
    return ">", curve[-1][0]


@dataclass
class Leakage:
    """One run's released forget loss in no-filter forget tokens."""

    run: str
    released: str  # the released variant: "ablated" or "full"
    forget_loss: float  # uncalibrated
    reference: str  # the no-filter run whose curve it is read off
    relation: str  # "=" interpolated, "<=" before its first eval, ">" after its last
    equivalent_tokens: float
    trained_tokens: int | None  # forget tokens the run itself trained on
    share: float | None  # equivalent / trained (None when it trained on none)


def leakage(records: list[RunRecord]) -> list[Leakage]:
    """Every run's leakage, against its sweep's no-filter reference (else one of its seed)."""
    references = {r.name: r for r in records if r.method == REFERENCE_METHOD and r.kind == "train"}
    rows = []
    for r in records:
        if r.method == REFERENCE_METHOD and r.kind == "train":
            continue
        ref = references.get(r.reference or "")
        if ref is None:
            seed = r.values.get("seed")
            same_seed = [x for x in references.values() if x.values.get("seed") == seed]
            ref = (same_seed or list(references.values()) or [None])[0]
        if ref is None:
            continue
        loss = r.final_losses(r.released_variant).get("forget")
        reached = tokens_to_reach(forget_learning_curve(ref), loss) if loss is not None else None
        if reached is None:
            continue
        relation, tokens = reached
        trained = forget_tokens_trained(r)
        share = None if trained in (None, 0) else tokens / trained
        rows.append(Leakage(r.name, r.released_variant, loss, ref.name, relation, tokens, trained, share))
    return rows
