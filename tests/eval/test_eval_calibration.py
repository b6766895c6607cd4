import torch
from eval_test_helpers import tiny_config

from excise.config import EvalConfig
from excise.eval.calibration import fit_output_bias
from excise.eval.losses import domain_loss
from excise.model.partition import build_model


def test_calibration_lowers_every_domain_loss_and_touches_no_weight(data):
    cfg = tiny_config()
    model, _ = build_model(cfg.model, cfg.partition, seed=0)
    # A systematic output shift: every domain's tokens lie in 0..59, the model favours 60..63.
    with torch.no_grad():
        direction = torch.ones(cfg.model.d_model) / cfg.model.d_model**0.5
        model.norm_f.bias.copy_(direction)
        model.embed.weight[60:] += 2.0 * direction
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ev = EvalConfig(
        calibration_steps=150, calibration_alpha=1.0, calibration_beta=1.0, calibration_batch_size=8
    )
    bias = fit_output_bias(model, data.train, ev, seed=0)
    assert bias.shape == (cfg.model.vocab_size,) and not bias.requires_grad
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    for domain, arr in data.train.items():
        plain = domain_loss(model, arr).mean
        calibrated = domain_loss(model, arr, bias=bias).mean
        assert calibrated <= plain - 0.05, domain


def test_calibration_is_seeded_and_zero_steps_returns_the_init(data):
    cfg = tiny_config()
    model, _ = build_model(cfg.model, cfg.partition, seed=0)
    ev = EvalConfig(calibration_steps=5, calibration_batch_size=2)
    a = fit_output_bias(model, data.train, ev, seed=3)
    b = fit_output_bias(model, data.train, ev, seed=3)
    assert torch.equal(a, b)
    init = fit_output_bias(model, data.train, EvalConfig(calibration_steps=0), seed=3)
    assert 0.05 < init.std().item() < 0.15  # N(0, 0.1)
    assert not torch.equal(init, a)


def test_heavier_weight_favours_that_domain(data):
    cfg = tiny_config()
    model, _ = build_model(cfg.model, cfg.partition, seed=0)
    retain_heavy = fit_output_bias(
        model, data.train, EvalConfig(calibration_steps=100, calibration_alpha=100.0), seed=0
    )
    forget_heavy = fit_output_bias(
        model,
        data.train,
        EvalConfig(calibration_steps=100, calibration_alpha=0.01, calibration_beta=0.01),
        seed=0,
    )
    r = data.train["retain"]
    assert domain_loss(model, r, bias=retain_heavy).mean < domain_loss(model, r, bias=forget_heavy).mean
