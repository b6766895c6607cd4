"""Import from transformers checkpoints: function preservation and lossless round trips."""

from __future__ import annotations

import json

import pytest
import torch
from hf_helpers import LLAMA, NEO, VOCAB, tiny_config, tiny_model
from safetensors.torch import load_file

from excise.config import PartitionConfig
from excise.errors import UserError
from excise.export import export_model, import_hf
from excise.model.ablation import ablated_copy

TOKENS = torch.randint(0, VOCAB, (2, 16), generator=torch.Generator().manual_seed(2))
PCFG = PartitionConfig(forget_heads=1, forget_mlp_units=8)
FAMILIES = {
    "neo": NEO,
    "neo_default_scale": NEO | {"attention_scale": None},
    "neo_local": NEO | {"attention_pattern": ["global", "local"], "local_window": 4},
    "llama": LLAMA | {"bias": True, "qkv_bias": True},
    "llama_head_dim": LLAMA | {"head_dim": 8, "tie_embeddings": True},
}


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(TOKENS)


def exported(tmp_path, name, variant="llama", pcfg=PCFG):
    model, partition = tiny_model(tiny_config(**FAMILIES[variant]), pcfg)
    export_model(model, partition, tmp_path / name)
    return model, partition, tmp_path / name


@pytest.mark.parametrize("variant", sorted(FAMILIES))
def test_export_import_export_round_trip_is_bit_identical(tmp_path, variant):
    model, partition, first = exported(tmp_path, "first", variant)
    imported, ipart, icfg = import_hf(first, PCFG, mode="designate")  # default: the last units
    assert ipart.slices == partition.slices
    if variant != "neo_default_scale":  # otherwise the scale is folded into q once, on export
        original = model.state_dict()
        for name, value in imported.state_dict().items():
            assert torch.equal(value, original[name]), name
    torch.testing.assert_close(logits(imported), logits(model), rtol=1e-10, atol=1e-10)
    export_model(imported, ipart, tmp_path / "second")
    a, b = (
        load_file(str(first / "model.safetensors")),
        load_file(str(tmp_path / "second" / "model.safetensors")),
    )
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), name
    assert json.loads((first / "config.json").read_text()) == json.loads(
        (tmp_path / "second" / "config.json").read_text()
    )


