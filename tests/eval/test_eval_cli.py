import json

import pytest

from excise.cli import main

TINY_ARGS = [
    "model.vocab_size=300",
    "model.context=16",
    "model.n_layers=2",
    "model.d_model=16",
    "model.n_heads=2",
    "model.d_ff=32",
    "partition.forget_heads=1",
    "partition.forget_mlp_units=4",
    "data.builtin=bilingual",
    "data.builtin_documents=40",
    "train.steps=4",
    "train.batch_size=4",
    "train.warmup_steps=1",
    "eval.every=0",
    "eval.max_tokens=256",
    "eval.calibration_steps=3",
    "checkpoint.every=0",
    "logging.progress=false",
    "unlearn.steps=2",
    "unlearn.batch_size=2",
]


def test_user_errors_exit_with_code_2(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing")]) == 2
    assert main(["relearn", str(tmp_path / "missing")]) == 2
    assert main(["unlearn", "lobotomy", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


@pytest.mark.slow
def test_train_eval_unlearn_relearn_sample_from_the_command_line(tmp_path, capsys):
    args = TINY_ARGS + [f"data.cache_dir={tmp_path / 'cache'}"]
    for method in ("no_filter", "sgtm"):
        assert (
            main(
                [
                    "train",
                    "configs/demo.yaml",
                    *args,
                    f"method.name={method}",
                    "--out",
                    str(tmp_path / method),
                ]
            )
            == 0
        )
    assert main(["unlearn", "rmu", str(tmp_path / "no_filter"), "--out", str(tmp_path / "rmu")]) == 0
    for run in ("no_filter", "sgtm", "rmu"):
        assert main(["eval", str(tmp_path / run)]) == 0
    ev = json.loads((tmp_path / "sgtm" / "eval.json").read_text())
    assert {"full", "ablated", "calibrated"} <= set(ev) and "forget" in ev["ablated"]
    assert "ablated" not in json.loads((tmp_path / "rmu" / "eval.json").read_text())
    for run in ("sgtm", "rmu"):
        assert (
            main(
                [
                    "relearn",
                    str(tmp_path / run),
                    "--steps",
                    "2",
                    "relearn.eval_every=1",
                    "--reference",
                    str(tmp_path / "no_filter"),
                ]
            )
            == 0
        )
        rl = json.loads((tmp_path / run / "relearn.json").read_text())
        assert rl["steps"] == [0, 1, 2]
        assert (
            rl["reference_forget_loss"]
            == json.loads((tmp_path / "no_filter" / "eval.json").read_text())["full"]["forget"]
        )
    assert (
        main(["sample", str(tmp_path / "sgtm"), "--prompt", "Once", "--ablated", "--tokens", "5", "-n", "1"])
        == 0
    )
    assert "sample 0 (ablated)" in capsys.readouterr().out
