"""Knowledge probes: fact-probe accuracy, free generation, and a forget-language score.

- :func:`fact_accuracy`: for each probe (question, answer, choices) the model picks the
  choice with the lowest *mean* next-token loss of the choice's tokens given the question
  (mean, not sum, so longer choices are not penalised); accuracy = share of probes where
  that choice is the answer. Chance is 1 / len(choices).
- :func:`spanish_share`: the bilingual experiment's language score of one text — the share
  of Spanish stop words among all English + Spanish stop-word hits (0 = English, 1 =
  Spanish, None when the text has no stop word of either list).
  :func:`forget_language_share` averages it over generations (texts without hits skipped).
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from excise.model.gpt import GPT, PLAIN, StepPlan

SPANISH_STOPWORDS = frozenset(
    "el la los las un una unos unas de del y que en por para con no se su sus al lo es era "
    "fue como pero más muy ya también porque cuando donde hay este esta esto ese esa sobre "
    "entre sin hasta desde yo tú él ella nosotros ellos ellas le les me te nos mi mis tu "
    "sí ni o u ha han había estaba estaban son está están ser estar tiene tenía".split()
)
ENGLISH_STOPWORDS = frozenset(
    "the a an of and that in for with not is was it he she they his her their to on at by "
    "from as but very also because when where there this these those be been were are "
    "have had has i you we me him them my your our what which who would could will".split()
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def spanish_share(text: str) -> float | None:
    """Spanish stop words / (Spanish + English stop words) in ``text``; None if neither."""
    words = [w.lower() for w in _WORD.findall(text)]
    es = sum(w in SPANISH_STOPWORDS for w in words)
    en = sum(w in ENGLISH_STOPWORDS for w in words)
    return None if es + en == 0 else es / (es + en)


def forget_language_share(texts: list[str]) -> float | None:
    """Mean :func:`spanish_share` over the texts that have any stop-word hit."""
    scores = [s for s in map(spanish_share, texts) if s is not None]
    return sum(scores) / len(scores) if scores else None


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text).ids)


@torch.no_grad()
def choice_losses(
    model: GPT, tokenizer, question: str, choices: list[str], plan: StepPlan = PLAIN, device="cpu"
) -> list[float]:
    """Mean next-token loss of each choice's tokens (encoded as " " + choice) after the question."""
    q = _encode(tokenizer, question)
    out = []
    context = model.config.context
    for choice in choices:
        a = _encode(tokenizer, " " + choice.strip())
        ids = (q + a)[-(context + 1) :]
        n_a = min(len(a), len(ids) - 1)
        x = torch.tensor(ids, device=device)[None]
        logits = model(x[:, :-1], plan=plan)[0, -n_a:]
        out.append(float(F.cross_entropy(logits.float(), x[0, -n_a:])))
    return out


def fact_accuracy(model: GPT, tokenizer, probes, plan: StepPlan = PLAIN, device="cpu") -> float | None:
    """Share of probes whose lowest-loss choice is the answer (see module doc)."""
    if not probes:
        return None
    was_training = model.training
    model.eval()
    correct = 0
    for p in probes:
        losses = choice_losses(model, tokenizer, p.question, list(p.choices), plan, device)
        best = min(range(len(losses)), key=losses.__getitem__)
        correct += list(p.choices)[best].strip() == p.answer.strip()
    model.train(was_training)
    return correct / len(probes)


@torch.no_grad()
def generate(
    model: GPT,
    prompt_ids: list[int],
    n_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = 40,
    seed: int = 0,
    plan: StepPlan = PLAIN,
    device="cpu",
    stop_id: int | None = None,
) -> list[int]:
    """Sample ``n_tokens`` continuation ids (top-k, temperature; seeded) after ``prompt_ids``;
    with ``stop_id``, stop after that token. Recomputes the whole window per token (no KV
    cache): :mod:`excise.eval.sampling` uses transformers' ``generate`` where it can."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    was_training = model.training
    model.eval()
    ids = list(prompt_ids) or [0]
    out = []
    for _ in range(n_tokens):
        x = torch.tensor(ids[-model.config.context :], device=device)[None]
        logits = model(x, plan=plan)[0, -1].float().cpu()
        if temperature <= 0:
            nxt = int(logits.argmax())
        else:
            logits = logits / temperature
            if top_k is not None and top_k < logits.numel():
                kth = torch.topk(logits, top_k).values[-1]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = int(torch.multinomial(F.softmax(logits, -1), 1, generator=gen))
        ids.append(nxt)
        out.append(nxt)
        if nxt == stop_id:
            break
    model.train(was_training)
    return out
