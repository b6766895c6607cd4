"""Evaluating an export: transformers-computed losses, and the optional lm-eval path."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")

from hf_helpers import NEO, tiny_config  # noqa: E402

from excise.config import PartitionConfig  # noqa: E402
from excise.errors import UserError  # noqa: E402
from excise.export import export_hf  # noqa: E402
from excise.export.lmeval import transformers_losses, write_perplexity_tasks  # noqa: E402

TEXTS = {
    "forget": ["el gato se sienta", "el gato"] * 6,
    "retain": ["the cat sat on the mat", "a dog and a cat"] * 6,
}


def write_jsonl(tmp_path) -> dict:
    files = {}
    for domain, texts in TEXTS.items():
        path = tmp_path / f"{domain}.jsonl"
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        files[domain] = path
    return files


def test_transformers_losses_equal_excise_losses(tmp_path, make_run):
    from tokenizers import Tokenizer

    from excise.run import load_run

    run_dir = make_run(tiny_config(**NEO), PartitionConfig(forget_heads=1, forget_mlp_units=8))
    export_hf(run_dir, tmp_path / "hf")
    files = write_jsonl(tmp_path)
    got = transformers_losses(tmp_path / "hf", files)
    run = load_run(run_dir)
    tok = Tokenizer.from_file(str(run_dir / "tokenizer.json"))
    eos = tok.token_to_id("<|endoftext|>")
    for domain, texts in TEXTS.items():
        ids = [i for t in texts for i in tok.encode(t).ids + [eos]]
        total, count = 0.0, 0
        for start in range(0, len(ids) - 1, 16):
            w = torch.tensor(ids[start : start + 16])
            if len(w) < 2:
                continue
            with torch.no_grad():
                total += run.model(w[None, :-1], w[None, 1:]).item() * (len(w) - 1)
            count += len(w) - 1
        assert got[domain] == pytest.approx(total / count, rel=1e-5)


def test_perplexity_task_definition(tmp_path):
    files = write_jsonl(tmp_path)
    names = write_perplexity_tasks(tmp_path / "tasks", files)
    assert names == ["excise_ppl_forget", "excise_ppl_retain"]
    task = yaml.safe_load((tmp_path / "tasks" / "excise_ppl_forget.yaml").read_text())
    assert task["output_type"] == "loglikelihood_rolling"
    assert task["dataset_kwargs"]["data_files"]["test"] == str(files["forget"].resolve())
    # every metric declares aggregation and direction: lm-eval warns twice per metric otherwise
    assert task["metric_list"] == [
        {"metric": "word_perplexity", "aggregation": "weighted_perplexity", "higher_is_better": False},
        {"metric": "byte_perplexity", "aggregation": "weighted_perplexity", "higher_is_better": False},
        {"metric": "bits_per_byte", "aggregation": "bits_per_byte", "higher_is_better": False},
    ]
    other = {
        "forget": tmp_path / "f.jsonl.gz",
        "retain": tmp_path / "r.csv",
        "adjacent": tmp_path / "a.parquet",
    }
    write_perplexity_tasks(tmp_path / "more", other)
    loaders = {
        d: yaml.safe_load((tmp_path / "more" / f"excise_ppl_{d}.yaml").read_text())["dataset_path"]
        for d in other
    }
    assert loaders == {"forget": "json", "retain": "csv", "adjacent": "parquet"}
    with pytest.raises(UserError, match="no lm-eval loader"):
        write_perplexity_tasks(tmp_path / "txt", {"forget": tmp_path / "f.txt"})


def test_helper_checks_lm_eval_first_and_reports_on_stderr(tmp_path, monkeypatch, capsys):
    import sys

    from excise.export import lmeval

    files = write_jsonl(tmp_path)
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # not installed
    monkeypatch.setattr(lmeval, "transformers_losses", lambda *a, **k: pytest.fail("losses computed first"))
    args = [str(tmp_path / "hf"), "--forget", str(files["forget"]), "--lm-eval"]
    assert lmeval.main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and "error: lm-evaluation-harness is not installed" in err
    monkeypatch.setitem(sys.modules, "lm_eval", type(sys)("lm_eval"))  # "installed"
    (tmp_path / "hf").mkdir()
    assert lmeval.main([*args, "--task-dir", str(tmp_path / "hf" / "tasks")]) == 2
    assert "inside the export" in capsys.readouterr().err
    assert not (tmp_path / "hf" / "tasks").exists()


def test_lm_eval_runs_local_tasks(tmp_path, make_run):
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness (the lmeval extra) is not installed")
    from excise.export.lmeval import evaluate_lm_eval

    run_dir = make_run(tiny_config(**NEO), PartitionConfig(forget_heads=1, forget_mlp_units=8))
    export_hf(run_dir, tmp_path / "hf")
    files = write_jsonl(tmp_path)
    result = evaluate_lm_eval(tmp_path / "hf", files, limit=4)  # tasks in a temporary folder
    assert set(result) == {"forget", "retain"}
    assert not [p for p in (tmp_path / "hf").iterdir() if p.is_dir() or p.suffix == ".yaml"]  # no task files
    for metrics in result.values():
        assert metrics["bits_per_byte"] > 0 and metrics["word_perplexity"] > 1


def test_sequence_losses_equal_excise_domain_loss(tmp_path):
    from hf_helpers import LLAMA, tiny_model

    from excise.eval.losses import domain_loss
    from excise.export import export_model
    from excise.export.lmeval import transformers_sequence_losses

    model, partition = tiny_model(tiny_config(**LLAMA), PartitionConfig(forget_heads=1, forget_mlp_units=8),
                                  dtype=torch.float32)  # fmt: skip
    export_model(model, partition, tmp_path / "hf")
    gen = torch.Generator().manual_seed(3)
    arrays = {d: torch.randint(0, 64, (5, 17), generator=gen).numpy() for d in ("forget", "retain")}
    got = transformers_sequence_losses(tmp_path / "hf", arrays, max_tokens=48, batch_size=2)
    for d, a in arrays.items():
        assert got[d] == pytest.approx(domain_loss(model, a, batch_size=2, max_tokens=48).mean, rel=1e-5)
