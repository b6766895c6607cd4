"""Hub-ready exports: whole folders, readable files, card metadata, generation config, push."""

from __future__ import annotations

import json
import os
import stat

import pytest

transformers = pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")

from hf_helpers import LLAMA, NEO, tiny_config  # noqa: E402

from excise.cli import main  # noqa: E402
from excise.config import PartitionConfig  # noqa: E402
from excise.errors import UserError  # noqa: E402
from excise.export import export_hf  # noqa: E402

PCFG = PartitionConfig(forget_heads=1, forget_mlp_units=8)
EVAL = {
    "full": {"forget": 1.5, "retain": 2.0},
    "ablated": {"forget": 4.25, "retain": 2.125},
    "calibrated": {"forget": 4.0, "retain": 2.0625},
}
EXPORT_FILES = {
    "README.md", "config.json", "excise_export.json", "generation_config.json",
    "model.safetensors", "tokenizer.json", "tokenizer_config.json",
}  # fmt: skip
OPTIONAL = {"special_tokens_map.json"}  # written by transformers 4.x's save_pretrained


def names(folder) -> set[str]:
    return {p.name for p in folder.iterdir()} - OPTIONAL


def test_export_files_readable_by_others_and_never_half_written(tmp_path, make_run, monkeypatch):
    run_dir = make_run(tiny_config(**NEO), PCFG)
    out = tmp_path / "exports" / "safe"
    old = os.umask(0o022)
    try:
        export_hf(run_dir, out, ablated=True)
    finally:
        os.umask(old)
    assert names(out) == EXPORT_FILES
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in out.iterdir()} == {"0o644"}
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    # a failure while writing the weights: neither a half folder nor a temporary is left
    import excise.checkpoint

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(excise.checkpoint, "save_weights", fail)
    fresh = tmp_path / "exports" / "full"
    with pytest.raises(OSError):
        export_hf(run_dir, fresh)
    assert sorted(p.name for p in fresh.parent.iterdir()) == ["safe"]
    with pytest.raises(OSError):  # a failed --overwrite keeps the previous export whole
        export_hf(run_dir, out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    monkeypatch.undo()

    with pytest.raises(UserError, match="not empty.*--overwrite"):
        export_hf(run_dir, out)
    with pytest.raises(UserError, match="not an excise export"):  # never the run itself
        export_hf(run_dir, run_dir, overwrite=True)
    assert (run_dir / "model.safetensors").is_file()
    assert main(["export", str(run_dir), "--out", str(out), "--overwrite"]) == 0  # now the full model
    assert json.loads((out / "excise_export.json").read_text())["ablated"] is False
    assert sorted(p.name for p in out.parent.iterdir()) == ["safe"]


def test_card_metadata_and_code_sample(tmp_path, make_run):
    from huggingface_hub import ModelCard

    run_dir = make_run(tiny_config(**NEO), PCFG, eval_json=EVAL)
    out = tmp_path / "safe"
    result = export_hf(run_dir, out, ablated=True)
    card = ModelCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "text-generation"
    assert data["license"] == "unknown" and "excise export --license" in card.text  # the run does not know
    assert {"excise", "sgtm", "safe-model"} <= set(data["tags"])
    assert f'from_pretrained("{out.resolve()}")' in card.text  # the real path, not PATH
    # model-index: the ablated figures of eval.json (this export is the safe model)
    results = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert results == {"forget loss (nats, ablated model)": 4.25, "retain loss (nats, ablated model)": 2.125}
    assert {r.dataset_type for r in card.data.eval_results} == {"en.jsonl", "es.jsonl"}
    assert result.ablated

    from excise.api import export

    export(run_dir, tmp_path / "full", license="apache-2.0", language=["en", "es"],
           base_model="someone/base-8m", push_to_hub="me/full-8m", dry_run=True)  # fmt: skip
    card = ModelCard.load(tmp_path / "full" / "README.md")
    assert card.data.license == "apache-2.0" and card.data.language == ["en", "es"]
    assert card.data.base_model == "someone/base-8m" and card.data.model_name == "full-8m"
    assert 'from_pretrained("me/full-8m")' in card.text
    assert {r.metric_value for r in card.data.eval_results} == {1.5, 2.0}  # full figures


def test_card_takes_builtin_licence_language_and_hub_datasets(tmp_path, make_run):
    from huggingface_hub import ModelCard

    from excise.config import Config, DataConfig, load_config, save_config

    run_dir = make_run(tiny_config(**NEO), PCFG)
    config = load_config(run_dir / "config.yaml")
    save_config(config.model_copy(update={"data": DataConfig(builtin="bilingual")}), run_dir / "config.yaml")
    export_hf(run_dir, tmp_path / "a")
    data = ModelCard.load(tmp_path / "a" / "README.md").data
    assert (data.license, data.language, data.datasets) == ("apache-2.0", ["en", "es"], None)

    hub = DataConfig(retain={"path": "/data/en.jsonl"}, forget={"hub": "someone/es-stories"})
    save_config(
        Config.model_validate(config.model_copy(update={"data": hub}).model_dump()), run_dir / "config.yaml"
    )
    export_hf(run_dir, tmp_path / "b")
    data = ModelCard.load(tmp_path / "b" / "README.md").data
    assert data.datasets == ["someone/es-stories"] and data.language is None


def test_generation_and_tokenizer_config_for_both_transformers_majors(tmp_path, make_run):
    from tokenizers import Tokenizer

    run_dir = make_run(tiny_config(**LLAMA | {"rope_theta": 5e5}), PCFG)
    export_hf(run_dir, tmp_path / "hf")
    eot = Tokenizer.from_file(str(run_dir / "tokenizer.json")).token_to_id("<|endoftext|>")
    gen = transformers.GenerationConfig.from_pretrained(str(tmp_path / "hf"))
    assert (gen.eos_token_id, gen.pad_token_id, gen.do_sample, gen.top_k) == (eot, eot, True, 40)
    tok_config = json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())
    assert tok_config["tokenizer_class"] == "PreTrainedTokenizerFast"  # 4.x knows no TokenizersBackend
    assert "token_type_ids" not in transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))("the cat")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["rope_theta"] == 5e5  # transformers 4.x reads only this key
    assert transformers.AutoConfig.from_pretrained(str(tmp_path / "hf")).model_type == "llama"


