"""Mixed batches (train.batches: mixed): label-grouped micro-batches, each masked by its own
label, equal the pure step for one label and keep the masking invariant per sequence."""

from __future__ import annotations

import pytest
import torch

from excise.config import MethodConfig, ModelConfig, PartitionConfig, TrainConfig
from excise.model.gpt import Mode
from excise.model.partition import build_model
from excise.train.mixed import grouped_train_step
from excise.train.step import build_optimizer, train_step

MODEL = ModelConfig(vocab_size=64, context=16, n_layers=2, d_model=32, n_heads=4, d_ff=64)
PART = PartitionConfig(forget_heads=1, forget_mlp_units=16)
TRAIN = TrainConfig(lr=1e-2, grad_clip=0.5)  # a clip that bites, so per-group clipping matters


def _setup(masking: str):
    model, partition = build_model(MODEL, PART, seed=0)
    method = MethodConfig(name="sgtm", masking=masking, mask_shared=True)
    return model, partition, method, build_optimizer(model, partition, method, TRAIN, "cpu")


def _rows(seed: int, n: int) -> torch.Tensor:
    return torch.randint(
        0, MODEL.vocab_size, (n, MODEL.context + 1), generator=torch.Generator().manual_seed(seed)
    )


def _safe_elements(model, partition) -> dict[str, torch.Tensor]:
    """Every element SGTM masks on forget steps: retain slices, embeddings, masked norms (the
    final norm is never masked, as in the paper's code)."""
    out = {}
    for name, p in model.named_parameters():
        if name.startswith("norm_f") or name == "out_bias":
            continue
        keep = torch.ones_like(p, dtype=torch.bool)
        s = partition.slices.get(name)
        for start, stop in s.ranges if s is not None else ():
            keep.narrow(s.dim, start, stop - start).fill_(False)
        out[name] = p.detach()[keep].clone()
    return out


@pytest.mark.parametrize("masking", ["grads", "updates"])
@pytest.mark.parametrize("mode", [Mode.FORGET, Mode.RETAIN, Mode.DEFAULT])
def test_one_label_group_equals_the_pure_step(masking, mode):
    a, partition, method, opt_a = _setup(masking)
    b, _, _, opt_b = _setup(masking)
    for step in range(3):
        batches = [_rows(step, 4), _rows(100 + step, 4)]
        train_step(a, opt_a, partition, method, TRAIN, batches, mode, lr=1e-2)
        grouped_train_step(b, opt_b, partition, method, TRAIN, [(mode, batches)], lr=1e-2)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(pa, pb), name


@pytest.mark.parametrize("masking", ["grads", "updates"])
def test_safe_weights_are_bit_identical_whatever_the_forget_sequences_contain(masking):
    """Two runs share two mixed steps, then take a third whose forget sequences differ
    (forget, retain and unlabelled sequences in one step, micro-batches of unequal size):
    every element SGTM masks is bit-identical after it. Only one step differs because the
    never-masked final norm learns from forget text, as in the paper, and later steps see it."""
    runs = {}
    for content in (1, 2):
        model, partition, method, opt = _setup(masking)
        for step in range(3):
            forget_seed = 1000 * content + step if step == 2 else 500 + step
            groups = [
                (Mode.FORGET, [_rows(forget_seed, 3)]),
                (Mode.RETAIN, [_rows(step, 4), _rows(50 + step, 1)]),
                (Mode.DEFAULT, [_rows(70 + step, 2)]),
            ]
            grouped_train_step(model, opt, partition, method, TRAIN, groups, lr=1e-2)
        runs[content] = (model, partition)
    safe1, safe2 = (_safe_elements(m, p) for m, p in runs.values())
    for name in safe1:
        assert torch.equal(safe1[name], safe2[name]), name
    full1, full2 = (dict(m.named_parameters()) for m, _ in runs.values())
    assert any(not torch.equal(full1[k], full2[k]) for k in full1), "forget units must learn the forget text"


def test_a_clip_after_the_sum_would_leak_forget_content():
    """The reason for per-group clipping: clipping the summed gradient scales the retain
    update by a norm that depends on the forget sequences."""
    from excise.train.step import masked_gradients

    norms = []
    for content in (1, 2):
        model, partition, method, opt = _setup("grads")
        masked_gradients(model, opt, partition, method, [_rows(content * 7, 3)], Mode.FORGET)
        norms.append(float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])))
    assert norms[0] != norms[1]


def test_mixed_schedule_is_pure_in_step_and_labels_each_sequence():
    from excise.config import load_config
    from excise.data.mixed import MixedSchedule

    config = load_config(None, ["train.batch_size=64", "labels.retain_fraction=1", "train.batches=mixed"])
    schedule = MixedSchedule(config, {"forget": 100, "retain": 300})
    s1, s2 = schedule.at(5), schedule.at(5)
    assert s1.domains == s2.domains and s1.labels == s2.labels and (s1.indices == s2.indices).all()
    assert set(s1.domains) == {"forget", "retain"}  # one step holds both pools
    assert all(lab == ("forget" if d == "forget" else "retain") for d, lab in zip(s1.domains, s1.labels))
