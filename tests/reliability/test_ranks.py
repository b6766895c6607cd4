"""Several ranks: one rank of a 2-process gloo run killed, hung or signalled at a random step.

A two-rank job (CPU, gloo) is started, and at a random step one random rank is

- **killed** (SIGKILL): the other rank must end within a bound — no hang — with exit code
  1 and a one-paragraph error (no traceback) that says how to continue;
- **stopped** (SIGSTOP, a hung peer): the other rank must fail once ``train.dist_timeout_s``
  has passed, not wait for ever;
- **preempted** (SIGTERM to that rank only): both ranks must stop after the same step and
  exit 75, with one checkpoint written for both;
- or **all preempted** (SIGTERM to both ranks, which may be at different steps when it
  arrives — under torchrun to the agent, which forwards it, as SLURM does): the same.

Then the job is resumed with two ranks (``--resume``) until it finishes, and its weights
must equal those of an uninterrupted two-rank run — bit for bit: with two ranks the gloo
all-reduce adds two numbers, which is exact whatever the order, and resuming restores the
optimizer state exactly. ``metrics.jsonl`` must hold every step once.

Ranks are forked from this interpreter with torchrun's environment variables (``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` ...), so a job starts in a fraction of a second; the
``slow`` test does the same through real ``torchrun`` (whose agent also SIGTERMs the
surviving rank when one dies). As a script::

    python tests/reliability/test_ranks.py --trials 6 [--torchrun] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch._dynamo  # noqa: F401  torch.optim imports it (seconds): once here, not per forked rank

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reliability_helpers import (  # noqa: E402
    TINY,
    Trainer,
    check_finished_run,
    cli_env,
    empty_recipe,
    events,
    latest_step_seen,
    whole_checkpoint_step,
)  # fmt: skip

from excise.train.preemption import EXIT_PREEMPTED, MARKER  # noqa: E402

STEPS = 24
TIMEOUT_S = 4  # train.dist_timeout_s: the data barrier on a token-cache hit takes < 1 s
RUN_ARGS = [
    f"train.steps={STEPS}", "checkpoint.every=3", "checkpoint.keep=2", "eval.max_tokens=64",
    f"train.dist_timeout_s={TIMEOUT_S}",
]  # fmt: skip
END_BOUND_S = 30.0  # the other rank must be gone this long after a kill (measured: < 1 s)
WHAT = ("kill", "stop", "preempt", "all")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Job:
    """Two ranks of ``excise train`` on ``run``: forked processes, or one real torchrun."""

    def __init__(self, run: Path, resume: bool, torchrun: bool = False) -> None:
        self.run, self.torchrun = Path(run), torchrun
        self.started = time.time()
        if torchrun:
            recipe = empty_recipe(self.run.parent)
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                   "--monitor-interval", "0.1", "-m", "excise", "train", str(recipe), *TINY, *RUN_ARGS,
                   "--out", str(run), *(["--resume"] if resume else [])]  # fmt: skip
            self.stderr_path = self.run.parent / f"{self.run.name}-torchrun-stderr.txt"
            with open(self.stderr_path, "w") as err:
                self.agent = subprocess.Popen(cmd, env=cli_env(Path(os.environ["EXCISE_CACHE"])),
                                              stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
            return
        port = free_port()
        self.ranks = [
            Trainer(
                run,
                RUN_ARGS,
                resume,
                tag=f"rank{r}",
                env={
                    "RANK": str(r),
                    "LOCAL_RANK": str(r),
                    "WORLD_SIZE": "2",
                    "LOCAL_WORLD_SIZE": "2",
                    "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": str(port),
                },
            )  # fmt: skip
            for r in range(2)
        ]

    def worker_pids(self) -> list[int]:
        """The two training processes (torchrun: the agent's children, in rank order)."""
        if not self.torchrun:
            return [t.pid for t in self.ranks]
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                kids = Path(f"/proc/{self.agent.pid}/task/{self.agent.pid}/children").read_text().split()
                ranks = {}
                for pid in map(int, kids):
                    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                    rank = next((e.split(b"=", 1)[1] for e in env if e.startswith(b"RANK=")), None)
                    if rank is not None:
                        ranks[int(rank)] = pid
                if len(ranks) == 2:
                    return [ranks[0], ranks[1]]
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("torchrun did not start two workers")

    def wait(self, timeout: float) -> list[int] | None:
        """Exit codes (forked: each rank's; torchrun: the agent's), None on timeout."""
        deadline = time.time() + timeout
        if self.torchrun:
            try:
                return [self.agent.wait(timeout)]
            except subprocess.TimeoutExpired:
                return None
        codes = []
        for t in self.ranks:
            code = t.wait(max(0.0, deadline - time.time()))
            if code is None:
                return None
            codes.append(code)
        return codes

    def stderr(self) -> str:
        if self.torchrun:
            return self.stderr_path.read_text()[-4000:]
        return "\n".join(f"rank {i}: {t.stderr()[-2000:]}" for i, t in enumerate(self.ranks))

    def kill_all(self) -> None:
        for pid in self.worker_pids() if not self.torchrun else [self.agent.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not self.torchrun:
            for t in self.ranks:
                t.wait(10)


@dataclass
class Tally:
    trials: int = 0
    end_seconds: list[float] = field(default_factory=list)  # fault -> last rank gone
    runs_finished: int = 0
    where: list[str] = field(default_factory=list)


def finish(job: Job) -> list[int]:
    codes = job.wait(120)
    assert codes is not None, "a rank is still running after 120 s"
    return codes


def campaign(
    workdir: Path, trials: int, seed: int = 0, torchrun: bool = False, what=WHAT, log=print
) -> Tally:
    """``trials`` faults of the kinds in ``what``, each followed by a two-rank resume."""
    rng = random.Random(seed)
    os.environ.setdefault("EXCISE_CACHE", str(workdir / "cache"))
    reference = workdir / "reference"
    codes = finish(Job(reference, resume=False, torchrun=torchrun))
    assert set(codes) == {0}, (codes, open(reference.parent / "reference-rank0-stderr.txt").read()[-3000:]
                               if not torchrun else "")  # fmt: skip
    tally = Tally()
    for trial in range(1, trials + 1):
        run = workdir / f"run-{trial}"
        kind, victim = what[(trial - 1) % len(what)], rng.randrange(2)
        job = Job(run, resume=False, torchrun=torchrun)
        pids = job.worker_pids()
        target = rng.randint(2, STEPS - 4)
        while latest_step_seen(run, job.started) < target and job.wait(0) is None:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.03))
        before = latest_step_seen(run)
        sig = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}.get(kind, signal.SIGTERM)
        if kind == "all":
            for pid in [job.agent.pid] if torchrun else pids:
                os.kill(pid, sig)
        else:
            os.kill(pids[victim], sig)
        faulted = time.time()
        bound = END_BOUND_S + (TIMEOUT_S if kind == "stop" else 0)
        if kind == "stop":
            deadline = time.time() + bound
            other = pids[1 - victim]
            while time.time() < deadline and _alive(other, job, 1 - victim):
                time.sleep(0.01)
            assert not _alive(other, job, 1 - victim), f"rank {1 - victim} hangs on its stopped peer"
            gone = time.time() - faulted
            assert gone >= TIMEOUT_S - 0.5, (
                f"rank {1 - victim} gave up after {gone:.1f} s, before the timeout"
            )
            os.kill(pids[victim], signal.SIGKILL)  # what a scheduler does to the hung one
        codes = job.wait(bound)
        if codes is None:
            job.kill_all()
            raise AssertionError(
                f"{kind} of rank {victim}: the job still runs {bound:.0f} s later\n{job.stderr()}"
            )
        tally.end_seconds.append(time.time() - faulted)
        tally.trials += 1
        if kind in ("preempt", "all"):
            step = check_two_rank_preemption(run, job, codes, before)
            who = "both ranks" if kind == "all" else f"rank {victim}"
            where = f"SIGTERM to {who} at step {before}: both ranks stopped after step {step}, exit 75"
        else:
            expected = {victim: -sig} if kind == "kill" else {victim: -signal.SIGKILL}
            if not torchrun:
                assert codes[victim] == expected[victim], (codes, job.stderr())
                assert codes[1 - victim] == 1, (codes, job.stderr())
                err = job.ranks[1 - victim].stderr()
                assert "Traceback" not in err and "--resume" in err, err[-3000:]
            else:
                assert codes[0] != 0, job.stderr()
            assert not (run / "summary.json").exists()
            where = f"{kind} rank {victim} at step {before}: job over in {tally.end_seconds[-1]:.2f} s"
        from_step = whole_checkpoint_step(run)
        resumed = Job(run, resume=True, torchrun=torchrun)
        codes = finish(resumed)
        assert set(codes) == {0}, (codes, resumed.stderr())
        check_finished_run(run, reference, STEPS)
        tally.runs_finished += 1
        tally.where.append(where)
        log(f"trial {trial}: {where}; resumed with 2 ranks from step {from_step}: "
            "weights equal the uninterrupted 2-rank run bit for bit")  # fmt: skip
    return tally