def test_push_to_hub_uploads_the_export_folder_only(tmp_path, make_run, monkeypatch, capsys):
    import huggingface_hub

    run_dir = make_run(tiny_config(**NEO), PCFG)
    out = tmp_path / "safe"
    assert (
        main(
            ["export", str(run_dir), "--ablated", "--out", str(out), "--push-to-hub", "me/safe", "--dry-run"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert f"would upload {len(list(out.iterdir()))} files to https://huggingface.co/me/safe" in printed
    for name in EXPORT_FILES:
        assert f"  {name}  (" in printed

    calls = []
    monkeypatch.setattr(
        huggingface_hub, "create_repo", lambda repo_id, **kw: calls.append(("create", repo_id, kw))
    )
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda **kw: calls.append(("upload", kw)))
    result = __import__("excise").export(
        run_dir, tmp_path / "pushed", ablated=True, push_to_hub="me/safe", private=True
    )
    (_, repo, create_kw), (_, upload_kw) = calls
    assert repo == "me/safe" and create_kw["private"] is True and create_kw["exist_ok"] is True
    assert upload_kw["repo_id"] == "me/safe" and upload_kw["folder_path"] == str(tmp_path / "pushed")
    assert {name for name, _ in result.upload.files} - OPTIONAL == EXPORT_FILES and not result.upload.dry_run

    def offline(**kw):
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "upload_folder", offline)
    with pytest.raises(UserError, match="could not push .* export itself is complete"):
        __import__("excise").export(run_dir, tmp_path / "p2", push_to_hub="me/safe")
    assert (tmp_path / "p2" / "model.safetensors").is_file()
    with pytest.raises(UserError, match="expected a model repo id"):
        __import__("excise").export(run_dir, tmp_path / "p3", push_to_hub="no-owner", dry_run=True)
