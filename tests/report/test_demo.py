"""``excise demo``: the --quick pipeline end to end, and how it treats --out."""

from __future__ import annotations

import json

import pytest

from excise.cli import main
from excise.errors import UserError
from excise.report.demo import DEMO_METHODS, prepare_out
from excise.sweep import RESULTS_FILE, read_results

IDENTITY = {"quick": True, "overrides": ["a=1"]}


def test_prepare_out_new_continue_refuse_replace(tmp_path):
    assert prepare_out(tmp_path / "absent", IDENTITY, overwrite=False) == "new"
    assert prepare_out(tmp_path, IDENTITY, overwrite=False) == "new"  # empty
    (tmp_path / "sweep.json").write_text(json.dumps({"demo": IDENTITY}))
    assert prepare_out(tmp_path, IDENTITY, overwrite=False) == "continue"
    with pytest.raises(UserError, match="different demo"):
        prepare_out(tmp_path, {"quick": False, "overrides": []}, overwrite=False)
    assert prepare_out(tmp_path, {"quick": False, "overrides": []}, overwrite=True) == "replaced"
    assert not tmp_path.exists()


def test_prepare_out_never_deletes_unrelated_files(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match="not empty"):
        prepare_out(tmp_path, IDENTITY, overwrite=False)
    with pytest.raises(UserError, match="refusing to delete"):
        prepare_out(tmp_path, IDENTITY, overwrite=True)
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = {r["run"]: r for r in read_results(out / RESULTS_FILE)}
    assert set(rows) == {*DEMO_METHODS, "no_filter-rmu"}
    for name, row in rows.items():
        assert "error" not in row
        assert set(row["calibrated"]) >= {"forget", "retain"}, name
        assert row["values"].get("method.name", "no_filter") in DEMO_METHODS
    assert "ablated" in rows["sgtm"]
    attacked = {n for n, r in rows.items() if "relearn" in r}
    assert attacked == {"sgtm", "weak_filter", "strict_filter", "no_filter-rmu"}
    reference = rows["no_filter"]["full"]["forget"]
    assert all(rows[n]["relearn"]["reference_forget_loss"] == pytest.approx(reference) for n in attacked)
    report = (out / "report.md").read_text()
    assert "(plots/tradeoff.png)" in report and "(plots/relearn.png)" in report
    # the printed table carries the calibrated numbers and says where the report is
    assert f"{rows['sgtm']['calibrated']['forget']:.3f}" in printed
    assert f"{rows['no_filter-rmu']['calibrated']['retain']:.3f}" in printed
    assert str(out / "report.md") in printed

    # rerun: everything is finished, nothing changes
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/model.safetensors")}
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/model.safetensors")} == before
    assert "skipped" in capsys.readouterr().out
    # a full demo will not silently reuse the quick one
    assert main(["demo", "--out", str(out)]) == 2
