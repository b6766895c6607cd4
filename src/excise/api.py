"""The Python API: the ``excise`` commands as functions, for notebooks and scripts.

Each function does what the command of the same name does, and the commands call these
functions, so both behave alike (errors are :class:`excise.errors.UserError` with the
message the command prints). Runs are folders: functions that make one return its
``Path``, and every function taking a run accepts a ``str`` or ``Path``::

    import excise

    run = excise.train("configs/bilingual-tiny.yaml", "runs/sgtm", overrides={"train.steps": 200})
    losses = excise.evaluate(run)                      # eval.json: full / ablated / calibrated
    safe = excise.load(run, ablated=True)              # torch module, forget units zeroed
    hf = excise.load(run, ablated=True, format="transformers")   # GPTNeoForCausalLM / Llama
    excise.export(run, "exported/safe", ablated=True)

Overrides are ``dotted.key=value`` strings (as on the command line) or a dict
``{"dotted.key": value}``. See ``docs/api.md`` for a worked example.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from excise.config import Config
    from excise.export.hf import ExportResult

Overrides = Sequence[str] | Mapping[str, Any] | None


def _override_list(overrides: Overrides) -> list[str]:
    """Overrides as ``key=value`` strings; dict values are written as YAML scalars."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        import json

        # JSON is YAML: lists, numbers, booleans and quoted strings keep their type
        return [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in overrides.items()]
    if isinstance(overrides, str):
        return [overrides]
    return list(overrides)


def load_config(config: str | Path | Config | Mapping | None = None, overrides: Overrides = None) -> Config:
    """A validated :class:`~excise.config.Config` from a YAML path, a dict, a Config, or
    the defaults (None), with ``overrides`` applied."""
    from excise.config import Config, apply_overrides, config_from_dict
    from excise.config import load_config as load_yaml

    extra = _override_list(overrides)
    if config is None or isinstance(config, (str, Path)):
        return load_yaml(config, extra)
    data = config.model_dump(mode="json") if isinstance(config, Config) else copy.deepcopy(dict(config))
    apply_overrides(data, extra)
    return config_from_dict(data, origin="Python config")


