"""``excise export RUN_DIR --format hf``: a plain transformers model directory.

The directory holds ``config.json`` (a stock architecture, written by its transformers config
class), ``generation_config.json``, ``model.safetensors``, the run's tokenizer as a
``PreTrainedTokenizerFast``, a model card ``README.md`` (hub metadata with the run's eval
results) and ``excise_export.json`` (what was exported, and the forget slices under
transformers names). It loads with ``AutoModelForCausalLM`` / ``AutoTokenizer`` without
excise installed, on transformers 4.57 and 5.x alike.

The folder is written under a temporary name beside ``--out`` and renamed into place when
complete, so a failed export leaves nothing behind and a reader never sees half a model;
``overwrite`` replaces an existing export the same way. Files get the umask's mode.

``ablated`` exports the safe model (forget units zeroed). ``prune`` removes the forget units
physically where the stock config can express it: every layer must have the same shape, so
all layers must be masked identically; heads are pruned only where the family accepts the
remaining head count (GPT-Neo never: head_dim = hidden / heads; Llama in transformers 5 only
if hidden_size is a multiple of the remaining heads) and otherwise stay zeroed.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from excise.config import Config, ModelConfig
from excise.errors import UserError
from excise.export.card import CardMetadata
from excise.export.families import (
    ARCHITECTURES,
    GPT_NEO,
    LLAMA,
    bias_layout,
    hf_family,
    name_map,
    to_hf_tensors,
)
from excise.export.hub import Upload
from excise.model.ablation import ablate_, count_elements, prune
from excise.model.gpt import GPT
from excise.model.partition import Partition, build_partition

EXPORT_INFO = "excise_export.json"
HF_WEIGHTS = "model.safetensors"


@dataclass
class ExportResult:
    """What an export wrote, for the CLI summary and the model card."""

    out: Path
    family: str
    ablated: bool
    pruned_heads: bool
    pruned_mlp: bool
    num_parameters: int
    notes: list[str] = field(default_factory=list)
    upload: Upload | None = None  # set by a push to the hub (or its dry run)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _uniform_shape(model: GPT) -> tuple[int, int]:
    heads = {s.n_heads for s in model.layer_shapes}
    widths = {s.d_ff for s in model.layer_shapes}
    if len(heads) != 1 or len(widths) != 1:
        raise UserError(
            "a stock transformers config needs every layer to have the same number of heads "
            f"and MLP units; this model has heads {sorted(heads)} and MLP widths "
            f"{sorted(widths)} across layers"
        )
    return heads.pop(), widths.pop()


def hf_config(model: GPT, family: str, special_ids: dict[str, int | None]) -> dict:
    """The ``config.json`` of the stock architecture expressing ``model`` (uniform layers)."""
    cfg: ModelConfig = model.config
    n_heads, d_ff = _uniform_shape(model)
    dtype = _dtype_name(model.embed.weight.dtype)
    common = {
        "architectures": [ARCHITECTURES[family]],
        "model_type": family,
        "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.context,
        "hidden_size": cfg.d_model,
        "intermediate_size": d_ff,
        "initializer_range": cfg.init_std,
        "tie_word_embeddings": cfg.tie_embeddings,
        "use_cache": True,
        "bos_token_id": special_ids.get("bos"),
        "eos_token_id": special_ids.get("eos"),
        "pad_token_id": special_ids.get("pad"),
        "dtype": dtype,
    }
    if family == GPT_NEO:
        return common | {
            "num_layers": cfg.n_layers,
            "num_heads": n_heads,
            "attention_types": [[list(cfg.attention_pattern), cfg.n_layers // len(cfg.attention_pattern)]],
            "window_size": cfg.local_window,
            "activation_function": "gelu_new",
            "layer_norm_epsilon": cfg.norm_eps,
            "resid_dropout": 0.0,
            "embed_dropout": 0.0,
            "attention_dropout": 0.0,
        }
    if cfg.d_model % n_heads != 0:
        raise UserError(
            f"transformers' Llama requires hidden_size ({cfg.d_model}) to be a multiple of the "
            f"number of heads ({n_heads}), even with an explicit head_dim; this model cannot be "
            "exported as it is (a model expanded with new forget heads can be exported with "
            "--prune once they are removed)"
        )
    biases = bias_layout(cfg, family)
    return common | {
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_heads,
        "head_dim": cfg.resolved_head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": cfg.norm_eps,
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "rope_theta": cfg.rope_theta,
        "attention_bias": biases.qkv,
        "mlp_bias": biases.mlp,
        "attention_dropout": 0.0,
        "pretraining_tp": 1,
    }


def transformers_config(config_dict: dict):
    """``config_dict`` (from :func:`hf_config`) as its family's transformers config class, so
    transformers validates it and ``save_pretrained`` writes it. ``rope_theta`` is kept at
    the top level: transformers 5 moves it into ``rope_parameters``, which 4.x does not read."""
    from transformers import AutoConfig

    kwargs = dict(config_dict)
    cfg = AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)
    if "rope_theta" in config_dict:
        cfg.rope_theta = config_dict["rope_theta"]
    return cfg


def generation_config(hf_cfg):
    """Sampling defaults of ``excise sample``: top-k 40 at temperature 1, stop at the
    end-of-text token (the config's eos). No ``max_length``: callers give
    ``max_new_tokens``, and transformers warns when both are set."""
    from transformers import GenerationConfig

    gen = GenerationConfig.from_model_config(hf_cfg)
    gen.do_sample, gen.top_k, gen.temperature = True, 40, 1.0
    gen._from_model_config = False  # ours, not derived: generate() must not re-derive it
    return gen


def hf_state_dict(model: GPT, family: str) -> dict[str, torch.Tensor]:
    """``model``'s weights under transformers names (tied head omitted)."""
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("rope_")}
    return to_hf_tensors(state, model.config, family, model.config.n_layers, model.config.mlp == "swiglu")


