"""One-shot GPU check: everything excise claims about GPUs, measured in one run of < 8 minutes.

On whatever CUDA GPU it finds (run it first whenever a GPU is lent; there may be no second
chance)::

    python benchmarks/gpu_check.py --out gpu_check.json \\
        --novels-en ../shared/data/literature/en.jsonl --novels-es ../shared/data/literature/es.jsonl

and on a CPU, the same code paths at tiny shapes in one to two minutes on 2 cores (what the test
suite runs)::

    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu_check.json --novels-en EN --novels-es ES

Sections, each in its own processes with its own time box, so that a hang or a crash (a
CUDA error poisons its process) in one never loses the others; 2 and 3 run side by side
(neither is timed), 4 runs alone:

1. ``env``: torch, CUDA, cuDNN, NCCL and transformers versions, the GPU, ``nvidia-smi``.
2. ``torchrun``: ``torchrun --standalone --nproc_per_node 1 -m excise train`` on the GPU in
   bf16 (the process group is NCCL even with one process) receives SIGTERM after a few
   steps; it must stop with a checkpoint and ``preempted.json``, and ``--resume`` (torchrun
   again) must finish the run with every step logged once.
3. ``novels``: a short bf16 SGTM run of ``configs/novels-tiny.yaml`` on the real novels
   (English retain, Spanish forget, paths given on the command line); its training loss
   must fall by at least 10%.
4. ``throughput``: the bf16 matmul peak of this GPU (median of timed reps of an 8192³
   ``torch.mm``), then for the paper's 8M and 64M stories shapes (GPT-Neo style: LayerNorm,
   GELU, learned positions, tied embeddings, attention scale 1.0; 32 heads; 1 forget head
   and 64 forget MLP units per layer) — excise plain, SGTM and gradient routing (the
   paper's label mix: a quarter forget, a quarter of the rest retain) and transformers
   GPT-Neo of the same shape: tokens/s, MFU against the measured peak, peak memory, each
   mode's step time over a sustained window; eager first, then ``torch.compile`` (compiled
   configurations go in order of importance and are skipped, reported as such, once the
   time box is spent). If the process dies, it is restarted for the items left.

Results: one table on stdout and a JSON file, rewritten after every item (a run killed at
any point leaves the JSON of everything done so far)::

    {"schema_version": 1, "dry_run": bool, "started": str, "budget_seconds": float,
     "total_seconds": float, "device": "cuda" | "cpu",
     "env": {...}, "peak": {"gflops": float, "dtype": str, "n": int, "reps": int, ...},
     "sections": {name: {"status": "ok" | "failed" | "timeout" | "skipped",
                         "seconds": float, "error": str?, "stderr_tail": str?, ...}},
     "items": {"<shape>/<eager|compiled>/<plain|sgtm|gradient_routing|transformers>":
               {"status": ..., "tokens_per_second": float, "step_seconds": float,
                "mode_step_seconds": {mode: float}, "steps_timed": {mode: int},
                "mfu": float, "tflops": float, "peak_memory_mib": float,
                "build_seconds": float, "warmup_seconds": float, "parameters": int}},
     "ratios": {"<shape>/<eager|compiled>": {"sgtm_over_plain": float,   # step time
                                             "gradient_routing_over_plain": float,
                                             "plain_over_transformers": float}},  # tokens/s
     "torchrun": {"status", "backend", "world_size", "signal_at_step", "stopped_after_step",
                  "stop_seconds", "resume_exit_code", "every_step_once", "steps", "note", ...},
     "novels": {"status", "steps", "first_losses_mean", "last_losses_mean", "loss_fell",
                "eval": {variant: {domain: loss}}, "tokens_per_second", ...}}

``--dry-run`` uses tiny shapes, the CPU and dynamo's ``aot_eager`` backend (no C++
compiler in the loop), so a section takes seconds to tens of seconds; its figures are not GPU figures.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOVELS_CONFIG = REPO / "configs" / "novels-tiny.yaml"

# The paper's stories models as configs/bilingual-{8m,64m}.yaml define them (GPT-Neo style:
# alternating global / local attention, output-logit bias), and tiny stand-ins with the same
# structure (a local window shorter than their context, so local layers take the masked path).
GPT_NEO = {"norm": "layernorm", "mlp": "gelu", "positions": "learned", "tie_embeddings": True,
           "attention_scale": 1.0, "attention_pattern": ["global", "local"], "output_bias": True}  # fmt: skip
SHAPES = {
    "8m": {"n_layers": 6, "d_model": 128, "n_heads": 32, "d_ff": 512, "context": 512, "vocab_size": 50257,
           "local_window": 256},
    "64m": {"n_layers": 12, "d_model": 512, "n_heads": 32, "d_ff": 2048, "context": 512, "vocab_size": 50257,
            "local_window": 256},
}  # fmt: skip
DRY_SHAPES = {
    "8m": {"n_layers": 2, "d_model": 32, "n_heads": 8, "d_ff": 64, "context": 32, "vocab_size": 512, "local_window": 16},
    "64m": {"n_layers": 2, "d_model": 64, "n_heads": 8, "d_ff": 128, "context": 32, "vocab_size": 512, "local_window": 16},
}  # fmt: skip
PARTITION = {"forget_heads": 1, "forget_mlp_units": 64}
DRY_PARTITION = {"forget_heads": 1, "forget_mlp_units": 8}
CONFIGS = ("plain", "sgtm", "gradient_routing", "transformers")
METHODS = {"plain": "no_filter", "sgtm": "sgtm", "gradient_routing": "gradient_routing"}
# compiled items in order of importance: what the time box may leave out comes last
COMPILED_ORDER = [
    "64m/compiled/plain", "64m/compiled/sgtm", "64m/compiled/transformers",
    "8m/compiled/plain", "8m/compiled/sgtm", "8m/compiled/transformers",
    "64m/compiled/gradient_routing", "8m/compiled/gradient_routing",
]  # fmt: skip
EAGER_ORDER = [f"{s}/eager/{c}" for s in ("8m", "64m") for c in CONFIGS]


class Plan:
    """Sizes and time boxes: the GPU run's, or the dry run's."""

    def __init__(self, dry: bool) -> None:
        self.dry = dry
        self.shapes = DRY_SHAPES if dry else SHAPES
        self.partition = DRY_PARTITION if dry else PARTITION
        self.batch_size = 4 if dry else 32
        self.window_s = 0.05 if dry else 2.0  # back-to-back steps per (item, mode)
        self.warmup = {"eager": 1 if dry else 2, "compiled": 1 if dry else 3}
        self.peak_n, self.peak_inner, self.peak_reps = (128, 1, 3) if dry else (8192, 10, 10)
        # seconds an item needs at least before it is started (else: skipped, time box)
        self.item_need = {"eager": 1.0 if dry else 15.0, "compiled": 2.0 if dry else 60.0}
        self.env_s = 60.0
        self.novels_s = 150.0
        self.margin_s = 5.0 if dry else 15.0
        self.novels_docs = 80 if dry else 6000
        self.novels_steps, self.novels_log_every = (40, 2) if dry else (300, 10)
        self.preempt_steps, self.preempt_at = (12, 3) if dry else (400, 20)  # SIGTERM once past preempt_at


# ---------------------------------------------------------------------------------------
# the orchestrator (no torch here: every section runs in a child process)


class Check:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.plan = Plan(args.dry_run)
        self.t0 = time.time()
        self.deadline = self.t0 + args.budget
        self.out = Path(args.out)
        self.work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="gpu_check-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.faults = dict(f.split("=", 1) for f in args.inject_fault)  # tests only
        self.lock = threading.RLock()
        self.procs: set[subprocess.Popen] = set()  # running children, to stop with this process
        self.results: dict = {
            "schema_version": 1, "dry_run": args.dry_run,
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "budget_seconds": args.budget, "device": None, "env": {}, "peak": None,
            "sections": {}, "items": {}, "ratios": {}, "torchrun": {}, "novels": {},
        }  # fmt: skip
        # src/ on the path: the check runs from a checkout even where excise is not installed
        path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
        self.env = {**os.environ, "EXCISE_CACHE": str(self.work / "cache"), "PYTHONUNBUFFERED": "1",
                    "PYTHONPATH": path}  # fmt: skip
        self.env.pop("EXCISE_FAULT_KILL_AT", None)

    # -- bookkeeping
    def left(self) -> float:
        return self.deadline - time.time()

    def save(self) -> None:
        with self.lock:  # torchrun and novels run side by side
            self.results["total_seconds"] = time.time() - self.t0
            self.out.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.out.with_name(f".{self.out.name}.tmp")
            tmp.write_text(json.dumps(self.results, indent=1, default=str) + "\n")
            os.replace(tmp, self.out)

    def log(self, text: str) -> None:
        print(f"[{time.time() - self.t0:6.1f}s] {text}", flush=True)

    def section(self, name: str, **fields) -> dict:
        entry = self.results["sections"].setdefault(name, {})
        entry.update(fields)
        self.save()
        return entry

    def child_cmd(self, kind: str, *extra: str) -> list[str]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--device",
               self.results["device"] or self.args.device, "--compile-backend", self.compile_backend()]  # fmt: skip
        if self.args.dry_run:
            cmd.append("--dry-run")
        for f in self.args.inject_fault:
            cmd += ["--inject-fault", f]
        return cmd + list(extra)

    def compile_backend(self) -> str:
        return self.args.compile_backend or ("aot_eager" if self.args.dry_run else "inductor")

    def run(self, cmd: list[str], timeout: float, cwd: Path | None = None) -> tuple[int | None, str, str]:
        """Run ``cmd`` in its own process group; kill the whole group at ``timeout``.
        Returns (exit code or None on timeout, stdout, stderr)."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = self.spawn(cmd, stdout=out, stderr=err, cwd=cwd)
            try:
                code = proc.wait(timeout=max(1.0, timeout))
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                code = None
            self.procs.discard(proc)
            out.seek(0)
            err.seek(0)
            return code, out.read().decode(errors="replace"), err.read().decode(errors="replace")

    def spawn(self, cmd: list[str], cwd: Path | None = None, **kw) -> subprocess.Popen:
        """A child in its own process group (so a time box can kill all it started)."""
        proc = subprocess.Popen(cmd, env=self.env, cwd=cwd or REPO, start_new_session=True, **kw)
        self.procs.add(proc)
        return proc

    def stop(self, signum, frame) -> None:
        """SIGTERM / SIGINT to the check: end the children too, keep the JSON written so far."""
        for proc in list(self.procs):
            if proc.poll() is None:  # never a reaped (possibly reused) process id
                _kill_group(proc)
        self.results["interrupted_by"] = signal.Signals(signum).name
        self.save()
        os._exit(128 + signum)

    # -- sections
    def do_env(self) -> None:
        started = time.time()
        code, out, err = self.run(self.child_cmd("env"), min(self.plan.env_s, self.left()))
        try:
            env = json.loads(out.strip().splitlines()[-1]) if code == 0 else {}
        except (json.JSONDecodeError, IndexError):
            env = {}
        self.results["env"] = env
        device = self.args.device
        if device == "auto" and self.args.dry_run:
            device = "cpu"  # the rehearsal; --dry-run --device cuda is a quick GPU smoke test
        elif device == "auto":
            # without an answer from torch, a visible NVIDIA driver is the best guess
            visible = env.get("cuda_available") if env else shutil.which("nvidia-smi") is not None
            device = "cuda" if visible else "cpu"
        self.results["device"] = device
        status = "ok" if env else ("timeout" if code is None else "failed")
        self.section("env", status=status, seconds=time.time() - started,
                     **({} if env else {"stderr_tail": err[-3000:]}))  # fmt: skip
        self.log(f"env: {status}; device {device}" + (f" ({env.get('gpu')})" if env.get("gpu") else ""))

    def do_torchrun(self) -> None:
        """``torchrun --nproc_per_node 1 -m excise train`` (NCCL on a GPU) receives SIGTERM once
        past a few steps, must stop with a checkpoint and ``preempted.json``, and ``--resume``
        (torchrun again) must finish the run with every step logged once."""
        started = time.time()
        self.section("torchrun", status="running")
        p, device = self.plan, self.results["device"]
        recipe = self.work / "empty.yaml"
        recipe.write_text("{}\n")
        run = self.work / "torchrun"
        steps, at = p.preempt_steps, p.preempt_at
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
            "--monitor-interval", "0.5", "-m", "excise", "train", str(recipe), "--out", str(run),
            "model.vocab_size=512", "model.context=64", "model.n_layers=2", "model.d_model=64",
            "model.n_heads=4", "model.d_ff=128", "partition.forget_heads=1", "partition.forget_mlp_units=16",
            "data.builtin=bilingual", f"data.builtin_documents={100 if p.dry else 400}", "train.batch_size=8",
            "train.warmup_steps=2", "eval.max_tokens=2048", "logging.progress=false", "logging.every=1",
            f"train.device={device}", "train.dtype=bfloat16", "tokenizer.max_train_characters=200000",
            f"train.steps={steps}", "checkpoint.every=0",
        ]  # fmt: skip
        out = self.results["torchrun"]
        try:
            self._fault("torchrun")
            shutil.rmtree(run, ignore_errors=True)
            deadline = time.time() + min(120.0, self.left() - p.margin_s)
            out.update(self._signal_torchrun(cmd, run, at, deadline))
            self.save()
            if out["status"] == "running":
                code, _, err = self.run([*cmd, "--resume"], deadline - time.time())
                summary = _read_json(run / "summary.json")
                train_steps = [e["step"] for e in _events(run) if e.get("event") == "train"]
                once = train_steps == list(range(1, steps + 1))
                ok = code == 0 and once and not (run / "preempted.json").exists()
                out.update({
                    "status": "ok" if ok else ("timeout" if code is None else "failed"),
                    "resume_exit_code": code, "every_step_once": once, "steps": summary.get("steps"),
                    "backend": summary.get("backend"), "world_size": summary.get("world_size"),
                    "final_train_loss": summary.get("final_train_loss"),
                    **({} if ok else {"stderr_tail": err[-3000:]}),
                })  # fmt: skip
            out["note"] = (
                f"backend {out.get('backend')}; SIGTERM to torchrun at step {out.get('signal_at_step')}, "
                f"stopped after step {out.get('stopped_after_step')} in {out.get('stop_seconds', 0):.1f} s, "
                f"resumed to {out.get('steps')}" + ("" if out.get("every_step_once") else " (steps missing or repeated)")
            )  # fmt: skip
            self.section("torchrun", status=out["status"], seconds=time.time() - started)
            self.log(f"torchrun: {out['status']} ({out['note']})")
        except Exception as e:  # one failing section must not lose the others
            self.section(
                "torchrun", status="failed", error=f"{type(e).__name__}: {e}", seconds=time.time() - started
            )
            self.log(f"torchrun: failed ({e})")

    def _signal_torchrun(self, cmd: list[str], run: Path, at: int, deadline: float) -> dict:
        """First launch: SIGTERM to the agent (which forwards it) once step ``at`` is logged."""
        with tempfile.TemporaryFile() as err:
            proc = self.spawn(cmd, stdout=subprocess.DEVNULL, stderr=err)
            seen = 0
            while time.time() < deadline and proc.poll() is None and (seen := _last_step(run)) < at:
                time.sleep(0.02)
            if proc.poll() is not None or seen < at:
                _kill_group(proc)
                err.seek(0)
                return {"status": "failed", "error": f"no step {at} to signal at (exit {proc.poll()})",
                        "stderr_tail": err.read().decode(errors="replace")[-3000:]}  # fmt: skip
            os.kill(proc.pid, signal.SIGTERM)
            signalled = time.time()
            try:
                proc.wait(timeout=max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                return {
                    "status": "timeout",
                    "error": f"still running {time.time() - signalled:.0f} s after SIGTERM",
                }
            self.procs.discard(proc)
            err.seek(0)
            text = err.read().decode(errors="replace")
        marker = _read_json(run / "preempted.json")
        meta = _read_json(run / "meta.json")
        result = {
            "signal_at_step": seen, "stop_seconds": time.time() - signalled,
            "stopped_after_step": marker.get("step"), "backend": meta.get("backend"),
            "worker_said_preempted": "preempted by SIGTERM" in text,
        }  # fmt: skip
        if not marker or not result["worker_said_preempted"]:
            return {**result, "status": "failed", "error": "no preempted.json / message after SIGTERM",
                    "stderr_tail": text[-3000:]}  # fmt: skip
        return {**result, "status": "running"}

    def do_novels(self) -> None:
        started = time.time()
        self.section("novels", status="running")
        p = self.plan
        if not (self.args.novels_en and self.args.novels_es):
            self.section("novels", status="skipped", error="--novels-en / --novels-es not given", seconds=0.0)
            self.log("novels: skipped (no paths)")
            return
        run = self.work / "novels"
        args = [
            sys.executable, "-m", "excise", "train", str(NOVELS_CONFIG), "--out", str(run), "--overwrite",
            f"data.retain.path={Path(self.args.novels_en).resolve()}",
            f"data.forget.path={Path(self.args.novels_es).resolve()}",
            f"data.retain.max_documents={p.novels_docs}", f"data.forget.max_documents={p.novels_docs}",
            f"train.steps={p.novels_steps}", f"train.device={self.results['device']}", "train.dtype=bfloat16",
            "eval.every=0", "checkpoint.every=0", f"logging.every={p.novels_log_every}", "logging.progress=false",
        ]  # fmt: skip
        if p.dry:
            args += ["model.vocab_size=512", "model.context=64", "model.n_layers=2", "model.d_model=32",
                     "model.n_heads=4", "model.d_ff=64", "partition.forget_mlp_units=16",
                     "train.batch_size=8", "train.lr=3e-3", "train.warmup_steps=5", "eval.max_tokens=2048"]  # fmt: skip
        try:
            self._fault("novels")
            code, _, err = self.run(args, min(p.novels_s, self.left() - p.margin_s))
            losses = [e["loss"] for e in _events(run) if e.get("event") == "train"]
            summary = (
                json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
            )
            first, last = (_mean(losses[:3]), _mean(losses[-3:])) if len(losses) >= 6 else (None, None)
            fell = first is not None and last < 0.9 * first
            status = "ok" if code == 0 and fell else ("timeout" if code is None else "failed")
            self.results["novels"] = {
                "status": status, "exit_code": code, "steps": summary.get("steps"),
                "first_losses_mean": first, "last_losses_mean": last, "loss_fell": fell,
                "eval": summary.get("eval"), "tokens_per_second": summary.get("tokens_per_second"),
                "documents_per_language": p.novels_docs, **({} if status == "ok" else {"stderr_tail": err[-3000:]}),
            }  # fmt: skip
            self.section("novels", status=status, seconds=time.time() - started)
            self.log(f"novels: {status}; train loss {first} -> {last}")
        except Exception as e:
            self.section(
                "novels", status="failed", error=f"{type(e).__name__}: {e}", seconds=time.time() - started
            )
            self.log(f"novels: failed ({e})")

    def do_throughput(self) -> None:
        started = time.time()
        self.section("throughput", status="running")
        todo = [
            i for i in EAGER_ORDER + COMPILED_ORDER if any(fnmatch.fnmatch(i, pat) for pat in self.args.only)
        ]
        items = self.results["items"]
        launches = 0
        while todo and self.left() > self.plan.margin_s + self.plan.item_need["eager"]:
            launches += 1
            events = self.work / f"throughput-{launches}.jsonl"
            events.unlink(missing_ok=True)  # a --work-dir may hold an earlier check's
            box = self.left() - self.plan.margin_s
            cmd = self.child_cmd("throughput", "--items", ",".join(todo), "--events", str(events),
                                 "--deadline", f"{time.time() + box - 1.0:.3f}")  # fmt: skip
            code, _, err = self.run(cmd, box)
            for record in _read_jsonl(events):
                if "peak" in record and self.results["peak"] is None:
                    self.results["peak"] = record["peak"]
                elif "item" in record:
                    items[record["item"]] = {k: v for k, v in record.items() if k != "item"}
            running = [i for i in todo if items.get(i, {}).get("status") == "running"]
            for item in running:  # the process died (or was killed) inside it
                items[item] = {"status": "timeout" if code is None else "failed",
                               "error": f"process {'killed at the time box' if code is None else f'died (exit {code})'}"
                                        " in this item", "stderr_tail": err[-2000:]}  # fmt: skip
            todo = [i for i in todo if i not in items]
            self.results["ratios"] = ratios(items)
            self.save()
            if code == 0 or code is None:
                break
            self.log(f"throughput process exited {code}; restarting for the {len(todo)} items left")
        for item in todo:
            items[item] = {"status": "skipped", "error": "time box"}
        statuses = {v["status"] for v in items.values()}
        status = "ok" if statuses <= {"ok"} else ("partial" if "ok" in statuses else "failed")
        self.results["ratios"] = ratios(items)
        self.section("throughput", status=status, seconds=time.time() - started, launches=launches)
        self.log(
            f"throughput: {status} ({sum(v['status'] == 'ok' for v in items.values())}/{len(items)} items)"
        )

    def _fault(self, where: str) -> None:
        if self.faults.get(where) == "error":
            raise RuntimeError(f"injected fault in {where}")

    def main(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)
        self.save()
        self.do_env()
        if self.results["device"] == "cpu" and not self.args.dry_run and self.args.device != "cpu":
            self.log("no CUDA device found: use --dry-run for the CPU rehearsal (or --device cpu to insist)")
            self.save()
            return 2
        # the two correctness checks side by side (neither is timed), then throughput alone
        side = threading.Thread(target=self.do_novels, name="novels")
        side.start()
        self.do_torchrun()
        side.join()
        self.do_throughput()
        print(format_table(self.results))
        self.save()
        print(f"wrote {self.out}")
        return 0


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the child and what it started (compile workers)
    except ProcessLookupError:
        pass
    proc.wait()


def _events(run: Path) -> list[dict]:
    return _read_jsonl(run / "metrics.jsonl")


def _read_jsonl(path: Path) -> list[dict]:
    out = []
    try:
        for line in Path(path).read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line being written when the process died
    except OSError:
        pass
    return out


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _last_step(run: Path) -> int:
    return max((e["step"] for e in _events(run) if e.get("event") == "train"), default=0)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def ratios(items: dict) -> dict:
    """Per shape and compile mode: SGTM and gradient routing step time over plain's, and
    plain tokens/s over transformers'."""
    out: dict = {}
    for shape in SHAPES:
        for mode in ("eager", "compiled"):
            get = {c: items.get(f"{shape}/{mode}/{c}", {}) for c in CONFIGS}
            ok = {c: v for c, v in get.items() if v.get("status") == "ok"}
            r = {}
            if "plain" in ok:
                for c in ("sgtm", "gradient_routing"):
                    if c in ok:
                        r[f"{c}_over_plain"] = ok[c]["step_seconds"] / ok["plain"]["step_seconds"]
                if "transformers" in ok:
                    r["plain_over_transformers"] = (
                        ok["plain"]["tokens_per_second"] / ok["transformers"]["tokens_per_second"]
                    )
            if r:
                out[f"{shape}/{mode}"] = r
    return out


def format_table(res: dict) -> str:
    env, peak = res.get("env") or {}, res.get("peak") or {}
    head = "DRY RUN (CPU, tiny shapes; not GPU figures) — " if res["dry_run"] else ""
    gpu = env.get("gpu") or env.get("processor") or res.get("device")
    peak_text = (
        f"{peak['gflops'] / 1e3:.1f} TFLOP/s {peak.get('dtype')} matmul peak (measured)"
        if peak
        else "peak not measured"
    )
    lines = [
        f"{head}excise GPU check on {gpu}; torch {env.get('torch')}, CUDA {env.get('cuda')}; {peak_text}",
        "",
    ]
    lines.append(f"{'shape':<6}{'compile':<9}{'configuration':<18}{'tokens/s':>12}{'step ms':>9}{'MFU':>7}"
                 f"{'TFLOP/s':>9}{'peak MiB':>10}{'warm-up s':>10}  status")  # fmt: skip
    for item in EAGER_ORDER + [i for s in SHAPES for i in COMPILED_ORDER if i.startswith(s + "/")]:
        v = res["items"].get(item)
        if v is None:
            continue
        shape, mode, config = item.split("/")
        if v.get("status") == "ok":
            lines.append(
                f"{shape:<6}{mode:<9}{config:<18}{v['tokens_per_second']:>12,.0f}{v['step_seconds'] * 1e3:>9.1f}"
                f"{v['mfu']:>7.1%}{v['tflops']:>9.1f}{v['peak_memory_mib']:>10,.0f}{v['warmup_seconds']:>10.1f}  ok"
            )  # fmt: skip
        else:
            lines.append(
                f"{shape:<6}{mode:<9}{config:<18}{'':>67}  {v.get('status')}: {v.get('error', '')[:60]}"
            )
    lines.append("")
    for key, r in res.get("ratios", {}).items():
        parts = []
        if "sgtm_over_plain" in r:
            parts.append(f"sgtm/plain step time {r['sgtm_over_plain']:.3f}")
        if "gradient_routing_over_plain" in r:
            parts.append(f"gradient routing/plain {r['gradient_routing_over_plain']:.3f}")
        if "plain_over_transformers" in r:
            parts.append(f"plain/transformers tokens/s {r['plain_over_transformers']:.2f}x")
        lines.append(f"{key:<13} " + "; ".join(parts))
    t = res.get("torchrun") or {}
    if t:
        lines.append(
            f"torchrun, 1 process, preempted and resumed: {t.get('status')} — {t.get('note', t.get('error', ''))}"
        )
    n = res.get("novels") or {}
    if n:
        lines.append(f"novels, bf16 SGTM, {n.get('steps')} steps: {n['status']} — train loss "
                     f"{_fmt(n.get('first_losses_mean'))} -> {_fmt(n.get('last_losses_mean'))}"
                     f"{' (fell)' if n.get('loss_fell') else ' (did not fall by 10%)'}; eval {n.get('eval')}")  # fmt: skip
    secs = "; ".join(f"{k} {v.get('status')} {v.get('seconds', 0):.0f} s" for k, v in res["sections"].items())
    lines.append(
        f"sections: {secs}; total {res.get('total_seconds', 0):.0f} s of a {res['budget_seconds']:.0f} s budget"
    )
    return "\n".join(lines)


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


# ---------------------------------------------------------------------------------------
# the child processes (torch is imported here only)


def child_env() -> dict:
    """Versions and the device; every optional probe may fail without losing the rest."""
    import platform

    import torch

    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
            "cuda_available": torch.cuda.is_available(), "cpu_count": os.cpu_count()}  # fmt: skip

    def probe(key: str, get) -> None:
        try:
            info[key] = get()
        except Exception as e:  # noqa: BLE001 - a missing tool or an odd version format
            info[key] = f"unavailable ({type(e).__name__}: {e})"

    probe("transformers", lambda: __import__("importlib.metadata").metadata.version("transformers"))
    probe("git_commit", lambda: subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                                               text=True, timeout=10).stdout.strip() or None)  # fmt: skip
    if info["cuda_available"]:
        probe("gpu", lambda: torch.cuda.get_device_name(0))
        probe("gpus", torch.cuda.device_count)
        probe("capability", lambda: list(torch.cuda.get_device_capability(0)))
        probe("memory_gib", lambda: torch.cuda.get_device_properties(0).total_memory / 2**30)
        probe("bf16", torch.cuda.is_bf16_supported)
        probe("cudnn", torch.backends.cudnn.version)
        probe("nccl", lambda: _version_text(torch.cuda.nccl.version()))
        probe("nvidia_smi", lambda: subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm,power.limit", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20).stdout.strip())  # fmt: skip
    else:
        from excise.bench import _cpu_name

        probe("processor", _cpu_name)
    print(json.dumps(info, default=str))
    return info


def _version_text(v) -> str:
    return ".".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)


