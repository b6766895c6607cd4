"""Export to stock transformers architectures: logits, parameter counts, files, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")

from hf_helpers import LLAMA, NEO, VOCAB, tiny_config, tiny_model  # noqa: E402

from excise.config import PartitionConfig  # noqa: E402
from excise.errors import UserError  # noqa: E402
from excise.export import export_hf, export_model, hf_family  # noqa: E402
from excise.model.ablation import ablated_copy  # noqa: E402

TOKENS = torch.randint(0, VOCAB, (3, 16), generator=torch.Generator().manual_seed(1))


def load_hf(directory, dtype=torch.float64):
    model = transformers.AutoModelForCausalLM.from_pretrained(str(directory), dtype=dtype)
    return model.eval()


def hf_logits(directory, dtype=torch.float64) -> torch.Tensor:
    with torch.no_grad():
        return load_hf(directory, dtype)(TOKENS).logits


def excise_logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(TOKENS)


VARIANTS = {
    # name: (family expected, model config overrides)
    "neo_unscaled": ("gpt_neo", NEO),
    "neo_default_scale": ("gpt_neo", NEO | {"attention_scale": None}),
    "neo_untied_no_bias": ("gpt_neo", NEO | {"tie_embeddings": False, "bias": False}),
    # the paper's models: global and local (sliding window) layers alternate; a window of 4
    # over 16-token inputs makes the local layers differ from global ones
    "neo_local": ("gpt_neo", NEO | {"attention_pattern": ["global", "local"], "local_window": 4}),
    "llama": ("llama", LLAMA),
    "llama_tied_wide_heads": ("llama", LLAMA | {"tie_embeddings": True, "head_dim": 8}),
    "llama_biases": ("llama", LLAMA | {"bias": True, "qkv_bias": True, "attention_scale": 0.3}),
    "llama_mlp_bias_only": ("llama", LLAMA | {"bias": True}),
}
PCFG = PartitionConfig(forget_heads=1, forget_mlp_units=8)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_exported_logits_match_excise(tmp_path, variant):
    family, overrides = VARIANTS[variant]
    cfg = tiny_config(**overrides)
    assert hf_family(cfg) == family
    model, partition = tiny_model(cfg, PCFG)
    full = excise_logits(model)
    safe = excise_logits(ablated_copy(model, partition))
    for kind, reference in (("full", full), ("ablated", safe), ("pruned", safe)):
        out = tmp_path / kind
        result = export_model(model, partition, out, ablated=kind == "ablated", prune_units=kind == "pruned")
        hf_model = load_hf(out)
        assert (
            type(hf_model).__name__ == {"gpt_neo": "GPTNeoForCausalLM", "llama": "LlamaForCausalLM"}[family]
        )
        assert hf_model.num_parameters() == result.num_parameters
        with torch.no_grad():
            got = hf_model(TOKENS).logits
        assert got.shape == reference.shape
        torch.testing.assert_close(
            got, reference, rtol=1e-5, atol=1e-5, msg=lambda m, kind=kind: f"{kind}: {m}"
        )
        if kind != "full":  # the domain really is gone: differs from the full model
            assert not torch.allclose(got, full, atol=1e-3)


def test_local_attention_is_not_global_attention(tmp_path):
    """The local-window test above would prove nothing if the window changed no logit."""
    local, _ = tiny_model(tiny_config(**VARIANTS["neo_local"][1]), PCFG)
    glob, _ = tiny_model(tiny_config(**NEO), PCFG)
    assert not torch.allclose(excise_logits(local), excise_logits(glob), atol=1e-3)
    assert torch.allclose(excise_logits(local)[:, :4], excise_logits(glob)[:, :4], atol=1e-12)


def test_a_trained_output_bias_is_refused_with_the_reason(tmp_path):
    model, partition = tiny_model(tiny_config(**NEO, output_bias=True), PCFG)
    assert model.output_bias is not None and model.output_bias.abs().max() > 0
    with pytest.raises(UserError, match="output-logit bias"):
        export_model(model, partition, tmp_path / "out")
    assert not (tmp_path / "out" / "model.safetensors").exists()
    with torch.no_grad():
        model.output_bias.zero_()  # an untrained (zero) bias changes nothing: exportable
    export_model(model, partition, tmp_path / "zero")
    torch.testing.assert_close(hf_logits(tmp_path / "zero"), excise_logits(model), rtol=1e-5, atol=1e-5)


def llama_params(V, d, L, heads, hd, ff, tied, attn_bias=False, mlp_bias=False):
    inner = heads * hd
    per_layer = 2 * d + 4 * d * inner + 3 * d * ff
    per_layer += (3 * inner + d) * attn_bias + (2 * ff + d) * mlp_bias
    return V * d * (1 if tied else 2) + L * per_layer + d


def neo_params(V, C, d, L, ff, tied):
    per_layer = 4 * d + 4 * d * d + d + 2 * d * ff + ff + d
    return V * d * (1 if tied else 2) + C * d + L * per_layer + 2 * d


def test_pruned_parameter_counts_exact(tmp_path):
    # Llama, 2 of 4 heads forget: 16 % 2 == 0, so heads are removed; 8 of 32 MLP units removed
    cfg = tiny_config(**LLAMA)
    model, partition = tiny_model(cfg, PartitionConfig(forget_heads=2, forget_mlp_units=8))
    r = export_model(model, partition, tmp_path / "llama", prune_units=True)
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "llama"))
    expected = llama_params(VOCAB, 16, 2, heads=2, hd=4, ff=24, tied=False)
    assert r.pruned_heads and r.pruned_mlp
    assert hf_model.num_parameters() == expected == r.num_parameters
    assert hf_model.config.num_attention_heads == 2 and hf_model.config.intermediate_size == 24

    # Llama, 1 of 4 heads: 3 heads cannot divide hidden 16 in transformers 5 -> kept zeroed
    model, partition = tiny_model(cfg, PCFG)
    r = export_model(model, partition, tmp_path / "llama1", prune_units=True)
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "llama1"))
    assert not r.pruned_heads and any("kept, zeroed" in n for n in r.notes)
    assert hf_model.num_parameters() == llama_params(VOCAB, 16, 2, heads=4, hd=4, ff=24, tied=False)
    q = hf_model.model.layers[0].self_attn.q_proj.weight
    assert torch.count_nonzero(q[12:]) == 0 and torch.count_nonzero(q[:12]) > 0

    # GPT-Neo: MLP units pruned, heads kept zeroed
    cfg = tiny_config(**NEO)
    model, partition = tiny_model(cfg, PCFG)
    r = export_model(model, partition, tmp_path / "neo", prune_units=True)
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "neo"))
    assert hf_model.num_parameters() == neo_params(VOCAB, 16, 16, 2, ff=24, tied=True) == r.num_parameters
    assert "kept, zeroed" in (tmp_path / "neo" / "README.md").read_text()
    info = json.loads((tmp_path / "neo" / "excise_export.json").read_text())
    assert info["forget_partition"]["transformer.h.0.attn.attention.q_proj.weight"] == {
        "dim": 0,
        "forget": [[12, 16]],
    }
    assert "transformer.h.0.mlp.c_fc.weight" not in info["forget_partition"]


def test_inexpressible_configs_raise_clear_errors(tmp_path):
    with pytest.raises(UserError, match="norm=layernorm, model.mlp=gelu, model.positions=rope"):
        hf_family(tiny_config(**NEO | {"positions": "rope"}))
    with pytest.raises(UserError, match="norm=rmsnorm, model.mlp=gelu"):
        hf_family(tiny_config(**LLAMA | {"mlp": "gelu"}))
    with pytest.raises(UserError, match="q/k/v"):
        hf_family(tiny_config(**NEO | {"qkv_bias": True}))
    cfg = tiny_config(**LLAMA)
    model, partition = tiny_model(cfg, PartitionConfig(forget_heads=1, forget_mlp_units=8, layers=[1]))
    with pytest.raises(UserError, match="masked identically"):
        export_model(model, partition, tmp_path / "x", prune_units=True)
    export_model(model, partition, tmp_path / "ok", ablated=True)  # ablation is fine
    plain, empty = tiny_model(cfg, None)
    with pytest.raises(UserError, match="nothing to ablate"):
        export_model(plain, empty, tmp_path / "y", ablated=True)


def test_run_export_tokenizer_card_and_no_pickles(tmp_path, make_run):
    from tokenizers import Tokenizer

    cfg = tiny_config(**NEO)
    ev = {"full": {"forget": 1.5, "retain": 2.0}, "ablated": {"forget": 4.25, "retain": 2.1}}
    run_dir = make_run(cfg, PCFG, eval_json=ev)
    out = tmp_path / "export"
    from excise.cli import main

    assert main(["export", str(run_dir), "--format", "hf", "--ablated", "--out", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= set(files)
    for p in out.iterdir():
        assert p.suffix not in (".bin", ".pt", ".pth", ".pkl", ".pickle"), p
        assert not p.read_bytes().startswith(b"\x80"), f"{p} looks like a pickle"
    tok = transformers.AutoTokenizer.from_pretrained(str(out))
    original = Tokenizer.from_file(str(run_dir / "tokenizer.json"))
    text = "the cat sat on el gato"
    assert tok(text)["input_ids"] == original.encode(text).ids
    assert tok.eos_token == tok.bos_token == tok.pad_token == "<|endoftext|>"
    eot = original.token_to_id("<|endoftext|>")
    config = json.loads((out / "config.json").read_text())
    assert config["eos_token_id"] == config["bos_token_id"] == eot
    card = (out / "README.md").read_text()
    for needle in ("GPTNeoForCausalLM", "safe model", "/data/es.jsonl", "removed domain", "4.2500",
                   "forget heads", "sgtm", "Forget parameters"):  # fmt: skip
        assert needle in card, needle
    # the export equals the run's model, ablated (run weights are float32)
    from excise.run import load_run

    run = load_run(run_dir)
    torch.testing.assert_close(
        hf_logits(out, torch.float32),
        excise_logits(ablated_copy(run.model, run.partition)),
        rtol=1e-5,
        atol=1e-5,
    )
    with pytest.raises(UserError, match="not empty"):
        export_hf(run_dir, out)


@pytest.mark.slow  # a fresh interpreter importing transformers: ~20 s on a busy 2-core box
def test_export_loads_without_excise(tmp_path, make_run):
    """A fresh interpreter that cannot import excise loads model and tokenizer offline."""
    run_dir = make_run(tiny_config(**LLAMA), PCFG)
    out = tmp_path / "export"
    export_hf(run_dir, out, prune_units=True)
    code = (
        "import sys; sys.modules['excise'] = None\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        f"m = AutoModelForCausalLM.from_pretrained({str(out)!r})\n"
        f"t = AutoTokenizer.from_pretrained({str(out)!r})\n"
        "ids = t('the cat', return_tensors='pt').input_ids\n"
        "print(type(m).__name__, m(ids).logits.shape[-1])\n"
    )
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-2:] == ["LlamaForCausalLM", str(VOCAB)]
