"""``excise bench``: training throughput, model FLOP utilisation and peak memory on this machine.

One process, one session, so every number is comparable with the others:

1. **Peak**: the fp32 matmul rate of a large square ``torch.mm`` (median of reps taken at
   the start of every round) — the ceiling model FLOP utilisation (MFU) is measured against.
2. **Configurations** (same shape, same random token batches, same AdamW settings):
   ``excise_plain`` (method ``no_filter``, default mode only), ``excise_sgtm`` and
   ``excise_gradient_routing`` (the paper's label mix, below), and ``transformers_gpt_neo``
   (a ``GPTNeoForCausalLM`` of the same shape built in code — no download — with the same
   global / local attention layers, trained plainly with ``torch.optim.AdamW`` defaults), when transformers is
   installed.
3. **Data pipeline**: time to draw and stack one batch of windows from a numpy token array
   of the bench shape, as a share of the plain step time.

Label mix: a quarter of steps are labelled forget; of the other steps ``labels.retain_fraction``
(0.25 in the paper) are labelled retain, the rest are unlabelled (default). The sequence is
built deterministically (:func:`mode_sequence`). Each mode's step time is measured on its
own; a method's step time is the mix-weighted mean of its per-mode step times, so it does
not depend on which modes a short run happened to draw.

Timing — sustained windows, interleaved and repeated: every (configuration, mode) first
runs ``warmup`` untimed steps. Then each of ``rounds`` rounds times one *window* of every
(configuration, mode): back-to-back steps until ``window_seconds`` have passed (at least
one step); the window's time per step is one sample. Configurations take turns within a
round, in reverse order every other round, so slow drifts and background load on a shared
machine hit all of them alike; plain and transformers come next to each other, so the
headline ratio pairs adjacent windows. Each configuration's figures are medians over
rounds. Each ratio is computed round by round (the two configurations' windows of the same
round) and summarised by the geometric mean of the rounds — with six rounds a median rests
on the middle two, and on the busy 2-core machine consecutive runs agreed better on the
geometric mean (docs/results.md §4.1) — with its median, range and spread, (max - min) /
median, which says how steady the measurement was. Single steps, each timed right after a
matmul probe, were not a stable sample on a shared CPU.

FLOPs per token follow PaLM (Chowdhury et al. 2022, appendix B): ``6 N + 12 L H Q T`` with
``N`` the matmul parameters (attention, MLP and the output head; embedding lookups are free)
and the attention term counted for the full, not the causal, score matrix. SGTM and gradient
routing are credited with the *plain* model's FLOPs, so skipped work shows up as a higher
MFU, not a lower FLOP count.

Memory: on Linux the process's peak resident set (``VmHWM``) is reset through
``/proc/self/clear_refs`` before each configuration is built; the configuration's peak is the
high-water mark during building and warm-up minus the resident set just before building
(``memory_method: "vmhwm_reset"``). Without that file the monotone ``ru_maxrss`` is reported
instead (``memory_method: "ru_maxrss"``, only the first configuration's figure is clean). On
CUDA (``benchmarks/gpu_check.py``) it is ``torch.cuda.max_memory_allocated``.

The building blocks (runners, windows, peak, memory) are device-generic: the GPU check
uses them with CUDA, bf16 autocast and ``torch.compile``.

JSON written by ``--out`` (all times in seconds, rates per second)::

    {"schema_version": 2, "date": str, "quick": bool, "total_seconds": float,
     "machine": {"platform": str, "processor": str, "cpu_count": int, "threads": int,
                 "torch": str, "transformers": str | null,
                 "load_average": [float | null, float | null]},   # 1-minute, start and end
     "shape": {"n_layers", "d_model", "n_heads", "d_ff", "vocab_size", "context",
               "batch_size", "forget_heads", "forget_mlp_units": int},
     "flops_per_token": float,
     "timing": {"window_seconds": float, "rounds": int, "warmup_steps": int},
     "peak": {"n": int, "reps": int, "seconds": float, "gflops": float, "spread": float},
     "mix": {"forget": float, "retain": float, "default": float, "sequence": [str]},
     "memory_method": str,
     "configs": {name: {"tokens_per_second": float, "step_seconds": float,
                        "mode_step_seconds": {mode: float},     # medians over rounds
                        "samples": {mode: [float]},             # one per window (round)
                        "steps_timed": {mode: int},
                        "round_tokens_per_second": [float], "spread": float,
                        "gflops": float, "mfu": float,
                        "peak_memory_mib": float, "process_peak_mib": float}},
     "data_pipeline": {"batch_seconds": float, "share_of_step": float},
     "ratios": {"plain_over_transformers": float | null, "sgtm_over_plain": float,
                "gradient_routing_over_plain": float, "plain_mfu": float},
     "ratio_rounds": {ratio: {"geomean": float, "median": float, "min": float, "max": float,
                              "spread": float, "rounds": [float]} | null}}

``ratios`` are the geometric means of the per-round ratios in ``ratio_rounds`` (``plain_mfu``:
from the plain model's median step time); ``spread`` is always (max - min) / median.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import json
import os
import platform
import re
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from excise.config import Config, ModelConfig, load_config
from excise.errors import UserError
from excise.model import Mode, build_model
from excise.train.step import build_optimizer, train_step

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "bench.yaml"
FORGET_SHARE = 0.25  # share of steps labelled forget in the paper's mix
MODES = (Mode.DEFAULT, Mode.RETAIN, Mode.FORGET)


# ---------------------------------------------------------------------------------------
# arithmetic


def model_flops_per_token(cfg: ModelConfig) -> float:
    """Training FLOPs per token of the plain model (PaLM's 6N + 12·L·H·Q·T)."""
    d, L, T = cfg.d_model, cfg.n_layers, cfg.context
    inner = cfg.n_heads * cfg.resolved_head_dim
    mlp_mats = 3 if cfg.mlp == "swiglu" else 2
    n_matmul = L * (4 * d * inner + mlp_mats * d * cfg.resolved_d_ff) + d * cfg.vocab_size
    return 6.0 * n_matmul + 12.0 * L * inner * T


def mode_sequence(n_steps: int, forget_share: float, retain_fraction: float) -> list[Mode]:
    """A deterministic, evenly spread label sequence with the given shares.

    Step ``i`` is forget when the running count of forget steps falls behind
    ``forget_share * (i + 1)``; among the others, retain when the running retain count falls
    behind ``retain_fraction`` of the non-forget steps so far; default otherwise.
    """
    seq: list[Mode] = []
    n_forget = n_retain = n_other = 0
    for i in range(n_steps):
        if n_forget < round(forget_share * (i + 1)):
            seq.append(Mode.FORGET)
            n_forget += 1
            continue
        n_other += 1
        if n_retain < round(retain_fraction * n_other):
            seq.append(Mode.RETAIN)
            n_retain += 1
        else:
            seq.append(Mode.DEFAULT)
    return seq


def mix_weights(forget_share: float, retain_fraction: float) -> dict[Mode, float]:
    rest = 1.0 - forget_share
    return {
        Mode.FORGET: forget_share,
        Mode.RETAIN: rest * retain_fraction,
        Mode.DEFAULT: rest * (1.0 - retain_fraction),
    }


# ---------------------------------------------------------------------------------------
# measurement helpers


class MatmulPeak:
    """Rate of an ``n × n`` by ``n × n`` matmul (2 n³ FLOPs each); :meth:`sample` times reps.

    fp32 on CPU (``excise bench``), bf16 on CUDA (the GPU check). A rep times ``inner``
    back-to-back matmuls between two device synchronisations. Reps are taken at the start
    of every round, so on a shared machine the peak sees the same background load as the
    steps; the median of all reps is reported.
    """

    def __init__(
        self, n: int, device: str = "cpu", dtype: torch.dtype = torch.float32, inner: int = 1
    ) -> None:
        self.n, self.inner, self.dtype = n, inner, dtype
        kw = {"device": device, "dtype": dtype}
        self.a, self.b, self.out = torch.randn(n, n, **kw), torch.randn(n, n, **kw), torch.empty(n, n, **kw)
        self.sync = device_sync(device)
        torch.mm(self.a, self.b, out=self.out)  # warm-up
        self.sync()
        self.times: list[float] = []

    def sample(self, reps: int = 1) -> None:
        for _ in range(reps):
            self.sync()
            t0 = time.perf_counter()
            for _ in range(self.inner):
                torch.mm(self.a, self.b, out=self.out)
            self.sync()
            self.times.append((time.perf_counter() - t0) / self.inner)

    def result(self) -> dict:
        sec = statistics.median(self.times)
        rates = [2.0 * self.n**3 / t / 1e9 for t in self.times]
        return {"n": self.n, "reps": len(self.times), "seconds": sec, "dtype": str(self.dtype).removeprefix("torch."),
                "gflops": 2.0 * self.n**3 / sec / 1e9, "spread": spread(rates)}  # fmt: skip


def measure_matmul_peak(n: int = 2048, reps: int = 7) -> dict:
    """Median fp32 rate of ``reps`` ``n × n`` matmuls, after a warm-up."""
    peak = MatmulPeak(n)
    peak.sample(reps)
    return peak.result()


def device_sync(device: str) -> Callable[[], None]:
    """A function that waits for the device's queued work (a no-op on CPU)."""
    if str(device).startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def spread(values: Sequence[float]) -> float:
    """(max - min) / median: how far apart repeated measurements of one figure lie."""
    mid = statistics.median(values)
    return (max(values) - min(values)) / mid if mid else 0.0


def ratio_summary(values: Sequence[float]) -> dict:
    """Geometric mean, median, range and :func:`spread` of one ratio measured round by round."""
    return {"geomean": statistics.geometric_mean(values), "median": statistics.median(values),
            "min": min(values), "max": max(values), "spread": spread(values), "rounds": list(values)}  # fmt: skip


_HWM = re.compile(r"VmHWM:\s+(\d+) kB")
_RSS = re.compile(r"VmRSS:\s+(\d+) kB")


class MemoryProbe:
    """Peak resident memory of a code region (see the module docstring for the method)."""

    def __init__(self) -> None:
        self.method = "vmhwm_reset" if self._can_reset() else "ru_maxrss"

    @staticmethod
    def _status(pattern: re.Pattern) -> float | None:
        try:
            text = Path("/proc/self/status").read_text()
        except OSError:
            return None
        m = pattern.search(text)
        return int(m.group(1)) / 1024.0 if m else None

    def _can_reset(self) -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            return False
        return self._status(_HWM) is not None

    def start(self) -> float:
        """Reset the high-water mark; return the current resident set in MiB."""
        gc.collect()
        if self.method == "vmhwm_reset":
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return self._status(_RSS) or 0.0
        return 0.0

    def peak(self) -> float:
        """Process peak resident set in MiB since the last :meth:`start` (or ever)."""
        if self.method == "vmhwm_reset":
            return self._status(_HWM) or 0.0
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class CudaMemoryProbe:
    """Peak CUDA memory allocated by tensors of a code region (``max_memory_allocated``)."""

    method = "cuda_max_memory_allocated"

    def start(self) -> float:
        gc.collect()
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        self.base = torch.cuda.memory_allocated() / 2**20
        return self.base

    def peak(self) -> float:
        return torch.cuda.max_memory_allocated() / 2**20


def memory_probe(device: str) -> MemoryProbe | CudaMemoryProbe:
    return CudaMemoryProbe() if str(device).startswith("cuda") else MemoryProbe()


def random_batch(generator: torch.Generator, batch: int, context: int, vocab: int) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, context + 1), generator=generator)


