"""Partition invariants: coverage, persistence, gradient masking, ablation and pruning."""

from __future__ import annotations

import json

import pytest
import torch
from model_test_helpers import (
    EXACT,
    VARIANTS,
    backward,
    model_config,
    partitioned_model,
    randomize_,
)

from excise.config import PartitionConfig
from excise.model.ablation import ablate_, ablated, ablated_copy, count_elements, prune
from excise.model.gpt import GPT
from excise.model.partition import (
    Partition,
    apply_partition,
    build_partition,
    mask_gradients,
    mask_shared_names,
)

ALL_VARIANTS = sorted(VARIANTS)


def _forget_masks(model: GPT, partition: Partition) -> dict[str, torch.Tensor]:
    return {n: partition.forget_mask(n, p) for n, p in model.named_parameters()}


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


# ---------------------------------------------------------------------------------------
# coverage and persistence


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_every_element_is_exactly_one_of_shared_retain_forget(variant: str) -> None:
    model, partition = partitioned_model(variant)
    params = dict(model.named_parameters())
    assert set(partition.slices) <= set(params), "partition names unknown parameters"
    for name, p in params.items():
        shared = torch.full(p.shape, partition.is_shared(name))
        retain, forget = partition.retain_mask(name, p), partition.forget_mask(name, p)
        total = shared.int() + retain.int() + forget.int()
        assert torch.equal(total, torch.ones_like(total)), name


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_count_elements_sums_to_num_parameters(variant: str) -> None:
    model, partition = partitioned_model(variant)
    counts = count_elements(model, partition)
    assert sum(counts.values()) == model.num_parameters()
    assert counts["forget"] == sum(int(m.sum()) for m in _forget_masks(model, partition).values())
    assert min(counts.values()) > 0


def test_forget_slices_are_the_last_units_of_masked_layers_only() -> None:
    """Explicit table for the "neo_qkv_bias" shape: d_model 16, 4 heads of 4, d_ff 32."""
    model, partition = partitioned_model("neo_qkv_bias")
    heads, units = ((12, 16),), ((24, 32),)  # 1 of 4 heads (dim 4), 8 of 32 MLP units
    expected = {
        "blocks.0.attn.q_proj.weight": (0, heads), "blocks.0.attn.q_proj.bias": (0, heads),
        "blocks.0.attn.k_proj.weight": (0, heads), "blocks.0.attn.k_proj.bias": (0, heads),
        "blocks.0.attn.v_proj.weight": (0, heads), "blocks.0.attn.v_proj.bias": (0, heads),
        "blocks.0.attn.o_proj.weight": (1, heads),
        "blocks.0.mlp.up_proj.weight": (0, units), "blocks.0.mlp.up_proj.bias": (0, units),
        "blocks.0.mlp.down_proj.weight": (1, units),
        # output-projection biases of a masked layer: all retain (no forget slice)
        "blocks.0.attn.o_proj.bias": (0, ()), "blocks.0.mlp.down_proj.bias": (0, ()),
    }  # fmt: skip
    got = {n: (s.dim, s.ranges) for n, s in partition.slices.items()}
    assert got == expected
    swiglu, swiglu_partition = partitioned_model("llama")
    assert swiglu_partition.slices["blocks.0.mlp.gate_proj.weight"].ranges == units
    assert "blocks.0.mlp.up_proj.bias" not in swiglu_partition.slices  # no biases there


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_partition_json_round_trip_and_apply(variant: str, tmp_path) -> None:
    model, partition = partitioned_model(variant)
    path = tmp_path / "partition.json"
    partition.save(path)
    # The documented, excise-free format: {name: {"dim": d, "forget": [[start, stop]]}}.
    raw = json.loads(path.read_text())
    assert set(raw) == set(partition.slices)
    assert all(set(v) == {"dim", "forget"} for v in raw.values())
    loaded = Partition.load(path)
    assert loaded == partition
    fresh = GPT(model_config(variant))
    assert build_partition(fresh).empty
    apply_partition(fresh, loaded)
    assert build_partition(fresh) == partition
    assert fresh.layer_shapes == model.layer_shapes


