"""Running a planned sweep: train, unlearn, eval, relearn — stage after stage.

Each stage runs over every run, one after another or ``--jobs N`` processes at once
(``train.threads`` split between them). A run whose output exists is skipped
(``summary.json`` for training, ``eval.json``, ``relearn.json``), and a killed training run
is resumed from its last checkpoint, so rerunning a sweep finishes what is missing. One
failed run does not stop the others; the sweep names it at the end. The relearning
reference of a run is the no_filter run that shares its other grid values (seed first).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from excise.config import config_from_dict
from excise.errors import UserError
from excise.sweep.plan import PlannedRun, plan
from excise.sweep.results import RESULTS_FILE, SWEEP_FILE, result_row, write_results
from excise.sweep.spec import SweepSpec, load_spec


def _log(message: str) -> None:
    print(f"[sweep {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------
# tasks: one stage of one run, callable in a worker process


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
    """Unlearn the trained run ``source`` into the new run ``out``."""
    _set_threads(threads)
    from excise.methods.unlearn import unlearn_run

    unlearn_run(Path(source), Path(out), method, list(overrides))
    return "unlearned"


def cli_unlearn_overrides(cli_overrides) -> list[str]:
    """The command-line overrides that concern unlearning (``unlearn.*``)."""
    return [o for o in cli_overrides if o.startswith("unlearn.")]


def task_eval(run_dir: str, overrides: list[str], threads: int | None = None) -> str:
    """Write a run's eval.json."""
    _set_threads(threads)
    from excise.eval.evaluate import evaluate_run

    evaluate_run(run_dir, list(overrides))
    return "evaluated"


def task_relearn(run_dir: str, overrides: list[str], steps: int | None, reference: str | None,
                 threads: int | None = None) -> str:  # fmt: skip
    """Attack a run's released model; write its relearn.json."""
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


def _describe(e: BaseException) -> str:
    if isinstance(e, UserError):
        return str(e)
    return "".join(traceback.format_exception_only(type(e), e)).strip()


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


# ---------------------------------------------------------------------------------------
# the stages of a sweep


def is_trained(run_dir: Path) -> bool:
    return (run_dir / "summary.json").is_file()


def _train_tasks(runs: list[PlannedRun], out: Path) -> list[tuple[str, dict]]:
    todo = []
    for r in runs:
        if r.kind != "train":
            continue
        if is_trained(out / r.name):
            _log(f"train {r.name}: finished, skipped")
            continue
        todo.append((r.name, {"config_data": r.config.model_dump(mode="json"), "out": str(out / r.name)}))
    return todo


def _unlearn_tasks(spec: SweepSpec, runs: list[PlannedRun], out: Path, cli_overrides: list[str],
                   failed: dict[str, str], threads_of) -> list[tuple[str, dict]]:  # fmt: skip
    """The unlearning tasks still to do; runs whose source failed join ``failed``."""
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
    return todo


def _eval_tasks(spec: SweepSpec, alive: list[PlannedRun], out: Path, threads_of) -> list[tuple[str, dict]]:
    todo = [
        (r.name, {"run_dir": str(out / r.name), "overrides": spec.eval.overrides, "threads": threads_of(r)})
        for r in alive if not (out / r.name / "eval.json").is_file()
    ]  # fmt: skip
    for r in alive:
        if (out / r.name / "eval.json").is_file():
            _log(f"eval {r.name}: eval.json present, skipped")
    return todo


def _relearn_tasks(spec: SweepSpec, runs: list[PlannedRun], out: Path, failed: dict[str, str],
                   threads_of) -> list[tuple[str, dict]]:  # fmt: skip
    todo = []
    for r in runs:
        if r.name in failed or r.method in spec.relearn.skip_methods:
            continue
        if (out / r.name / "relearn.json").is_file():
            _log(f"relearn {r.name}: relearn.json present, skipped")
            continue
        ref = r.reference if r.reference and r.reference not in failed else None
        todo.append((r.name, {
            "run_dir": str(out / r.name), "overrides": spec.relearn.overrides,
            "steps": spec.relearn.steps, "reference": str(out / ref) if ref else None,
            "threads": threads_of(r),
        }))  # fmt: skip
    return todo


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
    by_name = {r.name: r for r in runs}

    def threads_of(r: PlannedRun) -> int | None:
        """The run's train.threads (its source's for unlearned runs), else the jobs split."""
        config = r.config if r.config is not None else by_name[r.source].config
        return (config.train.threads if config is not None else None) or split

    failed: dict[str, str] = {}
    failed.update(run_stage("train", _train_tasks(runs, out), jobs))
    unlearn_todo = _unlearn_tasks(spec, runs, out, list(cli_overrides), failed, threads_of)
    failed.update(run_stage("unlearn", unlearn_todo, jobs))
    if "eval" in spec.after:
        alive = [r for r in runs if r.name not in failed]
        failed.update(run_stage("eval", _eval_tasks(spec, alive, out, threads_of), jobs))
    if "relearn" in spec.after:
        failed.update(run_stage("relearn", _relearn_tasks(spec, runs, out, failed, threads_of), jobs))

    rows = [result_row(out, r, failed.get(r.name)) for r in by_name.values()]
    write_results(out / RESULTS_FILE, rows)
    _log(f"results: {out / RESULTS_FILE} ({len(rows)} runs)")
    if failed:
        raise UserError(
            f"{len(failed)} run(s) failed (the others are in {out / RESULTS_FILE}):\n"
            + "\n".join(f"  {k}: {v}" for k, v in failed.items())
        )
    return rows


def cli_sweep(args) -> int:
    """``excise sweep SWEEP.yaml --out DIR [--jobs N] [key=value ...]``."""
    spec = load_spec(args.sweep)
    jobs = getattr(args, "jobs", None)
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")
    started = time.time()
    rows = run_sweep(spec, args.out, list(args.overrides or []), jobs=jobs)
    print(
        f"sweep {spec.name}: {len(rows)} runs in {time.time() - started:.0f}s; results in "
        f"{Path(args.out) / RESULTS_FILE}; `excise report {args.out}` writes the report",
        file=sys.stdout,
    )
    return 0
