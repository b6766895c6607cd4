"""``benchmarks/gpu_check.py --dry-run``: the one-shot GPU check rehearsed on the CPU.

The dry run goes through the GPU run's code paths (child processes, time boxes, torchrun
with a preemption and a resume, the novels run, eager and compiled throughput items) at
tiny shapes. The default test runs every section but only the 8M shape's items (compiled:
SGTM, with dynamo's ``eager`` backend), with one item made to crash its process: the others
must still be measured (the process is restarted for them) and the crash reported. The
``slow`` test runs the whole plan as a user's ``--dry-run`` does (``aot_eager``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
SHARED = REPO.parent / "shared" / "data" / "literature"


def novels(tmp: Path) -> tuple[Path, Path]:
    """The real novels when this checkout sits beside them, else the built-in corpus."""
    if (SHARED / "en.jsonl").is_file() and (SHARED / "es.jsonl").is_file():
        return SHARED / "en.jsonl", SHARED / "es.jsonl"
    from excise.data.cli import generate_to_dir

    generate_to_dir("bilingual", tmp / "corpus", 200, 0)
    return tmp / "corpus" / "retain.jsonl", tmp / "corpus" / "forget.jsonl"


def dry_run(tmp: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    en, es = novels(tmp)
    out = tmp / "gpu_check.json"
    cmd = [sys.executable, str(SCRIPT), "--dry-run", "--out", str(out), "--work-dir", str(tmp / "work"),
           "--novels-en", str(en), "--novels-es", str(es), *extra]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done, json.loads(out.read_text())


def check_sections(res: dict, stdout: str) -> None:
    assert res["dry_run"] is True and res["device"] == "cpu"
    assert {k: v["status"] for k, v in res["sections"].items() if k != "throughput"} == {
        "env": "ok",
        "torchrun": "ok",
        "novels": "ok",
    }
    t = res["torchrun"]  # SIGTERM through torchrun, checkpoint, torchrun --resume
    assert t["backend"] == "gloo" and t["world_size"] == 1 and t["every_step_once"]
    assert t["signal_at_step"] <= t["stopped_after_step"] < t["steps"]
    n = res["novels"]
    assert n["loss_fell"] and n["last_losses_mean"] < 0.9 * n["first_losses_mean"]
    assert set(n["eval"]) == {"full", "ablated"}
    assert res["peak"]["gflops"] > 0 and res["peak"]["dtype"] == "bfloat16"
    assert "DRY RUN" in stdout and "plain/transformers" in stdout


def check_item(v: dict) -> None:
    assert v["status"] == "ok", v
    assert v["tokens_per_second"] > 0 and 0 < v["mfu"] and v["peak_memory_mib"] > 0
    assert sum(v["steps_timed"].values()) >= len(v["steps_timed"])


def test_dry_run_measures_everything_and_survives_a_crashing_item(tmp_path):
    items = "8m/eager/*,8m/compiled/sgtm"  # dynamo's eager backend: tracing without AOT, quicker
    done, res = dry_run(tmp_path, "--only", items, "--inject-fault", "8m/eager/sgtm=crash",
                        "--compile-backend", "eager")  # fmt: skip
    check_sections(res, done.stdout)
    got = res["items"]
    assert set(got) == {"8m/eager/plain", "8m/eager/sgtm", "8m/eager/gradient_routing",
                        "8m/eager/transformers", "8m/compiled/sgtm"}  # fmt: skip
    assert got["8m/eager/sgtm"]["status"] == "failed" and "exit 3" in got["8m/eager/sgtm"]["error"]
    for name, v in got.items():
        if name != "8m/eager/sgtm":
            check_item(v)
    assert set(got["8m/compiled/sgtm"]["steps_timed"]) == {"default", "retain", "forget"}
    assert res["sections"]["throughput"]["launches"] == 2  # restarted for the items left
    assert set(res["ratios"]["8m/eager"]) == {"gradient_routing_over_plain", "plain_over_transformers"}


@pytest.mark.slow
def test_full_dry_run(tmp_path):
    done, res = dry_run(tmp_path)
    check_sections(res, done.stdout)
    assert len(res["items"]) == 16 and res["sections"]["throughput"]["status"] == "ok"
    for v in res["items"].values():
        check_item(v)
    for key in ("8m/eager", "8m/compiled", "64m/eager", "64m/compiled"):
        assert set(res["ratios"][key]) == {"sgtm_over_plain", "gradient_routing_over_plain",
                                           "plain_over_transformers"}  # fmt: skip
