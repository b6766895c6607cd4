"""The per-step data and label schedule (label noise; docs/method.md).

Every optimizer step trains on one batch from one *true* domain and carries one *applied*
label. Both, and the batch's row indices, are a pure function of ``(config.seed, step)``:
every rank computes the same schedule, a resumed run continues it exactly, and steps can be
queried in any order.

- Domain: drawn with probability proportional to ``data.<domain>.weight`` when given,
  else the domain's natural share of training sequences (a domain without a weight, when
  others have one, gets its natural share, on the same scale where weights sum to 1).
- Indices: ``batch_size`` rows of that domain's train array, uniformly, without replacement
  within a step when the domain has enough rows (with replacement across steps).
- Label, simulated classifier: forget data → ``forget`` with probability ``labels.recall``,
  else ``default`` (undiscovered). Adjacent / retain data → ``forget`` with the false-positive
  rate (``labels.fpr``, or derived from ``labels.precision``; ``labels.adjacent_fpr``
  overrides for adjacent), else ``retain`` with probability ``labels.retain_fraction``,
  else ``default``.
- Label, real classifier (``labels.labeller: classifier``): ``forget`` when most of the
  batch's sequences are flagged by the trained classifier, else the retain-fraction rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from excise.config import DOMAINS, Config
from excise.errors import UserError

LABELS = ("forget", "retain", "default")
_SALT = 0x5C4ED
_MASK64 = (1 << 64) - 1


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic): a counter-based RNG."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


@dataclass(frozen=True)
class StepLabel:
    step: int
    domain: str  # true domain of the step's batch
    label: str  # applied label: "forget" | "retain" | "default"
    indices: np.ndarray  # int64 row indices into train[domain]


def false_positive_rates(config: Config, shares: dict[str, float]) -> dict[str, float]:
    """Per non-forget domain, the probability that a step of it is labelled forget.

    With ``labels.precision`` the rate is solved from
    ``precision = TP / (TP + FP)``, ``TP = share_forget * recall``.
    """
    labels = config.labels
    others = [d for d in shares if d != "forget"]
    rates = {d: 0.0 for d in others}
    if labels.fpr is not None:
        rates = {d: labels.fpr for d in others}
    elif labels.precision is not None and others:
        tp = shares.get("forget", 0.0) * labels.recall
        fp_total = tp * (1.0 - labels.precision) / labels.precision
        fixed = 0.0
        if labels.adjacent_fpr is not None and "adjacent" in shares:
            fixed = labels.adjacent_fpr * shares["adjacent"]
        free = [d for d in others if not (d == "adjacent" and labels.adjacent_fpr is not None)]
        free_share = sum(shares[d] for d in free)
        rate = (fp_total - fixed) / free_share if free_share > 0 else 0.0
        if rate > 1.0 + 1e-12:
            raise UserError(
                f"labels.precision {labels.precision} is unreachable with labels.recall {labels.recall} "
                f"when forget data is {shares.get('forget', 0):.1%} of steps: it needs a false-positive "
                f"rate of {rate:.2f} > 1; raise precision or give labels.fpr"
            )
        rates.update({d: max(0.0, rate) for d in free})
    if labels.adjacent_fpr is not None and "adjacent" in rates:
        rates["adjacent"] = labels.adjacent_fpr
    return rates


class StepSchedule:
    """Which domain, which rows and which label each optimizer step gets (pure in step)."""

    def __init__(
        self, config: Config, train_sizes: dict[str, int], forget_flags: dict[str, np.ndarray] | None = None
    ):
        unknown = [d for d in train_sizes if d not in DOMAINS]
        if unknown:
            raise UserError(f"unknown domain name(s) {unknown}; domains are {', '.join(DOMAINS)}")
        self.domains = [d for d in DOMAINS if train_sizes.get(d, 0) > 0]
        if not self.domains:
            raise UserError("no domain has any training sequence")
        empty = [d for d in train_sizes if train_sizes[d] <= 0]
        if empty:
            raise UserError(f"domain(s) {empty} have no training sequences")
        self.seed = config.seed
        self.batch_size = config.train.batch_size
        self.labels = config.labels
        self.sizes = {d: int(train_sizes[d]) for d in self.domains}
        total = sum(self.sizes.values())
        natural = {d: n / total for d, n in self.sizes.items()}
        sources = config.data.sources()
        weights = {
            d: (sources[d].weight if d in sources and sources[d].weight is not None else natural[d])
            for d in self.domains
        }
        z = sum(weights.values())
        self.probabilities = {d: w / z for d, w in weights.items()}
        self._cumulative = np.cumsum([self.probabilities[d] for d in self.domains])
        self.fpr = false_positive_rates(config, self.probabilities)
        self.classifier = config.labels.labeller == "classifier"
        self.forget_flags = forget_flags
        if self.classifier:
            if forget_flags is None:
                raise UserError("labels.labeller is 'classifier' but no classifier flags were computed")
            for d in self.domains:
                if d not in forget_flags or len(forget_flags[d]) != self.sizes[d]:
                    raise ValueError(f"forget_flags[{d!r}] must hold one flag per train sequence")

    def _uniforms(self, steps: np.ndarray) -> np.ndarray:
        """(n, 3) uniforms in [0, 1) per step: domain, label and retain draws (counter-based)."""
        base = _splitmix64(np.asarray([self.seed & _MASK64], dtype=np.uint64) ^ np.uint64(_SALT))
        counters = steps.astype(np.uint64)[:, None] * np.uint64(4) + np.arange(3, dtype=np.uint64)[None, :]
        bits = _splitmix64(_splitmix64(counters ^ base))
        return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))

    def _domains_of(self, u_domain: np.ndarray) -> np.ndarray:
        index = np.searchsorted(self._cumulative, u_domain * self._cumulative[-1], side="right")
        return np.minimum(index, len(self.domains) - 1)

    def _label(self, domain: str, flagged: bool, u_retain: float) -> str:
        if flagged:
            return "forget"
        if domain == "forget" and not self.classifier:
            return "default"  # undiscovered forget data trains as unlabelled
        return "retain" if u_retain < self.labels.retain_fraction else "default"

    def _flagged(self, domain: str, u_label: float, indices: np.ndarray | None) -> bool:
        if self.classifier:
            return bool(np.mean(self.forget_flags[domain][indices]) > 0.5)
        if domain == "forget":
            return bool(u_label < self.labels.recall)
        return bool(u_label < self.fpr[domain])

    def at(self, step: int) -> StepLabel:
        """The step's true domain, applied label and batch indices (same on every call)."""
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        u_domain, u_label, u_retain = self._uniforms(np.asarray([step]))[0]
        domain = self.domains[int(self._domains_of(np.asarray([u_domain]))[0])]
        n = self.sizes[domain]
        rng = np.random.default_rng([self.seed & _MASK64, int(step), _SALT])
        indices = rng.choice(n, size=self.batch_size, replace=n < self.batch_size).astype(np.int64)
        label = self._label(domain, self._flagged(domain, u_label, indices), u_retain)
        return StepLabel(int(step), domain, label, indices)

    def statistics(self, steps: int) -> dict:
        """Counts of true domain x applied label over steps [0, steps), and measured rates."""
        counts = {d: {lab: 0 for lab in LABELS} for d in self.domains}
        if self.classifier:  # labels depend on the batch rows: walk the steps
            for step in range(steps):
                s = self.at(step)
                counts[s.domain][s.label] += 1
        else:  # labels depend only on the per-step uniforms: vectorised, same values as at()
            u = self._uniforms(np.arange(steps))
            which = self._domains_of(u[:, 0])
            for i, d in enumerate(self.domains):
                rows = u[which == i]
                threshold = self.labels.recall if d == "forget" else self.fpr[d]
                flagged = rows[:, 1] < threshold
                counts[d]["forget"] = int(flagged.sum())
                if d == "forget":
                    counts[d]["default"] = int((~flagged).sum())
                else:
                    retain = ~flagged & (rows[:, 2] < self.labels.retain_fraction)
                    counts[d]["retain"] = int(retain.sum())
                    counts[d]["default"] = int(len(rows) - flagged.sum() - retain.sum())
        flagged = sum(c["forget"] for c in counts.values())
        forget_steps = sum(counts.get("forget", {}).values())
        tp = counts.get("forget", {}).get("forget", 0)
        other_steps = sum(sum(c.values()) for d, c in counts.items() if d != "forget")
        fp = flagged - tp
        retain_classified = sum(c["retain"] + c["default"] for d, c in counts.items() if d != "forget")
        return {
            "steps": steps,
            "counts": counts,
            "domain_share": {d: sum(c.values()) / max(1, steps) for d, c in counts.items()},
            "recall": tp / forget_steps if forget_steps else None,
            "precision": tp / flagged if flagged else None,
            "fpr": fp / other_steps if other_steps else None,
            "fpr_by_domain": {
                d: c["forget"] / sum(c.values()) if sum(c.values()) else None
                for d, c in counts.items()
                if d != "forget"
            },
            "retain_labelled_share": (
                sum(c["retain"] for d, c in counts.items() if d != "forget") / retain_classified
                if retain_classified
                else None
            ),
            "requested": {
                "probabilities": self.probabilities,
                "recall": self.labels.recall,
                "fpr": self.fpr,
                "retain_fraction": self.labels.retain_fraction,
                "labeller": self.labels.labeller,
            },
        }
