"""``excise report`` on fabricated run directories: plots, tables, missing pieces."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from run_dirs import write_run_dir

from excise.cli import main
from excise.errors import UserError
from excise.report.markdown import write_report
from excise.report.records import load_runs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_run(root: Path, name: str, method: str, recall: float | None, seed: int, forget: float,
              retain: float, relearn: dict | None = None, absorption: bool = False) -> dict:  # fmt: skip
    """A run directory as training + eval + relearn leave it, with made-up numbers."""
    partitioned = method == "sgtm"
    events = []
    for step in (10, 20, 30):
        losses = {"full": {"forget": forget - 0.1 + 1 / step, "retain": retain + 1 / step}}
        if partitioned:
            losses["ablated"] = {"forget": forget + 1 / step, "retain": retain + 0.05 + 1 / step}
        events.append({"event": "train", "step": step, "loss": 4.0, "tokens": step * 64})
        events.append({"event": "eval", "step": step, "tokens": step * 64, **losses})
        if absorption:
            events.append({"event": "absorption", "step": step, "grad_norms": {
                "forget": [{"forget": 1.0 * step / 10, "retain": 1.0}, {"forget": 0.5, "retain": 0.5}],
                "retain": [{"forget": 0.1, "retain": 1.0}],
            }})  # fmt: skip
    ev = {"full": {"forget": forget - 0.1, "retain": retain}, "partitioned": partitioned,
          "calibrated": {"forget": forget - 0.02, "retain": retain - 0.01}}  # fmt: skip
    if partitioned:
        ev["ablated"] = {"forget": forget, "retain": retain + 0.05}
    summary = {"method": method, "steps": 30, "tokens": 1920, "wall_seconds": 1.5, "tokens_per_second": 1280.0,
               "skipped_steps": 0, "eval": {k: v for k, v in ev.items() if k in ("full", "ablated")}}  # fmt: skip
    d = write_run_dir(root, name, {"model": {"vocab_size": 320}, "method": {"name": method}}, summary=summary,
                      eval=ev, relearn=relearn, events=events, cut_line_at=3)  # fmt: skip
    values = {"method.name": method, "seed": seed}
    if recall is not None:
        values["labels.recall"] = recall
    return {"name": name, "dir": str(d), "values": values, "method": method, "kind": "train"}


def fabricate_sweep(root: Path) -> dict:
    runs = []
    for recall in (1.0, 0.9):
        for seed, delta in ((0, 0.0), (1, 1.0)):
            runs.append(write_run(root, f"sgtm-recall{recall:g}-seed{seed}", "sgtm", recall, seed,
                                  forget=5.0 + delta + recall, retain=3.0, absorption=True))  # fmt: skip
            runs.append(write_run(root, f"weak-recall{recall:g}-seed{seed}", "weak_filter", recall, seed,
                                  forget=4.0 + delta, retain=3.1))  # fmt: skip
    runs.append(write_run(root, "no_filter-seed0", "no_filter", None, 0, forget=2.5, retain=3.0))
    runs.append(write_run(
        root, "strict-seed0", "strict_filter", None, 0, forget=7.0, retain=3.2,
        relearn={"steps": [0, 50, 100], "forget_loss": [7.0, 3.0, 2.4], "retain_loss": [3.2, 3.2, 3.2],
                 "reference_forget_loss": 2.4, "steps_to_recover": 100, "released": "as-is"},
    ))  # fmt: skip
    rmu = write_run(
        root, "no_filter-seed0-rmu", "rmu", None, 0, forget=2.6, retain=3.0,
        relearn={"steps": [0, 10, 20], "forget_loss": [6.0, 2.3, 2.2], "retain_loss": [3.0, 3.0, 3.0],
                 "reference_forget_loss": 2.4, "steps_to_recover": 10, "released": "as-is"},
    )  # fmt: skip
    rmu["kind"] = "unlearn"
    runs.append(rmu)
    sweep = {"name": "fabricated", "base": "configs/bilingual-tiny.yaml", "grid": {}, "runs": runs}
    (root / "sweep.json").write_text(json.dumps(sweep))
    return sweep


def test_report_on_a_sweep_has_valid_plots_and_the_numbers(tmp_path):
    fabricate_sweep(tmp_path)
    assert main(["report", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    for plot in ("tradeoff", "undiscovered", "relearn", "absorption"):
        png = tmp_path / "plots" / f"{plot}.png"
        assert png.read_bytes()[:8] == PNG_SIGNATURE and png.stat().st_size > 5000
        assert f"(plots/{plot}.png)" in md
    # every figure of every eval.json appears in the tables
    for ev_path in tmp_path.glob("*/eval.json"):
        ev = json.loads(ev_path.read_text())
        for variant in ("full", "ablated", "calibrated"):
            for value in (ev.get(variant) or {}).values():
                assert f"{value:.3f}" in md, (ev_path, variant, value)
    # mean ± sample std over the two seeds: sgtm at recall 0.9 → forget 5.88 and 6.88 (calibrated)
    assert f"6.380 ± {math.sqrt(0.5):.3f}" in md
    assert f"4.480 ± {math.sqrt(0.5):.3f}" in md  # weak filter, recall 1.0
    # relearning: steps to recover and the RMU ratio
    assert "| 100 |" in md and "10.0x the steps RMU needs (10)" in md
    assert "## Missing" not in md


def test_report_says_what_is_missing_instead_of_failing(tmp_path):
    run = tmp_path / "only-trained"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"method": {"name": "sgtm"}}))
    (run / "metrics.jsonl").write_text(json.dumps({"event": "train", "step": 1, "loss": 3.0}) + "\n")
    path = write_report(tmp_path)
    md = path.read_text()
    assert "## Missing" in md
    assert "eval.json for only-trained" in md
    assert "eval events in metrics.jsonl" in md and "relearn.json" in md
    assert not (tmp_path / "plots" / "tradeoff.png").exists()


def test_report_reads_a_single_run_directory(tmp_path):
    write_run(tmp_path, "r", "sgtm", 0.9, 0, forget=5.0, retain=3.0)
    write_report(tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text()
    assert "5.000" in md and (tmp_path / "r" / "plots" / "tradeoff.png").is_file()
    assert "undiscovered.png" not in md  # one recall value: no curve


def test_report_of_an_empty_or_absent_directory_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="holds no runs"):
        write_report(tmp_path)
    assert main(["report", str(tmp_path / "absent")]) == 2


def test_moved_sweep_directories_are_found_by_name(tmp_path):
    sweep = fabricate_sweep(tmp_path / "a")
    (tmp_path / "a").rename(tmp_path / "b")
    _, records = load_runs(tmp_path / "b")
    assert len(records) == len(sweep["runs"]) and all(r.eval is not None for r in records)


def test_leakage_expresses_released_forget_loss_as_no_filter_forget_tokens(tmp_path):
    from excise.report.leakage import leakage, tokens_to_reach
    from excise.report.records import RunRecord

    config = {"train": {"batch_size": 2}, "model": {"context": 10}}  # 20 tokens per step
    events = [
        {"event": "eval", "step": 10, "full": {"forget": 6.0}, "domain_steps": {"forget": 5, "retain": 5}},
        {"event": "eval", "step": 20, "full": {"forget": 4.0}, "domain_steps": {"forget": 12, "retain": 8}},
        {"event": "eval", "step": 30, "full": {"forget": 3.0}, "domain_steps": {"forget": 15, "retain": 15}},
    ]
    ref = RunRecord(
        name="nf", dir=tmp_path, method="no_filter", config=config, eval_events=events, values={"seed": 0}
    )
    sgtm = RunRecord(
        name="s",
        dir=tmp_path,
        method="sgtm",
        config=config,
        values={"seed": 0},
        eval={"partitioned": True, "ablated": {"forget": 5.0}},
        summary={"label_counts": {"forget/forget": 9, "forget/default": 1, "retain/default": 10}},
    )
    weak = RunRecord(
        name="w",
        dir=tmp_path,
        method="weak_filter",
        config=config,
        values={"seed": 0},
        eval={"partitioned": False, "full": {"forget": 6.5}},
        summary={"label_counts": {"forget/forget": 9, "forget/default": 1, "retain/default": 10}},
    )
    rows = {row.run: row for row in leakage([ref, sgtm, weak])}
    assert set(rows) == {"s", "w"}
    assert rows["s"].reference == "nf" and rows["s"].released == "ablated" and rows["s"].forget_loss == 5.0
    # 5.0 lies halfway between 6.0 (100 forget tokens) and 4.0 (240): 170 tokens
    assert rows["s"].relation == "=" and rows["s"].equivalent_tokens == pytest.approx(170)
    assert rows["s"].trained_tokens == 200 and rows["s"].share == pytest.approx(0.85)
    # the weak filter trained on its one undiscovered forget step only; 6.5 > first eval
    assert (rows["w"].relation, rows["w"].equivalent_tokens, rows["w"].trained_tokens) == ("<=", 100, 20)
    curve = [(100.0, 6.0), (240.0, 4.0)]
    assert tokens_to_reach(curve, 2.0) == (">", 240.0)
    assert tokens_to_reach(curve, 4.0) == ("=", 240.0)


@pytest.mark.parametrize("method, trained_steps", [
    ("sgtm", 10), ("gradient_routing", 10), ("no_filter", 10), ("rmu", 10),
    ("weak_filter", 1),  # skips the steps labelled forget, trains the undiscovered one
    ("strict_filter", 0),  # skips all forget-domain data
])  # fmt: skip
def test_forget_tokens_trained_are_the_forget_steps_the_method_does_not_skip(tmp_path, method, trained_steps):
    from excise.report.leakage import forget_tokens_trained
    from excise.report.records import RunRecord

    counts = {
        "forget/forget": 9,
        "forget/default": 1,
        "retain/default": 10,
        "retain/retain": 3,
        "retain/forget": 2,
    }
    record = RunRecord(name="r", dir=tmp_path, method=method, summary={"label_counts": counts},
                       config={"train": {"batch_size": 2}, "model": {"context": 10}})  # fmt: skip
    assert forget_tokens_trained(record) == 20 * trained_steps


def _sweep_dir(root: Path, name: str, runs: list[dict]) -> Path:
    (root / "sweep.json").write_text(json.dumps({"name": name, "base": "b.yaml", "grid": {}, "runs": runs}))
    return root


def test_several_sweeps_merge_and_each_run_is_paired_with_its_own_seeds_baselines(tmp_path):
    a, b = tmp_path / "seed0", tmp_path / "seed1"
    _sweep_dir(a, "s0", [
        write_run(a, "sgtm", "sgtm", 0.9, 0, forget=6.0, retain=3.25),  # ablated retain 3.30
        write_run(a, "nf", "no_filter", None, 0, forget=2.5, retain=3.0),
        write_run(a, "weak", "weak_filter", 0.9, 0, forget=4.0, retain=3.1),
    ])  # fmt: skip
    _sweep_dir(b, "s1", [
        write_run(b, "sgtm", "sgtm", 0.9, 1, forget=7.0, retain=2.95),
        write_run(b, "nf", "no_filter", None, 1, forget=2.0, retain=2.5),
        write_run(b, "weak", "weak_filter", 0.9, 1, forget=5.5, retain=2.6),
        write_run(b, "weak-all", "weak_filter", 1.0, 1, forget=9.0, retain=2.6),  # other recall
    ])  # fmt: skip
    with pytest.raises(UserError, match="--out"):
        write_report([a, b])
    assert main(["report", str(a), str(b), "--out", str(tmp_path / "both")]) == 0
    md = (tmp_path / "both" / "report.md").read_text()
    assert "# excise report: s0 + s1" in md and "seed0/sgtm" in md and "seed1/weak-all" in md
    assert (tmp_path / "both" / "plots" / "tradeoff.png").is_file()
    assert not (a / "report.md").exists()
    # calibrated = retain - 0.01, forget - 0.02 (write_run): seed 0 sgtm 3.24 vs nf 2.99,
    # forget 5.98 vs weak 3.98; seed 1 sgtm 2.94 vs 2.49, forget 6.98 vs 5.48 (not 8.98)
    assert (
        "| sgtm (ablated) recall=0.9 | seed0/sgtm | 0 | 3.240 | 2.990 | +8.4% | 5.980 | 3.980 | +2.000 |"
        in md
    )
    assert "| seed1/sgtm | 1 | 2.940 | 2.490 | +18.1% | 6.980 | 5.480 | +1.500 |" in md
    gains_sd = math.sqrt(((2.0 - 1.75) ** 2 + (1.5 - 1.75) ** 2) / 1)
    assert f"| +1.750 ± {gains_sd:.3f} | 2 |" in md


def test_merged_sweeps_name_the_fixed_settings_that_set_their_runs_apart(tmp_path):
    """Two model-size sweeps fix the width in their overrides, not their grid: a merged report
    must not average the two widths into one row, and pairs each run with its own width."""

    def width(info: dict, d_model: int, threads: int) -> dict:
        path = Path(info["dir"]) / "config.yaml"
        config = yaml.safe_load(path.read_text())
        config["model"]["d_model"] = d_model
        config["train"] = {"threads": threads}  # plumbing: never part of a label
        path.write_text(yaml.safe_dump(config))
        return info

    small, wide = tmp_path / "small", tmp_path / "wide"
    _sweep_dir(small, "small", [
        width(write_run(small, "sgtm", "sgtm", 0.9, 0, forget=6.0, retain=3.25), 64, 1),
        width(write_run(small, "nf", "no_filter", None, 0, forget=2.5, retain=3.0), 64, 1),
    ])  # fmt: skip
    _sweep_dir(wide, "wide", [
        width(write_run(wide, "sgtm", "sgtm", 0.9, 0, forget=7.0, retain=2.75), 256, 2),
        width(write_run(wide, "nf", "no_filter", None, 0, forget=2.0, retain=2.5), 256, 2),
    ])  # fmt: skip
    assert main(["report", str(small), str(wide), "--out", str(tmp_path / "both")]) == 0
    md = (tmp_path / "both" / "report.md").read_text()
    # calibrated = retain - 0.01: 3.24 vs 2.99 (+8.4%) at width 64, 2.74 vs 2.49 (+10.0%) at 256
    assert "| sgtm (ablated) recall=0.9 d_model=64 | +8.4% ± 0.0 | – | 1 |" in md
    assert "| sgtm (ablated) recall=0.9 d_model=256 | +10.0% ± 0.0 | – | 1 |" in md
    assert "threads" not in md
    # one directory alone: nothing to tell apart, labels as before
    write_report(small, tmp_path / "alone")
    assert (
        "| sgtm (ablated) recall=0.9 | +8.4% ± 0.0 | – | 1 |"
        in (tmp_path / "alone" / "report.md").read_text()
    )


def test_merged_sweeps_at_two_data_mixes_are_told_apart_by_domain(tmp_path):
    """Sweeps that fix the forget share in their data weights: each share gets its own row,
    named with the weight's domain, and each run is paired with the no-filter run of its mix."""

    def mix(info: dict, forget_weight: float) -> dict:
        path = Path(info["dir"]) / "config.yaml"
        config = yaml.safe_load(path.read_text())
        config["data"] = {"retain": {"path": "en.jsonl", "weight": 1 - forget_weight},
                          "forget": {"path": "es.jsonl", "weight": forget_weight}}  # fmt: skip
        path.write_text(yaml.safe_dump(config))
        return info

    quarter, tenth = tmp_path / "quarter", tmp_path / "tenth"
    _sweep_dir(quarter, "quarter", [
        mix(write_run(quarter, "sgtm", "sgtm", 0.9, 0, forget=6.0, retain=3.25), 0.25),
        mix(write_run(quarter, "nf", "no_filter", None, 0, forget=2.5, retain=3.0), 0.25),
    ])  # fmt: skip
    _sweep_dir(tenth, "tenth", [
        mix(write_run(tenth, "sgtm", "sgtm", 0.9, 0, forget=7.0, retain=2.75), 0.1),
        mix(write_run(tenth, "nf", "no_filter", None, 0, forget=2.0, retain=2.5), 0.1),
    ])  # fmt: skip
    assert main(["report", str(quarter), str(tenth), "--out", str(tmp_path / "both")]) == 0
    md = (tmp_path / "both" / "report.md").read_text()
    # calibrated = retain - 0.01: 3.24 vs 2.99 (+8.4%) at a quarter, 2.74 vs 2.49 (+10.0%) at a tenth
    assert "| sgtm (ablated) recall=0.9 forget.weight=0.25 retain.weight=0.75 | +8.4% ± 0.0 | – | 1 |" in md
    assert "| sgtm (ablated) recall=0.9 forget.weight=0.1 retain.weight=0.9 | +10.0% ± 0.0 | – | 1 |" in md
    assert "path" not in md.split("## Against the baselines of the same seed")[1]


