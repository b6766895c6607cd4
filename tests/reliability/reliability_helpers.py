"""Shared helpers for the reliability tests: a tiny run, its weights, the CLI in a subprocess,
and training processes to kill or signal (:class:`Trainer`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch
from safetensors.torch import load_file

from excise.config import Config, load_config

# A model and corpus small enough that a run takes a few seconds on one shared core.
TINY = [
    "model.vocab_size=320", "model.context=32", "model.n_layers=2", "model.d_model=32",
    "model.n_heads=4", "model.d_ff=64", "partition.forget_heads=1", "partition.forget_mlp_units=16",
    "data.builtin=bilingual", "data.builtin_documents=60", "train.batch_size=4",
    "train.lr=3e-3", "train.warmup_steps=2", "eval.max_tokens=256", "eval.batch_size=4",
    "logging.progress=false", "logging.every=1", "train.threads=1",
]  # fmt: skip


def tiny_config(*overrides: str) -> Config:
    return load_config(None, TINY + list(overrides))


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(run) / "model.safetensors"))


def assert_identical(a: dict, b: dict) -> None:
    """Bit-for-bit equal tensors under the same names."""
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def events(run: Path, kind: str | None = None) -> list[dict]:
    lines = (Path(run) / "metrics.jsonl").read_text().splitlines()
    found = [json.loads(line) for line in lines if line.strip()]
    return [e for e in found if kind is None or e["event"] == kind]


def cli_env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCISE_FAULT")}
    env.update({"EXCISE_CACHE": str(cache), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})
    env.update(extra)
    return env


def excise_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "excise", *args]


def run_cli(*args: str, cache: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        excise_cmd(*args), env=cli_env(cache, **env), capture_output=True, text=True, timeout=timeout
    )


def empty_recipe(directory: Path) -> Path:
    recipe = Path(directory) / "recipe.yaml"
    recipe.write_text("{}\n")
    return recipe


def assert_user_error(done: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit code 2, one paragraph on stderr naming ``needles``, no traceback."""
    err = done.stderr
    assert done.returncode == 2, (done.returncode, err[-2000:])
    assert "Traceback" not in err, err
    message = err.strip()
    assert message, "no message"
    assert "\n\n" not in message, message  # one paragraph
    for needle in needles:
        assert needle in message, (needle, message)
    return message


class Trainer:
    """One ``excise train`` process on ``run``: forked from this interpreter, or the real CLI.

    Both run the command line's own code (``excise.cli.main``), so exit codes are the
    CLI's. Forking skips the seconds of torch import a fresh ``python -m excise`` pays, so
    a test can afford dozens of trainers. ``env`` is added to the child's environment
    (fault-injection variables, or ``RANK`` / ``WORLD_SIZE`` ... for one rank of a
    multi-process run); stderr goes to ``<run>-<tag>-stderr.txt`` beside the run.
    """

    def __init__(self, run: Path, run_args: list[str], resume: bool = False, env: dict | None = None,
                 cli: bool = False, cache: Path | None = None, tag: str = "") -> None:  # fmt: skip
        run = Path(run)
        env = dict(env or {})
        recipe = empty_recipe(run.parent)
        argv = ["train", str(recipe), *TINY, *run_args, "--out", str(run), *(["--resume"] if resume else [])]
        self.stderr_path = run.parent / f"{run.name}{'-' + tag if tag else ''}-stderr.txt"
        self.started = time.time()
        self.returncode: int | None = None
        if cli:
            cache = Path(cache or os.environ["EXCISE_CACHE"])
            with open(self.stderr_path, "w") as err:
                self.proc = subprocess.Popen(
                    excise_cmd(*argv), env=cli_env(cache, **env), stdout=subprocess.DEVNULL, stderr=err,
                )  # fmt: skip
            self.pid = self.proc.pid
            return
        self.proc = None
        err_fd = os.open(self.stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        pid = os.fork()
        if pid == 0:  # the child trains and never returns into the test
            code = 1
            try:
                os.environ.update(env)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(err_fd, 2)
                # pytest replaces sys.stdout / sys.stderr by in-memory captures: use the fds
                sys.stdout = open(1, "w", closefd=False)
                sys.stderr = open(2, "w", buffering=1, closefd=False)
                from excise.cli import main

                code = main(argv)
            except BaseException:
                os.write(err_fd, traceback.format_exc().encode())
            finally:
                sys.stderr.flush()
                os._exit(code)
        os.close(err_fd)
        self.pid = pid

    def poll(self) -> int | None:
        """The exit code (negative: killed by that signal), or None while it runs."""
        if self.returncode is not None:
            return self.returncode
        if self.proc is not None:
            self.returncode = self.proc.poll()
            return self.returncode
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return None
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send(self, sig: int) -> None:
        if self.poll() is None:  # never signal a reaped (possibly reused) pid
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int | None:
        """Exit code; None if still running after ``timeout`` seconds."""
        deadline = None if timeout is None else time.time() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.time() > deadline:
                return None
            time.sleep(0.01)
        return code

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text()
        except OSError:
            return ""


def latest_step_seen(run: Path, since: float = 0.0) -> int:
    """Highest train step logged in ``run`` (records older than ``since`` are ignored)."""
    path = Path(run) / "metrics.jsonl"
    if not path.exists():
        return 0
    best = 0
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written right now
        if record.get("event") == "train" and record.get("time", 0) >= since:
            best = max(best, record["step"])
    return best


def whole_checkpoint_step(run: Path) -> int:
    from excise.train import checkpoints

    good = [int(p.name.split("-")[1]) for p in checkpoints.step_dirs(run) if checkpoints.verify(p) is None]
    return max(good, default=0)


def check_finished_run(run: Path, reference: Path, steps: int) -> None:
    """``run`` ended with the reference's weights bit for bit and logged every step once."""
    assert_identical(weights(reference), weights(run))
    train_steps = [e["step"] for e in events(run, "train")]
    assert train_steps == list(range(1, steps + 1)), train_steps  # nothing lost, nothing twice
    assert [e["step"] for e in events(run, "eval")] == [e["step"] for e in events(reference, "eval")]
    summary = json.loads((Path(run) / "summary.json").read_text())
    ref_summary = json.loads((Path(reference) / "summary.json").read_text())
    assert summary["tokens"] == ref_summary["tokens"]
    assert summary["label_counts"] == ref_summary["label_counts"]
    assert summary["eval"] == ref_summary["eval"]