def data_pipeline_seconds(cfg: ModelConfig, batch: int, reps: int, seed: int = 0) -> float:
    """Median time to draw ``batch`` random windows of ``context + 1`` tokens from a uint16
    token array (8M tokens) and stack them into one int64 torch tensor."""
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if cfg.vocab_size <= 65536 else np.uint32
    tokens = rng.integers(0, cfg.vocab_size, size=8_000_000, dtype=dtype)
    span = cfg.context + 1
    times = []
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        starts = rng.integers(0, len(tokens) - span, size=batch)
        windows = np.stack([tokens[s : s + span] for s in starts]).astype(np.int64)
        out = torch.from_numpy(windows)
        times.append(time.perf_counter() - t0)
        del out
    return statistics.median(times[1:])


# ---------------------------------------------------------------------------------------
# configurations


@dataclass
class Runner:
    """One benchmark configuration: a ``step(batch, mode)`` closure and the modes it runs."""

    name: str
    step: Callable[[torch.Tensor, Mode], float]
    modes: tuple[Mode, ...]
    weights: dict[Mode, float]
    samples: dict[Mode, list[float]] = field(default_factory=dict)  # seconds per step, per window
    steps_timed: dict[Mode, int] = field(default_factory=dict)
    peak_memory_mib: float = 0.0
    process_peak_mib: float = 0.0
    info: dict = field(default_factory=dict)


