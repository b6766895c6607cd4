"""The built-in corpora: generated on the fly, deterministic by seed, any size, no download.

- ``bilingual``: parallel children's stories in English (retain) and Spanish (forget),
  from a grammar/template engine over a parallel lexicon (``_stories``, ``_lexicon``).
  Retain and forget documents are different stories (disjoint random streams), so the
  two domains share style and vocabulary but not content.
- ``topic``: encyclopedia-like articles with topic labels — biology (forget); chemistry,
  medicine, environment (adjacent); history, geography, sports, arts, ... (retain) — which
  state fictitious facts in several phrasings, probe-able as :class:`FactProbe` questions.
"""

from __future__ import annotations

import random

from excise.data._stories import generate_story
from excise.data._topics import FactProbe, generate_topic_corpus

BUILTIN_KINDS = ("bilingual", "topic")
GENERATOR_VERSION = 1

__all__ = [
    "BUILTIN_KINDS",
    "FactProbe",
    "bilingual_story",
    "generate_bilingual",
    "generate_topic",
    "generate_builtin",
]


def _rng(seed: int, stream: str, index: int) -> random.Random:
    return random.Random(f"excise/{stream}/{seed}/{index}")


def bilingual_story(seed: int, index: int) -> tuple[str, str]:
    """Story ``index`` of the parallel corpus: (English, Spanish)."""
    return generate_story(_rng(seed, "story", index))


def generate_bilingual(documents: int, seed: int = 0) -> dict[str, list[dict]]:
    """``documents`` English stories (retain) and ``documents`` Spanish stories (forget).

    Retain uses the English side of stories 0, 2, 4, ...; forget the Spanish side of
    stories 1, 3, 5, ..., so the domains hold different stories.
    """
    retain = [{"text": bilingual_story(seed, 2 * i)[0], "language": "en"} for i in range(documents)]
    forget = [{"text": bilingual_story(seed, 2 * i + 1)[1], "language": "es"} for i in range(documents)]
    return {"retain": retain, "forget": forget}


def generate_topic(documents: int, seed: int = 0) -> tuple[dict[str, list[dict]], list[FactProbe]]:
    """``documents`` articles per domain (rows with ``text``, ``topic``, ``title``) and the fact probes."""
    return generate_topic_corpus(documents, seed)


def generate_builtin(
    kind: str, documents: int, seed: int = 0
) -> tuple[dict[str, list[dict]], list[FactProbe] | None]:
    """Rows by domain for the built-in corpus ``kind``, plus probes (topic only)."""
    if kind == "bilingual":
        return generate_bilingual(documents, seed), None
    if kind == "topic":
        return generate_topic(documents, seed)
    raise ValueError(f"unknown built-in corpus {kind!r}; choose from {BUILTIN_KINDS}")
