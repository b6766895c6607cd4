"""Every training method excise knows, in one table.

A :class:`Method` says whether it trains a partitioned model and with which masking
strategy (:mod:`excise.model.strategies`), which labelled steps it skips, which model it
releases, and how plots draw it. Config validation, the training step, sweeps, reports and
plots all read this table, so adding a method is one entry here (plus a strategy, if it
masks in a new way). Post-hoc unlearning methods (:mod:`excise.methods.unlearn`) are listed
apart: they start from a trained run instead of training one.

Nothing here imports torch, so the config can validate against it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

DOMAINS = ("forget", "adjacent", "retain")
LABELS = ("forget", "retain", "default")


@dataclass(frozen=True)
class Method:
    """One training method (see module doc)."""

    name: str
    summary: str
    strategy: str | None = None  # masking strategy name; None: no partition
    skip_labels: frozenset[str] = frozenset()  # steps with these labels are skipped
    skip_domains: frozenset[str] = frozenset()  # steps drawn from these true domains too
    color: str = "black"  # matplotlib colour of its curves

    @property
    def partitioned(self) -> bool:
        """Trains forget units (and so releases the ablated model)."""
        return self.strategy is not None

    @property
    def released(self) -> str:
        """Which model of a run is the one released: ``"ablated"`` or ``"full"``."""
        return "ablated" if self.partitioned else "full"

    def skips(self, label: str, domain: str) -> bool:
        return label in self.skip_labels or domain in self.skip_domains

    def mode(self, label: str, domain: str) -> str | None:
        """The mode a step with ``label`` from ``domain`` trains in (``"forget"`` /
        ``"retain"`` / ``"default"``), or None when the method skips it. Methods without a
        partition train every step they keep as ``default``."""
        if self.skips(label, domain):
            return None
        return label if self.partitioned else "default"


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("sgtm", "selective gradient masking: forget steps update forget and shared "
               "parameters only", strategy="sgtm", color="tab:red"),
        Method("gradient_routing", "gradient routing: forget steps detach retain units' "
               "activations", strategy="gradient_routing", color="tab:orange"),
        Method("activation_masking", "forget steps zero retain units' activations",
               strategy="activation_masking", color="tab:brown"),
        Method("no_filter", "every step trains normally", color="tab:gray"),
        Method("weak_filter", "steps labelled forget are skipped",
               skip_labels=frozenset({"forget"}), color="tab:blue"),
        Method("strict_filter", "steps labelled forget and all forget / adjacent data are "
               "skipped", skip_labels=frozenset({"forget"}),
               skip_domains=frozenset({"forget", "adjacent"}), color="tab:green"),
    )
}  # fmt: skip

# Post-hoc unlearning methods (``excise unlearn METHOD``, ``unlearn:`` of a sweep); their
# losses are :data:`excise.methods.unlearn.UNLEARNERS`.
UNLEARNING_METHODS: tuple[str, ...] = ("rmu", "gradient_ascent", "gradient_difference", "npo")

# Plot colours of post-hoc unlearning methods; the others take the next free colour.
UNLEARNING_COLORS: dict[str, str] = {"rmu": "tab:purple"}


# The method every other is measured against: the relearning target of a sweep's runs, the
# run post-hoc unlearning starts from, the baseline of the report's same-seed comparisons.
REFERENCE_METHOD = "no_filter"


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None


def method_color(name: str) -> str | None:
    """The plot colour of a training or unlearning method (None for an unknown name)."""
    if name in METHODS:
        return METHODS[name].color
    return UNLEARNING_COLORS.get(name)
