"""``train.compile``: a compiled forward trains exactly like the plain model.

``torch.compile`` wraps the model in a module whose parameter names carry an ``_orig_mod.``
prefix, so gradient masks looked up by name silently missed every slice. The dynamo
``eager`` backend traces the model (as inductor would) but runs the traced graph with the
same kernels, so the comparison can be bitwise on CPU.
"""

from __future__ import annotations

import torch

from excise.config import load_config
from excise.model import Mode, build_model
from excise.train.step import build_optimizer, train_step

TINY = [
    "model.vocab_size=64", "model.context=8", "model.n_layers=1", "model.d_model=16",
    "model.n_heads=2", "model.d_ff=32", "partition.forget_heads=1", "partition.forget_mlp_units=8",
    "method.name=sgtm", "method.mask_shared=true",
]  # fmt: skip


def _trained(compiled: bool) -> dict[str, torch.Tensor]:
    cfg = load_config(None, TINY)
    model, partition = build_model(cfg.model, cfg.partition, seed=0)
    optimizer = build_optimizer(model, partition, cfg.method, cfg.train, "cpu")
    forward = torch.compile(model, backend="eager") if compiled else model
    batch = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(0))
    train_step(forward, optimizer, partition, cfg.method, cfg.train, [batch], Mode.FORGET, 1e-2)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_compiled_forget_step_equals_the_plain_one():
    plain, compiled = _trained(False), _trained(True)
    assert plain.keys() == compiled.keys()
    for k in plain:
        assert torch.equal(plain[k], compiled[k]), k