def test_rmu_ratio_uses_the_rmu_run_of_the_same_seed(tmp_path):
    from excise.report.baselines import rmu_comparisons
    from excise.report.markdown import rmu_ratio_lines

    def attacked(name, method, seed, recover, kind="train"):
        info = write_run(
            tmp_path,
            name,
            method,
            None,
            seed,
            forget=5.0,
            retain=3.0,
            relearn={
                "steps": [0, 100, 200, 300],
                "forget_loss": [6.0, 5.0, 4.0, 3.0],
                "steps_to_recover": recover,
            },
        )
        info["kind"] = kind
        return info

    runs = [attacked("rmu0", "rmu", 0, 100, "unlearn"), attacked("rmu1", "rmu", 1, 50, "unlearn"),
            attacked("sgtm0", "sgtm", 0, 300), attacked("sgtm1", "sgtm", 1, None)]  # fmt: skip
    _sweep_dir(tmp_path, "ratio", runs)
    _, records = load_runs(tmp_path)
    comparisons = rmu_comparisons(records)
    assert [(c.run, c.rmu_steps, c.ratio) for c in comparisons] == [("sgtm0", 100, 3.0), ("sgtm1", 50, 6.0)]
    assert rmu_ratio_lines(comparisons) == [
        "- sgtm0: 3.0x the steps RMU needs (100)",
        "- sgtm1: > 6.0x (not recovered in 300 steps) the steps RMU needs (50)",
    ]


