"""The sweep file: a base recipe, the axes to vary, and what to do with the trained runs.

A sweep file (YAML) is validated like a run config (:mod:`excise.config`): a pydantic model
with ``extra="forbid"``, every problem collected and reported with its key path in one
:class:`~excise.config.ConfigError`. Its keys::

    name: undiscovered                     # optional, for the report title (default: file name)
    description: ...                       # optional, free text
    base: ../bilingual-tiny.yaml           # relative to this file, else to the repo / configs/
    overrides: {logging.progress: false}   # fixed for every run (mapping or list of k=v)
    grid:                                  # every combination of these dotted keys
      method.name: [sgtm, weak_filter]
      labels.recall: [1.0, 0.9]
      seed: [0, 1]
    include:                               # extra points (each a small grid of its own),
      - {method.name: [no_filter, strict_filter]}   # crossed with the grid axes in
    include_axes: [seed]                   # include_axes they do not set (default: seed)
    unlearn: rmu                           # unlearn every no_filter run (new run dir)
    after: [eval, relearn]                 # what to do with the trained runs (default: eval)
    eval: {overrides: [eval.calibration_steps=100]}
    relearn: {steps: 200, overrides: [], skip_methods: [no_filter]}
    jobs: 2                                # runs at once unless --jobs says otherwise

A single value where a list is expected stands for a list of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)  # fmt: skip

from excise.config import ConfigError, format_validation_errors, read_yaml
from excise.errors import UserError
from excise.methods.registry import METHODS, REFERENCE_METHOD, UNLEARNING_METHODS

AfterStep = Literal["eval", "relearn"]  # the stages that can follow training


def repo_root() -> Path:
    """The source checkout holding this package (``src/excise/sweep`` -> repo)."""
    return Path(__file__).resolve().parents[3]


def configs_dir() -> Path:
    """Where the shipped recipes are: the checkout's ``configs/`` or packaged ``excise/configs``."""
    import excise

    candidates = [
        Path(os.environ["EXCISE_CONFIGS"]) if os.environ.get("EXCISE_CONFIGS") else None,
        Path(excise.__file__).resolve().parents[2] / "configs",
        Path(excise.__file__).resolve().parent / "configs",
    ]
    for c in candidates:
        if c is not None and (c / "demo.yaml").is_file():
            return c
    raise UserError(
        "cannot find the shipped recipes (configs/demo.yaml): run from a source checkout of "
        "excise or set EXCISE_CONFIGS to a directory holding them"
    )


def base_candidates(base: str, sweep_path: Path | None) -> list[Path]:
    """Where a base recipe path may be: as given, relative to the sweep file, the working
    directory, the repo, or the shipped ``configs/``, in that order."""
    p = Path(base).expanduser()
    if p.is_absolute():
        return [p]
    candidates = [sweep_path.parent / p] if sweep_path is not None else []
    candidates += [Path.cwd() / p, repo_root() / p]
    try:
        candidates.append(configs_dir() / p)
    except UserError:
        pass
    return candidates


def resolve_base(base: str, sweep_path: Path | None) -> Path:
    """The first existing :func:`base_candidates` path, resolved; ``ValueError`` if none."""
    candidates = base_candidates(base, sweep_path)
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise ValueError(f"sweep base recipe {base!r} not found (looked in: {', '.join(map(str, candidates))})")


def flatten_keys(d: dict, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as {dotted key: leaf value}; empty mappings are leaves."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten_keys(v, key + "."))
        else:
            out[key] = v
    return out


# ---------------------------------------------------------------------------------------
# lenient input forms, normalised before validation


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _override_list(value: Any) -> Any:
    """Fixed overrides given as a mapping ``{key: value}`` or a list of ``key=value``."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"{k}={json.dumps(v)}" for k, v in flatten_keys(value).items()]  # JSON keeps the type
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError("must be a mapping of dotted keys or a list of key=value strings")


def _non_empty(values: list) -> list:
    if not values:
        raise ValueError("has no values")
    return values


def _non_empty_mapping(entry: dict) -> dict:
    if not entry:
        raise ValueError("must map dotted keys to values")
    return entry


def _or_empty(empty: Any):
    """A before-validator: a missing (None / empty) value becomes ``empty()``."""
    return BeforeValidator(lambda value: value or empty())


def _text_or_none(value: Any) -> str | None:
    return str(value) if value else None


def _texts(value: Any) -> list[str]:
    return [str(v) for v in _as_list(value)]


def _list_or_empty(value: Any) -> list:
    return _as_list(value or [])


# One axis of a grid or include entry: a list of values (a single value is a list of one).
AxisValues = Annotated[list[Any], BeforeValidator(_as_list), AfterValidator(_non_empty)]
Points = Annotated[dict[str, AxisValues], AfterValidator(_non_empty_mapping)]
Overrides = Annotated[list[str], BeforeValidator(_override_list)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvalStage(_Strict):
    """``eval:`` of a sweep file: overrides of the ``eval.*`` keys for ``excise eval``."""

    overrides: Overrides = Field(default_factory=list)


class RelearnStage(_Strict):
    """``relearn:`` of a sweep file: the attack's length, overrides, and who is not attacked."""

    steps: int | None = Field(None, ge=0, description="relearning steps; default relearn.steps")
    overrides: Overrides = Field(default_factory=list)
    skip_methods: Annotated[list[str], BeforeValidator(_as_list)] = Field(
        default_factory=lambda: [REFERENCE_METHOD], description="methods whose runs are not attacked"
    )

    @field_validator("skip_methods")
    @classmethod
    def _known_methods(cls, names: list[str]) -> list[str]:
        known = [*METHODS, *UNLEARNING_METHODS]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(known)}")
        return names


