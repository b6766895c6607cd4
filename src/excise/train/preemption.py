"""Preemption: on a signal, finish the step, checkpoint, exit with :data:`EXIT_PREEMPTED`.

Cluster schedulers end a job by sending a signal and killing it a little later (SLURM:
SIGTERM at preemption or the time limit, or the signal chosen with ``--signal`` some
minutes before). Each signal of ``train.preempt_signals`` is caught from the moment the
run directory is locked until training returns:

- before the first step (data preparation, restoring a checkpoint) there is nothing new
  to save, so the handler raises :class:`Preempted` at once;
- during the steps it only records the signal, and the run stops after the current step;
- after the last step (final evaluation, writing the weights) it is recorded and ignored:
  the run finishes, which is as quick as checkpointing would be.

At the end of every step the loop asks
:meth:`Preemption.agreed`; in a multi-process run that is one all-reduce (MAX) of a
one-element tensor, so every rank stops after the *same* step even when the signal reached
only some of them. Rank 0 then writes a checkpoint on behalf of all ranks (model and
optimizer are replicated) and a :data:`MARKER` file, and every rank leaves
:func:`excise.train.runner.train` with :class:`Preempted`; the command exits with
:data:`EXIT_PREEMPTED`. ``excise train ... --resume`` continues the run exactly.

75 is ``EX_TEMPFAIL`` of sysexits.h, "a temporary failure; the user is invited to retry":
distinct from 0 (finished), 1 (a crash) and 2 (a user error), and not 128+N, which shells
report for a process killed by signal N. torchrun reports a worker's exit code only in its
log (it exits 1 when any worker fails), so under torchrun the marker file tells a job
script that the run was preempted rather than broken.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

EXIT_PREEMPTED = 75
MARKER = "preempted.json"
UNCATCHABLE = ("SIGKILL", "SIGSTOP")


def signal_number(name: str) -> int:
    """``"SIGTERM"`` / ``"TERM"`` / ``"15"`` → 15; ValueError naming the problem otherwise."""
    text = str(name).strip().upper()
    if text.isdigit():
        try:
            return int(signal.Signals(int(text)))
        except ValueError:
            raise ValueError(f"{name!r} is not a signal number on this system") from None
    if not text.startswith("SIG"):
        text = "SIG" + text
    if text in UNCATCHABLE:
        raise ValueError(f"{text} cannot be caught, so it cannot trigger a checkpoint")
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise ValueError(f"{name!r} is not a signal name on this system (e.g. SIGTERM, SIGUSR1)") from None


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class Preempted(BaseException):
    """Training stopped on a preemption signal after a whole step, with a checkpoint.

    A ``BaseException`` (like ``KeyboardInterrupt``), so that code which carries on after
    an ``Exception`` — a sweep moving to its next run — stops instead.
    """

    def __init__(self, step: int | None, signal_number: int, checkpoint: Path | None) -> None:
        self.step = step  # None: stopped before the first step of this process
        self.signal_number = signal_number
        self.signal = signal_name(signal_number)
        self.checkpoint = checkpoint
        when = f"after step {step}" if step is not None else "before training started"
        where = f"; checkpoint {checkpoint}" if checkpoint else ""
        super().__init__(
            f"preempted by {self.signal} {when}{where}; continue with --resume (exit code {EXIT_PREEMPTED})"
        )


class Preemption:
    """Context manager: record ``signals`` while training runs; restore handlers after.

    Handlers can only be installed from the main thread; elsewhere (a library caller
    training in a thread) the signals keep their actions and :meth:`agreed` still takes
    part in the collective, so ranks never disagree.
    """

    def __init__(self, signals: list[str] | tuple[str, ...]) -> None:
        self.numbers = sorted({signal_number(s) for s in signals})
        self.received = 0  # the first signal caught; 0 = none
        self.training = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:  # runs in the main thread between bytecodes
        if not self.received:
            self.received = signum
        if not self.training:
            raise Preempted(None, signum, None)

    def start_training(self) -> None:
        """From now on a signal stops the run after the current step (see the module doc)."""
        self.training = True
        if self.received:  # arrived just before: stop before the first step
            raise Preempted(None, self.received, None)

    def __enter__(self) -> Preemption:
        if threading.current_thread() is threading.main_thread():
            try:
                for number in self.numbers:
                    self._previous[number] = signal.signal(number, self._handle)
            except BaseException:  # a signal already, between two installs: leave none behind
                self.__exit__()
                raise
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def agreed(self, device: str = "cpu") -> int:
        """The signal every rank stops for (0: go on): this rank's, or any other rank's.

        In a process group this is one all-reduce of one number; it must be called at the
        same point of every step on every rank.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self.received
        import torch

        flag = torch.tensor([self.received], dtype=torch.int64, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())


def write_marker(run_dir: Path, step: int | None, signal_number: int, checkpoint: Path | None) -> None:
    """``RUN/preempted.json``: the run stopped on a signal and wants ``--resume``.

    Removed when the next ``excise train`` locks the run directory, so a job script that
    requeues on it cannot loop on a run that later fails for another reason.
    """
    from excise.run import write_json

    write_json(Path(run_dir) / MARKER, {
        "step": step, "signal": signal_name(signal_number),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "exit_code": EXIT_PREEMPTED, "time": time.time(),
    })  # fmt: skip


def clear_marker(run_dir: Path) -> None:
    (Path(run_dir) / MARKER).unlink(missing_ok=True)
