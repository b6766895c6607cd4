"""Preemption: SIGTERM / SIGUSR1 at random moments, exit code 75, resume equal to uninterrupted.

Each trial sends one of ``train.preempt_signals`` to a training process at a random
moment: during setup (data preparation, restoring), at a random point of a random step
(checkpoint writes are slowed down so that some signals land in them, and an evaluation
runs every few steps), or after the last step. Then:

- a signal during the steps stops the run after the step in progress (no later), with a
  whole checkpoint at that step, ``preempted.json`` naming it and exit code 75;
- a signal during setup exits 75 at once (or, before the handlers are installed, kills the
  process with the signal's default action), a signal after the last step was logged lets
  the run finish (exit 0) — and only then does a run finish;
- every run, resumed as often as it takes, ends with the weights of an uninterrupted run
  bit for bit and ``metrics.jsonl`` holding every step once.

The default suite runs a handful of trials; the ``slow`` test and the script run 20 or more::

    python tests/reliability/test_preemption.py --trials 25 [--cli] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reliability_helpers import (  # noqa: E402
    Trainer,
    check_finished_run,
    events,
    latest_step_seen,
    tiny_config,
    whole_checkpoint_step,
)  # fmt: skip

from excise.train import checkpoints  # noqa: E402
from excise.train.preemption import EXIT_PREEMPTED, MARKER  # noqa: E402
from excise.train.runner import train  # noqa: E402

STEPS = 24
RUN_ARGS = [f"train.steps={STEPS}", "checkpoint.every=5", "checkpoint.keep=2", "eval.every=4"]
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
BOUND_S = 60.0  # a preempted trainer must be gone within this (it takes well under a second)


@dataclass
class Tally:
    trials: int = 0
    outcomes: Counter = field(default_factory=Counter)  # plan -> exit outcome counts
    runs_finished: int = 0
    where: list[str] = field(default_factory=list)


def check_preempted(run: Path, seen_before: int, seen_after: int, code: int, proc: Trainer) -> int:
    """The run stopped after the step in progress with a whole checkpoint; returns the step."""
    assert code == EXIT_PREEMPTED, (code, proc.stderr()[-3000:])
    marker = json.loads((run / MARKER).read_text())
    step = marker["step"]
    logged = latest_step_seen(run)
    if step is None:  # stopped during setup: nothing trained by this process
        assert logged == seen_after, (logged, seen_after)
        return logged
    # the step in progress when the signal came, and no further
    assert seen_before <= step <= seen_after + 1, (seen_before, step, seen_after)
    assert logged == step, (logged, step)  # nothing trained past the checkpoint
    assert checkpoints.verify(checkpoints.step_dir(run, step)) is None
    assert whole_checkpoint_step(run) == step
    assert events(run, "preempted")[-1]["step"] == step
    return step


def campaign(workdir: Path, trials: int, seed: int = 0, cli: bool = False, log=print) -> Tally:
    """Signal training ``trials`` times at random moments, resuming after each."""
    rng = random.Random(seed)
    cache = Path(os.environ.get("EXCISE_CACHE") or workdir / "cache")
    os.environ["EXCISE_CACHE"] = str(cache)
    reference = workdir / "reference"
    train(tiny_config(*RUN_ARGS), reference)
    tally = Tally()
    run_index, resume, per_run = 0, False, 0
    run = workdir / f"run-{run_index}"
    while True:
        done = whole_checkpoint_step(run) if resume else 0
        if tally.trials >= trials:
            plan = "finish"
        elif per_run >= 3:
            plan = "end"  # a few signals per run, then one after its last step
        else:
            plan = rng.choices(["step", "setup"], weights=[5, 1])[0]
        sig = rng.choice(SIGNALS)
        env = {"EXCISE_FAULT_DELAY_CHECKPOINT_S": f"{rng.choice([0.0, 0.01, 0.03]):g}"}
        proc = Trainer(run, RUN_ARGS, resume, env, cli, cache)
        seen_before = seen_after = latest_step_seen(run)
        if plan != "finish":
            if plan == "setup":
                time.sleep(rng.uniform(0.0, 0.3 if not cli else 3.0))  # import, data, restore
            else:
                target = STEPS if plan == "end" else rng.randint(min(done + 1, STEPS), STEPS)
                while proc.poll() is None and latest_step_seen(run, proc.started) < target:
                    time.sleep(0.002)
                time.sleep(rng.uniform(0.0, 0.05))
            seen_before = latest_step_seen(run)
            delivered = proc.poll() is None
            proc.send(sig)
            seen_after = latest_step_seen(run)
        else:
            delivered = False
        code = proc.wait(BOUND_S)
        assert code is not None, f"trainer still running {BOUND_S} s after {sig.name}"
        if delivered:
            tally.trials += 1
            tally.outcomes[f"{plan}:{code}"] += 1
        finished = (run / "summary.json").is_file()
        if code == EXIT_PREEMPTED:
            assert delivered
            step = check_preempted(run, seen_before, seen_after, code, proc)
            where = f"trial {tally.trials}: {sig.name} during {plan}, stopped after step {step}"
            tally.where.append(where)
            log(where)
            resume, per_run = True, per_run + 1
            continue
        if code == -sig and plan == "setup" and not finished:
            # the signal came before train() installed its handlers: default action, no loss
            log(f"trial {tally.trials}: {sig.name} before the handlers were installed")
            resume, per_run = True, per_run + 1
            continue
        # finished: a signal after its last step (or after train() returned) ends nothing early
        assert code == 0 or (code == -sig and finished and plan == "end"), (code, proc.stderr()[-3000:])
        if delivered:  # a signal before the last step was logged must have stopped the run
            assert seen_before == STEPS, (plan, seen_before)
        assert not (run / MARKER).exists()
        check_finished_run(run, reference, STEPS)
        tally.runs_finished += 1
        log(
            f"run {run_index}: finished ({plan}, exit {code}), weights equal the uninterrupted run bit for bit"
        )
        if tally.trials >= trials:
            return tally
        run_index, resume, per_run = run_index + 1, False, 0
        run = workdir / f"run-{run_index}"


def test_a_few_random_signals_then_resume_equal_uninterrupted(tmp_path):
    tally = campaign(tmp_path, trials=5, seed=4, log=lambda _: None)
    assert tally.trials == 5 and tally.runs_finished >= 1
    assert sum(n for k, n in tally.outcomes.items() if k.startswith("step:75")) >= 2


@pytest.mark.slow
def test_twenty_five_random_signals_then_resume_equal_uninterrupted(tmp_path):
    tally = campaign(tmp_path, trials=25, seed=12, log=lambda _: None)
    assert tally.trials == 25 and tally.runs_finished >= 2
    assert tally.outcomes["step:75"] >= 10


def test_preempt_signals_are_validated_and_can_be_turned_off(tmp_path):
    from excise.config import ConfigError, load_config

    assert load_config(None, ["train.preempt_signals=[term, SIGUSR1]"]).train.preempt_signals == [
        "SIGTERM",
        "SIGUSR1",
    ]
    for bad in ("[SIGKILL]", "[SIGNOPE]"):
        with pytest.raises(ConfigError, match="train.preempt_signals"):
            load_config(None, [f"train.preempt_signals={bad}"])
    # with none configured, SIGTERM keeps its default action: the process dies of it
    run = tmp_path / "run"
    proc = Trainer(run, [*RUN_ARGS, "train.steps=400", "train.preempt_signals=[]"])
    while proc.poll() is None and latest_step_seen(run, proc.started) < 2:
        time.sleep(0.002)
    proc.send(signal.SIGTERM)
    assert proc.wait(BOUND_S) == -signal.SIGTERM
    assert not (run / MARKER).exists()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cli", action="store_true", help="signal real `python -m excise train` processes")
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        tally = campaign(Path(tmp), args.trials, args.seed, args.cli)
    outcomes = ", ".join(f"{k} x{n}" for k, n in sorted(tally.outcomes.items()))
    print(
        f"signals: {tally.trials} (plan:exit code — {outcomes}); finished runs: "
        f"{tally.runs_finished}, all bit-identical to the uninterrupted run with every step "
        f"logged once; {time.time() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
