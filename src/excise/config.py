"""Typed run configuration: YAML recipes plus dotted command-line overrides.

Every section is a pydantic model with ``extra="forbid"``, so an unknown key, a wrong type
or an impossible value is reported with its dotted key path. All problems are collected
and raised together as one :class:`ConfigError` (a ``ValueError``), never an ``assert``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from excise.errors import UserError
from excise.methods.registry import METHODS, get_method

DOMAINS = ("forget", "adjacent", "retain")


class ConfigError(UserError, ValueError):
    """A configuration problem the user must fix; the message lists every problem."""


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(Section):
    """Shape of the decoder-only transformer (see ``excise.model.gpt``)."""

    vocab_size: int = Field(4096, ge=2)
    context: int = Field(256, ge=2, description="maximum sequence length (tokens)")
    n_layers: int = Field(4, ge=1)
    d_model: int = Field(128, ge=1)
    n_heads: int = Field(4, ge=1)
    head_dim: int | None = Field(None, ge=1, description="default: d_model // n_heads")
    d_ff: int | None = Field(None, ge=1, description="MLP hidden units; default 4 * d_model")
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    mlp: Literal["gelu", "swiglu"] = "gelu"
    positions: Literal["learned", "rope"] = "learned"
    rope_theta: float = Field(10000.0, gt=0)
    tie_embeddings: bool = True
    bias: bool = Field(True, description="biases on MLP projections and attention output")
    qkv_bias: bool = False
    attention_scale: float | None = Field(
        None, gt=0, description="softmax scale; default 1/sqrt(head_dim), GPT-Neo uses 1.0"
    )
    norm_eps: float = Field(1e-5, gt=0)
    init_std: float = Field(0.02, gt=0)
    output_bias: bool = Field(
        False,
        description="a trainable output-logit bias, zero-initialised and trained by "
        "every batch (the paper's models have one; stock transformers heads do not)",
    )
    attention_pattern: list[Literal["global", "local"]] = Field(
        default_factory=lambda: ["global"],
        description="attention type per layer, repeated over the layers (GPT-Neo's paper "
        "models: [global, local]); n_layers must be a multiple of its length",
    )
    local_window: int = Field(
        256, ge=1, description="tokens a local-attention position sees, itself included"
    )

    @model_validator(mode="after")
    def _check_shapes(self) -> ModelConfig:
        if not self.attention_pattern:
            raise ValueError("model.attention_pattern must name at least one attention type")
        if self.n_layers % len(self.attention_pattern) != 0:
            raise ValueError(
                f"model.n_layers ({self.n_layers}) must be a multiple of the length of "
                f"model.attention_pattern ({len(self.attention_pattern)})"
            )
        if self.head_dim is None and self.d_model % self.n_heads != 0:
            raise ValueError(
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads}) "
                "unless head_dim is given"
            )
        if self.positions == "rope" and self.resolved_head_dim % 2 != 0:
            raise ValueError("rotary positions need an even head_dim")
        return self

    @property
    def resolved_head_dim(self) -> int:
        return self.head_dim if self.head_dim is not None else self.d_model // self.n_heads

    @property
    def resolved_d_ff(self) -> int:
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    def attention_type(self, layer: int) -> str:
        """``"global"`` or ``"local"`` for ``layer`` (the pattern repeats over the layers)."""
        return self.attention_pattern[layer % len(self.attention_pattern)]

    @property
    def has_local_attention(self) -> bool:
        return "local" in self.attention_pattern


class PartitionConfig(Section):
    """Which units of each masked layer are forget units (always the last ones)."""

    forget_mlp_units: int = Field(64, ge=0)
    forget_heads: int = Field(1, ge=0)
    layers: list[int] | None = Field(None, description="masked layers; default all")


class MethodConfig(Section):
    """Training method and how SGTM-style masking is applied."""

    name: str = Field("sgtm", description="training method: " + ", ".join(METHODS))
    masking: Literal["grads", "updates"] = Field(
        "grads",
        description="grads: zero gradients, one AdamW (paper default); "
        "updates: per-group AdamW, masked parameters stay bit-identical",
    )
    mask_shared: bool = Field(
        False,
        description="on forget steps also mask the token and position embeddings (so a tied "
        "output head) and the norms of masked layers; never the final norm, the output bias "
        "or unmasked layers (the paper's --mask-embeddings)",
    )

    @field_validator("name")
    @classmethod
    def _known_method(cls, name: str) -> str:
        get_method(name)  # raises, naming the known methods
        return name

    @property
    def partitioned(self) -> bool:
        return get_method(self.name).partitioned


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


class TrainConfig(Section):
    """Optimisation: AdamW, warm-up then cosine decay, gradient clipping.

    The paper's code: one AdamW (0.9, 0.95) decaying every tensor by 0.1, no clipping,
    warm-up linear from 0.1 x lr, cosine to 0 (``warmup_start: 0.1``, ``min_lr_ratio: 0``,
    ``weight_decay_on: all``, ``grad_clip: 0``); the paper-size recipes
    (``configs/bilingual-*.yaml``, ``configs/topic-*.yaml``) set that.
    """

    steps: int = Field(1000, ge=0, description="optimizer steps")
    batch_size: int = Field(16, ge=1, description="sequences per optimizer step (global)")
    micro_batch_size: int | None = Field(None, ge=1, description="per process; default batch")
    batches: Literal["pure", "mixed"] = Field(
        "pure",
        description="pure: each step from one label pool; mixed: sequences of any "
        "label in one step, each masked by its own label (excise.train.mixed)",
    )
    lr: float = Field(1e-3, gt=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="learning rate at the end, x lr")
    warmup_steps: int = Field(50, ge=0)
    warmup_start: float | None = Field(
        None,
        ge=0,
        le=1,
        description="warm-up starts at this x lr and reaches lr at step warmup_steps "
        "(torch LinearLR; the paper: 0.1); default: lr / warmup_steps at step 0, lr at step "
        "warmup_steps - 1",
    )
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: float = Field(0.1, ge=0)
    weight_decay_on: Literal["matrices", "all"] = Field(
        "matrices",
        description="matrices: projections and embeddings only; all: every "
        "tensor, biases and norms too (the paper's code)",
    )
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    grad_clip: float = Field(
        1.0, ge=0, description="clip the global gradient norm (after masking) to this; 0 = off"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="auto: bf16 autocast on CUDA, fp32 on CPU"
    )
    compile: bool = False
    threads: int | None = Field(None, ge=1, description="CPU threads; default all cores")
    on_nonfinite: Literal["skip", "stop"] = "stop"
    init_from: str | None = Field(
        None,
        description="run directory whose weights (and partition, if any) start training, "
        "e.g. a transformers checkpoint imported with excise.export.import_hf_run",
    )
    preempt_signals: list[str] = Field(
        ["SIGTERM", "SIGUSR1"],
        description="signals that stop training after the current "
        "step with a checkpoint, exit code 75 (excise.train.preemption); [] = default actions",
    )
    dist_timeout_s: float = Field(
        1800.0,
        gt=0,
        description="seconds a collective between processes may wait for the "
        "others before failing; must exceed rank 0's solo work (first data preparation)",
    )

    @field_validator("preempt_signals")
    @classmethod
    def _catchable_signals(cls, names: list[str]) -> list[str]:
        from excise.train.preemption import signal_name, signal_number

        return [signal_name(signal_number(n)) for n in names]


class EvalConfig(Section):
    """Held-out loss during and after training; logit calibration."""

    every: int = Field(0, ge=0, description="steps between evals; 0 = only at the end")
    max_tokens: int = Field(65536, ge=1, description="test tokens per domain")
    batch_size: int = Field(16, ge=1)
    calibration_steps: int = Field(200, ge=0)
    calibration_lr: float = Field(1e-2, gt=0)
    calibration_alpha: float = Field(100.0, ge=0, description="weight of retain loss")
    calibration_beta: float = Field(1.0, ge=0, description="weight of adjacent loss")
    calibration_batch_size: int = Field(16, ge=1)


class UnlearnConfig(Section):
    """Post-hoc unlearning of a trained run (``excise unlearn``; see excise.methods.unlearn).

    Defaults are for CPU-size models (2-8 layers): ``layer`` None = n_layers // 2,
    ``update_layers`` None = the up-to-3 layers ending at ``layer``, ``steering_coef`` None =
    4x the mean hidden-state norm at ``layer`` on forget data (the paper's 20 on a 254M model
    is likewise several times its typical activation norm).
    """

    method: Literal["rmu", "gradient_ascent", "gradient_difference", "npo"] = "rmu"
    layer: int | None = Field(None, ge=0)
    steering_coef: float | None = Field(None, gt=0)
    alpha: float = Field(100.0, ge=0, description="weight of the retain term")
    lr: float = Field(1e-3, gt=0)
    grad_clip: float = Field(1.0, ge=0, description="clip the gradients' global norm; 0 = off")
    steps: int = Field(100, ge=0)
    batch_size: int = Field(8, ge=1)
    update_layers: list[int] | None = None
    npo_beta: float = Field(0.1, gt=0)
    seed: int = 0


class RelearnConfig(Section):
    """Relearning attack: fine-tune the released model on a forget/other mix."""

    steps: int = Field(200, ge=0)
    lr: float = Field(5e-4, gt=0)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    batch_size: int = Field(8, ge=1)
    eval_every: int = Field(20, ge=1)
    forget_share: float = Field(0.5, ge=0.0, le=1.0)
    max_examples: int | None = Field(None, ge=1, description="distinct forget sequences used")
    seed: int = 0


class CheckpointConfig(Section):
    every: int = Field(0, ge=0, description="steps between checkpoints; 0 = off")
    keep: int = Field(2, ge=1, description="step checkpoints kept")


class LoggingConfig(Section):
    every: int = Field(10, ge=1)
    progress: bool = True
    tensorboard: bool = False
    wandb: bool = False
    wandb_project: str = "excise"


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