def _compiled(model: torch.nn.Module, compile: bool, backend: str | None):
    return torch.compile(model, backend=backend or "inductor") if compile else model


def excise_runner(
    config: Config,
    method: str,
    seed: int,
    device: str = "cpu",
    autocast=None,
    compile: bool = False,
    compile_backend: str | None = None,
) -> Callable[[], Runner]:
    """Build (lazily) excise's own training step for ``method`` at the config's shape."""

    def build() -> Runner:
        method_cfg = config.method.model_copy(update={"name": method})
        train_cfg = config.train
        model, partition = build_model(config.model, config.partition, seed)
        model.to(device).train()
        optimizer = build_optimizer(model, partition, method_cfg, train_cfg, device)
        forward = _compiled(model, compile, compile_backend)

        def step(batch: torch.Tensor, mode: Mode) -> float:
            return train_step(
                forward, optimizer, partition, method_cfg, train_cfg, [batch], mode, train_cfg.lr,
                autocast=autocast,
            ).loss  # fmt: skip

        if method_cfg.partitioned:
            weights = mix_weights(FORGET_SHARE, config.labels.retain_fraction)
            modes = tuple(m for m in MODES if weights[m] > 0)
        else:
            weights, modes = {Mode.DEFAULT: 1.0}, (Mode.DEFAULT,)
        return Runner(f"excise_{'plain' if method == 'no_filter' else method}", step, modes, weights,
                      info={"parameters": model.num_parameters()})  # fmt: skip

    return build


