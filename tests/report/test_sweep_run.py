"""Running sweeps on a tiny model: stages, skip-finished, resume-killed, results.jsonl."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from report_test_helpers import TINY

import excise.train.runner as runner
from excise.sweep import RESULTS_FILE, SWEEP_FILE, parse_spec, read_results, run_sweep

REPO = Path(__file__).resolve().parents[2]
BASE = str(REPO / "configs" / "bilingual-tiny.yaml")


def tiny_spec(**extra):
    return parse_spec({"base": BASE, "overrides": TINY + ["checkpoint.every=2", "eval.every=3"], **extra})


@pytest.fixture
def train_calls(monkeypatch):
    """Record every call of the real training function."""
    calls = []
    real = runner.train

    def spy(config, out, resume=False, overwrite=False):
        calls.append((Path(out).name, resume))
        return real(config, out, resume=resume, overwrite=overwrite)

    monkeypatch.setattr(runner, "train", spy)
    return calls


def train_steps(run_dir: Path) -> list[int]:
    events = [
        json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()
    ]
    return [e["step"] for e in events if e["event"] == "train"]


def test_sweep_trains_skips_finished_and_resumes_killed(tmp_path, train_calls):
    spec = tiny_spec(grid={"method.name": ["sgtm", "weak_filter"]}, after=[])
    out = tmp_path / "sweep"
    rows = run_sweep(spec, out)
    assert [c[0] for c in train_calls] == ["sgtm", "weak_filter"]
    assert all(not resume for _, resume in train_calls)
    assert [r["run"] for r in rows] == ["sgtm", "weak_filter"]
    assert rows[0]["values"] == {"method.name": "sgtm"} and rows[0]["train"]["steps"] == 6
    record = json.loads((out / SWEEP_FILE).read_text())
    assert record["grid"] == {"method.name": ["sgtm", "weak_filter"]}
    assert [r["dir"] for r in record["runs"]] == [str(out / "sgtm"), str(out / "weak_filter")]
    assert read_results(out / RESULTS_FILE) == json.loads(json.dumps(rows))
    weights = (out / "sgtm" / "model.safetensors").read_bytes()

    # Rerun: everything finished, nothing trains.
    train_calls.clear()
    run_sweep(spec, out)
    assert train_calls == []
    assert (out / "sgtm" / "model.safetensors").read_bytes() == weights

    # "Kill" sgtm after its step-4 checkpoint: no summary, no final weights.
    run = out / "sgtm"
    (run / "summary.json").unlink()
    (run / "model.safetensors").unlink()
    assert (run / "checkpoints" / "step-0000004").is_dir()
    run_sweep(spec, out)
    assert train_calls == [("sgtm", True)]
    assert (run / "summary.json").is_file()
    steps = train_steps(run)
    assert steps == sorted(set(steps)) and steps[-1] == 6  # resumed, no duplicated events
    # resuming from the checkpoint reproduces the uninterrupted run exactly
    assert (run / "model.safetensors").read_bytes() == weights


def test_sweep_evaluates_unlearns_and_attacks(tmp_path):
    spec = tiny_spec(
        grid={"method.name": ["sgtm", "no_filter"]}, unlearn="rmu", after=["eval", "relearn"],
        relearn={"steps": 2, "overrides": ["relearn.eval_every=1", "relearn.batch_size=4"]},
    )  # fmt: skip
    out = tmp_path / "sweep"
    rows = {r["run"]: r for r in run_sweep(spec, out, ["unlearn.steps=2", "unlearn.batch_size=4"])}
    assert set(rows) == {"sgtm", "no_filter", "no_filter-rmu"}
    for name, row in rows.items():
        ev = json.loads((out / name / "eval.json").read_text())
        assert row["calibrated"] == ev["calibrated"] and row["full"] == ev["full"]
    assert "ablated" in rows["sgtm"] and "ablated" not in rows["no_filter"]
    assert "relearn" not in rows["no_filter"]  # the reference is not attacked
    reference = rows["no_filter"]["full"]["forget"]
    for name in ("sgtm", "no_filter-rmu"):
        rl = json.loads((out / name / "relearn.json").read_text())
        assert rl["reference_forget_loss"] == pytest.approx(reference)
        assert rows[name]["relearn"]["steps_to_recover"] == rl["steps_to_recover"]
        assert rl["steps"] == [0, 1, 2]
    assert rows["no_filter-rmu"]["method"] == "rmu" and rows["no_filter-rmu"]["kind"] == "unlearn"


def test_a_failing_run_does_not_stop_the_others(tmp_path, monkeypatch):
    real = runner.train

    def flaky(config, out, resume=False, overwrite=False):
        if config.method.name == "weak_filter":
            raise RuntimeError("boom")
        return real(config, out, resume=resume, overwrite=overwrite)

    monkeypatch.setattr(runner, "train", flaky)
    spec = tiny_spec(grid={"method.name": ["weak_filter", "no_filter"]}, after=[])
    from excise.errors import UserError

    with pytest.raises(UserError, match="weak_filter: RuntimeError: boom"):
        run_sweep(spec, tmp_path / "s")
    rows = {r["run"]: r for r in read_results(tmp_path / "s" / RESULTS_FILE)}
    assert "error" in rows["weak_filter"] and "error" not in rows["no_filter"]
    assert (tmp_path / "s" / "no_filter" / "summary.json").is_file()
    shutil.rmtree(tmp_path / "s")


POOL_SCRIPT = """
import multiprocessing, os, time
from concurrent.futures import ProcessPoolExecutor
from excise.sweep.execute import _exit_with_parent
if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx, initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
        print(pool.submit(os.getpid).result(), flush=True)
        pool.submit(time.sleep, 120)
        time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has exited; nobody may reap it in a container


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_sweep_worker_exits_when_the_sweep_process_is_killed():
    """A SIGKILLed sweep must not leave workers training on as orphans."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", POOL_SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(proc.stdout.readline())
        time.sleep(0.5)  # the worker is now inside time.sleep(120)
        assert _alive(worker)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.time() + 15
        while _alive(worker) and time.time() < deadline:
            time.sleep(0.2)
        assert not _alive(worker), "worker kept running after its sweep process died"
    finally:
        proc.kill()