def test_paired_curves_compare_each_eval_with_the_same_seeds_baselines_at_that_step(tmp_path):
    from excise.report.baselines import paired_curve_steps, paired_curves

    runs = [
        write_run(tmp_path, "sgtm0", "sgtm", 0.9, 0, forget=6.0, retain=3.25),
        write_run(tmp_path, "nf0", "no_filter", None, 0, forget=2.5, retain=3.0),
        write_run(tmp_path, "weak0", "weak_filter", 0.9, 0, forget=4.0, retain=3.1),
        write_run(tmp_path, "sgtm1", "sgtm", 0.9, 1, forget=7.0, retain=2.95),
        write_run(tmp_path, "nf1", "no_filter", None, 1, forget=2.0, retain=2.5),
        write_run(tmp_path, "sgtm2", "sgtm", 0.9, 2, forget=7.0, retain=2.95),  # no seed-2 baseline
    ]  # fmt: skip
    # seed 1's no-filter run was not evaluated at step 20: that step has no pair there
    nf1 = tmp_path / "nf1" / "metrics.jsonl"
    kept = [line for line in nf1.read_text().splitlines() if '"step": 20' not in line]
    nf1.write_text("\n".join(kept) + "\n")
    _sweep_dir(tmp_path, "curves", runs)
    _, records = load_runs(tmp_path)
    curves = paired_curves(records)
    assert set(curves) == {"sgtm (ablated) recall=0.9", "weak_filter recall=0.9"}
    by_run = {r.name: points for runs_ in curves.values() for r, points in runs_}
    assert set(by_run) == {"sgtm0", "sgtm1", "weak0"}
    # write_run's events: ablated retain = retain + 0.05 + 1/step, ablated forget = forget +
    # 1/step; full retain = retain + 1/step, full forget = forget - 0.1 + 1/step
    expected0 = [(s, 100 * ((3.30 + 1 / s) - (3.0 + 1 / s)) / (3.0 + 1 / s), 2.1) for s in (10, 20, 30)]
    for (step, pct, gain), (s, p, g) in zip(by_run["sgtm0"], expected0, strict=True):
        assert step == s and pct == pytest.approx(p) and gain == pytest.approx(g)
    assert [s for s, _, _ in by_run["sgtm1"]] == [10, 30]
    assert all(g is None for _, _, g in by_run["sgtm1"])  # no weak filter on seed 1
    assert all(g is None for _, _, g in by_run["weak0"])  # not compared with itself
    assert by_run["weak0"][0][1] == pytest.approx(100 * 0.1 / 3.1)

    rows = {(r.label, r.step): r for r in paired_curve_steps(curves)}
    pct10 = [expected0[0][1], 100 * ((3.0 + 0.1) - (2.5 + 0.1)) / 2.6]
    mean, sd = sum(pct10) / 2, abs(pct10[0] - pct10[1]) / math.sqrt(2)
    step10 = rows[("sgtm (ablated) recall=0.9", 10)]
    assert step10.retain_vs_no_filter == pytest.approx((mean, sd))
    assert step10.forget_vs_weak_filter == pytest.approx((2.1, 0.0)) and step10.seeds == 2
    assert step10.tokens is None  # write_run's configs give no batch size or context
    assert rows[("sgtm (ablated) recall=0.9", 20)].seeds == 1

    md = write_report(tmp_path).read_text()
    assert "## Against the same seed's baselines along training" in md
    assert f"| sgtm (ablated) recall=0.9 | 10 | – | {mean:+.1f}% ± {sd:.1f} | +2.100 ± 0.000 | 2 |" in md
    assert (tmp_path / "plots" / "paired.png").is_file()