def transformers_runner(
    config: Config,
    seed: int,
    device: str = "cpu",
    autocast=None,
    compile: bool = False,
    compile_backend: str | None = None,
) -> Callable[[], Runner] | None:
    """A GPT-Neo of the same shape (the same global / local attention layers, no dropout), or None."""
    try:
        from transformers import GPTNeoConfig, GPTNeoForCausalLM
    except ImportError:
        return None
    m = config.model

    def build() -> Runner:
        hf_cfg = GPTNeoConfig(
            vocab_size=m.vocab_size,
            max_position_embeddings=m.context,
            hidden_size=m.d_model,
            num_layers=m.n_layers,
            num_heads=m.n_heads,
            intermediate_size=m.resolved_d_ff,
            attention_types=[[list(m.attention_pattern), m.n_layers // len(m.attention_pattern)]],
            window_size=m.local_window,
            activation_function="gelu_new",
            resid_dropout=0.0,
            embed_dropout=0.0,
            attention_dropout=0.0,
            tie_word_embeddings=True,
            bos_token_id=0,
            eos_token_id=0,
        )
        torch.manual_seed(seed)
        model = GPTNeoForCausalLM(hf_cfg)
        model.to(device).train()
        t = config.train
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=t.lr, betas=(t.beta1, t.beta2), weight_decay=t.weight_decay
        )
        forward = _compiled(model, compile, compile_backend)

        def step(batch: torch.Tensor, mode: Mode) -> float:
            optimizer.zero_grad(set_to_none=True)
            with autocast if autocast is not None else contextlib.nullcontext():
                logits = forward(input_ids=batch[:, :-1]).logits
            loss = F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten())
            loss.backward()
            if t.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            optimizer.step()
            return float(loss.detach())  # waits for the device, as excise's step does

        info = {"parameters": sum(p.numel() for p in model.parameters()),
                "attn_implementation": getattr(model.config, "_attn_implementation", None)}  # fmt: skip
        return Runner("transformers_gpt_neo", step, (Mode.DEFAULT,), {Mode.DEFAULT: 1.0}, info=info)

    return build


