"""Fault injection: SIGKILL training at random moments (mid-checkpoint too), resume, compare.

Every kill is a real ``SIGKILL`` of a process that is training; the next process resumes
the run (``resume=True``, what ``excise train --resume`` calls) and, once a run finishes,
its weights must equal an uninterrupted run's bit for bit and its ``metrics.jsonl`` must
hold every step exactly once. Kills come from three sources:

- from outside, after the run reached a random step, plus a random delay; checkpoint writes
  are slowed down (``EXCISE_FAULT_DELAY_CHECKPOINT_S``) so these often land mid-write;
- from outside, after the last step (during the final evaluation and weight writing);
- from inside, ``EXCISE_FAULT_KILL_AT=checkpoint:<step>:<phase>`` kills the writer after the
  weights, after the train state, or just before the rename of a checkpoint.

Processes are forked from this (already imported) interpreter, because a fresh ``python -m
excise`` pays seconds of torch import per kill; ``--cli`` uses real CLI subprocesses instead
(both run ``excise.cli.main``: see ``reliability_helpers.Trainer``).
The default suite runs a handful of kills; the ``slow`` test and the script run 20 or more::

    python tests/reliability/test_faults.py --kills 25 [--cli] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reliability_helpers import (  # noqa: E402
    Trainer,
    check_finished_run,
    latest_step_seen,
    tiny_config,
    whole_checkpoint_step,
)  # fmt: skip

from excise.train import checkpoints  # noqa: E402
from excise.train.runner import train  # noqa: E402

STEPS = 24
EVERY = 3
KILLS_PER_RUN = 5
RUN_ARGS = [f"train.steps={STEPS}", f"checkpoint.every={EVERY}", "checkpoint.keep=2"]


@dataclass
class Tally:
    kills: int = 0
    mid_checkpoint: int = 0  # a temporary checkpoint directory was left behind
    self_kills: int = 0  # EXCISE_FAULT_KILL_AT inside checkpoints.save
    end_kills: int = 0  # after the last step: final evaluation / weight writing
    runs_finished: int = 0
    resumes: int = 0
    where: list[str] = field(default_factory=list)


def campaign(workdir: Path, kills: int, seed: int = 0, cli: bool = False, log=print) -> Tally:
    """Kill training ``kills`` times, resuming after each; check every finished run."""
    rng = random.Random(seed)
    cache = Path(os.environ.get("EXCISE_CACHE") or workdir / "cache")
    os.environ["EXCISE_CACHE"] = str(cache)
    reference = workdir / "reference"
    train(tiny_config(*RUN_ARGS), reference)
    tally = Tally()
    run_index = 0
    run, resume = workdir / f"run-{run_index}", False
    kills_this_run = 0
    while True:
        env = {"EXCISE_FAULT_DELAY_CHECKPOINT_S": f"{rng.choice([0.0, 0.01, 0.03]):g}"}
        done_step = whole_checkpoint_step(run) if resume else 0
        # a few kills per run, then let it finish and check it; spread over the whole run
        plan = "outside" if rng.random() < 0.6 else "inside"
        if kills_this_run == KILLS_PER_RUN - 1:
            plan = "end"  # after the last step: during the final eval and weight writing
        if tally.kills >= kills or kills_this_run >= KILLS_PER_RUN:
            plan = "finish"
        if plan == "inside":
            step = done_step + EVERY * rng.randint(1, 2)  # one of the next two checkpoints
            if step >= STEPS:  # no checkpoint is written at the last step
                plan = "outside"
            else:
                phase = rng.choice(checkpoints.PHASES)
                env["EXCISE_FAULT_KILL_AT"] = f"checkpoint:{step}:{phase}"
        proc = Trainer(run, RUN_ARGS, resume, env, cli, cache)
        tally.resumes += resume
        if plan in ("outside", "end"):
            target = STEPS if plan == "end" else rng.randint(done_step + 1, min(STEPS, done_step + 2 * EVERY))
            while proc.poll() is None and latest_step_seen(run, proc.started) < target:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.3 if plan == "end" else 0.08))
            proc.kill()
        code = proc.wait()
        if code == 0:
            assert plan != "inside", "the checkpoint fault hook did not fire"
            check_finished_run(run, reference, STEPS)
            tally.runs_finished += 1
            log(f"run {run_index}: finished, weights equal the uninterrupted run bit for bit")
            if tally.kills >= kills:
                return tally
            run_index += 1
            run, resume = workdir / f"run-{run_index}", False
            kills_this_run = 0
            continue
        assert code == -signal.SIGKILL, (code, proc.stderr()[-3000:])
        tally.kills += 1
        kills_this_run += 1
        # this process's own temporary checkpoint directory (named with its pid)
        leftovers = list((run / checkpoints.DIR).glob(f".tmp-step-*-{proc.pid}"))
        where = f"{plan}{' ' + env.get('EXCISE_FAULT_KILL_AT', '') if plan == 'inside' else ''}"
        where += f", last step logged {latest_step_seen(run, proc.started)}"
        if leftovers:
            tally.mid_checkpoint += 1
            where += f", mid-checkpoint ({leftovers[0].name})"
        tally.self_kills += plan == "inside"
        tally.end_kills += plan == "end"
        tally.where.append(where)
        log(f"kill {tally.kills}: {where}")
        resume = True


def test_a_few_random_kills_then_resume_equal_uninterrupted(tmp_path):
    tally = campaign(tmp_path, kills=3, seed=3, log=lambda _: None)
    assert tally.kills == 3 and tally.runs_finished == 1


@pytest.mark.slow
def test_twenty_five_random_kills_then_resume_equal_uninterrupted(tmp_path):
    tally = campaign(tmp_path, kills=25, seed=11, log=lambda _: None)
    assert tally.kills == 25 and tally.runs_finished >= 1
    assert tally.self_kills > 0  # some kills inside checkpoint writes, by construction


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cli", action="store_true", help="kill real `python -m excise train` processes")
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        tally = campaign(Path(tmp), args.kills, args.seed, args.cli)
    print(
        f"kills survived: {tally.kills} ({tally.mid_checkpoint} left a half-written checkpoint, "
        f"{tally.self_kills} inside checkpoint writes by EXCISE_FAULT_KILL_AT, {tally.end_kills} after "
        f"the last step); resumes: "
        f"{tally.resumes}; finished runs: {tally.runs_finished}, all bit-identical to the "
        f"uninterrupted run with every step logged once; {time.time() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
