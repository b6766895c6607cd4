"""Processes: joining the torchrun process group, barriers, and telling a peer's failure
from a bug."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from excise.errors import PeerFailure
from excise.train import checkpoints


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: no process group

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str, timeout_s: float | None = None) -> Dist:
    """Join the process group when launched by torchrun (or with WORLD_SIZE > 1 in the
    environment): gloo on CPU, NCCL on GPU. A torchrun launch with one process joins too,
    so a one-GPU torchrun run exercises NCCL. ``timeout_s`` bounds every collective: a
    rank that waits longer for its peers (one hung or gone) fails instead of hanging."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and "TORCHELASTIC_RUN_ID" not in os.environ:
        return Dist()
    if not dist.is_initialized():
        timeout = {"timeout": timedelta(seconds=timeout_s)} if timeout_s else {}
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo", **timeout)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
    return Dist(dist.get_rank(), dist.get_world_size(), local, dist.get_backend())


def barrier(d: Dist) -> None:
    if d.world_size > 1:
        dist.barrier()


def in_collective(e: BaseException) -> bool:
    """Whether ``e`` was raised inside torch.distributed (gloo raises plain RuntimeErrors)."""
    if isinstance(e, getattr(dist, "DistError", ())):
        return True
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and f"torch{os.sep}distributed{os.sep}" in tb.tb_frame.f_code.co_filename


def peer_failure(e: BaseException, timeout_s: float, out: Path) -> PeerFailure:
    """The user-facing error for a collective that failed: which checkpoint a resume uses."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    saved = checkpoints.step_dirs(out)
    where = f"its last checkpoint ({saved[-1].name})" if saved else "step 0 (no checkpoint was written)"
    return PeerFailure(
        f"a collective with the other processes failed ({first[:300]}): one of them died, or "
        f"hung for longer than train.dist_timeout_s ({timeout_s:g} s). "
        f"The run continues from {where} with the same command and --resume."
    )