def test_a_masked_layer_without_forget_heads_lists_its_attention_as_all_retain() -> None:
    model, partition = partitioned_model(
        "neo", PartitionConfig(forget_heads=0, forget_mlp_units=8, layers=[1])
    )
    assert partition.masked_layers == [1]
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
        assert partition.slices[f"blocks.1.attn.{proj}.weight"].ranges == ()
    assert not any(n.startswith("blocks.0.") for n in partition.slices)  # unmasked: shared
    fresh = GPT(model_config("neo"))
    assert apply_partition(fresh, Partition.from_json(partition.to_json())) == partition
    assert [s.masked for s in fresh.layer_shapes] == [False, True]


def test_a_partition_json_listing_only_forget_slices_loads_as_the_full_partition() -> None:
    """Older runs' partition.json named only parameters with forget slices."""
    _, partition = partitioned_model("neo_qkv_bias")
    older = Partition({k: v for k, v in partition.slices.items() if v.ranges})
    assert older != partition
    assert apply_partition(GPT(model_config("neo_qkv_bias")), older) == partition


def test_apply_partition_rejects_a_partition_that_does_not_fit() -> None:
    _, partition = partitioned_model("neo")
    bad = Partition({**partition.slices})
    name = "blocks.0.mlp.up_proj.weight"
    bad.slices[name] = type(bad.slices[name])(0, ((0, 8),))  # leading units: not our layout
    with pytest.raises(ValueError):
        apply_partition(GPT(model_config("neo")), bad)


# ---------------------------------------------------------------------------------------
# gradient masking


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_mask_gradients_keep_retain_zeroes_exactly_the_forget_elements(variant: str) -> None:
    model, partition = partitioned_model(variant)
    _, grads = backward(model)
    for name, p in model.named_parameters():
        if name.endswith("k_proj.bias"):
            # a key bias shifts every score of a query equally, so softmax makes its true
            # gradient zero (rounding leaves ~1e-17 or exactly 0): give it a nonzero one
            p.grad = torch.linspace(1.0, 2.0, p.numel(), dtype=p.dtype).reshape(p.shape)
            grads[name] = p.grad.clone()
    mask_gradients(model, partition, keep="retain")
    for name, p in model.named_parameters():
        forget = partition.forget_mask(name, p)
        assert torch.equal(p.grad[forget], torch.zeros(int(forget.sum()), dtype=p.dtype)), name
        assert torch.equal(p.grad[~forget], grads[name][~forget]), name
        assert (grads[name][forget] != 0).all(), "a zero before masking proves nothing"


@pytest.mark.parametrize("mask_shared", [False, True])
def test_mask_gradients_keep_forget(mask_shared: bool) -> None:
    model, partition = partitioned_model("llama_bias")
    _, grads = backward(model)
    mask_gradients(model, partition, keep="forget", mask_shared=mask_shared)
    for name, p in model.named_parameters():
        keep = partition.forget_mask(name, p)
        if partition.is_shared(name) and not (mask_shared and name in mask_shared_names(model, partition)):
            keep = torch.ones_like(keep)
        assert torch.equal(p.grad[keep], grads[name][keep]), name
        assert not p.grad[~keep].any(), name


# ---------------------------------------------------------------------------------------
# ablation


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_ablate_zero_changes_exactly_the_forget_elements(variant: str) -> None:
    model, partition = partitioned_model(variant)
    before = _snapshot(model)
    ablate_(model, partition)
    for name, p in model.named_parameters():
        forget = partition.forget_mask(name, p)
        assert not p[forget].any(), name
        assert torch.equal(p[~forget], before[name][~forget]), name
        assert (before[name][forget] != 0).all(), name


@pytest.mark.parametrize("variant", ["neo", "llama_bias"])
def test_ablate_reinit_changes_exactly_the_forget_elements(variant: str) -> None:
    model, partition = partitioned_model(variant)
    before = _snapshot(model)
    ablate_(model, partition, how="reinit", seed=3)
    for name, p in model.named_parameters():
        forget = partition.forget_mask(name, p)
        assert torch.equal(p[~forget], before[name][~forget]), name
        assert (p[forget] != before[name][forget]).all(), name
    again, _ = partitioned_model(variant)
    ablate_(again, partition, how="reinit", seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))


