"""From a sweep spec to its runs: grid expansion, run names, per-point configs, references.

Pure functions of the spec (and the base recipe it names); nothing here trains. Every
point's config is validated when the plan is made, so a bad point fails before the first
run starts.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from excise.config import Config, ConfigError, apply_overrides, config_from_dict, read_yaml
from excise.errors import UserError
from excise.methods.registry import REFERENCE_METHOD
from excise.sweep.spec import SweepSpec


def expand_grid(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, first key slowest: a list of {key: value}."""
    if not grid:
        return [{}]
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def expand_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The grid's points, then each include entry crossed with the shared axes it leaves open.

    Duplicate points (same values) are kept once, in first-seen order.
    """
    points = expand_grid(spec.grid)
    for entry in spec.include:
        shared = {k: spec.grid[k] for k in spec.include_axes if k in spec.grid and k not in entry}
        for extra in expand_grid(entry):
            for rest in expand_grid(shared):
                points.append({**extra, **rest})
    unique, seen = [], set()
    for p in points:
        key = json.dumps(p, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


# Short labels for the keys sweeps vary most; others use their last dotted component.
KEY_LABELS = {
    "method.name": "",
    "labels.recall": "recall",
    "labels.precision": "precision",
    "labels.retain_fraction": "retainfrac",
    "partition.forget_heads": "fheads",
    "partition.forget_mlp_units": "funits",
    "method.masking": "mask-",
    "train.steps": "steps",
    "train.lr": "lr",
    "seed": "seed",
}


def format_value(value: Any) -> str:
    """A grid value as it appears in a run name (``0.9``, ``yes``, ``a_b``)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "_".join(format_value(v) for v in value)
    return str(value)


def point_name(values: dict[str, Any]) -> str:
    """A readable, filesystem-safe directory name: ``sgtm-recall0.9-seed0``."""
    parts = []
    for key, value in values.items():
        label = KEY_LABELS.get(key, key.split(".")[-1])
        parts.append(f"{label}{format_value(value)}")
    name = "-".join(p for p in parts if p) or "run"
    return re.sub(r"[^A-Za-z0-9._+=-]+", "_", name)


def unique_names(points: list[dict[str, Any]]) -> list[str]:
    """Names for every point, suffixed ``-2``, ``-3`` … where two would collide."""
    names, counts = [], {}
    for p in points:
        base = point_name(p)
        counts[base] = counts.get(base, 0) + 1
        names.append(base if counts[base] == 1 else f"{base}-{counts[base]}")
    return names


def override_text(key: str, value: Any) -> str:
    """``key=value`` as one would type it on the command line (YAML scalar syntax)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return f"{key}={text}"


def set_dotted(data: dict, key: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict to a copy of ``value``, creating sections as needed."""
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def point_config(
    spec: SweepSpec, values: dict[str, Any], cli_overrides: list[str] = (), jobs: int = 1
) -> Config:
    """The resolved config of one point: base < sweep overrides < CLI overrides < grid values."""
    data = read_yaml(spec.base)
    apply_overrides(data, spec.overrides)
    apply_overrides(data, list(cli_overrides))
    for key, value in values.items():
        set_dotted(data, key, value)
    if jobs > 1 and not (data.get("train") or {}).get("threads"):
        set_dotted(data, "train.threads", max(1, (os.cpu_count() or 1) // jobs))
    if jobs > 1:
        set_dotted(data, "logging.progress", False)  # interleaved bars are unreadable
    return config_from_dict(data, origin=f"{spec.base} + {point_name(values)}")


def method_of(values: dict[str, Any], config: Config | None) -> str:
    """The training method of a point: its grid value, else its config's."""
    return str(values.get("method.name", config.method.name if config else "?"))


def find_reference(values: dict[str, Any], candidates: list[tuple[str, dict[str, Any]]]) -> str | None:
    """The no_filter run that best shares ``values``'s grid values (its seed must match).

    ``candidates`` are (name, values) of no_filter runs. Ties go to the first.
    """
    best, best_score = None, -1
    for name, ref in candidates:
        if "seed" in values and "seed" in ref and values["seed"] != ref["seed"]:
            continue
        score = sum(1 for k, v in ref.items() if k != "method.name" and values.get(k) == v)
        if score > best_score:
            best, best_score = name, score
    return best


@dataclass
class PlannedRun:
    """One run directory of a sweep: trained from a config, or unlearned from another run."""

    name: str
    values: dict[str, Any]
    method: str
    kind: str = "train"  # train | unlearn
    source: str | None = None  # the run an unlearned run starts from
    reference: str | None = None  # no_filter run giving the relearning target
    config: Config | None = None

    def to_json(self, root: Path) -> dict:
        """The run as ``sweep.json`` lists it."""
        return {
            "name": self.name, "dir": str(root / self.name), "values": self.values,
            "method": self.method, "kind": self.kind, "source": self.source,
            "reference": self.reference,
            "overrides": [override_text(k, v) for k, v in self.values.items()],
        }  # fmt: skip


def plan(spec: SweepSpec, cli_overrides: list[str] = (), jobs: int = 1) -> list[PlannedRun]:
    """Every run of the sweep, configs validated up front (a bad point fails before training).

    The trained points come first, in grid order, then one unlearned run per no_filter run
    when the spec unlearns; every run but the no_filter ones gets its relearning reference.
    """
    points = expand_points(spec)
    names = unique_names(points)
    runs: list[PlannedRun] = []
    problems = []
    for name, values in zip(names, points):
        try:
            config = point_config(spec, values, cli_overrides, jobs)
        except ConfigError as e:
            problems.append(f"{name}: {e}")
            continue
        runs.append(PlannedRun(name, values, method_of(values, config), config=config))
    if problems:
        raise UserError("invalid sweep points:\n" + "\n".join(problems))
    references = [(r.name, r.values) for r in runs if r.method == REFERENCE_METHOD]
    if spec.unlearn:
        for name, values in list(references):
            runs.append(PlannedRun(
                f"{name}-{spec.unlearn}", {**values, "unlearn": spec.unlearn}, spec.unlearn,
                kind="unlearn", source=name,
            ))  # fmt: skip
    for r in runs:
        if r.method != REFERENCE_METHOD:
            r.reference = find_reference(r.values, references)
    return runs