def warm_up(runner: Runner, batches: list[torch.Tensor], steps: int) -> None:
    """``steps`` untimed steps of every mode (the first ones compile, allocate, fill caches)."""
    for mode in runner.modes:
        for i in range(steps):
            runner.step(batches[i % len(batches)], mode)


def time_window(
    runner: Runner,
    mode: Mode,
    batches: list[torch.Tensor],
    seconds: float,
    sync: Callable[[], None] = lambda: None,
    max_steps: int | None = None,
) -> tuple[int, float]:
    """Back-to-back steps until ``seconds`` have passed (at least one, at most ``max_steps``):
    the number of steps and the time they took. The sample is recorded on ``runner``."""
    sync()
    t0 = time.perf_counter()
    n = 0
    while True:
        runner.step(batches[n % len(batches)], mode)
        n += 1
        if (max_steps is not None and n >= max_steps) or time.perf_counter() - t0 >= seconds:
            break
    sync()
    elapsed = time.perf_counter() - t0
    runner.samples.setdefault(mode, []).append(elapsed / n)
    runner.steps_timed[mode] = runner.steps_timed.get(mode, 0) + n
    return n, elapsed


def step_seconds(runner: Runner, round_index: int | None = None) -> float:
    """Mix-weighted step time: of one round's windows, or of the per-mode medians."""
    total = 0.0
    for mode, samples in runner.samples.items():
        t = statistics.median(samples) if round_index is None else samples[round_index]
        total += runner.weights[mode] * t
    return total


# ---------------------------------------------------------------------------------------
# the benchmark