def prepare_model(
    model: GPT, partition: Partition, family: str, ablated: bool, prune_units: bool
) -> tuple[GPT, Partition, list[str], bool, bool]:
    """The model to export: a copy, ablated and/or pruned as far as ``family`` allows.

    Returns (model, partition of what is still in it, notes, pruned_heads, pruned_mlp).
    """
    notes: list[str] = []
    if (ablated or prune_units) and partition.empty:
        raise UserError("this run has no partition (no forget units): there is nothing to ablate or prune")
    model = copy.deepcopy(model)
    if ablated or prune_units:
        ablate_(model, partition)
    if not prune_units:
        return model, partition, notes, False, False
    forget_heads = {b.attn.forget_heads for b in model.blocks}
    forget_units = {b.mlp.forget_units for b in model.blocks}
    if len(forget_heads) != 1 or len(forget_units) != 1:
        raise UserError(
            "--prune needs every layer masked identically (stock configs give all layers one "
            f"shape), but forget heads per layer are {[b.attn.forget_heads for b in model.blocks]} "
            f"and forget MLP units {[b.mlp.forget_units for b in model.blocks]} "
            "(partition.layers masks only some layers); export with --ablated instead"
        )
    fh, fu = forget_heads.pop(), forget_units.pop()
    cfg = model.config
    n_heads = model.layer_shapes[0].n_heads
    prune_heads = fh > 0
    if fh > 0 and family == GPT_NEO:
        prune_heads = False
        notes.append(
            f"{fh} forget head(s) per layer are kept, zeroed: GPT-Neo derives head_dim = "
            "hidden_size / num_heads, so it cannot express fewer heads"
        )
    elif fh > 0 and family == LLAMA and cfg.d_model % (n_heads - fh) != 0:
        prune_heads = False
        notes.append(
            f"{fh} forget head(s) per layer are kept, zeroed: transformers' Llama requires "
            f"hidden_size ({cfg.d_model}) to be a multiple of the head count ({n_heads - fh})"
        )
    heads_to_remove = [fh if prune_heads else 0] * cfg.n_layers
    model.set_forget_units(heads_to_remove, [fu] * cfg.n_layers)
    pruned = prune(model, build_partition(model))
    if prune_heads:
        remaining = Partition()
    else:  # the zeroed heads remain; they are still forget slices of the exported model
        pruned.set_forget_units([fh] * cfg.n_layers, [0] * cfg.n_layers)
        remaining = build_partition(pruned)
    if fu:
        notes.append(f"{fu} forget MLP unit(s) per layer removed")
    if prune_heads:
        notes.append(f"{fh} forget head(s) per layer removed")
    return pruned, remaining, notes, prune_heads, fu > 0


