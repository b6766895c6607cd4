"""Held-out loss of a model on one domain's token array, with a bootstrap interval.

Definition used everywhere in excise (``eval.json``, relearning curves, reports): the
*domain loss* is the mean next-token cross-entropy in nats over every target token of the
evaluated sequences. A token array has shape (n_seq, T + 1); inputs are ``[:, :-1]`` and
targets ``[:, 1:]``, so each sequence contributes T target tokens, every position counts
(including the first, predicted from one token of context). Lower is better; perplexity is
``exp(mean)``. Only the first ``ceil(max_tokens / T)`` sequences are used, so the figure is
deterministic for a given array.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from excise.model.gpt import GPT, PLAIN, StepPlan


@dataclass(frozen=True)
class LossStat:
    """Mean token loss (nats), tokens behind it, bootstrap 95% CI, and perplexity."""

    mean: float
    n_tokens: int
    ci_low: float
    ci_high: float
    perplexity: float

    def to_json(self) -> dict:
        return asdict(self)


def as_tensor(tokens) -> torch.Tensor:
    """A (n_seq, T+1) int64 tensor from a numpy array or tensor."""
    if isinstance(tokens, np.ndarray):  # a copy: cached arrays are read-only memory maps
        tokens = torch.from_numpy(np.array(tokens, dtype=np.int64))
    if tokens.dim() != 2 or tokens.shape[1] < 2:
        raise ValueError(f"token array must be (n_seq, T+1) with T >= 1, got {tuple(tokens.shape)}")
    return tokens.long()


def _upcast(t: torch.Tensor) -> torch.Tensor:
    """Half-precision logits to float32; float32 / float64 kept as they are."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def logits_with_bias(model: GPT, inputs: torch.Tensor, plan: StepPlan, bias: torch.Tensor | None):
    """Logits, with ``bias`` (vocab,) in place of the model's own output bias if given."""
    if bias is None:
        return model(inputs, plan=plan)
    return model(inputs, plan=plan, output_bias=bias.to(model.output_weight.dtype))


@torch.no_grad()
def sequence_losses(
    model: GPT,
    tokens,
    plan: StepPlan = PLAIN,
    batch_size: int = 16,
    max_tokens: int | None = None,
    device: str | torch.device = "cpu",
    bias: torch.Tensor | None = None,
) -> tuple[np.ndarray, int]:
    """Summed next-token loss (nats) of each evaluated sequence, and tokens per sequence."""
    T = tokens.shape[1] - 1
    n = tokens.shape[0] if max_tokens is None else min(tokens.shape[0], math.ceil(max_tokens / max(T, 1)))
    tokens = as_tensor(tokens[:n])
    was_training = model.training
    model.eval()
    sums = []
    try:
        for start in range(0, n, batch_size):
            batch = tokens[start : min(n, start + batch_size)].to(device)
            logits = logits_with_bias(model, batch[:, :-1], plan, None if bias is None else bias.to(device))
            nll = F.cross_entropy(
                _upcast(logits).flatten(0, 1), batch[:, 1:].flatten(), reduction="none"
            ).view(batch.shape[0], T)
            sums.append(nll.double().sum(1).cpu().numpy())
    finally:
        model.train(was_training)
    return (np.concatenate(sums) if sums else np.zeros(0)), T


def bootstrap_ci(
    seq_sums: np.ndarray, tokens_per_seq: int, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of the mean token loss, resampling whole sequences."""
    if len(seq_sums) < 2:
        m = float(seq_sums.sum() / max(1, len(seq_sums) * tokens_per_seq))
        return m, m
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(seq_sums), size=(n_boot, len(seq_sums)))
    means = seq_sums[idx].mean(1) / tokens_per_seq
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def domain_loss(
    model: GPT,
    tokens,
    plan: StepPlan = PLAIN,
    batch_size: int = 16,
    max_tokens: int | None = None,
    device: str | torch.device = "cpu",
    bias: torch.Tensor | None = None,
) -> LossStat:
    """Mean next-token loss in nats over all target tokens of ``tokens`` (see module doc).

    ``bias`` (vocab,) is the output-logit bias of the calibrated loss: it replaces the model's
    own output bias (if the model has one), as the paper's calibration does.
    """
    sums, T = sequence_losses(model, tokens, plan, batch_size, max_tokens, device, bias)
    if len(sums) == 0:
        raise ValueError("no sequences to evaluate")
    n_tokens = len(sums) * T
    mean = float(sums.sum() / n_tokens)
    lo, hi = bootstrap_ci(sums, T)
    return LossStat(mean, n_tokens, lo, hi, math.exp(min(mean, 700.0)))
