"""``excise sweep``: a grid of runs, trained, unlearned, evaluated and attacked in stages.

A sweep file (YAML) names a base recipe and the axes to vary::

    name: undiscovered                     # optional, for the report title
    base: ../bilingual-tiny.yaml           # relative to this file, else to the repo
    overrides: {logging.progress: false}   # fixed for every run (mapping or list of k=v)
    grid:                                  # every combination of these dotted keys
      method.name: [sgtm, weak_filter]
      labels.recall: [1.0, 0.9]
      seed: [0, 1]
    include:                               # extra points (each a small grid of its own),
      - {method.name: [no_filter, strict_filter]}   # crossed with the grid axes in
    include_axes: [seed]                   # include_axes they do not set (default: seed)
    unlearn: rmu                           # unlearn every no_filter run (new run dir)
    after: [eval, relearn]                 # what to do with the trained runs
    eval: {overrides: [eval.calibration_steps=100]}
    relearn: {steps: 200, overrides: [], skip_methods: [no_filter]}

Stages run in order — train, unlearn, eval, relearn — each over every run, one after
another or ``--jobs N`` processes at once (``train.threads`` split between them). A run
whose output exists is skipped (``summary.json`` for training, ``eval.json``,
``relearn.json``), and a killed training run is resumed from its last checkpoint, so
rerunning a sweep finishes what is missing. The relearning reference of a run is the
no_filter run that shares its other grid values (seed first). ``DIR/sweep.json`` records
the spec and every run; ``DIR/results.jsonl`` holds one row per run (grid values,
eval.json figures, relearn summary, training summary).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from excise.config import Config, ConfigError, apply_overrides, config_from_dict, read_yaml
from excise.errors import UserError

SWEEP_FILE = "sweep.json"
RESULTS_FILE = "results.jsonl"
AFTER_STEPS = ("eval", "relearn")
UNLEARN_METHODS = ("rmu", "gradient_ascent", "gradient_difference", "npo")
SPEC_KEYS = {
    "name", "base", "overrides", "grid", "include", "include_axes", "after", "unlearn",
    "eval", "relearn", "jobs", "description",
}  # fmt: skip


def repo_root() -> Path:
    """The source checkout holding this package (``src/excise/report`` -> repo)."""
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


# ---------------------------------------------------------------------------------------
# the spec


@dataclass
class SweepSpec:
    """A parsed sweep file (see module doc)."""

    base: Path
    grid: dict[str, list] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    include: list[dict[str, list]] = field(default_factory=list)
    include_axes: list[str] = field(default_factory=lambda: ["seed"])
    after: list[str] = field(default_factory=lambda: ["eval"])
    unlearn: str | None = None
    eval_overrides: list[str] = field(default_factory=list)
    relearn_steps: int | None = None
    relearn_overrides: list[str] = field(default_factory=list)
    relearn_skip_methods: list[str] = field(default_factory=lambda: ["no_filter"])
    jobs: int = 1
    name: str = "sweep"
    source: str | None = None

    def to_json(self) -> dict:
        return {
            "name": self.name, "source": self.source, "base": str(self.base), "grid": self.grid,
            "overrides": self.overrides, "include": self.include,
            "include_axes": self.include_axes, "after": self.after, "unlearn": self.unlearn,
            "eval": {"overrides": self.eval_overrides},
            "relearn": {"steps": self.relearn_steps, "overrides": self.relearn_overrides,
                        "skip_methods": self.relearn_skip_methods},
        }  # fmt: skip


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _override_list(value: Any, where: str) -> list[str]:
    """Fixed overrides given as a mapping ``{key: value}`` or a list of ``key=value``."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"{k}={json.dumps(v)}" for k, v in flatten_keys(value).items()]  # JSON keeps the type
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise UserError(f"{where} must be a mapping of dotted keys or a list of key=value strings")


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


def resolve_base(base: str, sweep_path: Path | None) -> Path:
    """A base recipe path: as given, relative to the sweep file, the repo, or configs/."""
    p = Path(base).expanduser()
    candidates = [p] if p.is_absolute() else []
    if not p.is_absolute():
        if sweep_path is not None:
            candidates.append(sweep_path.parent / p)
        candidates += [Path.cwd() / p, repo_root() / p]
        try:
            candidates.append(configs_dir() / p)
        except UserError:
            pass
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise UserError(f"sweep base recipe {base!r} not found (looked in: {', '.join(map(str, candidates))})")


