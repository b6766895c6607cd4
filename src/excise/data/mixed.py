"""``train.batches: mixed``: every sequence of a step drawn and labelled on its own.

Each of the step's ``batch_size`` sequences picks its pool (domain) with the same
probabilities as a pure step, a row of it uniformly, and its own label by the same rules
(:class:`excise.data.schedule.StepSchedule`), all a pure function of ``(seed, step)`` so a
resumed run continues exactly. The training step then groups the sequences by label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from excise.data.schedule import StepSchedule

_MIXED_SALT = 0x313ED


@dataclass(frozen=True)
class MixedStep:
    step: int
    domains: tuple[str, ...]  # per sequence: the pool it comes from
    indices: np.ndarray  # per sequence: its row in train[domain]
    labels: tuple[str, ...]  # per sequence: forget / retain / default
    domain: str = "mixed"
    label: str = "mixed"


class MixedSchedule(StepSchedule):
    """Per-sequence pools, rows and labels for every step (see the module doc)."""

    def at(self, step: int) -> MixedStep:
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        rng = np.random.default_rng([self.seed & ((1 << 64) - 1), int(step), _MIXED_SALT])
        u = rng.random((self.batch_size, 3))
        which = self._domains_of(u[:, 0])
        domains = tuple(self.domains[int(i)] for i in which)
        indices = np.asarray([int(rng.integers(self.sizes[d])) for d in domains], dtype=np.int64)
        labels = tuple(
            self._label(d, self._flagged(d, float(u[i, 1]), indices[i : i + 1]), float(u[i, 2]))
            for i, d in enumerate(domains)
        )
        return MixedStep(int(step), domains, indices, labels)

    def statistics(self, steps: int) -> dict:
        """Counts of pool x label over the sequences of steps [0, steps)."""
        counts = {d: {lab: 0 for lab in ("forget", "retain", "default")} for d in self.domains}
        for step in range(steps):
            s = self.at(step)
            for d, lab in zip(s.domains, s.labels):
                counts[d][lab] += 1
        return {"steps": steps, "batches": "mixed", "sequence_counts": counts}
