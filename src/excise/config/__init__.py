"""Typed run configuration: YAML recipes plus dotted command-line overrides.

Every section is a pydantic model with ``extra="forbid"``, so an unknown key, a wrong type
or an impossible value is reported with its dotted key path. All problems are collected
and raised together as one :class:`ConfigError` (a ``ValueError``), never an ``assert``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, model_validator

from excise.config.base import DOMAINS, ConfigError, Section
from excise.config.data import (
    ClassifierConfig,
    CorpusSource,
    DataConfig,
    DataSource,
    EvaluationSet,
    LabelMap,
    LabelsConfig,
    TokenizerConfig,
)
from excise.config.model import MethodConfig, ModelConfig, PartitionConfig
from excise.config.training import (
    CheckpointConfig,
    EvalConfig,
    LoggingConfig,
    RelearnConfig,
    TrainConfig,
    UnlearnConfig,
)


class Config(Section):
    """A whole run: the resolved version is saved as ``config.yaml`` in the run directory."""

    seed: int = 0
    model: ModelConfig = ModelConfig()
    partition: PartitionConfig = PartitionConfig()
    method: MethodConfig = MethodConfig()
    labels: LabelsConfig = LabelsConfig()
    data: DataConfig = DataConfig(builtin="bilingual")
    tokenizer: TokenizerConfig = TokenizerConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    unlearn: UnlearnConfig = UnlearnConfig()
    relearn: RelearnConfig = RelearnConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    logging: LoggingConfig = LoggingConfig()

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        problems = []
        m, p = self.model, self.partition
        if self.method.partitioned:
            if p.forget_heads >= m.n_heads:
                problems.append(
                    f"partition.forget_heads ({p.forget_heads}) must be below model.n_heads ({m.n_heads})"
                )
            if p.forget_mlp_units >= m.resolved_d_ff:
                problems.append(
                    f"partition.forget_mlp_units ({p.forget_mlp_units}) must be below the MLP "
                    f"width ({m.resolved_d_ff}: model.d_ff, default 4 x model.d_model)"
                )
            if p.layers is not None:
                bad = [i for i in p.layers if not 0 <= i < m.n_layers]
                if bad:
                    problems.append(f"partition.layers {bad} outside 0..{m.n_layers - 1} (model.n_layers)")
        problems += corpus_problems(self)
        mb = self.train.micro_batch_size
        if mb is not None and self.train.batch_size % mb != 0:
            problems.append(
                f"train.batch_size ({self.train.batch_size}) must be a multiple of "
                f"train.micro_batch_size ({mb})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def corpus_problems(config: Config) -> list[str]:
    """Settings that contradict each other around ``data.corpus`` / ``train.batches``."""
    problems = []
    corpus, classifier = config.data.corpus, config.labels.classifier
    if corpus is not None:
        if classifier is None:
            problems.append("data.corpus needs labels.classifier (column, keywords or trained)")
        if config.labels.labeller == "classifier":
            problems.append(
                "labels.labeller classifier votes per batch of separate domains; with "
                "data.corpus use labels.classifier"
            )
        if config.tokenizer.train_on != "all" and config.tokenizer.path is None:
            problems.append(
                "with data.corpus the tokenizer is trained on the whole corpus: "
                "leave tokenizer.train_on at all (or give tokenizer.path)"
            )
    elif classifier is not None:
        problems.append("labels.classifier labels data.corpus: set data.corpus")
    if config.train.batches == "mixed" and config.labels.labeller == "classifier":
        problems.append(
            "train.batches mixed labels each sequence; labels.labeller classifier "
            "votes per batch: use labels.labeller simulated"
        )
    return problems


# ---------------------------------------------------------------------------------------
# loading


def format_validation_errors(
    err: ValidationError, origin: str, subject: str = "configuration", unknown_key: str = "unknown key"
) -> str:
    """Every problem of ``err`` on its own line, named by its dotted key path.

    ``subject`` names what was validated in the first line (the sweep spec reuses this for
    its own file format); ``unknown_key`` is the message for a key the schema does not have.
    """
    lines = [f"invalid {subject} ({origin}):"]
    for e in err.errors():
        key = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = unknown_key
        elif e["type"] == "literal_error":
            msg = f"{msg} (got {e.get('input')!r})"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and a YAML-typed value."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form dotted.key=value")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Set each ``dotted.key=value`` into a nested dict (creating sections as needed)."""
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {e.start})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def config_from_dict(data: dict, origin: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_errors(e, origin)) from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML recipe (or the defaults) and apply dotted overrides, validating all."""
    data = read_yaml(path) if path is not None else {}
    apply_overrides(data, list(overrides or []))
    return config_from_dict(data, origin=str(path) if path else "defaults")


def config_to_yaml(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def save_config(config: Config, path: str | Path) -> None:
    from excise.checkpoint import atomic_write_text

    atomic_write_text(Path(path), config_to_yaml(config))


__all__ = [
    "DOMAINS", "CheckpointConfig", "ClassifierConfig", "Config", "ConfigError", "CorpusSource", "DataConfig",
    "DataSource", "EvalConfig", "EvaluationSet", "LabelMap", "LabelsConfig", "LoggingConfig", "MethodConfig",
    "ModelConfig", "PartitionConfig", "RelearnConfig", "Section", "TokenizerConfig", "TrainConfig",
    "UnlearnConfig", "apply_overrides", "config_from_dict", "config_to_yaml", "corpus_problems",
    "format_validation_errors", "load_config", "parse_override", "read_yaml", "save_config",
]  # fmt: skip