def test_a_run_at_another_learning_rate_is_not_its_seeds_baseline(tmp_path):
    from excise.report.baselines import paired_comparisons

    def at_lr(info: dict, lr: float, threads: int) -> dict:
        path = Path(info["dir"]) / "config.yaml"
        config = yaml.safe_load(path.read_text())
        config["train"] = {"lr": lr, "steps": 30, "threads": threads}  # threads do not matter
        path.write_text(yaml.safe_dump(config))
        return info

    runs = [
        at_lr(write_run(tmp_path, "nf-lr2", "no_filter", None, 0, forget=2.5, retain=3.0), 2e-3, 1),
        at_lr(write_run(tmp_path, "nf-lr1", "no_filter", None, 0, forget=2.5, retain=4.0), 1e-3, 1),
        at_lr(write_run(tmp_path, "sgtm-lr1", "sgtm", 0.9, 0, forget=6.0, retain=4.40), 1e-3, 2),
    ]  # fmt: skip
    _sweep_dir(tmp_path, "lr", runs)
    _, records = load_runs(tmp_path)
    rows = paired_comparisons(records)
    # calibrated retain (write_run: retain - 0.01): sgtm 4.39 against its own-lr baseline's
    # 3.99, not the 2e-3 run's 2.99
    assert [(c.run, c.seed, c.retain, c.no_filter_retain, c.retain_vs_no_filter) for c in rows] == [
        ("sgtm-lr1", 0, pytest.approx(4.39), pytest.approx(3.99), pytest.approx(100 * 0.4 / 3.99))
    ]
    assert "| sgtm-lr1 | 0 | 4.390 | 3.990 | +10.0% |" in write_report(tmp_path).read_text()


