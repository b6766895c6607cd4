"""Do excise's exports load with equal logits on both ends of the supported transformers range?

Builds random excise models of every exportable family (GPT-Neo unscaled / default scale /
untied, Llama plain / biased / wide heads), each with a byte-level BPE trained by excise,
exports each as full, ablated and pruned, and then, in every given Python environment (which
need not have excise installed: the child blocks importing it), loads each export with
``AutoTokenizer`` and ``AutoModelForCausalLM``, checks the token ids against the run's
tokenizer.json, computes logits in float32 and float64, and greedy-generates a few tokens
with the export's generation_config.json. Reports the largest logit difference to excise,
per environment and export, and between environments.

    python benchmarks/hf_compat.py --python .venv-tf4/bin/python --python .venv/bin/python

Exit status 1 when any id differs or a logit difference exceeds the tolerance.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

TEXTS = [
    "Once upon a time, a little fox found a red ball in the garden.",
    "Érase una vez un niño que vivía en la montaña; ¡qué feliz era!",
    "Line one\nline two\t\ttabbed  and   spaced <|endoftext|> after the end.",
]
# transformers keeps parts of both families in float32 even for a float64 model (GPT-Neo's
# attention scores, Llama's RMSNorm and rotary tables), so float64 agrees only to ~1e-6
TOLERANCE = {"float32": 1e-4, "float64": 1e-5}

CHILD = r"""
import json, sys
sys.modules["excise"] = None  # a user without excise
import torch, transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

jobs = json.loads(sys.argv[1])
out = {"transformers": transformers.__version__, "torch": torch.__version__, "exports": {}}
major = int(transformers.__version__.split(".")[0])
for name, job in jobs["exports"].items():
    tok = AutoTokenizer.from_pretrained(job["dir"])
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in jobs["texts"]]
    tensors = {}
    for dtype in ("float32", "float64"):
        kw = {"dtype" if major >= 5 else "torch_dtype": getattr(torch, dtype)}
        model = AutoModelForCausalLM.from_pretrained(job["dir"], **kw).eval()
        with torch.no_grad():
            tensors[dtype] = model(torch.tensor(job["tokens"])).logits.contiguous()
    prompt = {k: v[:, :8] for k, v in tok(jobs["texts"][0], return_tensors="pt").items()}
    torch.manual_seed(0)
    gen = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    save_file(tensors, job["logits_out"])
    out["exports"][name] = {
        "class": type(model).__name__, "tokenizer_class": type(tok).__name__, "ids": ids,
        "generated": gen.shape[1] - prompt["input_ids"].shape[1],
    }
