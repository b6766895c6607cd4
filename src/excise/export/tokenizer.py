"""The run's ``tokenizer.json`` as a transformers ``PreTrainedTokenizerFast`` directory.

bos / eos / unk / pad are all set to the run's end-of-text token (``<|endoftext|>``) when
the tokenizer has it, else to its first special added token, else left unset.

``tokenizer_config.json`` names the class ``PreTrainedTokenizerFast``: transformers 5 saves
its new name ``TokenizersBackend``, which transformers 4 does not know, while 5 still maps
the old name to the same class; so one export loads with identical ids on 4.x and 5.x. The
model inputs are ids and attention mask only (no ``token_type_ids``, which Llama's forward
and ``generate`` reject).
"""

from __future__ import annotations

import json
from pathlib import Path

from excise.checkpoint import atomic_write_text
from excise.errors import UserError

END_OF_TEXT = "<|endoftext|>"
MODEL_INPUTS = ("input_ids", "attention_mask")


def end_of_text_token(tokenizer_json: Path) -> tuple[str, int] | None:
    """(content, id) of the end-of-text token, read from tokenizer.json without transformers."""
    data = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    added = data.get("added_tokens") or []
    for tok in added:
        if tok.get("content") == END_OF_TEXT:
            return tok["content"], int(tok["id"])
    vocab = (data.get("model") or {}).get("vocab")
    if isinstance(vocab, dict) and END_OF_TEXT in vocab:
        return END_OF_TEXT, int(vocab[END_OF_TEXT])
    for tok in added:
        if tok.get("special"):
            return tok["content"], int(tok["id"])
    return None


def special_token_ids(tokenizer_json: Path) -> dict[str, int | None]:
    eot = end_of_text_token(tokenizer_json)
    token_id = eot[1] if eot else None
    return {"bos": token_id, "eos": token_id, "pad": token_id, "unk": token_id}


def write_tokenizer(tokenizer_json: Path, out: Path, model_max_length: int) -> dict[str, int | None]:
    """Save the tokenizer into ``out`` (tokenizer.json + tokenizer_config.json); returns ids."""
    try:
        from transformers import PreTrainedTokenizerFast
    except ImportError:
        raise UserError("exporting the tokenizer needs transformers: pip install 'excise[hf]'") from None
    eot = end_of_text_token(tokenizer_json)
    kwargs = {}
    if eot is not None:
        kwargs = {k: eot[0] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    tok = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_json), model_max_length=model_max_length,
        model_input_names=list(MODEL_INPUTS), **kwargs,
    )  # fmt: skip
    tok.save_pretrained(str(out))
    config_path = Path(out) / "tokenizer_config.json"
    tok_config = json.loads(config_path.read_text(encoding="utf-8"))
    tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    tok_config["model_input_names"] = list(MODEL_INPUTS)
    atomic_write_text(config_path, json.dumps(tok_config, indent=2, sort_keys=True) + "\n")
    return special_token_ids(tokenizer_json)