def hf_partition(partition: Partition, family: str, n_layers: int) -> dict:
    """The forget slices under transformers tensor names (partition.json's format, listing
    only tensors that have forget elements: the exported model has no masked layers)."""
    names = name_map(family, n_layers)
    return {names[k]: v.to_json() for k, v in sorted(partition.slices.items()) if k in names and v.ranges}


def check_output_bias(model: GPT) -> None:
    """Refuse to export an output-logit bias that the stock families cannot hold."""
    bias = model.output_bias
    if bias is not None and bool(bias.detach().abs().max() > 0):
        raise UserError(
            "this model has a trained output-logit bias (model.output_bias: true, as the "
            "paper's recipes set it), and neither GPT-Neo nor Llama in transformers has one, "
            "so no stock export gives the same logits; train with model.output_bias=false to "
            "export to transformers"
        )


def require_transformers():
    try:
        import transformers
    except ImportError:
        raise UserError("exporting to transformers needs it: pip install 'excise[hf]'") from None
    return transformers


def export_model(
    model: GPT,
    partition: Partition,
    out: str | Path,
    *,
    ablated: bool = False,
    prune_units: bool = False,
    tokenizer_json: Path | None = None,
    config: Config | None = None,
    run_dir: Path | None = None,
    overwrite: bool = False,
    card: CardMetadata | None = None,
) -> ExportResult:
    """Write ``model`` as a transformers directory (see module docstring)."""
    from excise.checkpoint import atomic_directory, atomic_write_text, save_weights
    from excise.export.card import model_card
    from excise.export.tokenizer import write_tokenizer

    require_transformers()
    out = Path(out)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UserError(
                f"export directory {out} exists and is not empty; choose another --out or pass --overwrite"
            )
        if not (out / EXPORT_INFO).is_file():  # e.g. --out pointing at the run itself
            raise UserError(
                f"{out} is not an excise export (it has no {EXPORT_INFO}); --overwrite replaces only exports"
            )
    family = hf_family(model.config)
    check_output_bias(model)
    original_counts = count_elements(model, partition) if not partition.empty else None
    exported, remaining, notes, pruned_heads, pruned_mlp = prepare_model(
        model, partition, family, ablated, prune_units
    )
    with atomic_directory(out, overwrite=overwrite) as tmp:
        special: dict[str, int | None] = {}
        if tokenizer_json is not None:
            special = write_tokenizer(tokenizer_json, tmp, model_max_length=model.config.context)
        hf_cfg = transformers_config(hf_config(exported, family, special))
        hf_cfg.save_pretrained(str(tmp))
        generation_config(hf_cfg).save_pretrained(str(tmp))
        tensors = hf_state_dict(exported, family)
        save_weights(tensors, tmp / HF_WEIGHTS, metadata={"format": "pt"})
        result = ExportResult(
            out=out,
            family=family,
            ablated=ablated or prune_units,
            pruned_heads=pruned_heads,
            pruned_mlp=pruned_mlp,
            num_parameters=sum(t.numel() for t in tensors.values()),  # zero-filled biases count
            notes=notes,
        )
        info = {
            "format": "hf",
            "family": family,
            "architecture": ARCHITECTURES[family],
            "ablated": result.ablated,
            "pruned_heads": pruned_heads,
            "pruned_mlp_units": pruned_mlp,
            "num_parameters": result.num_parameters,
            "notes": notes,
            "source_run": str(run_dir) if run_dir is not None else None,
            "forget_partition": hf_partition(remaining, family, model.config.n_layers),
            "forget_slices_zeroed": result.ablated,
        }
        atomic_write_text(tmp / EXPORT_INFO, json.dumps(info, indent=1) + "\n")
        model_card(
            result,
            model,
            partition,
            config=config,
            run_dir=run_dir,
            counts=original_counts,
            has_tokenizer=tokenizer_json is not None,
            meta=card,
        ).save(tmp / "README.md")
    return result