print(json.dumps(out))
"""


def build_exports(root: Path) -> dict:
    """Runs of every exportable family, exported three ways; returns the child's jobs and
    excise's reference logits / ids."""
    import torch
    from tokenizers import Tokenizer

    from excise.config import Config, DataConfig, ModelConfig, PartitionConfig, save_config
    from excise.data.tokenizer import train_tokenizer
    from excise.export import export_hf
    from excise.model.ablation import ablated_copy
    from excise.model.partition import build_model
    from excise.run import load_run, save_model

    vocab = 320
    corpus = TEXTS * 20 + [f"story {i}: the cat and the dog; el gato y el perro" for i in range(200)]
    tokenizer = train_tokenizer(corpus, vocab)
    neo = dict(norm="layernorm", mlp="gelu", positions="learned", tie_embeddings=True, bias=True,
               qkv_bias=False, attention_scale=1.0)  # fmt: skip
    llama = dict(norm="rmsnorm", mlp="swiglu", positions="rope", tie_embeddings=False, bias=False)
    variants = {
        "neo": neo,
        "neo_default_scale": neo | {"attention_scale": None},
        "neo_untied_no_bias": neo | {"tie_embeddings": False, "bias": False},
        "llama": llama,
        "llama_biases_theta": llama | {"bias": True, "qkv_bias": True, "rope_theta": 500000.0},
        "llama_wide_heads": llama | {"head_dim": 8, "tie_embeddings": True},
    }
    pcfg = PartitionConfig(forget_heads=2, forget_mlp_units=8)
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, vocab, (2, 24), generator=gen)
    jobs, reference = {}, {}
    for name, overrides in variants.items():
        cfg = ModelConfig(
            vocab_size=vocab, context=64, n_layers=2, d_model=16, n_heads=4, d_ff=32, **overrides
        )
        model, partition = build_model(cfg, pcfg, seed=0)
        with torch.no_grad():  # every weight random, norms around 1: no mapping error hides
            for pname, p in model.named_parameters():
                noise = torch.randn(p.shape, generator=gen)
                p.copy_(1 + 0.1 * noise if "norm" in pname and pname.endswith("weight") else 0.2 * noise)
        run_dir = root / "runs" / name
        save_model(run_dir, model, partition)
        save_config(
            Config(model=cfg, partition=pcfg, data=DataConfig(builtin="bilingual")), run_dir / "config.yaml"
        )
        tokenizer.save(str(run_dir / "tokenizer.json"))
        run = load_run(run_dir)
        for kind in ("full", "ablated", "pruned"):
            out = root / "exports" / f"{name}-{kind}"
            export_hf(run_dir, out, ablated=kind == "ablated", prune_units=kind == "pruned")
            m = run.model if kind == "full" else ablated_copy(run.model, run.partition)
            with torch.no_grad():
                reference[f"{name}-{kind}"] = {
                    "float32": m.float()(tokens),
                    "float64": m.double()(tokens),
                }
            jobs[f"{name}-{kind}"] = {"dir": str(out), "tokens": tokens.tolist()}
    run_tok = Tokenizer.from_file(str(root / "runs" / "neo" / "tokenizer.json"))
    ids = [run_tok.encode(t).ids for t in TEXTS]
    return {"jobs": jobs, "reference": reference, "ids": ids}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--python", action="append", required=True, help="interpreter of an environment (repeatable)"
    )
    parser.add_argument(
        "--out", default=None, help="keep exports and results here (default: a temporary folder)"
    )
    args = parser.parse_args(argv)
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        built = build_exports(root)
        results, failures = {}, []
        for python in args.python:
            jobs = {
                name: job | {"logits_out": str(root / f"logits-{abs(hash(python))}-{name}.safetensors")}
                for name, job in built["jobs"].items()
            }
            proc = subprocess.run(
                [python, "-c", CHILD, json.dumps({"exports": jobs, "texts": TEXTS})],
                capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
            )  # fmt: skip
            if proc.returncode != 0:
                print(f"{python}: failed\n{proc.stderr[-3000:]}", file=sys.stderr)
                failures.append(f"{python} failed")
                continue
            if proc.stderr.strip():
                print(f"{python} stderr:\n{proc.stderr.strip()[-2000:]}", file=sys.stderr)
            child = json.loads(proc.stdout.strip().splitlines()[-1])
            env = f"transformers {child['transformers']}"
            rows = {}
            for name, job in jobs.items():
                got = load_file(job["logits_out"])
                info = child["exports"][name]
                diffs = {
                    dtype: float((got[dtype] - built["reference"][name][dtype]).abs().max())
                    for dtype in ("float32", "float64")
                }  # fmt: skip
                ids_equal = info["ids"] == built["ids"]
                rows[name] = {"ids_equal": ids_equal, "class": info["class"], "generated": info["generated"],
                              "tokenizer_class": info["tokenizer_class"], **diffs, "logits": got}  # fmt: skip
                if not ids_equal:
                    failures.append(f"{env} {name}: token ids differ")
                for dtype, d in diffs.items():
                    if not d <= TOLERANCE[dtype]:
                        failures.append(f"{env} {name}: {dtype} logits differ by {d:.2e}")
            results[env] = rows
        print("| export | " + " | ".join(f"{env}: max abs Δ fp32 / fp64, ids" for env in results) + " |")
        print("|---|" + "---|" * len(results))
        for name in built["jobs"]:
            cells = []
            for rows in results.values():
                r = rows[name]
                cells.append(
                    f"{r['float32']:.1e} / {r['float64']:.1e}, {'equal' if r['ids_equal'] else 'DIFFER'}"
                )
            print(f"| {name} | " + " | ".join(cells) + " |")
        envs = list(results)
        if len(envs) >= 2:
            a, b = results[envs[0]], results[envs[-1]]
            cross = max(float((a[n]["logits"]["float64"] - b[n]["logits"]["float64"]).abs().max()) for n in a)
            print(
                f"\nfloat64 logits, {envs[0]} vs {envs[-1]}: max abs difference {cross:.1e} over {len(a)} exports"
            )
        classes = {(r["class"], r["tokenizer_class"]) for rows in results.values() for r in rows.values()}
        print(f"classes loaded: {sorted(classes)}")
        if failures:
            print("FAILED:\n  " + "\n  ".join(failures))
            return 1
        print(
            f"all {len(built['jobs'])} exports load with equal ids and logits in {len(results)} environments"
        )
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
