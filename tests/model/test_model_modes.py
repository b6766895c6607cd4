"""Expectation tables: what every strategy does to logits and gradients in every mode.

For each (strategy, mode, mask_shared) the table says, per kind of parameter element
(see ``element_kinds``), what its gradient must be after ``strategy.after_backward``:

- ``PLAIN``: equal to the gradient of the same network without a partition (plain step);
- ``ABLATED``: equal to the plain gradient of the zero-ablated copy (``ablate_``);
- ``ZEROED``: equal to the plain gradient of the copy whose retain elements in masked
  layers are zeroed (what activation masking must be equivalent to);
- ``ZERO``: exactly zero (and present: an explicit zero tensor, never ``None``);
- ``NONZERO``: receives some gradient (documented behaviour, e.g. gradient routing's
  consumer weights).

``logits`` says which model the forward pass must equal. Every row is checked for every
model variant, at every site (attention / MLP × masked / unmasked layer, and the global
embeddings / final norm / head), so a wrong slice anywhere shows up as a named failure.
"""

from __future__ import annotations

import copy
from functools import cache

import pytest
import torch
from model_test_helpers import (
    EXACT,
    KINDS,
    SITES,
    VARIANTS,
    backward,
    element_kinds,
    partitioned_model,
    plain_model,
    retain_zeroed_copy,
    site_of,
)

from excise.config import PartitionConfig
from excise.model.ablation import ablate_, ablated_copy
from excise.model.gpt import Mode
from excise.model.strategies import STRATEGIES, get_strategy

PLAIN, ABLATED, ZEROED, ZERO, NONZERO = "plain", "ablated", "zeroed", "zero", "nonzero"


def _row(*expected: str) -> dict[str, str]:
    return dict(zip(("logits", *KINDS), expected, strict=True))


# (strategy, mode, mask_shared) -> expectations.  Columns:
#              logits  forget  retain_in retain_out retain_bias unmasked masked_shared shared
DEFAULT_ROW = _row(PLAIN, PLAIN, PLAIN, PLAIN, PLAIN, PLAIN, PLAIN, PLAIN)  # a plain step
RETAIN_ROW = _row(ABLATED, ZERO, ABLATED, ABLATED, ABLATED, ABLATED, ABLATED, ABLATED)
TABLE: dict[tuple[str, str, bool], dict[str, str]] = {}
for _strategy in STRATEGIES:
    for _mask_shared in (False, True):
        # mask_shared only matters on forget steps.
        TABLE[(_strategy, "default", _mask_shared)] = DEFAULT_ROW
        TABLE[(_strategy, "retain", _mask_shared)] = RETAIN_ROW
TABLE.update({
    # SGTM (the paper's parameter masking): plain forward; every retain element of a masked
    # layer, its output-projection biases included, gets zero gradient; forget elements,
    # unmasked layers and shared parameters get exactly the plain gradient (the
    # FREEZE_RETAIN detach must not change it); mask_shared zeroes the embeddings and the
    # masked layers' norms too, never the final norm, the output bias or unmasked layers.
    ("sgtm", "forget", False):
        _row(PLAIN, PLAIN, ZERO, ZERO, ZERO, PLAIN, PLAIN, PLAIN),
    ("sgtm", "forget", True):
        _row(PLAIN, PLAIN, ZERO, ZERO, ZERO, PLAIN, ZERO, PLAIN),
    # Gradient routing: plain forward, retain activations detached in masked layers. The
    # producers of retain activations get no gradient; their consumers (o_proj/down_proj
    # retain *columns*, output biases) still do, because only activations are detached.
    # Gradients below the cut change; the final norm, head and output bias sit above
    # every layer and keep the plain gradient.
    ("gradient_routing", "forget", False):
        _row(PLAIN, NONZERO, ZERO, NONZERO, NONZERO, NONZERO, NONZERO, PLAIN),
    ("gradient_routing", "forget", True):
        _row(PLAIN, NONZERO, ZERO, NONZERO, NONZERO, NONZERO, ZERO, PLAIN),
    # Activation masking: retain activations zeroed, so the step is exactly a plain step
    # of the network whose retain units in masked layers are zero.
    ("activation_masking", "forget", False):
        _row(ZEROED, ZEROED, ZERO, ZERO, ZEROED, ZEROED, ZEROED, ZEROED),
    ("activation_masking", "forget", True):
        _row(ZEROED, ZEROED, ZERO, ZERO, ZEROED, ZEROED, ZERO, ZEROED),
})  # fmt: skip
SCENARIOS = sorted(TABLE)