def _alive(pid: int, job: Job, rank: int) -> bool:
    if not job.torchrun:
        return job.ranks[rank].poll() is None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def check_two_rank_preemption(run: Path, job: Job, codes: list[int], before: int) -> int:
    if not job.torchrun:
        assert codes == [EXIT_PREEMPTED, EXIT_PREEMPTED], (codes, job.stderr())
    else:  # torchrun exits 1 (and lists the failed workers' exit codes, unless it was signalled)
        err = job.stderr_path.read_text()
        assert err.count("excise train: preempted by") == 2, err[-4000:]
        assert set(re.findall(r"exitcode\s*:\s*(-?\d+)", err)) <= {str(EXIT_PREEMPTED)}, err[-4000:]
    step = __import__("json").loads((run / MARKER).read_text())["step"]
    assert step >= before and latest_step_seen(run) == step
    assert whole_checkpoint_step(run) == step
    assert [e["step"] for e in events(run, "preempted")] == [step]
    return step


def test_kill_hang_or_preempt_one_of_two_ranks_then_resume_equal(tmp_path):
    tally = campaign(tmp_path, trials=4, seed=5, log=lambda _: None)
    assert tally.trials == tally.runs_finished == 4
    assert max(tally.end_seconds) < END_BOUND_S + TIMEOUT_S


@pytest.mark.slow
def test_torchrun_kill_hang_or_preempt_one_rank_then_resume_equal(tmp_path):
    tally = campaign(tmp_path, trials=4, seed=6, torchrun=True, log=lambda _: None)
    assert tally.trials == tally.runs_finished == 4


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torchrun", action="store_true", help="real torchrun jobs instead of forked ranks")
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        tally = campaign(Path(tmp), args.trials, args.seed, args.torchrun)
    ends = ", ".join(f"{s:.2f}" for s in tally.end_seconds)
    print(f"faults: {tally.trials}; seconds from the fault to the end of the job: {ends}; "
          f"finished runs: {tally.runs_finished}, all equal to the uninterrupted 2-rank run bit for bit; "
          f"{time.time() - started:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
