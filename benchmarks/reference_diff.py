"""Differential check: excise's SGTM step against the paper's released code, step by step.

The paper's code (github.com/safety-research/selective-gradient-masking, GPT-Neo based) is
not a dependency of excise: it pins transformers 4.52 and subclasses its GPT-Neo. This
script runs in an environment that has that transformers and the paper's source, builds
the reference model next to excise's from identical float64 weights, feeds both identical
batches, and compares

- the forward pass in every mode (default, forget, retain) and of the ablated model;
- the weights after a sequence of forget / default / retain steps, with plain SGD and with
  AdamW as the paper recipes configure it (betas 0.9 / 0.95, weight decay 0.1 on every
  tensor, warm-up from 0.1 x lr then cosine to 0, no clipping), with and without masking
  the shared parameters (the paper's ``--mask-embeddings``, excise's ``mask_shared``);

on a model with an output bias, alternating global / local attention (a window shorter
than the batch) and either every layer masked or only some. One table; exit code 1 on a
mismatch beyond float64 rounding.

The reference side does what its trainer does per step (``sgtm_mode`` forward, backward,
``model.adjust_gradients``, optimizer and scheduler step), with two numerical changes that
keep float64 float64: its loss is the same mean next-token cross-entropy computed from its
float64 logits (its forward casts logits to float32 when given labels), and GPT-Neo's
eager attention runs in the input precision (transformers casts q and k to float32).
``--as-is`` keeps both casts and only prints the differences (no verdict): the forward and
single SGD steps then agree to float32 rounding (~1e-7 relative), and over several AdamW
steps Adam's normalisation turns float32 noise on near-zero gradients into differences of
up to ~lr.

Usage (a checkout of the paper's code and transformers 4.52 in this environment)::

    pip install torch "transformers==4.52.*" -e .
    python benchmarks/reference_diff.py --reference /path/to/selective-gradient-masking/src
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

VOCAB, CONTEXT, D_MODEL, HEADS, D_FF = 96, 16, 64, 4, 256
FORGET_HEADS, FORGET_UNITS, WINDOW = 1, 64, 5
LABELS = ["forget", "default", "retain", "forget", "forget", "retain", "default", "forget"]
LAYOUTS = {"2 layers, all masked": (2, [0, 1]), "4 layers, 1 and 2 masked": (4, [1, 2])}
# SGD's rate is small enough that rounding differences are not amplified from step to step
# (at 0.05 they grow about 10x a step on these random weights, with any two implementations)
SGD_LR, ADAMW_LR, WARMUP = 5e-3, 3e-3, 3
TOLERANCE = 1e-10  # float64: differences come from summation order only


def import_reference(path: str | None):
    if path:
        sys.path.insert(0, str(Path(path).resolve()))
    try:
        import transformers
        from sgtm.model import GPTNeoForCausalLMSGTM
    except ImportError as e:
        raise SystemExit(
            f"cannot import the paper's code ({e}); pass --reference PATH to its src/ directory "
            "and run with transformers 4.52"
        ) from None
    return transformers, GPTNeoForCausalLMSGTM


def attention_in_input_precision(self, query, key, value, attention_mask=None, head_mask=None):
    """GPT-Neo's eager attention (global or local causal mask) without the float32 cast."""
    T, S = query.size(-2), key.size(-2)
    allowed = self.bias[:, :, S - T : S, :S]
    scores = (query @ key.transpose(-1, -2)).masked_fill(~allowed, torch.finfo(query.dtype).min)
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, :, :S]
    probs = self.attn_dropout(scores.softmax(-1))
    if head_mask is not None:
        probs = probs * head_mask
    return probs @ value, probs


# ---------------------------------------------------------------------------------------
# the two models


