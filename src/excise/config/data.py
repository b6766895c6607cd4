"""Where the data comes from and how it is labelled: sources, a mixed corpus and its
classifier, the labelled evaluation set, label noise, the tokenizer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from excise.config.base import DOMAINS, Section


class LabelMap(Section):
    """Which values of a label column mean forget / adjacent / retain.

    ``retain: null`` makes every other value retain; a list makes any value in none of the
    three lists an error (a typo in the data or the recipe is caught, not trained on).
    """

    field: str = Field("label", description="the column (JSON key) holding the label")
    forget: list[str] = Field(default_factory=list, description="values meaning forget")
    adjacent: list[str] = Field(default_factory=list, description="values meaning adjacent")
    retain: list[str] | None = Field(None, description="values meaning retain; null: all others")


class ClassifierConfig(LabelMap):
    """How each document of ``data.corpus`` gets its label (excise.data.classify).

    column: the corpus's own ``field`` holds the label (mapped by forget/adjacent/retain);
    keywords: a document matching ``min_matches`` of ``keywords`` is forget (of
    ``adjacent_keywords``: adjacent), else retain; trained: the built-in token logistic
    regression, fitted on the labelled ``seed_path`` file (its ``field`` mapped as above).
    """

    kind: Literal["column", "keywords", "trained"]
    keywords: list[str] = Field(default_factory=list, description="forget keywords")
    adjacent_keywords: list[str] = Field(default_factory=list)
    regex: bool = Field(False, description="keywords are regular expressions, not words")
    min_matches: int = Field(1, ge=1, description="keyword hits that make a document match")
    seed_path: str | None = Field(None, description="labelled seed file (kind: trained)")
    seed_documents: int = Field(400, ge=2, description="seed documents read (kind: trained)")

    @model_validator(mode="after")
    def _kind_needs(self) -> ClassifierConfig:
        if self.kind == "keywords" and not self.keywords:
            raise ValueError("labels.classifier.kind keywords needs labels.classifier.keywords")
        if self.kind == "trained" and self.seed_path is None:
            raise ValueError("labels.classifier.kind trained needs labels.classifier.seed_path")
        if self.kind in ("column", "trained") and not self.forget:
            raise ValueError(f"labels.classifier.kind {self.kind} needs labels.classifier.forget values")
        return self


class CorpusSource(Section):
    """One mixed corpus: a file or a directory of jsonl / parquet / txt files, streamed."""

    path: str | None = Field(None, description="file or directory (read recursively, sorted)")
    hub: str | None = Field(None, description="hub dataset id (streamed; needs the network)")
    hub_config: str | None = None
    split: str = "train"
    text_field: str = "text"
    max_documents: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_origin(self) -> CorpusSource:
        if (self.path is None) == (self.hub is None):
            raise ValueError("data.corpus needs exactly one of path or hub")
        return self


class EvaluationSet(LabelMap):
    """The user's labelled held-out set: a file, or the corpus's held-out split
    (``data.test_fraction`` of its documents) labelled by its ``field`` column."""

    path: str | None = Field(None, description="labelled file; null: held-out corpus split")
    text_field: str = "text"
    max_documents: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _has_forget(self) -> EvaluationSet:
        if not self.forget:
            raise ValueError("data.evaluation.forget must list the label values meaning forget")
        return self


class LabelsConfig(Section):
    """Simulated (or learned) data classifier deciding each step's label.

    The classifier flags forget data with ``recall`` (true-positive rate). False positives
    on other data are given either as ``precision`` of the forget label or directly as
    ``fpr``; ``adjacent_fpr`` overrides the false-positive rate on adjacent data.
    """

    recall: float = Field(1.0, ge=0.0, le=1.0)
    precision: float | None = Field(None, gt=0.0, le=1.0)
    fpr: float | None = Field(None, ge=0.0, le=1.0)
    adjacent_fpr: float | None = Field(None, ge=0.0, le=1.0)
    retain_fraction: float = Field(
        0.25, ge=0.0, le=1.0, description="share of retain-classified steps labelled retain"
    )
    labeller: Literal["simulated", "classifier"] = "simulated"
    seed_documents: int = Field(300, ge=10, description="labelled documents for the classifier")
    classifier: ClassifierConfig | None = Field(
        None, description="labels each document of data.corpus (excise.data.classify)"
    )

    @model_validator(mode="after")
    def _one_fp_spec(self) -> LabelsConfig:
        if self.precision is not None and self.fpr is not None:
            raise ValueError("give either labels.precision or labels.fpr, not both")
        return self


class DataSource(Section):
    """One domain's text: a local file (jsonl / txt / parquet) or a hub dataset id."""

    path: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    split: str = "train"
    text_field: str = "text"
    filter: str | None = Field(None, description='row filter, e.g. "topic == biology"')
    max_documents: int | None = Field(None, ge=1)
    weight: float | None = Field(None, gt=0, description="sampling weight; default natural size")

    @model_validator(mode="after")
    def _one_origin(self) -> DataSource:
        if self.path is not None and self.hub is not None:
            raise ValueError("give either path or hub, not both")
        return self


