"""``excise bench --quick`` on a tiny shape: the JSON schema and the arithmetic, not the speed.

The timing itself is not tested here (a timed unit test on a shared machine measures the
machine); ``excise bench`` run twice in a row is the check of its steadiness.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
import yaml

from excise.bench import (
    cli_bench,
    mix_weights,
    mode_sequence,
    model_flops_per_token,
    ratio_summary,
    spread,
)  # fmt: skip
from excise.config import ModelConfig
from excise.errors import UserError
from excise.model import Mode

TINY = {
    "seed": 0,
    "model": {"vocab_size": 64, "context": 16, "n_layers": 2, "d_model": 16, "n_heads": 4,
              "d_ff": 32},
    "partition": {"forget_heads": 1, "forget_mlp_units": 8},
    "data": {"builtin": "bilingual"},
    "train": {"batch_size": 2, "warmup_steps": 0},
}  # fmt: skip

CONFIG_KEYS = {
    "tokens_per_second", "step_seconds", "mode_step_seconds", "samples", "steps_timed",
    "round_tokens_per_second", "spread", "gflops", "mfu", "peak_memory_mib", "process_peak_mib",
}  # fmt: skip
ROUNDS = 3


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("bench")
    cfg = tmp / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp / "out" / "bench.json"
    rc = cli_bench(argparse.Namespace(config=str(cfg), out=str(out), quick=True, rounds=ROUNDS, window=0.01))
    assert rc == 0
    return json.loads(out.read_text())


def test_top_level_schema(results: dict) -> None:
    assert results["schema_version"] == 2
    assert results["quick"] is True
    for key in (
        "date",
        "machine",
        "shape",
        "flops_per_token",
        "timing",
        "peak",
        "mix",
        "memory_method",
        "configs",
        "data_pipeline",
        "ratios",
        "ratio_rounds",
        "total_seconds",
    ):
        assert key in results, key
    assert results["timing"] == {"window_seconds": 0.01, "rounds": ROUNDS, "warmup_steps": 1}
    assert results["shape"] == {
        "n_layers": 2, "d_model": 16, "n_heads": 4, "d_ff": 32, "vocab_size": 64,
        "context": 16, "batch_size": 2, "forget_heads": 1, "forget_mlp_units": 8,
    }  # fmt: skip
    assert results["memory_method"] in ("vmhwm_reset", "ru_maxrss")
    assert _positive(results["peak"]["gflops"]) and _positive(results["flops_per_token"])
    assert results["machine"]["threads"] >= 1 and isinstance(results["machine"]["torch"], str)


def test_every_configuration_has_positive_numbers(results: dict) -> None:
    configs = results["configs"]
    expected = {"excise_plain", "excise_sgtm", "excise_gradient_routing"}
    assert expected <= set(configs)
    for name, c in configs.items():
        assert set(c) == CONFIG_KEYS, name
        for key in ("tokens_per_second", "step_seconds", "gflops", "mfu", "process_peak_mib"):
            assert _positive(c[key]), (name, key)
        assert c["peak_memory_mib"] >= 0
        assert all(_positive(v) for v in c["mode_step_seconds"].values())
        assert set(c["samples"]) == set(c["mode_step_seconds"]) == set(c["steps_timed"])
        for mode, samples in c["samples"].items():  # one window per round, medians reported
            assert len(samples) == ROUNDS and c["steps_timed"][mode] >= ROUNDS
            assert c["mode_step_seconds"][mode] == pytest.approx(sorted(samples)[ROUNDS // 2])
        assert len(c["round_tokens_per_second"]) == ROUNDS
        assert c["spread"] == pytest.approx(spread(c["round_tokens_per_second"]))
        tokens = results["shape"]["batch_size"] * results["shape"]["context"]
        assert c["tokens_per_second"] == pytest.approx(tokens / c["step_seconds"])
        assert c["mfu"] == pytest.approx(c["gflops"] / results["peak"]["gflops"])
    assert set(configs["excise_plain"]["mode_step_seconds"]) == {"default"}
    assert set(configs["excise_sgtm"]["mode_step_seconds"]) == {"default", "retain", "forget"}


def test_ratios_and_pipeline(results: dict) -> None:
    r, c = results["ratios"], results["configs"]
    plain = c["excise_plain"]["step_seconds"]
    rr = results["ratio_rounds"]
    # each ratio is the median of the same ratio taken round by round
    sgtm_rounds = [p / s for p, s in zip(c["excise_plain"]["round_tokens_per_second"],
                                         c["excise_sgtm"]["round_tokens_per_second"])]  # fmt: skip
    assert rr["sgtm_over_plain"]["rounds"] == pytest.approx(sgtm_rounds)
    assert r["sgtm_over_plain"] == pytest.approx(rr["sgtm_over_plain"]["geomean"])
    assert r["plain_mfu"] == pytest.approx(c["excise_plain"]["mfu"])
    if "transformers_gpt_neo" in c:
        pot = rr["plain_over_transformers"]
        assert _positive(r["plain_over_transformers"]) and len(pot["rounds"]) == ROUNDS
        assert pot["min"] <= r["plain_over_transformers"] <= pot["max"]
    else:
        assert r["plain_over_transformers"] is None and rr["plain_over_transformers"] is None
    assert plain > 0
    assert _positive(results["data_pipeline"]["batch_seconds"])
    assert _positive(results["data_pipeline"]["share_of_step"])
    assert sum(v for k, v in results["mix"].items() if k != "sequence") == pytest.approx(1.0)


def test_ratio_summary_reports_geomean_median_range_and_spread() -> None:
    s = ratio_summary([1.2, 1.0, 1.5, 1.1])
    assert s["geomean"] == pytest.approx((1.2 * 1.0 * 1.5 * 1.1) ** 0.25)
    assert s["median"] == pytest.approx(1.15) and (s["min"], s["max"]) == (1.0, 1.5)
    assert s["spread"] == pytest.approx(0.5 / 1.15) and s["rounds"] == [1.2, 1.0, 1.5, 1.1]
    assert spread([2.0, 2.0, 2.0]) == 0.0


def test_mode_sequence_is_the_paper_mix() -> None:
    seq = mode_sequence(16, 0.25, 0.25)
    assert seq == mode_sequence(16, 0.25, 0.25)  # deterministic
    assert seq.count(Mode.FORGET) == 4
    assert seq.count(Mode.RETAIN) == 3  # 25% of the 12 others
    assert seq.count(Mode.DEFAULT) == 9
    w = mix_weights(0.25, 0.25)
    assert w[Mode.FORGET] == 0.25 and w[Mode.RETAIN] == pytest.approx(0.1875)


def test_flops_per_token_counts_matmuls_and_attention() -> None:
    cfg = ModelConfig(vocab_size=64, context=16, n_layers=2, d_model=16, n_heads=4, d_ff=32)
    n_matmul = 2 * (4 * 16 * 16 + 2 * 16 * 32) + 16 * 64
    assert model_flops_per_token(cfg) == 6 * n_matmul + 12 * 2 * 16 * 16


def test_missing_config_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        cli_bench(argparse.Namespace(config=str(tmp_path / "nope.yaml"), out=None, quick=True))


def test_table_says_how_steady_it_was(results: dict) -> None:
    from excise.bench import format_table

    table = format_table(results)
    assert f"geometric mean of {ROUNDS} rounds" in table and "spread" in table
    assert "reversed every other round" in table
