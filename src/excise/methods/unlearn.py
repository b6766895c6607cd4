"""Post-hoc unlearning baselines behind one registry: RMU, gradient ascent / difference, NPO.

Each method is a small function computing one step's loss from a forget batch and a retain
batch; :func:`unlearn_model` runs the shared loop (AdamW at ``unlearn.lr``, gradient
clipping at 1, ``unlearn.steps`` steps, batches drawn with replacement, seeded).

- ``rmu`` (Li et al. 2024, arXiv 2403.03218): on forget data push the residual stream after
  block ``layer`` towards ``steering_coef * u`` for a fixed random unit vector ``u``
  (MSE); on retain data keep it close to the frozen model's (``alpha`` * MSE). Only the MLPs
  of ``update_layers`` learn (default: the up-to-3 layers ending at ``layer``), every other
  tensor stays bit-identical. Small-model defaults (chosen because the paper's 254M values
  do not transfer): ``layer`` = n_layers // 2; ``steering_coef`` = 4x the mean per-token
  hidden-state norm at ``layer`` on forget data (so the target is far outside the model's
  normal activations, as the paper's 20 is on its model); ``alpha`` 100 as in the paper;
  lr 1e-3 and 100 steps, since a CPU model with d_model 64-128 moves ~20x slower at the
  paper's 5e-5.
- ``gradient_ascent``: maximise the forget loss (all parameters).
- ``gradient_difference``: forget ascent plus retain descent (weight 1; all parameters).
- ``npo`` (Zhang et al. 2024): negative preference optimisation against the frozen model,
  ``-(2/beta) log sigmoid(-beta (log p - log p_ref))`` per forget sequence, plus the retain
  loss (NPO+RT; all parameters).
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from excise.config import Config, UnlearnConfig, save_config
from excise.errors import UserError
from excise.eval.losses import as_tensor
from excise.model.gpt import GPT
from excise.model.partition import Partition
from excise.run import load_run, run_meta, save_model
from excise.run_files import META, SUMMARY, TOKENIZER, Meta, UnlearnSummary, read_record_lenient, write_record
from excise.train.step import NonFiniteError, clip_and_update


@dataclass
class UnlearnState:
    """What a method's loss may use: the frozen original model and per-method constants."""

    cfg: UnlearnConfig
    frozen: GPT
    layer: int = 0
    target: torch.Tensor | None = None  # RMU: steering_coef * u, shape (d_model,)
    extras: dict = field(default_factory=dict)


def _ce(model: GPT, batch: torch.Tensor) -> torch.Tensor:
    return model(batch[:, :-1], batch[:, 1:])


def _seq_logprob(model: GPT, batch: torch.Tensor) -> torch.Tensor:
    logits = model(batch[:, :-1]).float()
    lp = -F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten(), reduction="none")
    return lp.view(batch.shape[0], -1).sum(1)


def rmu_loss(model: GPT, forget: torch.Tensor, retain: torch.Tensor, st: UnlearnState) -> torch.Tensor:
    h_f = model.hidden_states(forget[:, :-1], upto=st.layer)
    forget_term = F.mse_loss(h_f, st.target.expand_as(h_f))
    h_r = model.hidden_states(retain[:, :-1], upto=st.layer)
    with torch.no_grad():
        h_ref = st.frozen.hidden_states(retain[:, :-1], upto=st.layer)
    return forget_term + st.cfg.alpha * F.mse_loss(h_r, h_ref)


def gradient_ascent_loss(model, forget, retain, st) -> torch.Tensor:
    return -_ce(model, forget)


def gradient_difference_loss(model, forget, retain, st) -> torch.Tensor:
    return -_ce(model, forget) + _ce(model, retain)


def npo_loss(model, forget, retain, st) -> torch.Tensor:
    beta = st.cfg.npo_beta
    with torch.no_grad():
        ref = _seq_logprob(st.frozen, forget)
    ratio = _seq_logprob(model, forget) - ref
    return -(2.0 / beta) * F.logsigmoid(-beta * ratio).mean() + _ce(model, retain)


LossFn = Callable[[GPT, torch.Tensor, torch.Tensor, UnlearnState], torch.Tensor]
UNLEARNERS: dict[str, LossFn] = {
    "rmu": rmu_loss,
    "gradient_ascent": gradient_ascent_loss,
    "gradient_difference": gradient_difference_loss,
    "npo": npo_loss,
}


def rmu_layers(cfg: UnlearnConfig, n_layers: int) -> tuple[int, list[int]]:
    """(steered layer, updated layers) with the small-model defaults, validated."""
    layer = n_layers // 2 if cfg.layer is None else cfg.layer
    if not 0 <= layer < n_layers:
        raise UserError(f"unlearn.layer ({layer}) must be in 0..{n_layers - 1}")
    update = cfg.update_layers if cfg.update_layers is not None else list(range(max(0, layer - 2), layer + 1))
    bad = [i for i in update if not 0 <= i <= layer]
    if bad or not update:
        raise UserError(
            f"unlearn.update_layers {update} must be non-empty layers at or below unlearn.layer ({layer})"
        )
    return layer, sorted(set(update))


def trainable_names(model: GPT, method: str, cfg: UnlearnConfig) -> list[str]:
    """Parameter names a method updates (RMU: MLPs of its update layers; others: all)."""
    names = [n for n, _ in model.named_parameters()]
    if method != "rmu":
        return names
    _, update = rmu_layers(cfg, model.config.n_layers)
    prefixes = tuple(f"blocks.{i}.mlp." for i in update)
    return [n for n in names if n.startswith(prefixes)]


