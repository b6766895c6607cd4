"""The optimizer step itself: gradient clipping acts, the learning-rate schedules are the
documented ones (the paper's equals torch's LinearLR + CosineAnnealingLR), weight decay
reaches the tensors it says."""

from __future__ import annotations

import copy

import pytest
import torch

from excise.config import MethodConfig, ModelConfig, TrainConfig
from excise.model.gpt import Mode
from excise.model.partition import build_model
from excise.train.optimizer import make_adamw
from excise.train.step import lr_at, train_step

SHAPE = dict(vocab_size=64, context=16, n_layers=2, d_model=16, n_heads=4, d_ff=32)


def tiny():
    model, partition = build_model(ModelConfig(**SHAPE), None, seed=0)
    batch = torch.randint(0, 64, (4, 13), generator=torch.Generator().manual_seed(0))
    return model.double(), partition, [batch]


def grad_norm(model) -> float:
    return float(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters()])))


@pytest.mark.parametrize("clip", [0.0, 1e-3, 1e6])
def test_gradient_clipping_scales_the_gradient_the_optimizer_sees(clip):
    """With plain SGD the update is -lr x the (clipped) gradient, so it shows whether
    clipping acted: at clip 1e-3 the applied gradient has norm exactly 1e-3."""
    model, partition, batches = tiny()
    start = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    method, train = MethodConfig(name="no_filter"), TrainConfig(grad_clip=clip)
    result = train_step(model, opt, partition, method, train, batches, Mode.DEFAULT, lr=0.5)
    assert result.grad_norm > 1e-2  # the unclipped norm: clipping at 1e-3 must act
    applied = grad_norm(model)
    expected = min(result.grad_norm, clip) if clip > 0 else result.grad_norm
    assert applied == pytest.approx(expected, rel=1e-6)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), start[name] - 0.5 * p.grad, rtol=0, atol=1e-15)


def paper_train(steps=60, warmup=10) -> TrainConfig:
    return TrainConfig(
        steps=steps, lr=5e-4, warmup_steps=warmup, warmup_start=0.1, min_lr_ratio=0.0,
        schedule="cosine",
    )  # fmt: skip


def torch_schedule(cfg: TrainConfig) -> list[float]:
    """The paper code's schedule: LinearLR(0.1 -> 1) over warm-up, then cosine to 0."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=cfg.lr)
    warm = torch.optim.lr_scheduler.LinearLR(
        opt, start_factor=0.1, end_factor=1.0, total_iters=cfg.warmup_steps
    )
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps - cfg.warmup_steps, eta_min=0)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[cfg.warmup_steps])
    lrs = []
    for _ in range(cfg.steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_paper_schedule_equals_torch_linear_then_cosine():
    cfg = paper_train()
    ours = [lr_at(s, cfg) for s in range(cfg.steps)]
    theirs = torch_schedule(cfg)
    assert ours[0] == pytest.approx(0.1 * cfg.lr)
    assert ours[cfg.warmup_steps] == pytest.approx(cfg.lr)
    for s, (a, b) in enumerate(zip(ours, theirs)):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-15), s


def test_default_schedule_warms_from_lr_over_warmup_and_decays_to_the_floor():
    cfg = TrainConfig(steps=100, lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(10, cfg) == pytest.approx(1e-3)
    assert lr_at(100, cfg) == pytest.approx(1e-4)
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 100))


@pytest.mark.parametrize("decay_on", ["matrices", "all"])
def test_weight_decay_reaches_the_tensors_it_names(decay_on):
    """Zero gradients: AdamW only decays, so each tensor shrinks by (1 - lr x wd) or not."""
    model, _, _ = tiny()
    model.float()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    opt = make_adamw(model, lr=0.1, betas=(0.9, 0.95), weight_decay=0.5, device="cpu", decay_on=decay_on)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for name, p in model.named_parameters():
        decayed = decay_on == "all" or p.dim() >= 2
        expected = 1.0 - 0.1 * 0.5 if decayed else 1.0
        assert torch.allclose(p.detach(), torch.full_like(p, expected)), name