def train(
    config: str | Path | Config | Mapping | None,
    out: str | Path,
    overrides: Overrides = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> Path:
    """``excise train``: train one run into ``out``; returns ``out``.

    ``summary.json`` in the run holds the final figures; ``resume`` continues a killed run
    from its last checkpoint, ``overwrite`` replaces an existing run directory.
    """
    from excise.train.runner import train as train_run

    train_run(load_config(config, overrides), out, resume=resume, overwrite=overwrite)
    return Path(out)


def evaluate(
    run: str | Path,
    overrides: Overrides = None,
    *,
    calibrate: bool = True,
    probes: bool = True,
    device: str | None = None,
) -> dict:
    """``excise eval``: held-out losses ``{"full"|"ablated"|"calibrated": {domain: nats}}``
    (also written to ``RUN/eval.json``, and reused from it while nothing changed).

    ``probes``: also the fact-probe accuracy and, for bilingual runs, the forget-language
    share of generated text (``result["probes"]``); the generations take most of the time
    of a small model's eval.
    """
    from excise.eval.evaluate import evaluate_run

    return evaluate_run(run, _override_list(overrides), calibrate=calibrate, probes=probes, device=device)


def unlearn(
    run: str | Path,
    out: str | Path,
    method: str = "rmu",
    overrides: Overrides = None,
    *,
    device: str | None = None,
) -> Path:
    """``excise unlearn METHOD``: post-hoc unlearning (rmu, gradient_ascent,
    gradient_difference, npo) of ``run`` into a new run directory ``out``; returns ``out``."""
    from excise.methods.unlearn import unlearn_run

    unlearn_run(run, out, method, _override_list(overrides), device=device)
    return Path(out)


def relearn(
    run: str | Path,
    steps: int | None = None,
    reference: str | Path | None = None,
    overrides: Overrides = None,
    *,
    device: str | None = None,
) -> dict:
    """``excise relearn``: fine-tune the released model of ``run`` on forget data; returns
    (and writes to ``RUN/relearn.json``) the loss curve and ``steps_to_recover`` against the
    ``reference`` run's forget loss."""
    from excise.eval.relearn import relearn_run

    return relearn_run(run, _override_list(overrides), steps=steps, reference_dir=reference, device=device)


def export(
    run: str | Path,
    out: str | Path,
    *,
    ablated: bool = False,
    prune: bool = False,
    overwrite: bool = False,
    license: str | None = None,
    language: str | Sequence[str] | None = None,
    base_model: str | None = None,
    push_to_hub: str | None = None,
    private: bool = False,
    dry_run: bool = False,
) -> ExportResult:
    """``excise export --format hf``: ``run`` as a transformers model folder ``out``.

    ``ablated``: the safe model (forget units zeroed); ``prune``: forget units removed where
    the stock architecture allows. ``license`` / ``language`` / ``base_model`` go into the
    model card's metadata. ``push_to_hub="user/name"`` then uploads the folder (``private``
    repo if asked); with ``dry_run`` the upload is only listed (``result.upload.files``).
    """
    from excise.export.card import CardMetadata
    from excise.export.hf import export_hf
    from excise.export.hub import check_repo_id, push_folder

    if push_to_hub:
        check_repo_id(push_to_hub)  # before minutes of export, not after
    languages = [language] if isinstance(language, str) else (list(language) if language else None)
    card = CardMetadata(license=license, language=languages, base_model=base_model, repo_id=push_to_hub)
    result = export_hf(run, out, ablated=ablated, prune_units=prune, overwrite=overwrite, card=card)
    if push_to_hub:
        result.upload = push_folder(
            result.out, push_to_hub, private=private, dry_run=dry_run,
            commit_message=f"excise export of {Path(run).name}",
        )  # fmt: skip
    return result


def load(
    run: str | Path,
    *,
    ablated: bool = False,
    format: Literal["torch", "transformers"] = "torch",
    device: str = "cpu",
):
    """A run's model, full or ``ablated`` (forget units zeroed, on a copy).

    ``format="torch"``: the excise ``GPT`` module (``model(ids)`` gives logits);
    ``"transformers"``: the stock ``GPTNeoForCausalLM`` / ``LlamaForCausalLM`` with the same
    logits, ready for ``generate`` (needs the ``hf`` extra). Both in eval mode.
    """
    from excise.errors import UserError
    from excise.model.ablation import ablated_copy
    from excise.run import load_run

    loaded = load_run(run)
    model = loaded.model
    if ablated:
        if not loaded.partitioned:
            raise UserError(f"{run} has no forget units to ablate (method {loaded.config.method.name})")
        model = ablated_copy(model, loaded.partition)
    if format == "torch":
        return model.to(device).eval()
    if format == "transformers":
        from excise.export.hf import to_transformers_model

        tok = loaded.tokenizer_path
        return to_transformers_model(model, tok if tok.is_file() else None).to(device)
    raise UserError(f"unknown format {format!r}; use 'torch' or 'transformers'")


def sample(
    run: str | Path,
    prompt: str = "",
    *,
    n: int = 1,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_k: int | None = 40,
    ablated: bool = False,
    stop_at_end: bool = True,
    seed: int = 0,
) -> list[str]:
    """``excise sample``: ``n`` texts (prompt + continuation) from the full or ablated model
    (see :mod:`excise.eval.sampling` for the options and backends)."""
    from tokenizers import Tokenizer

    from excise.errors import UserError
    from excise.eval.sampling import sample_texts
    from excise.run import TOKENIZER

    tok_path = Path(run) / TOKENIZER
    model = load(run, ablated=ablated)
    if not tok_path.is_file():
        raise UserError(f"{run} has no {TOKENIZER}; cannot encode the prompt")
    return sample_texts(
        model, Tokenizer.from_file(str(tok_path)), prompt, n=n, max_new_tokens=max_new_tokens,
        temperature=temperature, top_k=top_k, stop_at_end=stop_at_end, seed=seed,
    )  # fmt: skip


def import_hf(
    checkpoint: str | Path,
    out: str | Path,
    *,
    mode: Literal["designate", "expand"] = "expand",
    forget_heads: int = 1,
    forget_mlp_units: int = 64,
    layers: Sequence[int] | None = None,
    config: str | Path | Config | Mapping | None = None,
    overrides: Overrides = None,
    base_model: str | None = None,
    overwrite: bool = False,
) -> Path:
    """``excise import``: a local GPT-Neo / Llama checkpoint as a run directory ``out`` with
    forget units, ready for ``train(out / "config.yaml", ..., overrides={"train.init_from":
    out})``; returns ``out``.

    ``mode="expand"`` appends ``forget_heads`` heads and ``forget_mlp_units`` MLP units
    (inert until trained) to each masked layer (``layers``; default all);
    ``"designate"`` turns the last existing ones into forget units. Either way the imported
    model computes what the checkpoint does. ``config`` / ``overrides`` set the run's other
    sections (data, method, train, ...); ``base_model`` is the hub id the checkpoint came
    from, for the model card of later exports.
    """
    from excise.config import PartitionConfig
    from excise.export.importer import import_hf_run

    pcfg = PartitionConfig(
        forget_heads=forget_heads, forget_mlp_units=forget_mlp_units,
        layers=list(layers) if layers is not None else None,
    )  # fmt: skip
    base = load_config(config, overrides) if config is not None or overrides else None
    return import_hf_run(
        checkpoint, out, pcfg, mode=mode, base_config=base, base_model=base_model, overwrite=overwrite
    )


__all__ = ["evaluate", "export", "import_hf", "load", "load_config", "relearn", "sample", "train", "unlearn"]