@torch.no_grad()
def default_steering_coef(model: GPT, forget: torch.Tensor, layer: int, batch_size: int) -> float:
    h = model.hidden_states(forget[:batch_size, :-1], upto=layer)
    return 4.0 * float(h.norm(dim=-1).mean())


def unlearn_model(
    model: GPT, forget_train, retain_train, method: str, cfg: UnlearnConfig, device: str = "cpu"
) -> tuple[GPT, dict]:
    """Unlearn ``forget_train`` from ``model`` in place with ``method``; returns (model, log)."""
    if method not in UNLEARNERS:
        raise UserError(f"unknown unlearning method {method!r}; choose from {', '.join(UNLEARNERS)}")
    forget = as_tensor(forget_train)
    retain = as_tensor(retain_train)
    model = model.to(device)
    frozen = copy.deepcopy(model).eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(cfg.seed)
    state = UnlearnState(cfg, frozen)
    log: dict = {"method": method}
    if method == "rmu":
        state.layer, update = rmu_layers(cfg, model.config.n_layers)
        coef = cfg.steering_coef or default_steering_coef(
            frozen, forget.to(device), state.layer, cfg.batch_size
        )
        u = torch.rand(model.config.d_model, generator=gen)
        state.target = (coef * u / u.norm()).to(device)
        log.update(layer=state.layer, update_layers=update, steering_coef=coef)
    train_names = set(trainable_names(model, method, cfg))
    saved_flags = {n: p.requires_grad for n, p in model.named_parameters()}
    for n, p in model.named_parameters():
        p.requires_grad_(n in train_names)
    params = [p for n, p in model.named_parameters() if n in train_names]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    losses = []
    model.train()
    try:
        for _ in range(cfg.steps):
            fb = forget[torch.randint(0, len(forget), (cfg.batch_size,), generator=gen)].to(device)
            rb = retain[torch.randint(0, len(retain), (cfg.batch_size,), generator=gen)].to(device)
            loss = UNLEARNERS[method](model, fb, rb, state)
            opt.zero_grad(set_to_none=True)
            if not torch.isfinite(loss):
                raise NonFiniteError("unlearning loss")
            loss.backward()
            clip_and_update(model, opt, cfg.grad_clip, cfg.lr)  # the training step's own clipping
            losses.append(float(loss.detach()))
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(saved_flags[n])
    log.update(
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        steps=cfg.steps,
        updated_parameters=sorted(train_names),
    )
    return model, log


def unlearn_run(
    run_dir: str | Path,
    out_dir: str | Path,
    method: str,
    overrides: list[str] | None = None,
    device: str | None = None,
    data=None,
) -> dict:
    """Unlearn a run's forget domain and write a complete run directory at ``out_dir``.

    The output holds config.yaml (with the ``unlearn`` section used), model.safetensors, an
    empty partition.json, the source tokenizer.json, meta.json (source run, method) and
    summary.json; ``excise eval`` and ``excise relearn`` accept it like any run.
    """
    from excise.runtime import prepare_run_data, resolve_device, with_overrides

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if method not in UNLEARNERS:
        raise UserError(f"unknown unlearning method {method!r}; choose from {', '.join(UNLEARNERS)}")
    if out_dir.resolve() == run_dir.resolve():
        raise UserError("--out must differ from the source run directory")
    if out_dir.exists() and any(out_dir.iterdir()) and not _is_unlearn_output(out_dir):
        raise UserError(f"{out_dir} exists and is not an earlier unlearning output; choose another --out")
    run = load_run(run_dir)
    config: Config = with_overrides(run.config, [*(overrides or []), f"unlearn.method={method}"])
    dev = resolve_device(config, device)
    if data is None:
        data = prepare_run_data(config, run_dir)
    forget = data.train.get("forget")
    retain = data.train.get("retain")
    if retain is None or len(retain) == 0:
        retain = data.train.get("adjacent")
    if forget is None or len(forget) == 0 or retain is None or len(retain) == 0:
        raise UserError(f"{run_dir}: unlearning needs forget and retain training data")
    model, log = unlearn_model(run.model, forget, retain, method, config.unlearn, dev)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, out_dir / "config.yaml")
    save_model(out_dir, model.cpu(), Partition())
    if (run_dir / TOKENIZER).is_file():
        shutil.copyfile(run_dir / TOKENIZER, out_dir / TOKENIZER)
    write_record(
        out_dir / META,
        Meta,
        run_meta(
            config,
            unlearn_method=method,
            source_run=str(run_dir.resolve()),
            source_method=run.config.method.name,
        ),
    )
    summary = {k: v for k, v in log.items() if k != "updated_parameters"}
    summary["n_updated_tensors"] = len(log["updated_parameters"])
    write_record(out_dir / SUMMARY, UnlearnSummary, {"unlearn": summary})
    for stale in ("eval.json", "relearn.json"):
        (out_dir / stale).unlink(missing_ok=True)
    return log


def _is_unlearn_output(path: Path) -> bool:
    meta = read_record_lenient(path / META, Meta)
    return bool(meta and meta.get("unlearn_method"))


__all__ = ["UNLEARNERS", "UnlearnState", "unlearn_model", "unlearn_run", "rmu_layers", "trainable_names"]
