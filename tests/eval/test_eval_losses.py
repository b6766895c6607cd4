import math

import numpy as np
import torch
import torch.nn.functional as F
from eval_test_helpers import TINY, synthetic_tokens

from excise.config import ModelConfig
from excise.eval.losses import domain_loss
from excise.model.gpt import GPT


def tiny_model(seed=0, dtype=torch.float64) -> GPT:
    torch.manual_seed(seed)
    return GPT(ModelConfig(**TINY)).to(dtype)


def test_domain_loss_is_mean_over_all_target_tokens():
    model = tiny_model()
    tokens = synthetic_tokens(5, 16, 0, 64, 0)
    stat = domain_loss(model, tokens, batch_size=2)
    x = torch.from_numpy(tokens)
    logits = model(x[:, :-1])
    expected = F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten()).item()
    assert stat.n_tokens == 5 * 16
    assert math.isclose(stat.mean, expected, rel_tol=1e-12)
    assert math.isclose(stat.perplexity, math.exp(expected), rel_tol=1e-12)
    assert stat.ci_low <= stat.mean <= stat.ci_high


def test_max_tokens_uses_leading_sequences_and_bias_shifts_logits():
    model = tiny_model()
    tokens = synthetic_tokens(10, 16, 0, 64, 0)
    assert domain_loss(model, tokens, max_tokens=33).n_tokens == 3 * 16
    assert domain_loss(model, tokens, max_tokens=33).mean == domain_loss(model, tokens[:3]).mean
    # a bias favouring the true next token everywhere lowers the loss; a constant bias is a no-op
    const = torch.full((64,), 3.0, dtype=torch.float64)
    assert math.isclose(
        domain_loss(model, tokens, bias=const).mean, domain_loss(model, tokens).mean, rel_tol=1e-12
    )


def test_trained_model_scores_its_training_text_below_unseen_random_text():
    torch.manual_seed(0)
    model = GPT(ModelConfig(**TINY))
    train = synthetic_tokens(32, 16, 0, 32, 0)
    unseen = np.random.default_rng(5).integers(0, 64, (16, 17))
    before = domain_loss(model, train).mean
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.from_numpy(train)
    for _ in range(40):
        loss = model(x[:, :-1], x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    own, other = domain_loss(model, train), domain_loss(model, unseen)
    assert own.mean < before - 1.0
    assert own.ci_high < other.ci_low
