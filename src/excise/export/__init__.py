"""Hugging Face interop: export runs as stock transformers models, import checkpoints.

- :func:`export_hf` / :func:`export_model` (``excise export RUN_DIR --format hf``): the full,
  ablated or pruned model as ``GPTNeoForCausalLM`` or ``LlamaForCausalLM`` + tokenizer + card.
- :func:`import_hf` / :func:`import_hf_run` (``excise import HF_DIR --out RUN``): a local
  GPT-Neo / Llama checkpoint as an excise model with forget units (designated existing
  ones, or new inert ones), for continued pretraining.
- :mod:`excise.export.hub`: pushing an export to the Hugging Face hub (``--push-to-hub``).
- :mod:`excise.export.lmeval`: lm-evaluation-harness on an export (optional ``lmeval`` extra).

transformers is an optional dependency (the ``hf`` extra) and is only imported where needed.
Calling the package, ``excise.export(run, out, ...)``, is :func:`excise.api.export`.
"""

from excise._callable import make_callable
from excise.export.families import hf_family
from excise.export.hf import ExportResult, cli_export, export_hf, export_model
from excise.export.importer import import_hf, import_hf_run, load_hf_as_gpt, model_config_from_hf

__all__ = [
    "ExportResult",
    "cli_export",
    "export_hf",
    "export_model",
    "hf_family",
    "import_hf",
    "import_hf_run",
    "load_hf_as_gpt",
    "model_config_from_hf",
]

make_callable(__name__, "export")
