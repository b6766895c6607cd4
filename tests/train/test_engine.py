"""The training engine's invariants: resume, processes, accumulation, masking, filters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from excise.config import ConfigError, load_config
from excise.errors import UserError
from excise.train.runner import train

# A model and corpus small enough that a run takes a few seconds.
TINY = [
    "model.vocab_size=320", "model.context=32", "model.n_layers=2", "model.d_model=32",
    "model.n_heads=4", "model.d_ff=64", "partition.forget_heads=1", "partition.forget_mlp_units=16",
    "data.builtin=bilingual", "data.builtin_documents=60", "train.batch_size=4",
    "train.lr=3e-3", "train.warmup_steps=2", "eval.max_tokens=512", "eval.batch_size=4",
    "logging.progress=false", "logging.every=1", "train.threads=1",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EXCISE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def cfg(*overrides):
    return load_config(None, TINY + list(overrides))


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_run_directory_contract(tmp_path):
    run = tmp_path / "run"
    summary = train(cfg("train.steps=6", "eval.every=3"), run)
    for name in [
        "config.yaml",
        "metrics.jsonl",
        "model.safetensors",
        "partition.json",
        "meta.json",
        "summary.json",
        "tokenizer.json",
    ]:
        assert (run / name).is_file(), name
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_events = [e for e in events if e["event"] == "train"]
    assert [e["step"] for e in train_events] == [1, 2, 3, 4, 5, 6]
    assert all(e["tokens_per_second"] > 0 for e in train_events)
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [3, 6]
    assert set(evals[-1]) >= {"full", "ablated", "domain_steps"}
    assert summary["steps"] == 6
    # steps drawn per true domain so far: the final eval's counts are the run's label counts
    by_domain: dict[str, int] = {}
    for key, n in summary["label_counts"].items():
        by_domain[key.split("/")[0]] = by_domain.get(key.split("/")[0], 0) + n
    assert evals[-1]["domain_steps"] == by_domain
    assert sum(evals[0]["domain_steps"].values()) == 3
    meta = json.loads((run / "meta.json").read_text())
    assert meta["seed"] == 0 and meta["world_size"] == 1 and meta["masking"] == "grads"


def test_zero_steps_writes_initial_model(tmp_path):
    train(cfg("train.steps=0"), tmp_path / "a")
    train(cfg("train.steps=0"), tmp_path / "b")
    assert_identical(weights(tmp_path / "a"), weights(tmp_path / "b"))


def test_refuses_non_empty_run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        train(cfg("train.steps=0"), run)
    assert (run / "notes.txt").read_text() == "mine"
    train(cfg("train.steps=0"), run, overwrite=True)
    assert not (run / "notes.txt").exists()


def test_same_seed_is_bitwise_deterministic(tmp_path):
    train(cfg("train.steps=4"), tmp_path / "a")
    train(cfg("train.steps=4"), tmp_path / "b")
    assert_identical(weights(tmp_path / "a"), weights(tmp_path / "b"))


def test_accumulation_equals_full_batch(tmp_path):
    # float64 would be exact up to summation order; fp32 agrees to rounding.
    train(cfg("train.steps=3", "train.micro_batch_size=1"), tmp_path / "acc")
    train(cfg("train.steps=3"), tmp_path / "full")
    a, b = weights(tmp_path / "acc"), weights(tmp_path / "full")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def non_forget_elements(run: Path) -> dict[str, torch.Tensor]:
    """Every element outside the forget ranges, found through partition.json alone."""
    part = json.loads((run / "partition.json").read_text())
    out = {}
    for name, t in weights(run).items():
        mask = torch.ones_like(t, dtype=torch.bool)
        if name in part:
            for start, stop in part[name]["forget"]:
                mask.narrow(part[name]["dim"], start, stop - start).fill_(False)
        out[name] = t[mask]
    return out


def test_forget_only_updates_run_changes_only_forget_elements(tmp_path):
    """Every step labelled forget, masking updates, mask_shared: retain elements, embeddings
    and masked layers' norms stay bit-identical; forget units and the final norm (never
    masked, as in the paper's code) learn."""
    # fpr=1 and recall=1: every step is labelled forget.
    common = ["method.masking=updates", "method.mask_shared=true", "labels.recall=1", "labels.fpr=1"]
    train(cfg("train.steps=0", *common), tmp_path / "init")
    train(cfg("train.steps=5", *common), tmp_path / "trained")
    never_masked = ("norm_f.weight", "norm_f.bias")
    kept_before, kept_after = (
        {k: v for k, v in non_forget_elements(tmp_path / run).items() if k not in never_masked}
        for run in ("init", "trained")
    )
    assert_identical(kept_before, kept_after)
    before, after = weights(tmp_path / "init"), weights(tmp_path / "trained")
    assert any(not torch.equal(before[k], after[k]) for k in before if k not in never_masked), (
        "forget units did not learn"
    )
    assert not torch.equal(before["norm_f.bias"], after["norm_f.bias"]), "the final norm must learn"


