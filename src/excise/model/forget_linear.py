"""Projections for masked layers: which half of a split linear layer is computed, and which
learns.

In a masked layer the retain units are the first outputs (rows of q/k/v/up/gate) or inputs
(columns of o/down) of each projection, the forget units the rest. These functions compute
such a projection as a step's :class:`~excise.model.gpt.Routing` asks: only the retain half
(ablated forward), with the retain weight slice learning nothing (SGTM's forget steps,
without ever computing the useless weight gradient), or with the retain activations
detached or zeroed (gradient routing, activation masking).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from excise.model.plan import Routing


def detached_if(p: torch.Tensor | None, freeze: bool) -> torch.Tensor | None:
    """A parameter as used in forward: detached when its gradient is known to be masked."""
    if p is None:
        return None
    return p.detach() if freeze else p


def split_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    n_retain: int,
    ablate_forget: bool,
    routing: Routing,
) -> torch.Tensor:
    """``x @ weight.T + bias`` for a projection whose output rows are [retain | forget].

    Returns only the retain outputs when ``ablate_forget``; otherwise all outputs with the
    retain half treated as ``routing`` says.
    """
    n_out = weight.shape[0]
    if ablate_forget:
        return F.linear(x, weight[:n_retain], None if bias is None else bias[:n_retain])
    if routing is Routing.NONE or n_retain == n_out:
        return F.linear(x, weight, bias)
    if routing is Routing.FREEZE_RETAIN:
        return forget_grad_linear(x, weight, bias, 0, n_retain)
    return F.linear(x, weight, bias)  # activation routing is applied by the caller


class _ForgetGradLinear(torch.autograd.Function):
    """``F.linear`` whose weight gradient is computed only for the forget slice.

    The forward and the input gradient are those of the plain projection. The weight (and,
    for row slices, bias) gradient is zero on ``[0, start)`` along ``dim`` and exact on the
    forget slice ``[start, n)`` — what using the retain slice detached gives, without the
    ``torch.cat`` of weight halves and without the useless retain weight-gradient matmul.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, dim: int, start: int):
        ctx.save_for_backward(x, weight)
        ctx.dim, ctx.start, ctx.has_bias = dim, start, bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        dim, start = ctx.dim, ctx.start
        g2 = grad.reshape(-1, grad.shape[-1])  # (N, n_out)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad @ weight.to(grad.dtype)).to(x.dtype)
        if ctx.needs_input_grad[1]:
            x2 = x.reshape(-1, x.shape[-1]).to(grad.dtype)  # (N, n_in)
            grad_w = weight.new_zeros(weight.shape)
            if dim == 0:  # output rows [start, n_out)
                grad_w[start:] = (g2[:, start:].t() @ x2).to(weight.dtype)
            else:  # input columns [start, n_in)
                grad_w[:, start:] = (g2.t() @ x2[:, start:]).to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g2.sum(0).to(weight.dtype)
            if dim == 0:
                grad_b[:start] = 0
        return grad_x, grad_w, grad_b, None, None


def forget_grad_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, dim: int, start: int
) -> torch.Tensor:
    """``x @ weight.T + bias`` learning only the weight slice ``[start, n)`` along ``dim``."""
    return _ForgetGradLinear.apply(x, weight, bias, dim, start)


def route_retain(h: torch.Tensor, n_retain: int, routing: Routing, dim: int = -1) -> torch.Tensor:
    """Apply activation routing to the retain part [0, n_retain) of ``h`` along ``dim``."""
    if routing not in (Routing.DETACH_ACTIVATIONS, Routing.ZERO_ACTIVATIONS):
        return h
    if n_retain == h.shape[dim]:
        return h.detach() if routing is Routing.DETACH_ACTIVATIONS else torch.zeros_like(h)
    retain, forget = h.split([n_retain, h.shape[dim] - n_retain], dim=dim)
    retain = retain.detach() if routing is Routing.DETACH_ACTIVATIONS else torch.zeros_like(retain)
    return torch.cat([retain, forget], dim=dim)