class DataConfig(Section):
    """Training data by domain, or the built-in generated corpus."""

    builtin: Literal["bilingual", "topic"] | None = Field(
        None, description="generate the built-in corpus instead of reading files"
    )
    builtin_documents: int = Field(4000, ge=10, description="documents per domain (built-in)")
    path: str | None = Field(
        None,
        description="one file for every domain whose own path/hub is not given "
        "(each domain's filter then selects its rows)",
    )
    retain: DataSource | None = None
    forget: DataSource | None = None
    adjacent: DataSource | None = None
    corpus: CorpusSource | None = Field(
        None, description="one mixed corpus labelled by labels.classifier (docs/corpus.md)"
    )
    evaluation: EvaluationSet | None = Field(None, description="labelled held-out set (with corpus)")
    test_fraction: float = Field(0.05, gt=0.0, lt=1.0, description="held-out share, by document")
    cache_dir: str | None = Field(None, description="token cache; default ~/.cache/excise")

    @model_validator(mode="after")
    def _has_data(self) -> DataConfig:
        given = [d for d in DOMAINS if getattr(self, d) is not None]
        if self.corpus is not None:
            if given or self.path is not None:
                raise ValueError("give either data.corpus or per-domain sources, not both")
            if self.evaluation is None:
                raise ValueError("data.corpus needs data.evaluation (the labelled held-out set)")
            return self
        if self.evaluation is not None:
            raise ValueError("data.evaluation is for data.corpus only")
        if not given and self.builtin is None:
            raise ValueError("data needs data.builtin or data.retain.path and data.forget.path")
        if given:
            for d in given:
                source = getattr(self, d)
                if source.path is None and source.hub is None:
                    if self.path is None:
                        raise ValueError(f"data.{d} needs a path: set data.{d}.path (or data.path)")
                    source.path = self.path
            missing = [d for d in ("retain", "forget") if getattr(self, d) is None]
            if missing:
                raise ValueError(
                    "data sources given, but missing "
                    + ", ".join(f"data.{d}.path (or data.{d}.hub)" for d in missing)
                )
        return self

    @property
    def use_builtin(self) -> bool:
        """Explicit data sources take precedence over the built-in corpus of a recipe."""
        return (
            self.builtin is not None and self.retain is None and self.forget is None and self.corpus is None
        )

    def sources(self) -> dict[str, DataSource]:
        return {d: s for d in DOMAINS if (s := getattr(self, d)) is not None}


class TokenizerConfig(Section):
    """Byte-level BPE trained per run, or an existing tokenizer reused by path."""

    path: str | None = Field(None, description="tokenizer.json or a transformers tokenizer dir")
    train_on: Literal["all", "retain", "retain+adjacent"] = Field(
        "all", description="which domains the BPE is trained on"
    )
    max_train_characters: int = Field(20_000_000, ge=1000)