def test_ablate_reinit_draws_from_the_retain_statistics() -> None:
    """Forget elements are redrawn from N(mean, std) of the same tensor's retain elements."""
    pcfg = PartitionConfig(forget_heads=1, forget_mlp_units=64, layers=[0])
    from excise.model.partition import build_model

    model, partition = build_model(model_config("neo", d_model=32, d_ff=256), pcfg, seed=0)
    model.double()
    name = "blocks.0.mlp.up_proj.weight"  # 64 forget rows x 32 = 2048 redrawn elements
    p = dict(model.named_parameters())[name]
    with torch.no_grad():
        p.normal_(3.0, 0.5, generator=torch.Generator().manual_seed(0))
    ablate_(model, partition, how="reinit", seed=0)
    redrawn = p[partition.forget_mask(name, p)]
    assert redrawn.numel() == 2048
    assert abs(redrawn.mean().item() - 3.0) < 0.05  # 4.5 standard errors
    assert abs(redrawn.std().item() - 0.5) < 0.04


def test_ablate_rejects_unknown_mode() -> None:
    model, partition = partitioned_model("neo")
    with pytest.raises(ValueError):
        ablate_(model, partition, how="shuffle")


@pytest.mark.parametrize("variant", ["neo", "llama"])
def test_ablated_context_zeroes_then_restores_bit_identically(variant: str) -> None:
    model, partition = partitioned_model(variant)
    before = _snapshot(model)
    reference = ablated_copy(model, partition)
    idx = torch.arange(12).view(1, 12)
    with ablated(model, partition) as inner:
        assert inner is model
        for (name, p), q in zip(model.named_parameters(), reference.parameters()):
            assert torch.equal(p, q), name
        inside = model(idx)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    torch.testing.assert_close(inside, reference(idx), rtol=0, atol=0)


def test_ablated_context_restores_after_an_exception() -> None:
    model, partition = partitioned_model("llama_bias")
    before = _snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        with ablated(model, partition):
            raise RuntimeError("boom")
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_ablated_copy_leaves_the_original_alone() -> None:
    model, partition = partitioned_model("neo")
    before = _snapshot(model)
    clone = ablated_copy(model, partition)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert not any(p.data_ptr() == q.data_ptr() for p, q in zip(model.parameters(), clone.parameters()))


# ---------------------------------------------------------------------------------------
# pruning


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_prune_equals_zero_ablation(variant: str) -> None:
    model, partition = partitioned_model(variant)
    pruned = prune(model, partition)
    counts = count_elements(model, partition)
    assert pruned.num_parameters() == model.num_parameters() - counts["forget"]
    assert build_partition(pruned).empty
    reference = ablated_copy(model, partition)
    idx = torch.randint(0, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(pruned(idx), reference(idx), **EXACT)
        assert not torch.allclose(model(idx), reference(idx))  # ablation did matter
    assert [s.n_heads for s in pruned.layer_shapes] == [3, 4]
    assert [s.d_ff for s in pruned.layer_shapes] == [24, 32]


def test_prune_of_an_all_layers_partition_with_float32() -> None:
    """Default partition (every layer masked) in the default dtype, a looser tolerance."""
    from excise.model.partition import build_model

    model, partition = build_model(
        model_config("neo"), PartitionConfig(forget_heads=2, forget_mlp_units=5), seed=0
    )
    randomize_(model)
    pruned = prune(model, partition)
    assert pruned.num_parameters() == model.num_parameters() - count_elements(model, partition)["forget"]
    idx = torch.arange(16).view(1, 16)
    with torch.no_grad():
        torch.testing.assert_close(pruned(idx), ablated_copy(model, partition)(idx), rtol=1e-5, atol=1e-5)


def test_prune_keeps_the_source_model_unchanged() -> None:
    model, partition = partitioned_model("llama_bias")
    before = _snapshot(model)
    pruned = prune(model, partition)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    with torch.no_grad():
        next(pruned.parameters()).add_(1.0)  # no storage shared with the source
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