def run_bench(
    config: Config,
    quick: bool = False,
    rounds: int | None = None,
    window_seconds: float | None = None,
    warmup: int = 1,
    include_transformers: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Measure every configuration (module docstring) and return the results dict."""
    t_start = time.perf_counter()
    load_before = _load_average()
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    rounds = rounds if rounds is not None else (2 if quick else 6)
    window = window_seconds if window_seconds is not None else (0.0 if quick else 4.0)
    if rounds < 1 or window < 0:
        raise UserError(f"bench needs at least one round (got {rounds}) and a window >= 0 s (got {window})")
    m = config.model
    batch_size = config.train.micro_batch_size or config.train.batch_size
    tokens_per_step = batch_size * m.context
    flops_per_token = model_flops_per_token(m)

    peak_meter = MatmulPeak(n=1024 if quick else 2048)
    peak_meter.sample(3 if quick else 5)
    log(f"fp32 matmul peak (first reps): {peak_meter.result()['gflops']:.1f} GFLOP/s")

    builders = [
        excise_runner(config, "no_filter", config.seed),
        excise_runner(config, "sgtm", config.seed),
        excise_runner(config, "gradient_routing", config.seed),
    ]
    hf = transformers_runner(config, config.seed) if include_transformers else None
    if hf is not None:
        builders.append(hf)

    gen = torch.Generator().manual_seed(config.seed)
    batches = [random_batch(gen, batch_size, m.context, m.vocab_size) for _ in range(4)]
    probe = MemoryProbe()
    runners: list[Runner] = []
    for build in builders:  # build + warm up one at a time, measuring memory
        before = probe.start()
        runner = build()
        warm_up(runner, batches, warmup)
        runner.process_peak_mib = probe.peak()
        runner.peak_memory_mib = max(0.0, runner.process_peak_mib - before)
        runners.append(runner)
        log(f"built {runner.name}: peak {runner.peak_memory_mib:.0f} MiB")

    # timing order: plain and transformers side by side, so the headline ratio pairs
    # adjacent windows (building stays in the order above: memory figures depend on it)
    runners.sort(key=lambda r: r.name != "transformers_gpt_neo")
    runners.sort(key=lambda r: r.name != "excise_plain")
    log(f"timing: {rounds} rounds of {window:g} s windows per configuration and mode")
    for r in range(rounds):  # interleaved, alternating order
        peak_meter.sample(1 if quick else 2)
        for runner in runners if r % 2 == 0 else runners[::-1]:
            for mode in runner.modes:
                time_window(runner, mode, batches, window)
        plain_r = tokens_per_step / step_seconds(runners[0], r)
        log(f"round {r + 1}/{rounds} done (plain {plain_r:,.0f} tokens/s)")

    peak = peak_meter.result()
    log(f"fp32 matmul peak (median of {peak['reps']} reps): {peak['gflops']:.1f} GFLOP/s")
    configs = {}
    for runner in runners:
        step_sec = step_seconds(runner)
        tps = tokens_per_step / step_sec
        gflops = tps * flops_per_token / 1e9
        per_round = [tokens_per_step / step_seconds(runner, r) for r in range(rounds)]
        configs[runner.name] = {
            "tokens_per_second": tps,
            "step_seconds": step_sec,
            "mode_step_seconds": {mode.value: statistics.median(s) for mode, s in runner.samples.items()},
            "samples": {mode.value: s for mode, s in runner.samples.items()},
            "steps_timed": {mode.value: n for mode, n in runner.steps_timed.items()},
            "round_tokens_per_second": per_round,
            "spread": spread(per_round),
            "gflops": gflops,
            "mfu": gflops / peak["gflops"],
            "peak_memory_mib": runner.peak_memory_mib,
            "process_peak_mib": runner.process_peak_mib,
        }
    by_name = {r.name: r for r in runners}
    del runners
    gc.collect()

    def per_round(num: str, den: str, invert: bool = False) -> dict | None:
        """Ratio of two configurations' tokens/s (``invert``: of step times) round by round."""
        if num not in by_name or den not in by_name:
            return None
        values = [step_seconds(by_name[den], r) / step_seconds(by_name[num], r) for r in range(rounds)]
        return ratio_summary([1.0 / v for v in values] if invert else values)

    ratio_rounds = {
        "plain_over_transformers": per_round("excise_plain", "transformers_gpt_neo"),
        "sgtm_over_plain": per_round("excise_sgtm", "excise_plain", invert=True),
        "gradient_routing_over_plain": per_round("excise_gradient_routing", "excise_plain", invert=True),
    }
    batch_sec = data_pipeline_seconds(m, batch_size, reps=5 if quick else 20, seed=config.seed)
    plain = configs["excise_plain"]
    weights = mix_weights(FORGET_SHARE, config.labels.retain_fraction)
    try:
        import transformers

        hf_version = transformers.__version__
    except ImportError:
        hf_version = None
    return {
        "schema_version": 2,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "total_seconds": time.perf_counter() - t_start,
        "machine": {
            "platform": platform.platform(),
            "processor": _cpu_name(),
            "cpu_count": os.cpu_count() or 0,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "transformers": hf_version,
            "load_average": [load_before, _load_average()],  # 1-minute, at start and end
        },
        "shape": {
            "n_layers": m.n_layers,
            "d_model": m.d_model,
            "n_heads": m.n_heads,
            "d_ff": m.resolved_d_ff,
            "vocab_size": m.vocab_size,
            "context": m.context,
            "batch_size": batch_size,
            "forget_heads": config.partition.forget_heads,
            "forget_mlp_units": config.partition.forget_mlp_units,
        },  # fmt: skip
        "flops_per_token": flops_per_token,
        "timing": {"window_seconds": window, "rounds": rounds, "warmup_steps": warmup},
        "peak": peak,
        "mix": {
            **{mode.value: w for mode, w in weights.items()},
            "sequence": [s.value for s in mode_sequence(16, FORGET_SHARE, config.labels.retain_fraction)],
        },
        "memory_method": probe.method,
        "configs": configs,
        "data_pipeline": {
            "batch_seconds": batch_sec,
            "share_of_step": batch_sec / plain["step_seconds"],
        },
        "ratios": {
            **{k: (v["geomean"] if v else None) for k, v in ratio_rounds.items()},
            "plain_mfu": plain["mfu"],
        },
        "ratio_rounds": ratio_rounds,
    }


def _load_average() -> float | None:
    """The 1-minute load average (runnable processes), where the OS reports it."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ratio_text(summary: dict | None, unit: str = "x") -> str:
    if not summary:
        return "n/a"
    n = len(summary["rounds"])
    if n == 1:
        return f"{summary['geomean']:.3f}{unit} (1 round: no spread)"
    return (f"{summary['geomean']:.3f}{unit} (geometric mean of {n} rounds; median {summary['median']:.3f}, "
            f"rounds {summary['min']:.3f}-{summary['max']:.3f}, spread {summary['spread']:.1%})")  # fmt: skip


def _load_text(machine: dict) -> str:
    load = machine.get("load_average") or [None, None]
    if load[0] is None:
        return f"machine: {machine['cpu_count']} CPUs, {machine['threads']} threads (load average unknown)"
    busy = " — busy: other processes competed for the CPUs" if max(load) > machine["cpu_count"] else ""
    return (f"machine: {machine['cpu_count']} CPUs, {machine['threads']} threads; 1-minute load average "
            f"{load[0]:.1f} at the start, {load[1]:.1f} at the end{busy}")  # fmt: skip


def format_table(results: dict) -> str:
    """The results as a plain-text table, how steady they were, and the ratios against the targets."""
    t = results["timing"]
    lines = [
        f"{'configuration':<26}{'tokens/s':>10}{'spread':>8}{'step s':>9}{'GFLOP/s':>9}{'MFU':>7}"
        f"{'peak MiB':>10}  per-mode step s (steps timed)",
    ]
    for name, c in results["configs"].items():
        modes = " ".join(f"{k}={v:.3f}({c['steps_timed'][k]})" for k, v in c["mode_step_seconds"].items())
        lines.append(
            f"{name:<26}{c['tokens_per_second']:>10.0f}{c['spread']:>8.1%}{c['step_seconds']:>9.3f}"
            f"{c['gflops']:>9.1f}{c['mfu']:>7.1%}{c['peak_memory_mib']:>10.0f}  {modes}"
        )
    r, d, rr = results["ratios"], results["data_pipeline"], results["ratio_rounds"]
    pk = results["peak"]
    lines += [
        f"timing: {t['rounds']} rounds, each a {t['window_seconds']:g} s window of back-to-back steps per "
        f"configuration and mode, interleaved (order reversed every other round), after "
        f"{t['warmup_steps']} warm-up step(s); medians; ratios taken round by round; "
        "spread = (max - min) / median over rounds",
        _load_text(results["machine"]),
        f"matmul peak {pk['gflops']:.1f} GFLOP/s (spread {pk['spread']:.1%} over {pk['reps']} reps); "
        f"{results['flops_per_token'] / 1e6:.1f} MFLOP/token; memory: {results['memory_method']}",
        f"data pipeline: {d['batch_seconds'] * 1e3:.2f} ms/batch = {d['share_of_step']:.2%} of a step",
        f"plain/transformers tokens/s {_ratio_text(rr['plain_over_transformers'])}  (target >= 2.0x)",
        f"sgtm/plain step time {_ratio_text(rr['sgtm_over_plain'], '')}  (target <= 1.03)",
        f"gradient routing/plain step time {_ratio_text(rr['gradient_routing_over_plain'], '')}",
        f"plain MFU {r['plain_mfu']:.1%}  (target >= 60%)",
    ]
    return "\n".join(lines)


def cli_bench(args) -> int:
    """``excise bench [--config FILE] [--out JSON] [--quick] [--rounds N] [--window S]``."""
    path = Path(args.config) if getattr(args, "config", None) else DEFAULT_CONFIG
    if not path.is_file():
        raise UserError(f"bench config {path} does not exist (default: configs/bench.yaml)")
    config = load_config(path)
    results = run_bench(
        config, quick=bool(getattr(args, "quick", False)), rounds=getattr(args, "rounds", None),
        window_seconds=getattr(args, "window", None),
    )  # fmt: skip
    print(format_table(results))
    out = getattr(args, "out", None)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return 0