def parse_spec(data: dict, sweep_path: Path | None = None) -> SweepSpec:
    """Validate a sweep mapping; every problem is reported with its key."""
    where = str(sweep_path) if sweep_path else "sweep"
    unknown = sorted(set(data) - SPEC_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown sweep key(s) {unknown}; known: {sorted(SPEC_KEYS)}")
    if "base" not in data:
        raise UserError(f"{where}: a sweep needs `base:` (the recipe every run starts from)")
    grid = data.get("grid") or {}
    if not isinstance(grid, dict):
        raise UserError(f"{where}: grid must map dotted keys to lists of values")
    grid = {str(k): _as_list(v) for k, v in grid.items()}
    for k, v in grid.items():
        if not v:
            raise UserError(f"{where}: grid.{k} has no values")
    include = []
    for i, entry in enumerate(data.get("include") or []):
        if not isinstance(entry, dict) or not entry:
            raise UserError(f"{where}: include[{i}] must be a mapping of dotted keys to values")
        include.append({str(k): _as_list(v) for k, v in entry.items()})
    after = _as_list(data.get("after", ["eval"]) or [])
    bad = [a for a in after if a not in AFTER_STEPS]
    if bad:
        raise UserError(f"{where}: after: {bad} unknown; choose from {list(AFTER_STEPS)}")
    if "relearn" in after and "eval" not in after:
        after = ["eval", *after]  # the reference loss comes from the no-filter eval.json
    unlearn = data.get("unlearn")
    if unlearn is not None and unlearn not in UNLEARN_METHODS:
        raise UserError(f"{where}: unlearn: {unlearn!r} unknown; choose from {list(UNLEARN_METHODS)}")
    ev = data.get("eval") or {}
    rl = data.get("relearn") or {}
    if not isinstance(ev, dict) or not isinstance(rl, dict):
        raise UserError(f"{where}: eval and relearn must be mappings")
    jobs = data.get("jobs", 1)
    if not isinstance(jobs, int) or jobs < 1:
        raise UserError(f"{where}: jobs must be a positive integer")
    return SweepSpec(
        base=resolve_base(str(data["base"]), sweep_path),
        grid=grid,
        overrides=_override_list(data.get("overrides"), f"{where}: overrides"),
        include=include,
        include_axes=[str(a) for a in _as_list(data.get("include_axes", ["seed"]))],
        after=after,
        unlearn=unlearn,
        eval_overrides=_override_list(ev.get("overrides"), f"{where}: eval.overrides"),
        relearn_steps=rl.get("steps"),
        relearn_overrides=_override_list(rl.get("overrides"), f"{where}: relearn.overrides"),
        relearn_skip_methods=_as_list(rl.get("skip_methods", ["no_filter"])),
        jobs=jobs,
        name=str(data.get("name") or (sweep_path.stem if sweep_path else "sweep")),
        source=str(sweep_path) if sweep_path else None,
    )


def load_spec(path: str | Path) -> SweepSpec:
    path = Path(path)
    try:
        data = read_yaml(path)
    except ConfigError as e:
        raise UserError(str(e)) from None
    return parse_spec(data, path.resolve())


# ---------------------------------------------------------------------------------------
# grid expansion and names (pure functions)


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
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def point_config(spec: SweepSpec, values: dict[str, Any], cli_overrides: list[str] = (), jobs: int = 1) -> Config:
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


# ---------------------------------------------------------------------------------------
# the plan


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
        return {
            "name": self.name, "dir": str(root / self.name), "values": self.values,
            "method": self.method, "kind": self.kind, "source": self.source,
            "reference": self.reference,
            "overrides": [override_text(k, v) for k, v in self.values.items()],
        }  # fmt: skip


def plan(spec: SweepSpec, cli_overrides: list[str] = (), jobs: int = 1) -> list[PlannedRun]:
    """Every run of the sweep, configs validated up front (a bad point fails before training)."""
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
    no_filter = [(r.name, r.values) for r in runs if r.method == "no_filter"]
    if spec.unlearn:
        for name, values in list(no_filter):
            runs.append(PlannedRun(
                f"{name}-{spec.unlearn}", {**values, "unlearn": spec.unlearn}, spec.unlearn,
                kind="unlearn", source=name,
            ))  # fmt: skip
    for r in runs:
        if r.method != "no_filter":
            r.reference = find_reference(r.values, no_filter)
    return runs


# ---------------------------------------------------------------------------------------
# stages


def _log(message: str) -> None:
    print(f"[sweep {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def task_train(config_data: dict, out: str, threads: int | None = None) -> str:
    """Train (or resume) one run; returns what was done."""
    from excise.train.runner import train

    out_dir = Path(out)
    config = config_from_dict(config_data, origin=str(out_dir))
    resume = out_dir.is_dir() and any(out_dir.iterdir())
    train(config, out_dir, resume=resume)
    return "resumed" if resume else "trained"


def task_unlearn(method: str, source: str, out: str, overrides: list[str], threads: int | None = None) -> str:
    _set_threads(threads)
    from excise.methods.unlearn import unlearn_run

    unlearn_run(Path(source), Path(out), method, list(overrides))
    return "unlearned"


def cli_unlearn_overrides(cli_overrides) -> list[str]:
    """The command-line overrides that concern unlearning (``unlearn.*``)."""
    return [o for o in cli_overrides if o.startswith("unlearn.")]


def task_eval(run_dir: str, overrides: list[str], threads: int | None = None) -> str:
    _set_threads(threads)
    from excise.eval.evaluate import evaluate_run

    evaluate_run(run_dir, list(overrides))
    return "evaluated"


def task_relearn(run_dir: str, overrides: list[str], steps: int | None, reference: str | None,
                 threads: int | None = None) -> str:  # fmt: skip
    _set_threads(threads)
    from excise.eval.relearn import relearn_run

    relearn_run(run_dir, list(overrides), steps=steps, reference_dir=reference)
    return "attacked"


TASKS = {"train": task_train, "unlearn": task_unlearn, "eval": task_eval, "relearn": task_relearn}


def _call(kind: str, kwargs: dict) -> str:
    """Worker entry point (module level, so spawned processes can import it)."""
    return TASKS[kind](**kwargs)


def _exit_with_parent(parent_pid: int, poll_seconds: float = 1.0) -> None:
    """Worker initializer: end this worker when the sweep process is gone.

    A sweep killed with SIGTERM (not Ctrl-C, which reaches the whole process group) would
    otherwise leave its workers training on as orphans, competing for the same cores as
    the rerun. The run they leave behind resumes from its last checkpoint.
    """
    import threading

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(poll_seconds)

    threading.Thread(target=watch, name="excise-parent-watch", daemon=True).start()


def run_stage(stage: str, tasks: list[tuple[str, dict]], jobs: int) -> dict[str, str]:
    """Run ``tasks`` [(run name, kwargs)] of one stage; returns {name: error} for failures."""
    failures: dict[str, str] = {}
    if not tasks:
        return failures
    total = len(tasks)
    if jobs <= 1 or total == 1:
        for i, (name, kwargs) in enumerate(tasks, 1):
            _log(f"{stage} {i}/{total} {name} ...")
            started = time.time()
            try:
                did = _call(stage, kwargs)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # one failed run must not lose the others
                failures[name] = _describe(e)
                _log(f"{stage} {name} FAILED: {failures[name]}")
                continue
            _log(f"{stage} {name} {did} in {time.time() - started:.1f}s")
        return failures

    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    _log(f"{stage}: {total} runs, {jobs} at once")
    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent, initargs=(os.getpid(),),
    ) as pool:  # fmt: skip
        futures = {pool.submit(_call, stage, kwargs): name for name, kwargs in tasks}
        for done, future in enumerate(as_completed(futures), 1):
            name = futures[future]
            try:
                did = future.result()
            except Exception as e:
                failures[name] = _describe(e)
                _log(f"{stage} {done}/{total} {name} FAILED: {failures[name]}")
                continue
            _log(f"{stage} {done}/{total} {name} {did}")
    return failures


def _describe(e: BaseException) -> str:
    if isinstance(e, UserError):
        return str(e)
    return "".join(traceback.format_exception_only(type(e), e)).strip()


def is_trained(run_dir: Path) -> bool:
    return (run_dir / "summary.json").is_file()


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    cli_overrides: list[str] = (),
    jobs: int | None = None,
    extra_record: dict | None = None,
) -> list[dict]:
    """Plan, run every stage (skipping finished work), write sweep.json and results.jsonl.

    Returns the result rows. Runs that fail are reported and left out of later stages; the
    sweep then raises :class:`UserError` naming them after writing what it has.
    """
    out = Path(out)
    jobs = jobs or spec.jobs or 1
    runs = plan(spec, cli_overrides, jobs)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        **spec.to_json(), "cli_overrides": list(cli_overrides), "jobs": jobs,
        "runs": [r.to_json(out) for r in runs], **(extra_record or {}),
    }  # fmt: skip
    from excise.run import write_json

    write_json(out / SWEEP_FILE, record)
    split = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    failed: dict[str, str] = {}
    by_name = {r.name: r for r in runs}

    def threads_of(r: PlannedRun) -> int | None:
        """The run's train.threads (its source's for unlearned runs), else the jobs split."""
        config = r.config if r.config is not None else by_name[r.source].config
        return (config.train.threads if config is not None else None) or split

    todo = []
    for r in runs:
        if r.kind != "train":
            continue
        if is_trained(out / r.name):
            _log(f"train {r.name}: finished, skipped")
            continue
        todo.append((r.name, {"config_data": r.config.model_dump(mode="json"), "out": str(out / r.name)}))
    failed.update(run_stage("train", todo, jobs))

    todo = []
    for r in runs:
        if r.kind != "unlearn":
            continue
        if r.source in failed:
            failed[r.name] = f"its source run {r.source} failed"
            continue
        if is_trained(out / r.name):
            _log(f"unlearn {r.name}: finished, skipped")
            continue
        todo.append((r.name, {
            "method": spec.unlearn, "source": str(out / r.source), "out": str(out / r.name),
            "overrides": list(cli_unlearn_overrides(cli_overrides)), "threads": threads_of(r),
        }))  # fmt: skip
    failed.update(run_stage("unlearn", todo, jobs))

    alive = [r for r in runs if r.name not in failed]
    if "eval" in spec.after:
        todo = [
            (r.name, {"run_dir": str(out / r.name), "overrides": spec.eval_overrides, "threads": threads_of(r)})
            for r in alive if not (out / r.name / "eval.json").is_file()
        ]  # fmt: skip
        for r in alive:
            if (out / r.name / "eval.json").is_file():
                _log(f"eval {r.name}: eval.json present, skipped")
        failed.update(run_stage("eval", todo, jobs))

    if "relearn" in spec.after:
        todo = []
        for r in runs:
            if r.name in failed or r.method in spec.relearn_skip_methods:
                continue
            if (out / r.name / "relearn.json").is_file():
                _log(f"relearn {r.name}: relearn.json present, skipped")
                continue
            ref = r.reference if r.reference and r.reference not in failed else None
            todo.append((r.name, {
                "run_dir": str(out / r.name), "overrides": spec.relearn_overrides,
                "steps": spec.relearn_steps, "reference": str(out / ref) if ref else None,
                "threads": threads_of(r),
            }))  # fmt: skip
        failed.update(run_stage("relearn", todo, jobs))

    rows = [result_row(out, r, failed.get(r.name)) for r in by_name.values()]
    write_results(out / RESULTS_FILE, rows)
    _log(f"results: {out / RESULTS_FILE} ({len(rows)} runs)")
    if failed:
        raise UserError(
            f"{len(failed)} run(s) failed (the others are in {out / RESULTS_FILE}):\n"
            + "\n".join(f"  {k}: {v}" for k, v in failed.items())
        )
    return rows


