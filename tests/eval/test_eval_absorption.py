import torch
from eval_test_helpers import tiny_config

from excise.eval.absorption import gradient_norms
from excise.model.ablation import ablate_
from excise.model.partition import build_model


def test_zeroed_forget_units_get_exactly_zero_gradient(data):
    cfg = tiny_config()
    model, partition = build_model(cfg.model, cfg.partition, seed=0)
    ablate_(model, partition)
    batches = {k: torch.from_numpy(v[:4]) for k, v in data.train.items()}
    norms = gradient_norms(model, partition, batches)
    assert set(norms) == set(batches)
    for per_layer in norms.values():
        assert len(per_layer) == cfg.model.n_layers
        for layer in per_layer:
            assert layer["forget"] == 0.0 and layer["retain"] > 0.0


def test_gradient_norms_match_manual_computation_and_leave_grads_alone(data):
    cfg = tiny_config()
    model, partition = build_model(cfg.model, cfg.partition, seed=0)
    model = model.double()
    batch = torch.from_numpy(data.train["forget"][:4])
    norms = gradient_norms(model, partition, {"default": batch})["default"]
    assert all(p.grad is None for p in model.parameters())
    model(batch[:, :-1], batch[:, 1:]).backward()
    w = model.blocks[1].mlp.up_proj.weight
    f = partition.forget_mask("blocks.1.mlp.up_proj.weight", w)
    names = [n for n, _ in model.named_parameters() if n.startswith("blocks.1.") and n in partition.slices]
    total_forget = sum(
        float((p.grad[partition.forget_mask(n, p)].double() ** 2).sum())
        for n, p in model.named_parameters()
        if n in names
    )
    assert f.any()
    assert abs(norms[1]["forget"] ** 2 - total_forget) < 1e-12 * max(1.0, total_forget)
