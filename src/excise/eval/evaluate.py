"""``excise eval``: full / ablated / calibrated domain losses of a run, cached, as eval.json.

Shape (the file contract other tools read)::

    {"full":       {"forget": x, "retain": y, "adjacent": z},
     "ablated":    {...},            # partitioned runs only (forget units zeroed)
     "calibrated": {...},            # see below
     "details":    {variant: {domain: LossStat}},   # n_tokens, bootstrap CI, perplexity
     "probes":     {...}, "calibration": {...}, "method": ..., "cache_key": ...}

Every figure is the mean next-token loss in nats on the domain's *test* split
(:mod:`excise.eval.losses`). "calibrated" is the released model after fitting a fresh
output-logit bias on the train splits (:mod:`excise.eval.calibration`): the ablated model
for partitioned runs, the model as it is for non-partitioned runs (filters, no_filter,
unlearned runs) — the paper calibrates every method. Domains absent from the data are
omitted.

Caching: ``cache_key`` hashes the weights file bytes, partition, tokenizer, the eval config
and the data identity (data + tokenizer config, or the arrays' bytes when passed in). An
existing eval.json with the same key is returned unchanged; anything else recomputes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from excise.config import DOMAINS, Config, EvalConfig
from excise.eval.calibration import fit_output_bias
from excise.eval.losses import LossStat, domain_loss
from excise.eval.probes import fact_accuracy, forget_language_share, generate
from excise.model.ablation import ablated_copy
from excise.model.gpt import GPT
from excise.model.partition import Partition
from excise.run import PARTITION, TOKENIZER, WEIGHTS, load_run
from excise.run_files import EVAL, META, EvalRecord, Meta, read_record_lenient, write_record
from excise.runtime import prepare_run_data, resolve_device, with_overrides

EVAL_VERSION = 1  # bump when the meaning of any figure changes (invalidates caches)


def _file_digest(path: Path) -> str | None:
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def arrays_digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(np.asarray(arrays[name]))
        h.update(f"{name}:{arr.dtype}:{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def cache_key(run_dir: Path, config: Config, options: dict, data=None) -> str:
    """Hash of everything an eval.json depends on (weights bytes included)."""
    if data is not None:
        data_id = {
            "train": arrays_digest({k: v for k, v in data.train.items() if v is not None}),
            "test": arrays_digest({k: v for k, v in data.test.items() if v is not None}),
        }
    else:
        data_id = {
            "data": config.data.model_dump(mode="json"),
            "tokenizer": config.tokenizer.model_dump(mode="json"),
            "seed": config.seed,
        }
    payload = {
        "version": EVAL_VERSION,
        "weights": _file_digest(run_dir / WEIGHTS),
        "partition": _file_digest(run_dir / PARTITION),
        "tokenizer_file": _file_digest(run_dir / TOKENIZER),
        "model": config.model.model_dump(mode="json"),
        "eval": config.eval.model_dump(mode="json"),
        "data": data_id,
        "options": options,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def losses_by_domain(
    model: GPT, arrays: dict, cfg: EvalConfig, device: str, bias: torch.Tensor | None = None
) -> dict[str, LossStat]:
    return {
        d: domain_loss(
            model, arrays[d], batch_size=cfg.batch_size, max_tokens=cfg.max_tokens, device=device, bias=bias
        )
        for d in DOMAINS
        if arrays.get(d) is not None and len(arrays[d]) > 0
    }


def is_bilingual(config: Config) -> bool:
    """Bilingual experiment: built-in bilingual corpus or a forget file named like Spanish."""
    if config.data.builtin == "bilingual":
        return True
    src = config.data.forget
    return bool(src and src.path and Path(src.path).stem.lower() in ("es", "spanish"))


def language_probe(
    model: GPT,
    tokenizer,
    forget_test,
    device: str,
    n: int = 8,
    prompt_tokens: int = 8,
    new_tokens: int = 32,
    seed: int = 0,
) -> float | None:
    """Forget-language share of generations prompted by the first tokens of forget test text."""
    if tokenizer is None or forget_test is None or len(forget_test) == 0:
        return None
    texts = []
    for i in range(min(n, len(forget_test))):
        prompt = [int(t) for t in np.asarray(forget_test[i])[:prompt_tokens]]
        ids = generate(model, prompt, new_tokens, seed=seed + i, device=device)
        texts.append(tokenizer.decode(ids))
    return forget_language_share(texts)


def evaluate_model(
    model: GPT,
    partition: Partition,
    data,
    cfg: EvalConfig,
    device: str = "cpu",
    calibrate: bool = True,
    seed: int = 0,
    probes: bool = True,
    bilingual: bool = False,
) -> dict:
    """All figures of eval.json for one model (see module doc); nothing is written."""
    model = model.to(device)
    variants: dict[str, GPT] = {"full": model}
    partitioned = not partition.empty
    if partitioned:
        variants["ablated"] = ablated_copy(model, partition)
    released = variants["ablated" if partitioned else "full"]
    details = {name: losses_by_domain(m, data.test, cfg, device) for name, m in variants.items()}
    result: dict = {}
    if calibrate:
        train = {d: a for d, a in data.train.items() if a is not None and len(a) > 0}
        bias = fit_output_bias(released, train, cfg, device=device, seed=seed)
        details["calibrated"] = losses_by_domain(released, data.test, cfg, device, bias)
        result["calibration"] = {
            "applied_to": "ablated" if partitioned else "full",
            "steps": cfg.calibration_steps,
            "lr": cfg.calibration_lr,
            "alpha": cfg.calibration_alpha,
            "beta": cfg.calibration_beta,
        }
    for name, stats in details.items():
        result[name] = {d: s.mean for d, s in stats.items()}
    result["details"] = {n: {d: s.to_json() for d, s in st.items()} for n, st in details.items()}
    if probes:
        probe_results = {}
        fact_probes = getattr(data, "probes", None)
        tokenizer = getattr(data, "tokenizer", None)
        if fact_probes and tokenizer is not None:
            probe_results["fact_accuracy"] = {
                n: fact_accuracy(m, tokenizer, fact_probes, device=device) for n, m in variants.items()
            }
            probe_results["fact_chance"] = float(np.mean([1 / len(p.choices) for p in fact_probes]))
        if bilingual and tokenizer is not None:
            probe_results["forget_language_share"] = {
                n: language_probe(m, tokenizer, data.test.get("forget"), device) for n, m in variants.items()
            }
        if probe_results:
            result["probes"] = probe_results
    return result


def evaluate_run(
    run_dir: str | Path,
    overrides: list[str] | None = None,
    calibrate: bool = True,
    device: str | None = None,
    data=None,
    probes: bool = True,
    force: bool = False,
) -> dict:
    """Evaluate ``run_dir`` and write ``RUN_DIR/eval.json``; reuse it when the cache key matches.

    ``data`` (an object with ``.train`` / ``.test`` dicts of token arrays, optional
    ``.tokenizer`` and ``.probes``) replaces ``prepare_data`` — for tests and callers that
    already hold the data.
    """
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    config = with_overrides(run.config, overrides)
    options = {"calibrate": calibrate, "probes": probes}
    key = cache_key(run_dir, config, options, data)
    out = run_dir / EVAL
    if out.is_file() and not force:
        previous = read_record_lenient(out, EvalRecord)
        if previous is not None and previous.get("cache_key") == key:
            return previous
    dev = resolve_device(config, device)
    if data is None:
        data = prepare_run_data(config, run_dir)
    result = evaluate_model(
        run.model,
        run.partition,
        data,
        config.eval,
        dev,
        calibrate,
        seed=config.seed,
        probes=probes,
        bilingual=is_bilingual(config),
    )
    result["method"] = _method_label(run_dir, config)
    result["partitioned"] = run.partitioned
    result["cache_key"] = key
    write_record(out, EvalRecord, result)
    return result


def _method_label(run_dir: Path, config: Config) -> str:
    """Training method, or ``unlearn:<method>`` for runs written by ``excise unlearn``."""
    meta = read_record_lenient(run_dir / META, Meta)
    if meta is not None and meta.get("unlearn_method"):
        return f"unlearn:{meta['unlearn_method']}"
    return config.method.name
