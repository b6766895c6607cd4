"""Encyclopedia-like topic corpus with fictitious, probe-able facts (placeholder)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FactProbe:
    question: str
    answer: str
    choices: list[str] = field(default_factory=list)
    topic: str = ""


def generate_topic_corpus(documents: int, seed: int = 0):
    raise NotImplementedError("topic corpus: in progress")
