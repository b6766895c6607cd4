"""The model card (``README.md``) of an export: method, forget domain, partition, eval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from excise.config import Config
from excise.model.gpt import GPT
from excise.model.partition import Partition

if TYPE_CHECKING:
    from excise.export.hf import ExportResult


def _source(src) -> str:
    if src.path is not None:
        origin = f"file `{src.path}`"
    else:
        origin = f"hub dataset `{src.hub}`" + (f" ({src.hub_config})" if src.hub_config else "")
    extra = f", rows where `{src.filter}`" if src.filter else ""
    return f"{origin}, field `{src.text_field}`{extra}"


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def model_card(
    result: ExportResult,
    model: GPT,
    partition: Partition,
    *,
    config: Config | None,
    run_dir: Path | None,
    counts: dict[str, int] | None,
    has_tokenizer: bool,
) -> str:
    """Markdown describing what was exported and how it was made."""
    from excise.export.families import ARCHITECTURES, q_fold_factor

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
        "---",
        "library_name: transformers",
        "tags: [excise, sgtm, unlearning]",
        "---",
        "",
        f"# excise export ({arch})",
        "",
        f"This is the {variant}. Load it with plain transformers:",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        'model = AutoModelForCausalLM.from_pretrained("PATH")',
        'tokenizer = AutoTokenizer.from_pretrained("PATH")' if has_tokenizer else "# (no tokenizer was saved with the run)",
        "```",
        "",
        f"- architecture: `{arch}`, {result.num_parameters:,} parameters",
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
        if config.data.builtin:
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
        ev = _read_json(run_dir / "eval.json")
        if isinstance(ev, dict) and ev:
            domains = [d for d in ("forget", "adjacent", "retain") if any(d in v for v in ev.values() if isinstance(v, dict))]
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
        meta = _read_json(run_dir / "meta.json")
        if isinstance(meta, dict):
            lines += ["", "## Provenance (meta.json)", ""]
            for key in ("excise", "torch", "git_commit", "seed", "world_size", "method", "masking"):
                if key in meta:
                    lines.append(f"- {key}: `{meta[key]}`")
    return "\n".join(lines) + "\n"
