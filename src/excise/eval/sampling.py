"""Text generation from an excise model (``excise sample``, :func:`excise.sample`).

Two backends with the same options (temperature, top-k, stop at end of text, seed):

- ``transformers``: the model converted in memory to its stock transformers model and
  sampled with ``generate`` (a KV cache: each new token costs one position, not the whole
  window). Used when transformers is installed and the model's shape has a stock family.
- ``excise``: excise's own loop (:func:`excise.eval.probes.generate`), which recomputes the
  window per token; also used past the context of a model with learned positions, where
  it slides the window instead of running out of positions.

``temperature`` 0 is greedy decoding; ``top_k`` None or 0 keeps every token. With
``stop_at_end`` generation ends after the end-of-text token (not shown in the text).
"""

from __future__ import annotations

from typing import Literal

import torch

from excise.errors import UserError
from excise.model.gpt import GPT

Backend = Literal["auto", "transformers", "excise"]


def transformers_backend_available(model: GPT) -> bool:
    """Whether ``model`` can be sampled through transformers here."""
    try:
        import transformers  # noqa: F401

        from excise.export.families import hf_family
        from excise.export.hf import _uniform_shape

        hf_family(model.config)
        _uniform_shape(model)
    except (ImportError, UserError):
        return False
    return True


def sample_ids(
    model: GPT,
    prompt_ids: list[int],
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = 40,
    stop_id: int | None = None,
    seed: int = 0,
    backend: Backend = "auto",
    hf_model=None,
) -> list[int]:
    """Continuation ids after ``prompt_ids`` (see module docstring); ``hf_model``: a
    converted model to reuse across calls."""
    if temperature < 0:
        raise UserError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 0:
        raise UserError(f"top_k must be >= 0, got {top_k}")
    context = model.config.context
    prompt = list(prompt_ids)[-(context - 1) :]
    if not prompt:
        raise UserError("sampling needs at least one prompt token")
    fits = model.config.positions != "learned" or len(prompt) + max_new_tokens <= context
    if backend == "transformers" or (
        backend == "auto" and fits and (hf_model is not None or transformers_backend_available(model))
    ):
        if not fits:
            raise UserError(
                f"{len(prompt)} prompt + {max_new_tokens} new tokens exceed the context "
                f"({context}) of a model with learned positions; use the excise backend"
            )
        hf_model = hf_model if hf_model is not None else to_hf(model)
        return _hf_generate(hf_model, prompt, max_new_tokens, temperature, top_k, stop_id, seed)
    from excise.eval.probes import generate

    device = next(model.parameters()).device
    return generate(
        model, prompt, max_new_tokens, temperature=temperature, top_k=top_k or None, seed=seed,
        device=device, stop_id=stop_id,
    )  # fmt: skip


def to_hf(model: GPT):
    from excise.export.hf import to_transformers_model

    return to_transformers_model(model)


@torch.no_grad()
def _hf_generate(hf_model, prompt, max_new_tokens, temperature, top_k, stop_id, seed) -> list[int]:
    from transformers import GenerationConfig

    sampling = temperature > 0
    options = dict(
        max_new_tokens=max_new_tokens, do_sample=sampling, eos_token_id=stop_id,
        pad_token_id=stop_id if stop_id is not None else 0,
    )  # fmt: skip
    if sampling:
        options |= dict(temperature=temperature, top_k=top_k or 0, top_p=1.0)
    torch.manual_seed(seed)
    device = next(hf_model.parameters()).device
    ids = torch.tensor([prompt], device=device)
    # set as the model's own config: a passed one is merged with the model's defaults,
    # which would bring back its end-of-text stop
    hf_model.generation_config = GenerationConfig(**options)
    out = hf_model.generate(ids, attention_mask=torch.ones_like(ids))
    return out[0, len(prompt) :].tolist()


def sample_texts(
    model: GPT,
    tokenizer,
    prompt: str = "",
    *,
    n: int = 1,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_k: int | None = 40,
    stop_at_end: bool = True,
    seed: int = 0,
    backend: Backend = "auto",
) -> list[str]:
    """``n`` samples (seeds ``seed``, ``seed + 1``, ...) of prompt + continuation, as text.

    ``tokenizer``: a ``tokenizers.Tokenizer`` (the run's ``tokenizer.json``).
    """
    from excise.export.tokenizer import END_OF_TEXT

    end_id = tokenizer.token_to_id(END_OF_TEXT)
    # with no prompt, start as a document does in training: after an end-of-text token
    prompt_ids = tokenizer.encode(prompt).ids if prompt else [end_id if end_id is not None else 0]
    hf_model = None
    if backend != "excise" and transformers_backend_available(model):
        hf_model = to_hf(model)
    texts = []
    for i in range(n):
        ids = sample_ids(
            model, prompt_ids, max_new_tokens, temperature=temperature, top_k=top_k,
            stop_id=end_id if stop_at_end else None, seed=seed + i, backend=backend,
            hf_model=hf_model,
        )  # fmt: skip
        texts.append(prompt + tokenizer.decode(ids))
    return texts