def test_plot_colours_come_from_the_method_registry():
    from excise.report.plots import COLORS, EXTRA_COLORS, color_of

    assert COLORS == {
        "sgtm": "tab:red", "gradient_routing": "tab:orange", "activation_masking": "tab:brown",
        "no_filter": "tab:gray", "weak_filter": "tab:blue", "strict_filter": "tab:green",
        "rmu": "tab:purple",
    }  # fmt: skip
    assert not set(EXTRA_COLORS) & set(COLORS.values())
    assert color_of("npo", 3) == "C3"  # no registry colour: matplotlib's cycle


def test_each_run_kind_of_a_merged_report_gets_its_own_colour():
    from excise.report.plots import COLORS, EXTRA_COLORS, kind_colors

    # a model-size report: three widths of SGTM and the weak filter, one strict filter
    kinds = [(f"sgtm d={d}", "sgtm") for d in (64, 128, 256)]
    kinds += [(f"weak d={d}", "weak_filter") for d in (64, 128, 256)] + [("strict", "strict_filter")]
    colors = kind_colors(kinds)
    assert (
        colors[0] == COLORS["sgtm"]
        and colors[3] == COLORS["weak_filter"]
        and colors[6] == COLORS["strict_filter"]
    )
    assert len(set(colors)) == len(colors)
    many = kind_colors([(f"sgtm {i}", "sgtm") for i in range(len(EXTRA_COLORS) + 1)])
    assert len(set(many)) == len(many)