@cache
def reference(variant: str, which: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits and gradients of a plain step of the plain / ablated / retain-zeroed network."""
    if which == PLAIN:
        return backward(plain_model(variant))
    model, partition = partitioned_model(variant)
    if which == ABLATED:
        model = copy.deepcopy(model)
        ablate_(model, partition)
    else:
        model = retain_zeroed_copy(model, partition)
    return backward(model)


@cache
def model_of(variant: str):
    return partitioned_model(variant)[0]


@cache
def step(variant: str, strategy: str, mode: str, mask_shared: bool):
    """Logits and post-``after_backward`` gradients of one step, plus the partition."""
    model, partition = partitioned_model(variant)
    strat, m = get_strategy(strategy), Mode(mode)
    logits, _ = backward(model, strat.plan(m, mask_shared))
    strat.after_backward(model, partition, m, mask_shared)
    grads = {n: None if p.grad is None else p.grad.detach().clone() for n, p in model.named_parameters()}
    shapes = {n: p.detach().clone() for n, p in model.named_parameters()}
    return logits, grads, partition, shapes


def _scenario_id(s: tuple[str, str, bool]) -> str:
    return f"{s[0]}-{s[1]}" + ("-mask_shared" if s[2] else "")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=_scenario_id)
def test_forward_matches_table(variant: str, scenario: tuple[str, str, bool]) -> None:
    expected = TABLE[scenario]["logits"]
    logits, *_ = step(variant, *scenario)
    ref_logits, _ = reference(variant, expected)
    torch.testing.assert_close(logits, ref_logits, **EXACT)


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=_scenario_id)
def test_gradients_match_table(variant: str, scenario: tuple[str, str, bool], site: str) -> None:
    row = TABLE[scenario]
    _, grads, partition, params = step(variant, *scenario)
    checked = {k: 0 for k in KINDS}
    for name, param in params.items():
        if site_of(name) != site:
            continue
        grad = grads[name]
        assert grad is not None, f"{name}: after_backward must leave an explicit gradient"
        for kind, mask in element_kinds(partition, name, param, model_of(variant)).items():
            if not mask.any():
                continue
            checked[kind] += int(mask.sum())
            got, what = grad[mask], f"{name} [{kind}] expected {row[kind]}"
            if row[kind] == ZERO:
                assert torch.equal(got, torch.zeros_like(got)), what
            elif row[kind] == NONZERO:
                assert got.abs().max() > 0, what
            else:
                ref = reference(variant, row[kind])[1][name]
                torch.testing.assert_close(got, ref[mask], **EXACT, msg=what)
    # The site must actually contain what the tables are about.
    if site.endswith("@masked"):
        assert checked["forget"] and checked["retain_in"] and checked["retain_out"]
        assert checked["masked_shared"]  # the layer's norm
        if VARIANTS[variant].get("bias", True):
            assert checked["retain_bias"]
    elif site.endswith("@unmasked"):
        assert checked["unmasked"] and not checked["forget"]
    else:
        assert checked["shared"] and checked["masked_shared"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_partitioned_model_is_plain_model_at_same_seed(variant: str) -> None:
    """Declaring forget units changes no parameter: same names, same values."""
    a, _ = partitioned_model(variant)
    b = plain_model(variant)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_activation_masking_forget_step_ignores_retain_activations(variant: str) -> None:
    """Retain units' activations are exactly zero on activation-masking forget steps.

    Observable form: the logits do not depend on any retain slice of a masked layer,
    neither on the producers (q/k/v/up/gate rows) nor on the consumers (o/down columns),
    so perturbing all of them leaves the logits bit-identical.
    """
    model, partition = partitioned_model(variant)
    plan = get_strategy("activation_masking").plan(Mode.FORGET)
    idx = torch.arange(12).view(1, 12) % model.config.vocab_size
    with torch.no_grad():
        before = model(idx, plan=plan)
        params = dict(model.named_parameters())
        for name in partition.slices:
            if name.endswith(("o_proj.bias", "down_proj.bias")):
                continue  # output biases are not units: activation masking keeps them
            p = params[name]
            mask = partition.retain_mask(name, p)
            p[mask] += 1.0 + torch.rand(int(mask.sum()), dtype=p.dtype)
        after = model(idx, plan=plan)
        plain_after = model(idx)
    assert torch.equal(before, after)
    assert not torch.allclose(before, plain_after)  # the perturbation is not a no-op


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_retain_step_ignores_forget_slices(variant: str) -> None:
    """On retain steps the forget units are not computed: their values cannot matter."""
    model, partition = partitioned_model(variant)
    idx = torch.arange(12).view(1, 12) % model.config.vocab_size
    with torch.no_grad():
        before = model(idx, plan=get_strategy("sgtm").plan(Mode.RETAIN))
        params = dict(model.named_parameters())
        for name in partition.slices:
            p = params[name]
            p[partition.forget_mask(name, p)] += 1.0
        after = model(idx, plan=get_strategy("sgtm").plan(Mode.RETAIN))
    assert torch.equal(before, after)


def test_loss_keeps_float64_precision() -> None:
    """``model(idx, targets)`` must not round a float64 model's loss to float32."""
    model, _ = partitioned_model("neo")
    idx = torch.arange(12).view(1, 12)
    targets = torch.arange(1, 13).view(1, 12)
    loss = model(idx, targets)
    ref = torch.nn.functional.cross_entropy(model(idx).flatten(0, 1), targets.flatten())
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, ref, rtol=1e-14, atol=0)


