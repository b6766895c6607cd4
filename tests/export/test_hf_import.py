"""Import from transformers checkpoints: function preservation and lossless round trips."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from excise.config import PartitionConfig
from excise.errors import UserError
from excise.export import export_model, import_hf
from excise.model.partition import ablated_copy
from hf_helpers import LLAMA, NEO, VOCAB, tiny_config, tiny_model

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
    a, b = load_file(str(first / "model.safetensors")), load_file(str(tmp_path / "second" / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), name
    assert json.loads((first / "config.json").read_text()) == json.loads((tmp_path / "second" / "config.json").read_text())


@pytest.mark.parametrize("variant", ["neo", "llama"])
def test_designate_chosen_units_preserves_function(tmp_path, variant):
    model, _, path = exported(tmp_path, "hf", variant, pcfg=None)
    heads = {0: [0], 1: [2]}
    units = [1, 5, 7, 11, 13, 17, 19, 30]
    imported, partition, _ = import_hf(path, PCFG, mode="designate", forget_head_ids=heads, forget_unit_ids=units)
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
    torch.testing.assert_close(logits(ablated_copy(imported, partition)), logits(reference), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("variant", ["neo", "llama"])
def test_expand_appends_inert_forget_units(tmp_path, variant):
    model, _, path = exported(tmp_path, "hf", variant, pcfg=None)
    heads = 0 if variant == "neo" else 4  # 16 % (4 + 4) == 0: still exportable in full
    pcfg = PartitionConfig(forget_heads=heads, forget_mlp_units=8)
    imported, partition, cfg = import_hf(path, pcfg, mode="expand")
    assert cfg.n_heads == 4 + heads and cfg.d_ff == 32 + 8
    assert imported.blocks[0].mlp.forget_units == 8 and imported.blocks[0].attn.forget_heads == heads
    torch.testing.assert_close(logits(imported), logits(model), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(logits(ablated_copy(imported, partition)), logits(model), rtol=1e-10, atol=1e-10)
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
