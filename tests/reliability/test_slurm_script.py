"""The SLURM example (``docs/slurm/excise-train.sbatch``) requeues a preempted run, and the
requeued job finishes it with the weights of an uninterrupted run.

SLURM itself is not here, so ``srun`` and ``scontrol`` are stand-ins on ``PATH``: ``srun``
runs its command, ``scontrol show hostnames`` answers localhost and ``scontrol requeue``
records the job id. Everything else is real: the batch script, its trap, torchrun with one
CPU process and ``excise train``. The script gets SIGUSR1 as ``--signal=B:USR1@300`` would
send it, mid-run; it must forward it, see the run preempted and requeue; run again (the
requeued job), it must resume and finish without requeueing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reliability_helpers import (  # noqa: E402
    TINY,
    assert_identical,
    empty_recipe,
    events,
    latest_step_seen,
    tiny_config,
    weights,
)  # fmt: skip
from test_ranks import free_port  # noqa: E402

from excise.train.runner import train  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "slurm" / "excise-train.sbatch"
STEPS = 60
ARGS = [*TINY, f"train.steps={STEPS}", "checkpoint.every=0"]

SRUN = """#!/bin/bash
while [[ "$1" == --* ]]; do shift; done   # srun's own options
exec "$@"
"""
SCONTROL = """#!/bin/bash
case "$1 $2" in
  "show hostnames") echo localhost ;;
  requeue*) echo "$2" >> "$REQUEUE_LOG" ;;
esac
"""


def test_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.slow
def test_sbatch_example_requeues_a_preempted_run_and_the_requeue_finishes_it(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    requeues = tmp_path / "requeued.txt"
    env = {
        **os.environ, "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SLURM_JOB_NODELIST": "localhost", "SLURM_NNODES": "1", "SLURM_JOB_ID": "4242",
        "SLURM_GPUS_ON_NODE": "1", "REQUEUE_LOG": str(requeues), "OMP_NUM_THREADS": "1",
        "MASTER_PORT": str(free_port()),
    }  # fmt: skip
    reference, run = tmp_path / "reference", tmp_path / "run"
    train(tiny_config(f"train.steps={STEPS}", "checkpoint.every=0"), reference)
    cmd = ["bash", str(SCRIPT), str(empty_recipe(tmp_path)), str(run), *ARGS]

    job = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 180
    while latest_step_seen(run) < 5 and job.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert job.poll() is None, job.stdout.read()
    job.send_signal(signal.SIGUSR1)  # SLURM, 300 s before the time limit
    log = job.communicate(timeout=120)[0]
    assert job.returncode == 0, log[-3000:]
    assert requeues.read_text().split() == ["4242"], log[-3000:]
    stopped = json.loads((run / "preempted.json").read_text())["step"]
    assert 5 <= stopped < STEPS and stopped == latest_step_seen(run)

    again = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert requeues.read_text().split() == ["4242"]  # finished: not requeued again
    assert not (run / "preempted.json").exists()
    assert [e["step"] for e in events(run, "train")] == list(range(1, STEPS + 1))
    assert_identical(weights(reference), weights(run))
