"""Logit calibration: fit only a fresh output-logit bias on the frozen model.

Ablation (or filtering) shifts the model's output distribution as a whole; a loss that is
high only because of that shift overstates removal. The paper therefore reports losses
after training a fresh bias ``b`` (vocab,) added to the logits, everything else frozen:
``b ~ N(0, 0.1)``, AdamW at ``calibration_lr`` decaying linearly to 10%, loss
``forget + beta * adjacent + alpha * retain`` on the *train* splits, ``calibration_steps``
steps, seeded. A model with an output bias of its own has it replaced by the fresh one, as
in the paper's code. The frozen model's final hidden states are computed once for a fixed
pool of sequences, so a step costs only ``h @ W.T + b`` on a minibatch of pooled tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from excise.config import EvalConfig
from excise.eval.losses import as_tensor
from excise.model.gpt import GPT, PLAIN, StepPlan


@torch.no_grad()
def hidden_pool(
    model: GPT, tokens, n_sequences: int, batch_size: int, plan: StepPlan, device, generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Final hidden states (n_tok, d) and targets (n_tok,) of up to ``n_sequences`` sequences."""
    tokens = as_tensor(tokens)
    pick = torch.randperm(tokens.shape[0], generator=generator)[:n_sequences]
    chosen = tokens[pick]
    was_training = model.training
    model.eval()
    hs = []
    for start in range(0, chosen.shape[0], batch_size):
        batch = chosen[start : start + batch_size].to(device)
        hs.append(model.hidden_states(batch[:, :-1], plan).flatten(0, 1).float())
    model.train(was_training)
    return torch.cat(hs), chosen[:, 1:].reshape(-1).to(device)


def fit_output_bias(
    model: GPT,
    train_arrays: dict,
    cfg: EvalConfig,
    plan: StepPlan = PLAIN,
    device: str | torch.device = "cpu",
    seed: int = 0,
    pool_sequences: int | None = None,
    init_std: float = 0.1,
) -> torch.Tensor:
    """Train a fresh logit bias (vocab,) on the weighted domain mix; the model is untouched.

    ``train_arrays`` maps domain ("forget" / "adjacent" / "retain") to a (n_seq, T+1) token
    array; absent domains drop out of the loss. Weights: forget 1, adjacent
    ``cfg.calibration_beta``, retain ``cfg.calibration_alpha``. Each step samples
    ``cfg.calibration_batch_size`` sequences' worth of tokens per domain from the pool
    (``pool_sequences``, default 8 batches, per domain).
    """
    weights = {"forget": 1.0, "adjacent": cfg.calibration_beta, "retain": cfg.calibration_alpha}
    gen = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    bias = (torch.randn(vocab, generator=gen) * init_std).to(device).requires_grad_(True)
    if cfg.calibration_steps == 0:
        return bias.detach()
    n_pool = pool_sequences or 8 * cfg.calibration_batch_size
    W = model.output_weight.detach().float()
    pools = {}
    for domain, arr in train_arrays.items():
        if arr is None or len(arr) == 0 or weights.get(domain, 0.0) == 0.0:
            continue
        h, targets = hidden_pool(model, arr, n_pool, cfg.batch_size, plan, device, gen)
        per_step = min(h.shape[0], cfg.calibration_batch_size * (as_tensor(arr).shape[1] - 1))
        pools[domain] = (h, targets, per_step)
    if not pools:
        raise ValueError("calibration needs at least one non-empty domain with non-zero weight")
    opt = torch.optim.AdamW([bias], lr=cfg.calibration_lr, weight_decay=0.0)
    steps = cfg.calibration_steps
    for step in range(steps):
        for group in opt.param_groups:  # linear decay from lr to 10% of lr
            group["lr"] = cfg.calibration_lr * (1.0 - 0.9 * step / max(1, steps - 1))
        loss = bias.new_zeros(())
        for domain, (h, targets, per_step) in pools.items():
            idx = torch.randint(0, h.shape[0], (per_step,), generator=gen).to(h.device)
            with torch.no_grad():
                base = h[idx] @ W.T  # (n_tok, vocab)
            loss = loss + weights[domain] * F.cross_entropy(base + bias, targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return bias.detach()
