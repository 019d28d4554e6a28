"""Data-parallel training across processes started by ``torchrun``.

``torchrun --nproc_per_node=W script.py`` starts ``W`` processes with ``RANK``, ``WORLD_SIZE``
and ``LOCAL_RANK`` set. The trainer then joins a process group (gloo on CPU, nccl on CUDA),
wraps the model in ``DistributedDataParallel`` and gives every rank its own rows of each
global batch: rank ``r`` of ``W`` takes rows ``[r n / W, (r + 1) n / W)`` of a batch of ``n``
(for a :class:`~rnnkit.train.BPTTStream`: its own contiguous text rows, whose state it carries).
Every rank reads the same batches in the same order (same seed), so one step equals one
single-process step on the whole batch; the loss of each rank is rescaled by its share of the
items, so the averaged gradient is exactly the gradient of the global weighted mean loss.

>>> split_batch({"x": torch.arange(8).reshape(4, 2), "n": 7}, rank=1, world=2)["x"].tolist()
[[4, 5], [6, 7]]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["DistContext", "split_batch"]


@dataclass
class DistContext:
    """Who this process is: ``rank`` of ``world`` (1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this context created the process group, so it destroys it

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device_type: str) -> DistContext:
        """Join the process group that ``torchrun`` describes in the environment, if any."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        owns = False
        if not dist.is_initialized():
            backend = "nccl" if device_type == "cuda" else "gloo"
            if device_type == "cuda":
                torch.cuda.set_device(local_rank)
            dist.init_process_group(backend=backend)
            owns = True
        return cls(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank,
                   owns_group=owns)

    def all_sum(self, values: list[float], device: Any) -> list[float]:
        """Sum a list of numbers over ranks (one collective)."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (pickled; for small, rare payloads such as checkpoints)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def split_batch(batch: Any, rank: int, world: int) -> Any:
    """Rank ``rank``'s rows of a batch: every tensor with a batch dimension (and every list of
    plain items, e.g. strings) is cut along dim 0 into ``world`` near-equal parts; tuples,
    dicts and lists holding tensors are split element-wise; other values are kept whole."""
    if world == 1:
        return batch
    if isinstance(batch, Tensor):
        if batch.dim() == 0:
            return batch
        return _part(batch, rank, world)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(split_batch(b, rank, world) for b in batch))
    if isinstance(batch, tuple):
        return tuple(split_batch(b, rank, world) for b in batch)
    if isinstance(batch, list):  # a structure (e.g. collated [x, y]) or a list of row items
        if any(isinstance(b, (Tensor, list, tuple, dict)) for b in batch):
            return [split_batch(b, rank, world) for b in batch]
        return _part(batch, rank, world)
    if isinstance(batch, dict):
        return {k: split_batch(v, rank, world) for k, v in batch.items()}
    return batch


def _part(seq: Any, rank: int, world: int) -> Any:
    n = len(seq)
    if n < world:
        raise ValueError(f"a batch of {n} rows cannot be shared by {world} processes; use a "
                         f"batch size of at least {world} (and drop_last=True in the "
                         f"DataLoader if the last batch is smaller)")
    lo, hi = rank * n // world, (rank + 1) * n // world
    return seq[lo:hi]
