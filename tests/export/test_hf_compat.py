"""Both ends of the supported transformers range load every export with equal logits.

Slow: it runs benchmarks/hf_compat.py, which exports 18 models and loads each in a fresh
interpreter per environment. The environment under test is this one; set
EXCISE_COMPAT_PYTHONS to more interpreters (colon-separated), e.g. one with
transformers 4.57: ``python -m venv .venv-tf4 && .venv-tf4/bin/pip install torch==2.13.0
'transformers==4.57.*'``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_exports_load_with_equal_logits_in_every_environment(tmp_path):
    pythons = [sys.executable, *filter(None, os.environ.get("EXCISE_COMPAT_PYTHONS", "").split(":"))]
    args = [sys.executable, str(ROOT / "benchmarks" / "hf_compat.py"), "--out", str(tmp_path)]
    for python in pythons:
        args += ["--python", python]
    done = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"all 18 exports load with equal ids and logits in {len(pythons)} environments" in done.stdout