class SweepSpec(_Strict):
    """A validated sweep file (see module doc); ``base`` is resolved to an existing recipe."""

    name: Annotated[str | None, BeforeValidator(_text_or_none)] = Field(
        None, description="report title; default the sweep file's name"
    )
    description: str | None = None
    base: Path = Field(description="the recipe every run starts from")
    overrides: Overrides = Field(default_factory=list, description="fixed for every run")
    grid: Annotated[dict[str, AxisValues], _or_empty(dict)] = Field(
        default_factory=dict, description="every combination of these dotted keys' values"
    )
    include: Annotated[list[Points], _or_empty(list)] = Field(
        default_factory=list, description="extra points, crossed with the include_axes they leave open"
    )
    include_axes: Annotated[list[str], BeforeValidator(_texts)] = Field(default_factory=lambda: ["seed"])
    after: Annotated[list[AfterStep], BeforeValidator(_list_or_empty)] = Field(
        default_factory=lambda: ["eval"], description="what to do with the trained runs"
    )
    unlearn: str | None = Field(None, description="unlearning method applied to every no_filter run")
    eval: Annotated[EvalStage, _or_empty(dict)] = Field(default_factory=EvalStage)
    relearn: Annotated[RelearnStage, _or_empty(dict)] = Field(default_factory=RelearnStage)
    jobs: int = Field(1, ge=1, description="runs at once unless --jobs says otherwise")
    _source: str | None = PrivateAttr(None)

    @field_validator("base", mode="before")
    @classmethod
    def _resolve_base(cls, base: Any, info: ValidationInfo) -> Path:
        return resolve_base(str(base), (info.context or {}).get("sweep_path"))

    @field_validator("unlearn")
    @classmethod
    def _known_unlearning(cls, method: str | None) -> str | None:
        if method is not None and method not in UNLEARNING_METHODS:
            raise ValueError(
                f"unknown unlearning method {method!r}; choose from {', '.join(UNLEARNING_METHODS)}"
            )
        return method

    @model_validator(mode="after")
    def _defaults_from_the_file(self, info: ValidationInfo) -> SweepSpec:
        sweep_path = (info.context or {}).get("sweep_path")
        self.name = str(self.name or (sweep_path.stem if sweep_path else "sweep"))
        self._source = str(sweep_path) if sweep_path else None
        if "relearn" in self.after and "eval" not in self.after:
            self.after = ["eval", *self.after]  # the reference loss comes from the no-filter eval.json
        return self

    @property
    def source(self) -> str | None:
        """The sweep file this spec was read from (None for a spec built in code)."""
        return self._source

    def to_json(self) -> dict:
        """The spec as ``sweep.json`` records it."""
        return {
            "name": self.name, "source": self.source, "base": str(self.base), "grid": self.grid,
            "overrides": self.overrides, "include": self.include,
            "include_axes": self.include_axes, "after": self.after, "unlearn": self.unlearn,
            "eval": {"overrides": self.eval.overrides},
            "relearn": {"steps": self.relearn.steps, "overrides": self.relearn.overrides,
                        "skip_methods": self.relearn.skip_methods},
        }  # fmt: skip


SPEC_KEYS = tuple(SweepSpec.model_fields)


def parse_spec(data: dict, sweep_path: Path | None = None) -> SweepSpec:
    """Validate a sweep mapping; every problem is reported with its key path."""
    where = str(sweep_path) if sweep_path else "sweep"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a sweep file must hold a mapping at the top level")
    try:
        return SweepSpec.model_validate(data, context={"sweep_path": sweep_path})
    except ValidationError as e:
        message = format_validation_errors(e, where, subject="sweep file", unknown_key="unknown sweep key")
        if any(err["type"] == "extra_forbidden" and len(err["loc"]) == 1 for err in e.errors()):
            message += f"\n  (known sweep keys: {', '.join(SPEC_KEYS)})"
        raise ConfigError(message) from None


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file."""
    path = Path(path)
    return parse_spec(read_yaml(path), path.resolve())