# ---------------------------------------------------------------------------------------
# results


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def result_row(root: Path, run: PlannedRun, error: str | None = None) -> dict:
    """One results.jsonl row: grid values, eval figures, relearn and training summaries."""
    d = root / run.name
    row: dict[str, Any] = {
        "run": run.name, "dir": str(d), "method": run.method, "kind": run.kind,
        "values": run.values, "reference": run.reference,
    }  # fmt: skip
    if error:
        row["error"] = error
    ev = _read_json(d / "eval.json")
    if isinstance(ev, dict):
        for variant in ("full", "ablated", "calibrated"):
            if variant in ev:
                row[variant] = ev[variant]
    rl = _read_json(d / "relearn.json")
    if isinstance(rl, dict):
        curve = rl.get("forget_loss") or []
        row["relearn"] = {
            "steps_to_recover": rl.get("steps_to_recover"),
            "reference_forget_loss": rl.get("reference_forget_loss"),
            "steps": (rl.get("steps") or [None])[-1],
            "initial_forget_loss": curve[0] if curve else None,
            "final_forget_loss": curve[-1] if curve else None,
        }
    summary = _read_json(d / "summary.json")
    if isinstance(summary, dict):
        row["train"] = {
            k: summary.get(k)
            for k in ("steps", "tokens", "wall_seconds", "tokens_per_second", "skipped_steps")
            if k in summary
        }
    return row


def write_results(path: Path, rows: list[dict]) -> None:
    from excise.checkpoint import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r, default=str) + "\n" for r in rows))


def read_results(path: Path) -> list[dict]:
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return rows


def cli_sweep(args) -> int:
    spec = load_spec(args.sweep)
    jobs = getattr(args, "jobs", None)
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")
    started = time.time()
    rows = run_sweep(spec, args.out, list(args.overrides or []), jobs=jobs)
    print(f"sweep {spec.name}: {len(rows)} runs in {time.time() - started:.0f}s; results in "
          f"{Path(args.out) / RESULTS_FILE}; `excise report {args.out}` writes the report", file=sys.stdout)
    return 0
