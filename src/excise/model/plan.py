"""What one step asks of the model: its mode (from the batch's label) and the strategy's
routing of retain units, as a small frozen value passed explicitly through ``forward``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Mode(str, Enum):
    """How one optimizer step treats the partition, chosen from the batch's label."""

    DEFAULT = "default"  # unlabelled: plain forward and backward
    RETAIN = "retain"  # labelled retain: forward with forget units ablated
    FORGET = "forget"  # labelled forget: only forget parameters may learn


class Routing(str, Enum):
    """What a strategy does to the retain units of masked layers on forget steps."""

    NONE = "none"  # plain forward (masking happens on gradients afterwards, if at all)
    FREEZE_RETAIN = "freeze_retain"  # SGTM: no weight gradient for retain slices
    DETACH_ACTIVATIONS = "detach_activations"  # gradient routing
    ZERO_ACTIVATIONS = "zero_activations"  # activation masking


@dataclass(frozen=True)
class StepPlan:
    """Per-forward instructions derived from (mode, strategy); the model obeys them."""

    mode: Mode = Mode.DEFAULT
    routing: Routing = Routing.NONE
    # mask_shared: detach the embeddings (so a tied head) and the norms of masked layers
    freeze_shared: bool = False

    @property
    def ablate_forget(self) -> bool:
        return self.mode is Mode.RETAIN

    @property
    def route_retain(self) -> Routing:
        return self.routing if self.mode is Mode.FORGET else Routing.NONE


PLAIN = StepPlan()
