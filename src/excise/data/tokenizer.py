"""Byte-level BPE tokenizer: trained per run on the training mix, or loaded by path.

Byte-level pre-tokenization without an added prefix space makes ``decode(encode(x)) == x``
for any Unicode text (accents included). One special token, ``<|endoftext|>``, separates
documents in the packed token stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from excise.errors import UserError

EOS = "<|endoftext|>"
_EOS_CANDIDATES = (EOS, "</s>", "<eos>", "<|end_of_text|>", "[SEP]", "<|im_end|>")


def train_tokenizer(texts: Iterable[str], vocab_size: int, progress: bool = False) -> Tokenizer:
    """Train a byte-level BPE of at most ``vocab_size`` tokens (256 bytes + EOS + merges)."""
    if vocab_size < 257:
        raise UserError(
            f"model.vocab_size ({vocab_size}) must be at least 257 for a byte-level BPE (256 bytes + end-of-text)"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=progress,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a ``tokenizer.json`` or a transformers tokenizer directory (its tokenizer.json)."""
    path = Path(path).expanduser()
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        hint = " (the directory has no tokenizer.json)" if path.is_dir() else ""
        raise UserError(f"tokenizer.path: {file} does not exist{hint}")
    try:
        return Tokenizer.from_file(str(file))
    except Exception as e:
        raise UserError(f"tokenizer.path: {file} is not a valid tokenizer.json ({e})") from None


def eos_id(tokenizer: Tokenizer) -> int:
    """Id of the document separator token (``<|endoftext|>`` or a common equivalent)."""
    for name in _EOS_CANDIDATES:
        token_id = tokenizer.token_to_id(name)
        if token_id is not None:
            return token_id
    raise UserError(f"the tokenizer has no end-of-text token (looked for {', '.join(_EOS_CANDIDATES)})")


def training_texts(domains: dict[str, list[str]], max_characters: int) -> Iterator[str]:
    """Round-robin over the domains' documents until ``max_characters`` are given out.

    Interleaving keeps every domain represented when the budget cuts the corpus short.
    """
    iterators = [iter(docs) for docs in domains.values()]
    budget = max_characters
    while iterators and budget > 0:
        alive = []
        for it in iterators:
            text = next(it, None)
            if text is None:
                continue
            alive.append(it)
            text = text[:budget]
            budget -= len(text)
            yield text
            if budget <= 0:
                return
        iterators = alive