def reference_model(transformers, cls, n_layers: int, masked: list[int], mask_shared: bool):
    config = transformers.GPTNeoConfig(
        vocab_size=VOCAB, hidden_size=D_MODEL, num_layers=n_layers, num_heads=HEADS,
        intermediate_size=D_FF, max_position_embeddings=CONTEXT,
        attention_types=[[["global", "local"], n_layers // 2]], window_size=WINDOW,
        use_cache=False, tie_word_embeddings=True, embed_dropout=0.0, attention_dropout=0.0,
        resid_dropout=0.0, retain_mlp_dim=D_FF - FORGET_UNITS, retain_attn_heads=HEADS - FORGET_HEADS,
        masked_layers=masked, masking_strategy="parameter_masking", split_masked_weights=True,
        sgtm_mask_embeddings=mask_shared,
    )  # fmt: skip
    model = cls(config).double()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # every tensor random: a wrongly mapped slice changes the numbers
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            p.copy_(
                1.0 + 0.2 * noise
                if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight"))
                else 0.3 * noise
            )
    return model


def excise_config(n_layers: int, masked: list[int], mask_shared: bool, optimizer: str):
    from excise.config import Config

    train = {"grad_clip": 0.0, "steps": len(LABELS), "warmup_steps": WARMUP, "warmup_start": 0.1,
             "min_lr_ratio": 0.0, "schedule": "cosine", "lr": ADAMW_LR, "beta1": 0.9, "beta2": 0.95,
             "weight_decay": 0.1, "weight_decay_on": "all"}  # fmt: skip
    if optimizer == "sgd":
        train |= {"lr": SGD_LR, "warmup_steps": 0, "schedule": "constant", "weight_decay": 0.0}
    return Config.model_validate({
        "model": dict(vocab_size=VOCAB, context=CONTEXT, n_layers=n_layers, d_model=D_MODEL,
                      n_heads=HEADS, d_ff=D_FF, norm="layernorm", mlp="gelu", positions="learned",
                      tie_embeddings=True, bias=True, qkv_bias=False, attention_scale=1.0,
                      output_bias=True, attention_pattern=["global", "local"], local_window=WINDOW),
        "partition": dict(forget_heads=FORGET_HEADS, forget_mlp_units=FORGET_UNITS, layers=masked),
        "method": dict(name="sgtm", masking="grads", mask_shared=mask_shared),
        "train": train,
    })  # fmt: skip


def to_excise_state(reference, masked: list[int]) -> dict[str, torch.Tensor]:
    """The reference's weights under excise names (split retain / forget tensors joined)."""
    from excise.export.families import GPT_NEO, name_map

    src = dict(reference.named_parameters())
    out = {}
    for ename, hname in name_map(GPT_NEO, reference.config.num_layers).items():
        if ename == "lm_head.weight":
            continue  # tied: the token embedding
        if hname in src:
            out[ename] = src[hname].detach().clone()
            continue
        stem, kind = hname.rsplit(".", 1)  # a split layer of a masked block
        out[ename] = torch.cat([src[f"{stem}.{kind}_retain"], src[f"{stem}.{kind}_forget"]]).detach().clone()
    out["output_bias"] = src["lm_head.bias"].detach().clone()
    return out


def excise_model(config, reference, masked):
    from excise.model.partition import build_model

    model, partition = build_model(config.model, config.partition, seed=0)
    model.double()
    state = to_excise_state(reference, masked)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("lm_head") for k in missing), (missing, unexpected)
    return model, partition


def max_weight_difference(reference, model, masked) -> float:
    ours = dict(model.named_parameters())
    return max(
        float((v - ours[k].detach()).abs().max()) for k, v in to_excise_state(reference, masked).items()
    )


# ---------------------------------------------------------------------------------------
# the checks


def batches(n: int, seed: int = 1) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, VOCAB, (3, CONTEXT), generator=gen) for _ in range(n)]


def reference_logits(reference, tokens, mode: str, as_is: bool) -> torch.Tensor:
    if as_is:  # the trainer's own path: labels given, so logits pass through float32
        return reference(input_ids=tokens, labels=tokens, sgtm_mode=mode).logits.double()
    return reference(input_ids=tokens, sgtm_mode=mode).logits


def forward_rows(transformers, cls, as_is: bool) -> list[tuple[str, float]]:
    from excise.model.ablation import ablated_copy
    from excise.model.gpt import Mode
    from excise.model.strategies import get_strategy

    rows = []
    (tokens,) = batches(1, seed=7)
    for layout, (n_layers, masked) in LAYOUTS.items():
        reference = reference_model(transformers, cls, n_layers, masked, False)
        config = excise_config(n_layers, masked, False, "sgd")
        model, partition = excise_model(config, reference, masked)
        sgtm = get_strategy("sgtm")
        with torch.no_grad():
            for mode in ("default", "forget", "retain"):
                ours = model(tokens, plan=sgtm.plan(Mode(mode)))
                rows.append(
                    (
                        f"forward, {mode} mode ({layout})",
                        float((reference_logits(reference, tokens, mode, as_is) - ours).abs().max()),
                    )
                )
            ablated_reference = copy.deepcopy(reference)
            ablated_reference.ablate(trainable=False)
            ours = ablated_copy(model, partition)(tokens)
            rows.append(
                (
                    f"forward, ablated model ({layout})",
                    float((reference_logits(ablated_reference, tokens, "default", as_is) - ours).abs().max()),
                )
            )
        ablated_model = ablated_copy(model, partition)
        rows.append(
            (f"ablated weights ({layout})", max_weight_difference(ablated_reference, ablated_model, masked))
        )
    return rows


def reference_steps(reference, optimizer: str, as_is: bool, data) -> None:
    """What the paper's trainer does per optimizer step (one micro-batch)."""
    if optimizer == "sgd":
        opt = torch.optim.SGD(reference.parameters(), lr=SGD_LR)
        schedule = None
    else:
        opt = torch.optim.AdamW(reference.parameters(), lr=ADAMW_LR, weight_decay=0.1, betas=(0.9, 0.95))
        warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=WARMUP)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=len(LABELS) - WARMUP, eta_min=0)
        schedule = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[WARMUP])
    for mode, tokens in zip(LABELS, data):
        opt.zero_grad(set_to_none=True)
        if as_is:
            loss = reference(input_ids=tokens, labels=tokens, sgtm_mode=mode).loss
        else:
            logits = reference(input_ids=tokens, sgtm_mode=mode).logits
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
        loss.backward()
        reference.adjust_gradients(sgtm_mode=mode)
        opt.step()
        if schedule is not None:
            schedule.step()


