"""Start from a local transformers checkpoint (GPT-Neo or Llama) with a removable domain.

Two ways to get forget units, both function-preserving (the imported model's logits equal
the checkpoint's):

- ``designate``: pick existing heads / MLP units per masked layer and permute them to the
  end of their layer (excise's layout: forget units are the last ones). A permutation of
  heads (q/k/v rows and o columns together) or of MLP units (up/gate rows and down columns
  together) does not change the function.
- ``expand`` (Gradient Routing's term): append new heads / MLP units to every layer with
  random input rows and zero output columns, so they contribute nothing until trained; the
  new units of masked layers are the forget units.

Reads ``config.json`` and safetensors only: no pickles, no transformers import needed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import torch

from excise.config import ModelConfig, PartitionConfig
from excise.errors import UserError
from excise.export.families import GPT_NEO, LLAMA, name_map
from excise.model.gpt import GPT
from excise.model.partition import Partition, build_partition, masked_layers


def _read_config(path: Path) -> dict:
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise UserError(f"{path} is not a transformers checkpoint directory: it has no config.json")
    return json.loads(cfg_path.read_text(encoding="utf-8"))


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    single = path / "model.safetensors"
    if single.is_file():
        return load_file(str(single))
    index = path / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, torch.Tensor] = {}
        for f in files:
            out.update(load_file(str(path / f)))
        return out
    raise UserError(
        f"{path} has no model.safetensors: only safetensors checkpoints are imported (pickled "
        "pytorch_model.bin files are never loaded); convert with transformers' "
        "save_pretrained(..., safe_serialization=True)"
    )


def _shortest_period(layers: list[str]) -> list[str]:
    """The shortest pattern whose repetition gives ``layers`` (GPT-Neo: [global, local])."""
    for n in range(1, len(layers) + 1):
        if len(layers) % n == 0 and layers == layers[:n] * (len(layers) // n):
            return layers[:n]
    return layers


def model_config_from_hf(hf: dict) -> ModelConfig:
    """The excise ``ModelConfig`` expressing a GPT-Neo or Llama ``config.json`` exactly."""
    kind = hf.get("model_type")
    tied = bool(hf.get("tie_word_embeddings", kind == GPT_NEO))
    if kind == GPT_NEO:
        layers = []
        for names, count in hf.get("attention_types", [[["global", "local"], hf["num_layers"] // 2]]):
            layers += list(names) * count
        if len(layers) != hf["num_layers"] or any(t not in ("global", "local") for t in layers):
            raise UserError(
                f"GPT-Neo attention_types {hf.get('attention_types')!r} do not give one global "
                f"or local attention type to each of the {hf['num_layers']} layers"
            )
        if hf.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            raise UserError(
                f"GPT-Neo activation {hf['activation_function']!r} not supported (excise's MLP "
                "uses tanh-approximate GELU)"
            )
        return ModelConfig(
            vocab_size=hf["vocab_size"], context=hf["max_position_embeddings"],
            n_layers=hf["num_layers"], d_model=hf["hidden_size"], n_heads=hf["num_heads"],
            d_ff=hf.get("intermediate_size") or 4 * hf["hidden_size"],
            norm="layernorm", mlp="gelu", positions="learned", tie_embeddings=tied,
            bias=True, qkv_bias=False, attention_scale=1.0,
            norm_eps=hf.get("layer_norm_epsilon", 1e-5), init_std=hf.get("initializer_range", 0.02),
            attention_pattern=_shortest_period(layers), local_window=hf.get("window_size", 256),
        )  # fmt: skip
    if kind == LLAMA:
        heads = hf["num_attention_heads"]
        if hf.get("num_key_value_heads", heads) != heads:
            raise UserError(
                f"Llama checkpoint with grouped-query attention ({hf['num_key_value_heads']} "
                f"key/value heads for {heads} query heads): excise needs one k/v per head"
            )
        if hf.get("hidden_act", "silu") != "silu":
            raise UserError(f"Llama activation {hf['hidden_act']!r} not supported (SwiGLU needs silu)")
        rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
        if rope.get("rope_type", rope.get("type", "default")) != "default":
            raise UserError(f"Llama rope scaling {rope!r} not supported; only plain rotary positions")
        theta = rope.get("rope_theta", hf.get("rope_theta", 10000.0))
        attention_bias, mlp_bias = bool(hf.get("attention_bias")), bool(hf.get("mlp_bias"))
        return ModelConfig(
            vocab_size=hf["vocab_size"], context=hf["max_position_embeddings"],
            n_layers=hf["num_hidden_layers"], d_model=hf["hidden_size"], n_heads=heads,
            head_dim=hf.get("head_dim") or hf["hidden_size"] // heads,
            d_ff=hf["intermediate_size"], norm="rmsnorm", mlp="swiglu", positions="rope",
            rope_theta=float(theta), tie_embeddings=tied,
            bias=attention_bias or mlp_bias, qkv_bias=attention_bias, attention_scale=None,
            norm_eps=hf.get("rms_norm_eps", 1e-6), init_std=hf.get("initializer_range", 0.02),
        )  # fmt: skip
    raise UserError(
        f"cannot import model_type {kind!r}: supported transformers architectures are gpt_neo and llama"
    )


def load_hf_as_gpt(path: str | Path, dtype: torch.dtype | None = None) -> GPT:
    """A local GPT-Neo / Llama checkpoint as an excise ``GPT`` (no forget units)."""
    path = Path(path)
    hf = _read_config(path)
    cfg = model_config_from_hf(hf)
    tensors = _read_tensors(path)
    family = hf["model_type"]
    model = GPT(cfg)
    if dtype is None:
        dtype = tensors[name_map(family, cfg.n_layers)["embed.weight"]].dtype
    model.to(dtype)
    names = name_map(family, cfg.n_layers)
    state = {}
    for ename, target in model.state_dict().items():
        if ename.startswith("rope_"):
            continue
        hname = names[ename]
        if hname in tensors:
            value = tensors[hname]
        elif ename == "lm_head.weight" and cfg.tie_embeddings:
            continue
        elif ename.endswith(".bias"):  # e.g. Llama attention_bias without mlp_bias
            value = torch.zeros_like(target)
        else:
            raise UserError(f"{path}: checkpoint lacks tensor {hname}")
        if tuple(value.shape) != tuple(target.shape):
            raise UserError(f"{path}: {hname} has shape {tuple(value.shape)}, expected {tuple(target.shape)}")
        state[ename] = value.to(dtype)
    model.load_state_dict(state, strict=False)
    return model


# ---------------------------------------------------------------------------------------
# designate: permute chosen units to the end


def _per_layer(ids: Mapping[int, Sequence[int]] | Sequence[int] | None, layer: int) -> list[int] | None:
    if ids is None:
        return None
    if isinstance(ids, Mapping):
        chosen = ids.get(layer)
        return None if chosen is None else list(chosen)
    return list(ids)


def _chosen_last(total: int, chosen: list[int] | None, count: int, what: str, layer: int) -> list[int]:
    """Permutation putting ``chosen`` (default: the last ``count``) at the end, order kept."""
    if chosen is None:
        chosen = list(range(total - count, total))
    if len(chosen) != count or len(set(chosen)) != count or any(not 0 <= c < total for c in chosen):
        raise UserError(f"layer {layer}: need {count} distinct {what} ids in 0..{total - 1}, got {chosen}")
    rest = [i for i in range(total) if i not in set(chosen)]
    return rest + chosen


@torch.no_grad()
def _permute_heads(block, order: list[int]) -> None:
    hs = block.attn.head_dim
    rows = torch.cat([torch.arange(h * hs, (h + 1) * hs) for h in order])
    for proj in (block.attn.q_proj, block.attn.k_proj, block.attn.v_proj):
        proj.weight.copy_(proj.weight[rows])
        if proj.bias is not None:
            proj.bias.copy_(proj.bias[rows])
    block.attn.o_proj.weight.copy_(block.attn.o_proj.weight[:, rows])


@torch.no_grad()
def _permute_units(block, order: list[int]) -> None:
    idx = torch.tensor(order)
    for proj in (block.mlp.up_proj, block.mlp.gate_proj):
        if proj is None:
            continue
        proj.weight.copy_(proj.weight[idx])
        if proj.bias is not None:
            proj.bias.copy_(proj.bias[idx])
    block.mlp.down_proj.weight.copy_(block.mlp.down_proj.weight[:, idx])


# ---------------------------------------------------------------------------------------
# expand: append inert new units


@torch.no_grad()
def _expanded(model: GPT, extra_heads: int, extra_units: int, seed: int) -> GPT:
    """A copy of ``model`` with ``extra_heads`` heads and ``extra_units`` MLP units appended
    to every layer: input rows ~ N(0, init_std), output columns zero (function unchanged)."""
    cfg = model.config
    new_cfg = cfg.model_copy(
        update={
            "n_heads": cfg.n_heads + extra_heads,
            "head_dim": cfg.resolved_head_dim,
            "d_ff": cfg.resolved_d_ff + extra_units,
        }
    )
    dtype = model.embed.weight.dtype
    big = GPT(new_cfg).to(dtype)
    gen = torch.Generator().manual_seed(seed)
    std = cfg.init_std
    for name, target in big.state_dict().items():
        if name.startswith("rope_"):
            continue
        source = model.state_dict()[name]
        if source.shape == target.shape:
            target.copy_(source)
            continue
        target.zero_()
        if name.endswith(("o_proj.weight", "down_proj.weight")):  # new output columns stay zero
            target[:, : source.shape[1]].copy_(source)
            continue
        target[: source.shape[0]].copy_(source)  # q/k/v/up/gate rows and their biases
        if target.dim() == 2:
            fresh = torch.randn(
                target.shape[0] - source.shape[0], target.shape[1], generator=gen, dtype=torch.float64
            )
            target[source.shape[0] :].copy_((fresh * std).to(dtype))
    return big


def import_hf(
    path: str | Path,
    partition_config: PartitionConfig | None = None,
    *,
    mode: Literal["expand", "designate"] = "expand",
    forget_head_ids: Mapping[int, Sequence[int]] | Sequence[int] | None = None,
    forget_unit_ids: Mapping[int, Sequence[int]] | Sequence[int] | None = None,
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> tuple[GPT, Partition, ModelConfig]:
    """Load a local GPT-Neo / Llama checkpoint for continued pretraining with forget units.

    ``partition_config`` gives ``forget_heads`` / ``forget_mlp_units`` per masked layer
    (``layers``: which; default all). ``mode="designate"`` turns existing units into forget
    units: ``forget_head_ids`` / ``forget_unit_ids`` name them (one list for every layer,
    or a dict layer → list; default the last ones). ``mode="expand"`` appends new inert units.
    None: no forget units. Returns the model, its partition and its ``ModelConfig``.
    """
    model = load_hf_as_gpt(path, dtype)
    cfg = model.config
    if partition_config is None:
        return model, Partition(), cfg
    fh, fu = partition_config.forget_heads, partition_config.forget_mlp_units
    layers = set(masked_layers(cfg, partition_config))
    if any(not 0 <= i < cfg.n_layers for i in layers):
        raise UserError(f"partition.layers {sorted(layers)} outside 0..{cfg.n_layers - 1}")
    if mode == "designate":
        if fh >= cfg.n_heads or fu >= cfg.resolved_d_ff:
            raise UserError(
                f"cannot designate {fh} of {cfg.n_heads} heads / {fu} of {cfg.resolved_d_ff} MLP "
                "units as forget units: some must stay retain units"
            )
        for i, block in enumerate(model.blocks):
            if i not in layers:
                continue
            if fh:
                _permute_heads(
                    block, _chosen_last(cfg.n_heads, _per_layer(forget_head_ids, i), fh, "head", i)
                )
            if fu:
                _permute_units(
                    block, _chosen_last(cfg.resolved_d_ff, _per_layer(forget_unit_ids, i), fu, "MLP unit", i)
                )
    elif mode == "expand":
        if fh and cfg.norm == "layernorm" and cfg.positions == "learned":
            raise UserError(
                "expanding a GPT-Neo checkpoint with new heads would give a model GPT-Neo cannot "
                "express (it derives head_dim = hidden_size / num_heads), so it could not be "
                "exported back; designate existing heads (--mode designate) or add no heads "
                "(--forget-heads 0)"
            )
        model = _expanded(model, fh, fu, seed)
        cfg = model.config
    else:
        raise UserError(f"unknown import mode {mode!r}; use 'expand' or 'designate'")
    model.set_forget_units(
        [fh if i in layers else 0 for i in range(cfg.n_layers)],
        [fu if i in layers else 0 for i in range(cfg.n_layers)],
        [i in layers for i in range(cfg.n_layers)],
    )
    return model, build_partition(model), cfg


def import_hf_run(
    path: str | Path,
    out: str | Path,
    partition_config: PartitionConfig | None = None,
    *,
    mode: Literal["expand", "designate"] = "expand",
    base_config=None,
    base_model: str | None = None,
    overwrite: bool = False,
    **kwargs,
) -> Path:
    """:func:`import_hf`, written as an excise run directory (config.yaml with the imported
    model shape, model.safetensors, partition.json, meta.json, and the checkpoint's
    tokenizer.json if it has one), so ``excise eval`` / ``excise export`` / ``train.init_from``
    and tools reading runs can use it. Written under a temporary name and renamed, like an
    export.

    ``base_config``: a :class:`excise.config.Config` whose other sections (data, method,
    train, ...) are kept; its model and partition sections are replaced. ``base_model``:
    the hub id of the checkpoint, recorded for model cards (default: the checkpoint's
    ``_name_or_path`` when that is a hub id).
    """
    import shutil

    from excise.checkpoint import atomic_directory
    from excise.config import Config, save_config
    from excise.config import PartitionConfig as PC
    from excise.run import run_meta, save_model
    from excise.run_files import CONFIG, META, TOKENIZER, Meta, write_record

    path, out = Path(path), Path(out)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UserError(
                f"run directory {out} exists and is not empty; choose another --out or pass --overwrite"
            )
        if not _is_imported_run(out):
            raise UserError(f"{out} is not a run written by excise import; --overwrite replaces only those")
    model, partition, cfg = import_hf(path, partition_config, mode=mode, **kwargs)
    pcfg = partition_config if partition_config is not None else PC(forget_heads=0, forget_mlp_units=0)
    config = (base_config or Config()).model_copy(update={"model": cfg, "partition": pcfg})
    config = Config.model_validate(config.model_dump())  # re-run the cross-section checks
    if base_model is None:
        name = _read_config(path).get("_name_or_path")
        if isinstance(name, str) and name.count("/") == 1 and not Path(name).exists():
            base_model = name
    with atomic_directory(out, overwrite=overwrite) as tmp:
        save_model(tmp, model, partition)
        save_config(config, tmp / CONFIG)
        meta = run_meta(config, imported_from=str(path.resolve()), import_mode=mode, base_model=base_model)
        write_record(tmp / META, Meta, meta)
        tokenizer = path / TOKENIZER
        if tokenizer.is_file():
            shutil.copyfile(tokenizer, tmp / TOKENIZER)
    return out


def _is_imported_run(path: Path) -> bool:
    from excise.run_files import META, Meta, read_record_lenient

    meta = read_record_lenient(path / META, Meta)
    return bool(meta and meta.get("imported_from"))


def cli_import(args) -> int:
    """``excise import HF_DIR --out RUN [--mode designate|expand] [...]``."""
    from excise import api

    try:
        layers = [int(x) for x in args.layers.split(",")] if args.layers else None
    except ValueError:
        raise UserError(f"--layers {args.layers!r}: expected layer numbers like 0,2,3") from None
    out = api.import_hf(
        args.checkpoint, args.out, mode=args.mode, forget_heads=args.forget_heads,
        forget_mlp_units=args.forget_mlp_units, layers=layers, config=args.config,
        overrides=args.overrides or None, base_model=args.base_model, overwrite=args.overwrite,
    )  # fmt: skip
    from excise.run import load_config_file

    m = load_config_file(out).model
    print(
        f"imported {args.checkpoint} ({args.mode}: {args.forget_heads} forget head(s), "
        f"{args.forget_mlp_units} forget MLP unit(s) per masked layer) as run {out}: "
        f"{m.n_layers} layers, d_model {m.d_model}, {m.n_heads} heads, d_ff {m.resolved_d_ff}"
    )
    print(
        f"continue training: excise train {out / 'config.yaml'} train.init_from={out} --out RUN2 data...=..."
    )
    return 0