def shape_config(plan: Plan, shape: str, device: str):
    from excise.config import load_config

    model = {**plan.shapes[shape], **GPT_NEO}
    overrides = [f"model.{k}={json.dumps(v)}" for k, v in model.items()]
    overrides += [f"partition.{k}={v}" for k, v in plan.partition.items()]
    overrides += [
        "method.name=sgtm", "labels.retain_fraction=0.25", f"train.batch_size={plan.batch_size}",
        "train.lr=6e-4", "train.warmup_steps=0", f"train.device={device}", "train.dtype=bfloat16",
    ]  # fmt: skip
    return load_config(None, overrides)


def child_throughput(args: argparse.Namespace) -> int:
    import gc

    import torch

    from excise import bench

    plan = Plan(args.dry_run)
    device = args.device
    faults = dict(f.split("=", 1) for f in args.inject_fault)
    events = open(args.events, "a", buffering=1)

    def emit(record: dict) -> None:
        events.write(json.dumps(record, default=str) + "\n")

    if plan.dry:
        torch.set_num_threads(1)
    peak_meter = bench.MatmulPeak(plan.peak_n, device=device, dtype=torch.bfloat16, inner=plan.peak_inner)
    peak_meter.sample(plan.peak_reps)
    peak = peak_meter.result()
    emit({"peak": peak})
    sync = bench.device_sync(device)
    for item in args.items.split(","):
        shape, mode, config_name = item.split("/")
        if args.deadline - time.time() < plan.item_need[mode]:
            emit({"item": item, "status": "skipped", "error": "time box"})
            continue
        emit({"item": item, "status": "running"})
        runner = None
        try:
            if faults.get(item) == "crash":
                os._exit(3)  # as a segfault or a poisoned CUDA context would end the process
            if faults.get(item) == "error":
                raise RuntimeError("injected fault")
            config = shape_config(plan, shape, device)
            autocast = torch.autocast(device_type=device, dtype=torch.bfloat16)
            kw = {"device": device, "autocast": autocast, "compile": mode == "compiled",
                  "compile_backend": args.compile_backend}  # fmt: skip
            if config_name == "transformers":
                build = bench.transformers_runner(config, 0, **kw)
                if build is None:
                    emit({"item": item, "status": "skipped", "error": "transformers is not installed"})
                    continue
            else:
                build = bench.excise_runner(config, METHODS[config_name], 0, **kw)
            probe = bench.memory_probe(device)
            probe.start()
            t0 = time.perf_counter()
            runner = build()
            build_s = time.perf_counter() - t0
            gen = torch.Generator().manual_seed(0)
            m = config.model
            batches = [
                bench.random_batch(gen, plan.batch_size, m.context, m.vocab_size).to(device) for _ in range(2)
            ]
            t0 = time.perf_counter()
            bench.warm_up(runner, batches, plan.warmup[mode])
            sync()
            warm_s = time.perf_counter() - t0
            for step_mode in runner.modes:
                bench.time_window(runner, step_mode, batches, plan.window_s, sync)
            peak_mem = probe.peak()
            step_s = bench.step_seconds(runner)
            tps = plan.batch_size * m.context / step_s
            flops = tps * bench.model_flops_per_token(m)
            emit({
                "item": item, "status": "ok", "tokens_per_second": tps, "step_seconds": step_s,
                "mode_step_seconds": {k.value: v[0] for k, v in runner.samples.items()},
                "steps_timed": {k.value: v for k, v in runner.steps_timed.items()},
                "tflops": flops / 1e12, "mfu": flops / (peak["gflops"] * 1e9),
                "peak_memory_mib": peak_mem, "memory_method": probe.method,
                "build_seconds": build_s, "warmup_seconds": warm_s, "batch_size": plan.batch_size,
                "compile_backend": args.compile_backend if mode == "compiled" else None, **runner.info,
            })  # fmt: skip
        except Exception as e:  # out of memory, a compile error ...: this item only
            emit({"item": item, "status": "failed", "error": f"{type(e).__name__}: {str(e)[:500]}"})
        finally:
            del runner
            gc.collect()
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
            if mode == "compiled":
                torch._dynamo.reset()  # each item compiles its own graphs
    return 0