def test_weak_filter_skips_forget_labelled_steps(tmp_path):
    summary = train(cfg("train.steps=12", "method.name=weak_filter"), tmp_path / "weak")
    forget_labelled = sum(v for k, v in summary["label_counts"].items() if k.endswith("/forget"))
    assert summary["skipped_steps"] == forget_labelled > 0
    strict = train(cfg("train.steps=12", "method.name=strict_filter"), tmp_path / "strict")
    forget_domain = sum(v for k, v in strict["label_counts"].items() if k.startswith("forget/"))
    assert strict["skipped_steps"] >= forget_domain > 0
    # a filter trained on retain data only never changes its forget loss by learning Spanish
    assert "ablated" not in strict["eval"]


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError) as e:
        load_config(
            None, ["partition.forget_heads=4", "model.n_heads=4", "labels.recall=1.5", "train.stepz=3"]
        )
    msg = str(e.value)
    assert "labels.recall" in msg and "train.stepz" in msg


def _cli(tmp_path: Path, *args) -> list[str]:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("{}\n")
    return [sys.executable, "-m", "excise", "train", str(recipe), *args]


def test_resume_after_kill_equals_uninterrupted(tmp_path):
    # Long enough that the kill lands mid-run on an idle machine too: it is sent as soon as
    # the first checkpoint appears, with ~190 steps still to go.
    steps = 200
    args = [*TINY, f"train.steps={steps}", "checkpoint.every=4", "checkpoint.keep=2"]
    reference = tmp_path / "reference"
    train(load_config(None, args), reference)
    run = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        _cli(tmp_path, *args, "--out", str(run)), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    ckpt = run / "checkpoints"
    while time.time() < deadline and proc.poll() is None:
        if ckpt.is_dir() and any(p.name.startswith("step-") for p in ckpt.iterdir()):
            break
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "summary.json").exists()
    saved = [int(p.name.split("-")[1]) for p in ckpt.iterdir() if p.name.startswith("step-")]
    assert saved and max(saved) < steps  # the resumed run really continues from mid-run
    done = subprocess.run(
        _cli(tmp_path, *args, "--out", str(run), "--resume"), env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert_identical(weights(reference), weights(run))


def test_two_processes_equal_one(tmp_path):
    args = [*TINY, "train.steps=4", "eval.max_tokens=64"]
    one = tmp_path / "one"
    train(load_config(None, args), one)
    two = tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        *_cli(tmp_path, *args, "--out", str(two))[1:],
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = weights(one), weights(two)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    s1 = json.loads((one / "summary.json").read_text())
    s2 = json.loads((two / "summary.json").read_text())
    assert s1["label_counts"] == s2["label_counts"] and s2["world_size"] == 2


def test_init_from_starts_with_the_source_weights(tmp_path):
    train(cfg("train.steps=3"), tmp_path / "source")
    train(cfg("train.steps=0", f"train.init_from={tmp_path / 'source'}", "seed=7"), tmp_path / "copy")
    assert_identical(weights(tmp_path / "source"), weights(tmp_path / "copy"))
    assert (tmp_path / "copy" / "tokenizer.json").read_text() == (
        tmp_path / "source" / "tokenizer.json"
    ).read_text()
    with pytest.raises(UserError, match="init_from"):
        train(cfg("train.steps=0", f"train.init_from={tmp_path / 'missing'}"), tmp_path / "bad")
