"""The model card (``README.md``) of an export, written with huggingface_hub's ``ModelCard``.

The YAML metadata is what the Hugging Face hub indexes: licence, language, library,
pipeline tag, tags, hub datasets the run read, base model, and the run's held-out losses
as ``model-index`` evaluation results (only the variant this export is: ``full`` or
``ablated``). The body says what was exported (full / safe / pruned), how it was trained,
on what data, which units were forget units, the run's eval table and provenance, and
how to load it (with the real folder or repo id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from excise.config import Config
from excise.model.gpt import GPT
from excise.model.partition import Partition
from excise.run_files import EVAL, META, EvalRecord, Meta, read_record_lenient

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

    from excise.export.hf import ExportResult

# languages of the built-in corpora (excise data generate --kind ...)
BUILTIN_LANGUAGES = {"bilingual": ["en", "es"], "topic": ["en"]}
# excise's own generated text is covered by the package licence
BUILTIN_LICENSE = "apache-2.0"


@dataclass
class CardMetadata:
    """Hub metadata that a run does not record; given at export (``excise export`` flags).

    ``license``: an SPDX-style hub licence id; None: apache-2.0 for the built-in corpus,
    else ``unknown`` (the training data's terms decide it). ``language``: ISO codes; None:
    those of the built-in corpus, else omitted. ``base_model``: hub id of the checkpoint the
    run started from; None: the one ``excise import`` recorded, if any. ``repo_id``: where
    the export is pushed (used in the code sample).
    """

    license: str | None = None
    language: list[str] | None = None
    base_model: str | None = None
    repo_id: str | None = None
    tags: list[str] = field(default_factory=list)


def _source(src) -> str:
    if src.path is not None:
        origin = f"file `{src.path}`"
    else:
        origin = f"hub dataset `{src.hub}`" + (f" ({src.hub_config})" if src.hub_config else "")
    extra = f", rows where `{src.filter}`" if src.filter else ""
    return f"{origin}, field `{src.text_field}`{extra}"


def _dataset_ids(config: Config | None, domain: str) -> tuple[str, str]:
    """(dataset_type, dataset_name) of one domain's data for model-index."""
    if config is None:
        return "unknown", f"{domain} domain"
    src = config.data.sources().get(domain)
    if src is None or config.data.use_builtin:
        kind = config.data.builtin or "builtin"
        return f"excise-builtin-{kind}", f"{domain} domain (built-in {kind} corpus)"
    if src.hub is not None:
        return src.hub, f"{domain} domain ({src.hub})"
    return Path(src.path).name, f"{domain} domain ({Path(src.path).name})"


def card_data(result: ExportResult, config: Config | None, run_dir: Path | None, meta: CardMetadata):
    """The card's ``ModelCardData`` (see module docstring)."""
    from huggingface_hub import EvalResult, ModelCardData

    builtin = config.data.builtin if config is not None and config.data.use_builtin else None
    license_id = meta.license or (BUILTIN_LICENSE if builtin else "unknown")
    language = meta.language or (BUILTIN_LANGUAGES.get(builtin) if builtin else None)
    datasets = sorted({s.hub for s in config.data.sources().values() if s.hub}) if config is not None else []
    run_meta = read_record_lenient(run_dir / META, Meta) if run_dir is not None else None
    base_model = meta.base_model or (run_meta.get("base_model") if isinstance(run_meta, dict) else None)
    variant = "ablated" if result.ablated else "full"
    name = meta.repo_id.split("/")[-1] if meta.repo_id else result.out.name
    evals = []
    ev = read_record_lenient(run_dir / EVAL, EvalRecord) if run_dir is not None else None
    row = ev.get(variant) if isinstance(ev, dict) else None
    if isinstance(row, dict):
        for domain in ("forget", "adjacent", "retain"):
            value = row.get(domain)
            if not isinstance(value, (int, float)):
                continue
            dataset_type, dataset_name = _dataset_ids(config, domain)
            evals.append(EvalResult(
                task_type="text-generation", task_name="held-out language modelling",
                dataset_type=dataset_type, dataset_name=dataset_name, dataset_split="test",
                metric_type="loss", metric_name=f"{domain} loss (nats, {variant} model)",
                metric_value=round(float(value), 4),
            ))  # fmt: skip
    tags = ["excise", "sgtm", "unlearning", "safe-model" if result.ablated else "full-model"]
    if config is not None and config.method.name not in tags:
        tags.append(config.method.name)
    return ModelCardData(
        license=license_id, language=language, library_name="transformers",
        pipeline_tag="text-generation", tags=tags + [t for t in meta.tags if t not in tags],
        datasets=datasets or None, base_model=base_model, model_name=name,
        eval_results=evals or None,
    )  # fmt: skip


def model_card(
    result: ExportResult,
    model: GPT,
    partition: Partition,
    *,
    config: Config | None,
    run_dir: Path | None,
    counts: dict[str, int] | None,
    has_tokenizer: bool,
    meta: CardMetadata | None = None,
) -> ModelCard:
    """The export's ``ModelCard``: hub metadata plus a markdown body (module docstring)."""
    from huggingface_hub import ModelCard

    from excise.export.families import ARCHITECTURES, q_fold_factor

    meta = meta or CardMetadata()
    data = card_data(result, config, run_dir, meta)
    where = meta.repo_id or str(Path(result.out).resolve())
    arch = ARCHITECTURES[result.family]
    if result.pruned_mlp or result.pruned_heads:
        variant = (
            "**pruned safe model**: forget units removed physically where the architecture "
            "can express it (see the notes; any others are zeroed), so they cannot be restored"
        )
    elif result.ablated:
        variant = "**safe model**: forget units zeroed (ablated)"
    else:
        variant = "**full model**: forget units intact (the removable domain is still present)"
    lines = [
        f"# {data.model_name} (excise export, {arch})",
        "",
        f"This is the {variant}. Load it with plain transformers:",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        f"model = AutoModelForCausalLM.from_pretrained({json.dumps(where)})",
    ]
    if has_tokenizer:
        lines += [
            f"tokenizer = AutoTokenizer.from_pretrained({json.dumps(where)})",
            'inputs = tokenizer("Once upon a time", return_tensors="pt")',
            "print(tokenizer.decode(model.generate(**inputs, max_new_tokens=40)[0]))",
        ]
    else:
        lines.append("# (no tokenizer was saved with the run)")
    lines += [
        "```",
        "",
        "`generation_config.json` samples like `excise sample` (top-k 40, temperature 1"
        + (", stopping at the end-of-text token)." if has_tokenizer else ").")
        + f" The model was trained on sequences of {model.config.context} tokens"
        + (", its position table ends there." if model.config.positions == "learned" else "."),
        "",
        f"- architecture: `{arch}`, {result.num_parameters:,} parameters",
        f"- licence: `{data.license}`"
        + ("" if meta.license else " (not given at export: set it with `excise export --license`)"),
    ]
    fold = q_fold_factor(model.config, result.family)
    if fold is not None:
        lines.append(
            f"- the excise model's attention scale differs from {arch}'s fixed one, so the q "
            f"projection weights (and biases) are multiplied by {fold:.6g}"
        )
    for note in result.notes:
        lines.append(f"- {note}")
    lines += ["", "## Method", ""]
    if config is not None:
        m = config.method
        lines.append(
            f"Trained with excise (`method.name: {m.name}`, `masking: {m.masking}`, "
            f"`mask_shared: {m.mask_shared}`): Selective GradienT Masking (Shilov et al., "
            "arXiv 2512.05648) keeps the forget domain in dedicated heads and MLP units so it can "
            "be removed after training."
            if m.partitioned
            else f"Trained with excise baseline `{m.name}` (no forget units)."
        )
        lb = config.labels
        noise = f"recall {lb.recall}" + (f", precision {lb.precision}" if lb.precision is not None else "")
        noise += f", false-positive rate {lb.fpr}" if lb.fpr is not None else ""
        lines.append(
            f"Labels ({lb.labeller} labeller): {noise}; share of retain data "
            f"labelled retain {lb.retain_fraction}; {config.train.steps} optimizer steps, seed "
            f"{config.seed}."
        )
        lines += ["", "## Data", ""]
        if config.data.use_builtin:
            lines.append(
                f"Built-in generated corpus `{config.data.builtin}` (`excise data generate "
                f"--kind {config.data.builtin}`), {config.data.builtin_documents} documents per domain."
            )
        for domain, src in config.data.sources().items():
            lines.append(f"- {domain}{' (removed domain)' if domain == 'forget' else ''}: {_source(src)}")
    else:
        lines.append("Exported from an excise model (no run config available).")
    lines += ["", "## Partition", ""]
    if partition.empty:
        lines.append("The model has no forget units.")
    else:
        lines.append("| layer | heads | forget heads | MLP units | forget MLP units |")
        lines.append("|---|---|---|---|---|")
        for i, s in enumerate(model.layer_shapes):
            lines.append(f"| {i} | {s.n_heads} | {s.forget_heads} | {s.d_ff} | {s.forget_mlp_units} |")
        if counts:
            total = sum(counts.values())
            lines.append("")
            lines.append(
                f"Forget parameters: {counts['forget']:,} of {total:,} "
                f"({counts['forget'] / total:.2%}); retain {counts['retain']:,}, shared "
                f"{counts['shared']:,}. `excise_export.json` lists the forget slices still in "
                "this export under transformers tensor names."
            )
    if run_dir is not None:
        ev = read_record_lenient(run_dir / EVAL, EvalRecord)
        if isinstance(ev, dict) and ev:
            domains = [
                d
                for d in ("forget", "adjacent", "retain")
                if any(d in v for v in ev.values() if isinstance(v, dict))
            ]
            lines += ["", "## Evaluation (excise, held-out mean token loss in nats)", ""]
            lines.append("| model | " + " | ".join(domains) + " |")
            lines.append("|---|" + "---|" * len(domains))
            for variant_name in ("full", "ablated", "calibrated"):
                row = ev.get(variant_name)
                if isinstance(row, dict):
                    cells = [f"{row[d]:.4f}" if isinstance(row.get(d), (int, float)) else "" for d in domains]
                    lines.append(f"| {variant_name} | " + " | ".join(cells) + " |")
            lines.append("")
            which = "this export" if result.ablated else "the safe model (export with --ablated or --prune)"
            lines.append(
                f"`full` is the model before removal, `ablated` is {which}; `calibrated` adds a "
                "fitted output-logit bias to the ablated model (the bias is not part of the export)."
            )
        run_meta = read_record_lenient(run_dir / META, Meta)
        if isinstance(run_meta, dict):
            lines += ["", "## Provenance (meta.json)", ""]
            for key in ("excise", "torch", "git_commit", "seed", "world_size", "method", "masking",
                        "base_model", "imported_from"):  # fmt: skip
                if run_meta.get(key) is not None:
                    lines.append(f"- {key}: `{run_meta[key]}`")
    body = "\n".join(lines) + "\n"
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