@pytest.mark.parametrize("variant", ["neo", "llama"])
def test_designate_chosen_units_preserves_function(tmp_path, variant):
    model, _, path = exported(tmp_path, "hf", variant, pcfg=None)
    heads = {0: [0], 1: [2]}
    units = [1, 5, 7, 11, 13, 17, 19, 30]
    imported, partition, _ = import_hf(
        path, PCFG, mode="designate", forget_head_ids=heads, forget_unit_ids=units
    )
    torch.testing.assert_close(logits(imported), logits(model), rtol=1e-10, atol=1e-10)
    # ablating the designated forget units == zeroing exactly the chosen units of the original
    reference = tiny_model(tiny_config(**FAMILIES[variant]), None)[0]
    with torch.no_grad():
        for i, block in enumerate(reference.blocks):
            hs = block.attn.head_dim
            for h in heads[i]:
                for proj in (block.attn.q_proj, block.attn.k_proj, block.attn.v_proj):
                    proj.weight[h * hs : (h + 1) * hs] = 0
                block.attn.o_proj.weight[:, h * hs : (h + 1) * hs] = 0
            for lin in (block.mlp.up_proj, block.mlp.gate_proj):
                if lin is not None:
                    lin.weight[units] = 0
                    if lin.bias is not None:
                        lin.bias[units] = 0
            block.mlp.down_proj.weight[:, units] = 0
    torch.testing.assert_close(
        logits(ablated_copy(imported, partition)), logits(reference), rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize("variant", ["neo", "llama"])
def test_expand_appends_inert_forget_units(tmp_path, variant):
    model, _, path = exported(tmp_path, "hf", variant, pcfg=None)
    heads = 0 if variant == "neo" else 4  # 16 % (4 + 4) == 0: still exportable in full
    pcfg = PartitionConfig(forget_heads=heads, forget_mlp_units=8)
    imported, partition, cfg = import_hf(path, pcfg, mode="expand")
    assert cfg.n_heads == 4 + heads and cfg.d_ff == 32 + 8
    assert imported.blocks[0].mlp.forget_units == 8 and imported.blocks[0].attn.forget_heads == heads
    torch.testing.assert_close(logits(imported), logits(model), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(
        logits(ablated_copy(imported, partition)), logits(model), rtol=1e-10, atol=1e-10
    )
    up = imported.blocks[0].mlp.up_proj.weight
    assert torch.count_nonzero(up[32:]) == up[32:].numel()  # new inputs random: they can learn
    assert torch.count_nonzero(imported.blocks[0].mlp.down_proj.weight[:, 32:]) == 0
    # after training, the pruned safe export is the original shape again
    with torch.no_grad():
        imported.blocks[0].mlp.down_proj.weight[:, 32:] = 1.0
    r = export_model(imported, partition, tmp_path / "pruned", prune_units=True)
    assert r.num_parameters == sum(t.numel() for t in load_file(str(path / "model.safetensors")).values())


def test_import_errors(tmp_path):
    _, _, neo = exported(tmp_path, "neo", "neo", pcfg=None)
    with pytest.raises(UserError, match="head_dim = hidden_size / num_heads"):
        import_hf(neo, PartitionConfig(forget_heads=1, forget_mlp_units=4), mode="expand")
    with pytest.raises(UserError, match="distinct head ids"):
        import_hf(neo, PCFG, mode="designate", forget_head_ids=[7])
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "config.json").write_text((neo / "config.json").read_text())
    (tmp_path / "bin" / "pytorch_model.bin").write_bytes(b"\x80\x02")
    with pytest.raises(UserError, match="never loaded"):
        import_hf(tmp_path / "bin")
    (tmp_path / "bin" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UserError, match="gpt_neo and llama"):
        import_hf(tmp_path / "bin")


def test_import_as_run_directory_loads_with_load_run(tmp_path, make_run):
    from excise.export import export_hf, import_hf_run
    from excise.run import load_run

    run_dir = make_run(tiny_config(**LLAMA), PCFG)
    export_hf(run_dir, tmp_path / "hf")
    pcfg = PartitionConfig(forget_heads=4, forget_mlp_units=4, layers=[1])
    new_run = import_hf_run(tmp_path / "hf", tmp_path / "imported", pcfg, mode="expand")
    run, original = load_run(new_run), load_run(run_dir)
    assert run.config.model.n_heads == 8 and run.config.partition.layers == [1]
    assert run.model.blocks[0].attn.forget_heads == 0 and run.model.blocks[1].attn.forget_heads == 4
    torch.testing.assert_close(logits(run.model), logits(original.model), rtol=1e-5, atol=1e-5)
    assert (new_run / "tokenizer.json").read_text() == (tmp_path / "hf" / "tokenizer.json").read_text()
    with pytest.raises(UserError, match="not a run written by excise import"):  # a trained run stays
        import_hf_run(tmp_path / "hf", run_dir, pcfg, overwrite=True)
    assert (run_dir / "model.safetensors").is_file()


def transformers_checkpoint(path, family: str):
    """A random checkpoint written by transformers itself (its own init, config and names)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    if family == "gpt_neo":
        config = transformers.GPTNeoConfig(
            vocab_size=VOCAB, max_position_embeddings=16, hidden_size=16, num_layers=2, num_heads=4,
            intermediate_size=32, attention_types=[[["global"], 2]],
        )  # fmt: skip
        model = transformers.GPTNeoForCausalLM(config)
    else:
        config = transformers.LlamaConfig(
            vocab_size=VOCAB, max_position_embeddings=16, hidden_size=16, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=4, intermediate_size=32, rope_theta=5e4,
        )  # fmt: skip
        model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():  # non-trivial norms too
        for name, p in model.named_parameters():
            if "norm" in name or "ln_" in name:
                p.add_(0.1 * torch.randn_like(p))
    model.eval().save_pretrained(str(path))
    with torch.no_grad():
        return model(TOKENS).logits


@pytest.mark.parametrize("family", ["gpt_neo", "llama"])
def test_cli_import_round_trips_transformers_checkpoints(tmp_path, family):
    """`excise import` of a checkpoint transformers wrote: same logits; exported back, the
    same tensors (designate: the last units, an identity permutation; expand: pruned away)."""
    from excise.cli import main
    from excise.run import load_run

    hf_logits = transformers_checkpoint(tmp_path / "hf", family)
    original = load_file(str(tmp_path / "hf" / "model.safetensors"))
    runs = {
        "designate": ["--mode", "designate", "--forget-heads", "1", "--forget-mlp-units", "8"],
        "expand": ["--mode", "expand", "--forget-heads", "0" if family == "gpt_neo" else "4",
                   "--forget-mlp-units", "8", "--layers", "0,1"],
    }  # fmt: skip
    for mode, args in runs.items():
        run_dir = tmp_path / f"run-{mode}"
        assert (
            main(["import", str(tmp_path / "hf"), "--out", str(run_dir), *args, "--base-model", "org/base"])
            == 0
        )
        run = load_run(run_dir)
        assert run.model.blocks[1].mlp.forget_units == 8
        torch.testing.assert_close(logits(run.model), hf_logits, rtol=1e-5, atol=1e-5)
        meta = json.loads((run_dir / "meta.json").read_text())
        assert meta["base_model"] == "org/base" and meta["import_mode"] == mode
        assert main(["import", str(tmp_path / "hf"), "--out", str(run_dir), *args]) == 2  # not empty
        assert main(["import", str(tmp_path / "hf"), "--out", str(run_dir), *args, "--overwrite"]) == 0
        back = tmp_path / f"back-{mode}"
        assert (
            main(["export", str(run_dir), "--out", str(back), *(["--prune"] if mode == "expand" else [])])
            == 0
        )
        exported = load_file(str(back / "model.safetensors"))
        names = {n for n in original if not n.endswith((".attn.bias", ".masked_bias"))}
        assert set(exported) == names
        for name in names:
            assert torch.equal(exported[name], original[name]), (mode, name)


def test_init_from_a_run_of_another_shape_names_the_shape(tmp_path):
    """train.init_from with a recipe of another shape: the error names the model keys, not
    the partition, and points at the imported run's own recipe."""
    from excise.config import load_config
    from excise.errors import UserError
    from excise.export import import_hf_run
    from excise.model.partition import build_model
    from excise.train.setup import start_from

    _, _, hf = exported(tmp_path, "hf", "llama", pcfg=None)
    run_dir = import_hf_run(hf, tmp_path / "imported", PCFG, mode="designate")
    recipe = load_config(None, [f"train.init_from={run_dir}", "model.vocab_size=64", "model.context=16"])
    model, partition = build_model(recipe.model, recipe.partition)
    with pytest.raises(UserError) as err:
        start_from(recipe, model, partition)
    message = str(err.value)
    assert "another shape" in message and "partition" not in message.split("(")[0]
    for needle in ("model.n_layers is 2 there, 4 here", "model.d_model is 16 there, 128 here",
                   "model.norm is 'rmsnorm' there, 'layernorm' here", str(run_dir / "config.yaml")):  # fmt: skip
        assert needle in message, needle
    # the same shape written with defaults (head_dim, d_ff unset) is no mismatch
    plain = load_config(None, [f"train.init_from={run_dir}", "model.vocab_size=64", "model.context=16",
                               "model.n_layers=2", "model.d_model=16", "model.n_heads=4", "model.d_ff=32",
                               "model.norm=rmsnorm", "model.mlp=swiglu", "model.positions=rope",
                               "model.tie_embeddings=false", "model.bias=true", "model.qkv_bias=true",
                               "partition.forget_mlp_units=8"])  # fmt: skip
    from excise.run import check_same_model

    check_same_model(run_dir, plain)
    same = load_config(run_dir / "config.yaml", [f"train.init_from={run_dir}"])
    model, partition = build_model(same.model, same.partition)
    started, started_partition = start_from(same, model, partition)
    assert started_partition.slices == load_run_partition(run_dir).slices


def load_run_partition(run_dir):
    from excise.run import load_run

    return load_run(run_dir).partition
