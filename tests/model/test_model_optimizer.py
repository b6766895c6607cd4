"""``masking: updates``: PartitionedAdamW steps element groups independently and exactly.

With a single AdamW, zeroed gradients still move parameters through momentum and weight
decay; PartitionedAdamW must leave the groups it is not told to step bit-identical, and
with all groups it must be plain AdamW.
"""

from __future__ import annotations

import copy

import pytest
import torch
from model_test_helpers import backward, partitioned_model

from excise.model.partition import Partition, mask_shared_names
from excise.train.optimizer import PartitionedAdamW

LR, BETAS, EPS, WD = 1e-2, (0.9, 0.95), 1e-8, 0.1


def _group_masks(model: torch.nn.Module, partition: Partition) -> dict[str, dict[str, torch.Tensor]]:
    """name -> group -> boolean mask of that parameter's elements in the group."""
    masks = {}
    masked_shared = mask_shared_names(model, partition)
    for name, p in model.named_parameters():
        shared = partition.is_shared(name)
        masks[name] = {
            "shared": torch.full(p.shape, shared and name not in masked_shared),
            "masked_shared": torch.full(p.shape, name in masked_shared),
            "retain": partition.retain_mask(name, p),
            "forget": partition.forget_mask(name, p),
        }
    return masks


def _warm_optimizer(variant: str, steps: int = 2):
    """A model and optimizer with non-zero moments in every group."""
    model, partition = partitioned_model(variant)
    opt = PartitionedAdamW(model, partition, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    for _ in range(steps):
        backward(model)
        opt.step()
    return model, partition, opt


@pytest.mark.parametrize("variant", ["neo_qkv_bias", "llama_bias"])
@pytest.mark.parametrize(
    "stepped, frozen",
    [
        (("forget", "shared", "masked_shared"), ("retain",)),  # forget step
        (("forget", "shared"), ("retain", "masked_shared")),  # forget step under mask_shared
        (("retain", "shared", "masked_shared"), ("forget",)),  # retain step
    ],
)
def test_unstepped_groups_stay_bit_identical(variant, stepped, frozen) -> None:
    model, partition, opt = _warm_optimizer(variant)
    backward(model)  # full, unmasked gradients: only the group selection protects anything
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    steps_before = dict(opt.steps)
    opt.step(groups=stepped)
    masks = _group_masks(model, partition)
    moved = {g: 0 for g in stepped}
    for name, p in model.named_parameters():
        for g in frozen:
            m = masks[name][g]
            assert torch.equal(p[m], before[name][m]), f"{name} [{g}] moved"
        for g in stepped:
            m = masks[name][g]
            moved[g] += int((p[m] != before[name][m]).sum())
    assert all(moved.values()), moved
    assert opt.steps == {g: steps_before[g] + (g in stepped) for g in steps_before}


def _torch_adamw(model: torch.nn.Module, decay_on: str) -> torch.optim.AdamW:
    """Reference: decoupled weight decay on parameters with >= 2 dims, or on all."""
    if decay_on == "all":
        return torch.optim.AdamW(
            model.parameters(), lr=LR, betas=BETAS, eps=EPS, weight_decay=WD, foreach=False
        )
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS, foreach=False)


@pytest.mark.parametrize("decay_on", ["matrices", "all"])
@pytest.mark.parametrize("variant", ["neo", "llama_bias"])
def test_all_groups_equal_torch_adamw(variant: str, decay_on: str) -> None:
    ours, partition = partitioned_model(variant)
    theirs = copy.deepcopy(ours)
    opt_ours = PartitionedAdamW(
        ours, partition, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD, decay_on=decay_on
    )
    opt_theirs = _torch_adamw(theirs, decay_on)
    start = {n: p.detach().clone() for n, p in ours.named_parameters()}
    for _ in range(4):
        backward(ours)
        backward(theirs)
        opt_ours.step()
        opt_theirs.step()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=name)
        assert not torch.equal(a, start[name]), name


def test_state_dict_round_trip_continues_identically() -> None:
    model, partition, opt = _warm_optimizer("llama_bias")
    saved_model = copy.deepcopy(model)
    saved_state = copy.deepcopy(opt.state_dict())
    resumed = PartitionedAdamW(saved_model, partition, lr=123.0, betas=BETAS, eps=EPS, weight_decay=WD)
    resumed.load_state_dict(saved_state)
    assert resumed.lr == LR and resumed.steps == opt.steps
    for groups in [
        ("forget", "shared"),
        ("retain", "shared", "masked_shared"),
        ("shared", "masked_shared", "retain", "forget"),
    ]:
        backward(model)
        backward(saved_model)
        opt.step(groups=groups)
        resumed.step(groups=groups)
    for (name, a), b in zip(model.named_parameters(), saved_model.parameters()):
        assert torch.equal(a, b), name


def test_zero_grad_clears_every_gradient() -> None:
    model, _, opt = _warm_optimizer("neo", steps=1)
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
