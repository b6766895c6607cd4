"""The demo's stated conclusions hold on two seeds (slow: two full ``excise demo`` runs,
about 7 minutes each on a 2-core CPU).

Run with ``python -m pytest -m slow tests/report/test_demo_conclusions.py``.
"""

from __future__ import annotations

import pytest

from excise.cli import main
from excise.report.findings import DEMO_CONCLUSIONS, check_conclusions, demo_findings
from excise.report.records import load_runs


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_demo_conclusions_hold(tmp_path, seed):
    out = tmp_path / f"demo-s{seed}"
    assert main(["demo", "--seed", str(seed), "--out", str(out)]) == 0
    _, records = load_runs(out)
    findings = demo_findings(records)
    held = check_conclusions(findings)
    failed = [c.statement for c in DEMO_CONCLUSIONS if not held[c.name]]
    assert not failed, f"seed {seed}: {failed} ({findings})"