def export_hf(
    run_dir: str | Path,
    out: str | Path,
    *,
    ablated: bool = False,
    prune_units: bool = False,
    overwrite: bool = False,
    card: CardMetadata | None = None,
) -> ExportResult:
    """Export a finished run directory (see :func:`export_model`)."""
    from excise.run import TOKENIZER, load_run

    run = load_run(run_dir)
    tok = run.dir / TOKENIZER
    return export_model(
        run.model,
        run.partition,
        out,
        ablated=ablated,
        prune_units=prune_units,
        tokenizer_json=tok if tok.is_file() else None,
        config=run.config,
        run_dir=run.dir,
        overwrite=overwrite,
        card=card,
    )


def cli_export(args) -> int:
    """``excise export RUN_DIR --format hf [--ablated] [--prune] --out DIR [--push-to-hub REPO]``."""
    from excise import api

    if getattr(args, "format", "hf") != "hf":
        raise UserError(f"unknown export format {args.format!r}; supported: hf")
    result = api.export(
        args.run_dir, args.out, ablated=args.ablated, prune=args.prune, overwrite=args.overwrite,
        license=args.license, language=args.language, base_model=args.base_model,
        push_to_hub=args.push_to_hub, private=args.private, dry_run=args.dry_run,
    )  # fmt: skip
    kind = "pruned safe" if args.prune else ("ablated (safe)" if result.ablated else "full")
    print(
        f"exported the {kind} model as {ARCHITECTURES[result.family]} "
        f"({result.num_parameters:,} parameters) to {result.out}"
    )
    for note in result.notes:
        print(f"  note: {note}")
    if not (result.out / "tokenizer.json").is_file():
        print("  warning: the run has no tokenizer.json; the export has no tokenizer")
    if result.upload is not None:
        verb = "would upload" if result.upload.dry_run else "uploaded"
        print(f"{verb} {len(result.upload.files)} files to {result.upload.url}:")
        for name, size in result.upload.files:
            print(f"  {name}  ({size:,} bytes)")
    return 0


def to_transformers_model(model: GPT, tokenizer_json: Path | None = None):
    """``model`` as it is (full or ablated) as its stock transformers model, in memory.

    Same config, weights and generation defaults as an export loaded with
    ``from_pretrained``, without writing one; the weights keep ``model``'s dtype.
    """
    require_transformers()
    from transformers import AutoModelForCausalLM

    from excise.export.tokenizer import special_token_ids

    family = hf_family(model.config)
    special = special_token_ids(tokenizer_json) if tokenizer_json is not None else {}
    cfg = transformers_config(hf_config(model, family, special))
    hf_model = AutoModelForCausalLM.from_config(cfg).to(model.embed.weight.dtype)
    missing, unexpected = hf_model.load_state_dict(hf_state_dict(model, family), strict=False)
    allowed = {"lm_head.weight"} if cfg.tie_word_embeddings else set()
    if unexpected or set(missing) - allowed:
        raise RuntimeError(f"weight mapping incomplete: missing {missing}, unexpected {unexpected}")
    hf_model.tie_weights()
    hf_model.generation_config = generation_config(cfg)
    return hf_model.eval()