def excise_steps(model, partition, config, data) -> None:
    from excise.model.gpt import Mode
    from excise.train.step import build_optimizer, lr_at, train_step

    if config.train.schedule == "constant":
        opt = torch.optim.SGD(model.parameters(), lr=config.train.lr)
    else:
        opt = build_optimizer(model, partition, config.method, config.train, "cpu")
    for step, (mode, tokens) in enumerate(zip(LABELS, data)):
        train_step(
            model,
            opt,
            partition,
            config.method,
            config.train,
            [tokens],
            Mode(mode),
            lr_at(step, config.train),
        )


def single_step_rows(transformers, cls, as_is: bool) -> list[tuple[str, float]]:
    """One SGD step of each label from the same weights: the update is -lr x the masked
    gradient, so any difference in what a label masks shows here unamplified."""
    rows = []
    (tokens,) = batches(1, seed=3)
    for layout, (n_layers, masked) in LAYOUTS.items():
        for mask_shared in (False, True):
            for mode in ("forget", "default", "retain"):
                if mask_shared and mode != "forget":
                    continue  # mask_shared only changes forget steps
                reference = reference_model(transformers, cls, n_layers, masked, mask_shared)
                config = excise_config(n_layers, masked, mask_shared, "sgd")
                config.train.steps = 1
                model, partition = excise_model(config, reference, masked)
                global LABELS
                saved, LABELS = LABELS, [mode]
                try:
                    reference_steps(reference, "sgd", as_is, [tokens])
                    excise_steps(model, partition, config, [tokens])
                finally:
                    LABELS = saved
                shared = ", mask_shared" if mask_shared else ""
                rows.append(
                    (
                        f"1 SGD step, {mode}{shared} ({layout})",
                        max_weight_difference(reference, model, masked),
                    )
                )
    return rows


def update_rows(transformers, cls, as_is: bool) -> list[tuple[str, float]]:
    rows = []
    data = batches(len(LABELS))
    for layout, (n_layers, masked) in LAYOUTS.items():
        for optimizer in ("sgd", "adamw"):
            for mask_shared in (False, True):
                reference = reference_model(transformers, cls, n_layers, masked, mask_shared)
                config = excise_config(n_layers, masked, mask_shared, optimizer)
                model, partition = excise_model(config, reference, masked)
                start = max_weight_difference(reference, model, masked)
                assert start == 0.0
                initial = copy.deepcopy(reference)
                reference_steps(reference, optimizer, as_is, data)
                excise_steps(model, partition, config, data)
                moved = max_weight_difference(initial, model, masked)
                assert moved > 1e-3, "the steps changed nothing: the check would prove nothing"
                name = "SGD" if optimizer == "sgd" else "AdamW (paper settings)"
                shared = ", mask_shared" if mask_shared else ""
                rows.append(
                    (
                        f"{len(LABELS)} steps {'/'.join(label[0].upper() for label in LABELS)}, {name}{shared} ({layout})",
                        max_weight_difference(reference, model, masked),
                    )
                )
    return rows


@dataclass
class Report:
    rows: list[tuple[str, float]]
    tolerance: float | None  # None: print the differences only

    def print(self) -> bool:
        width = max(len(r[0]) for r in self.rows)
        verdict = f"  within {self.tolerance:g}" if self.tolerance is not None else ""
        print(f"{'check'.ljust(width)}  max |excise - reference|{verdict}")
        ok = True
        for name, diff in self.rows:
            good = self.tolerance is None or diff <= self.tolerance
            ok &= good
            mark = "" if self.tolerance is None else f"  {'yes' if good else 'NO'}"
            print(f"{name.ljust(width)}  {diff:23.3e}{mark}")
        return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", help="the paper code's src/ directory (holds sgtm/)")
    parser.add_argument(
        "--as-is", action="store_true", help="keep GPT-Neo's float32 attention and loss casts"
    )
    args = parser.parse_args(argv)
    transformers, cls = import_reference(args.reference)
    if not args.as_is:
        from transformers.models.gpt_neo import modeling_gpt_neo

        modeling_gpt_neo.GPTNeoSelfAttention._attn = attention_in_input_precision
    torch.manual_seed(0)
    print(
        f"transformers {transformers.__version__}, torch {torch.__version__}, float64; labels per step: {LABELS}"
    )
    print(
        f"model: d_model {D_MODEL}, {HEADS} heads ({FORGET_HEADS} forget), d_ff {D_FF} ({FORGET_UNITS} forget), "
        f"vocabulary {VOCAB}, tied head + output bias, attention global/local (window {WINDOW} < {CONTEXT} tokens)\n"
    )
    rows = (
        forward_rows(transformers, cls, args.as_is)
        + single_step_rows(transformers, cls, args.as_is)
        + update_rows(transformers, cls, args.as_is)
    )
    ok = Report(rows, None if args.as_is else TOLERANCE).print()
    if not args.as_is:
        print("\nall checks agree" if ok else "\nMISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