# ---------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="gpu_check.json", help="JSON results (rewritten after every item)")
    parser.add_argument("--novels-en", default=None, help="English novels jsonl (retain)")
    parser.add_argument("--novels-es", default=None, help="Spanish novels jsonl (forget)")
    parser.add_argument(
        "--dry-run", action="store_true", help="tiny shapes on the CPU: a rehearsal in seconds"
    )
    parser.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cuda", "cpu"],
        help="auto: cuda when there is one (dry run: cpu; --dry-run --device cuda is a "
        "one-minute GPU smoke test)",
    )
    parser.add_argument(
        "--budget", type=float, default=None, help="seconds for everything (default 460; dry run 240)"
    )
    parser.add_argument(
        "--work-dir", default=None, help="run directories and caches (default: a temporary dir)"
    )
    parser.add_argument(
        "--compile-backend", default=None, help="torch.compile backend (default inductor; dry run aot_eager)"
    )
    parser.add_argument(
        "--only",
        default="*",
        help="throughput items to run, comma-separated patterns (default all), e.g. '8m/*,64m/compiled/sgtm'",
    )
    parser.add_argument(
        "--inject-fault", action="append", default=[], metavar="WHERE=KIND", help=argparse.SUPPRESS
    )  # tests: ITEM=crash|error, novels=error, torchrun=error
    parser.add_argument("--child", choices=["env", "throughput"], help=argparse.SUPPRESS)
    parser.add_argument("--items", help=argparse.SUPPRESS)
    parser.add_argument("--events", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.only = [pat.strip() for pat in args.only.split(",") if pat.strip()]
    if args.budget is None:
        args.budget = 240.0 if args.dry_run else 460.0
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child == "env":
        child_env()
        return 0
    if args.child == "throughput":
        return child_throughput(args)
    return Check(args).main()


if __name__ == "__main__":
    raise SystemExit(main())