@pytest.mark.parametrize(
    "pcfg",
    [
        PartitionConfig(forget_heads=0, forget_mlp_units=8, layers=[0]),
        PartitionConfig(forget_heads=2, forget_mlp_units=0, layers=[1]),
    ],
    ids=["mlp_units_only", "heads_only_in_last_layer"],
)
@pytest.mark.parametrize("variant", ["neo_qkv_bias", "llama_bias"])
def test_sgtm_with_forget_units_in_one_sublayer_only(variant: str, pcfg: PartitionConfig) -> None:
    """A sublayer without forget units is all retain: it must not learn on forget steps."""
    model, partition = partitioned_model(variant, pcfg)
    _, plain_grads = backward(plain_model(variant))
    sgtm = get_strategy("sgtm")
    backward(model, sgtm.plan(Mode.FORGET))
    sgtm.after_backward(model, partition, Mode.FORGET)
    for name, p in model.named_parameters():
        forget = partition.forget_mask(name, p)
        learns = torch.ones_like(forget) if partition.is_shared(name) else forget
        torch.testing.assert_close(p.grad[learns], plain_grads[name][learns], **EXACT, msg=name)
        assert not p.grad[~learns].any(), name
    assert any(partition.forget_mask(n, p).any() for n, p in model.named_parameters())
    retain_logits, _ = backward(model, sgtm.plan(Mode.RETAIN))
    ablated_logits, _ = backward(ablated_copy(model, partition))
    torch.testing.assert_close(retain_logits, ablated_logits, **EXACT)
