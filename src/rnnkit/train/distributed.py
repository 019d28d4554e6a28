"""Data-parallel training across processes started by ``torchrun``.

``torchrun --nproc_per_node=W script.py`` starts ``W`` processes with ``RANK``, ``WORLD_SIZE``
and ``LOCAL_RANK`` set. The trainer then joins a process group (gloo on CPU, nccl on CUDA),
wraps the model in ``DistributedDataParallel`` and gives every rank its own rows of each
global batch: rank ``r`` of ``W`` takes rows ``[r n / W, (r + 1) n / W)`` of a batch of ``n``
(for a :class:`~rnnkit.train.BPTTStream`: its own contiguous text rows, whose state it carries).
Every rank reads the same batches in the same order (same seed), so one step equals one
single-process step on the whole batch; the loss of each rank is rescaled by its share of the
items, so the averaged gradient is exactly the gradient of the global weighted mean loss.
A batch with fewer rows than processes (the short last batch of a dataset) is shared too
(:func:`share_batch`): a rank left without rows runs the batch's first row with weight 0, so
every rank still takes part in the step and the result is still the one-process step.

Only rank 0 writes files and prints reports (:func:`is_main_process`); everything that decides
what the run does (early stopping, the ``max_time`` budget, validation metrics) is combined
over the ranks, so all of them take the same decisions at the same step.

>>> split_batch({"x": torch.arange(8).reshape(4, 2), "n": 7}, rank=1, world=2)["x"].tolist()
[[4, 5], [6, 7]]
>>> rows, borrowed = share_batch(torch.tensor([[5, 6]]), rank=0, world=2)
>>> rows.tolist(), borrowed
([[5, 6]], True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["DistContext", "is_main_process", "share_batch", "split_batch"]


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

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (pickled; for small payloads such as metrics)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers into ``module`` on every rank (e.g. the best
        weights that rank 0 read from ``best.pt``)."""
        if not self.enabled:
            return
        with torch.no_grad():
            for t in module.state_dict().values():
                dist.broadcast(t, src=0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def is_main_process() -> bool:
    """Whether this process writes files and prints reports: rank 0 of the process group, or of
    the ``torchrun`` environment before the group is joined; ``True`` without ``torchrun``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def split_batch(batch: Any, rank: int, world: int) -> Any:
    """Rank ``rank``'s rows of a batch: every tensor with a batch dimension (and every list of
    plain items, e.g. strings) is cut along dim 0 into ``world`` near-equal parts; tuples,
    dicts and lists holding tensors are split element-wise; other values are kept whole."""
    if world == 1:
        return batch
    return _map_rows(batch, lambda seq: _part(seq, rank, world))


def share_batch(batch: Any, rank: int, world: int) -> tuple[Any, bool]:
    """Rank ``rank``'s rows of a batch and whether they are *borrowed*: as :func:`split_batch`,
    except that a batch with fewer rows than processes is not an error. A rank whose share
    is then empty gets the batch's first row, to run like the others (DDP needs every rank in
    every step) and to count with weight 0. The rows are counted on the batch's first tensor
    (or list of items) with a batch dimension.

    >>> [share_batch(["a"], r, 2) for r in range(2)]
    [(['a'], True), (['a'], False)]
    """
    if world == 1:
        return batch, False
    n = _rows(batch)
    if n is None or n >= world:
        return split_batch(batch, rank, world), False
    lo, hi = rank * n // world, (rank + 1) * n // world
    if lo == hi:
        lo, hi = 0, min(n, 1)
        if hi == 0:
            raise ValueError("an empty batch cannot be shared between processes")
        return _map_rows(batch, lambda seq: seq[lo:hi]), True
    return _map_rows(batch, lambda seq: seq[lo:hi]), False


def _map_rows(batch: Any, cut: Any) -> Any:
    """``cut`` applied to every tensor with a batch dimension and every list of plain items
    of a (nested) batch; the structure and other values are kept."""
    if isinstance(batch, Tensor):
        return batch if batch.dim() == 0 else cut(batch)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_map_rows(b, cut) for b in batch))
    if isinstance(batch, tuple):
        return tuple(_map_rows(b, cut) for b in batch)
    if isinstance(batch, list):  # a structure (e.g. collated [x, y]) or a list of row items
        if any(isinstance(b, (Tensor, list, tuple, dict)) for b in batch):
            return [_map_rows(b, cut) for b in batch]
        return cut(batch)
    if isinstance(batch, dict):
        return {k: _map_rows(v, cut) for k, v in batch.items()}
    return batch


def _rows(batch: Any) -> int | None:
    """The number of rows of a batch: the length of its first tensor with a batch dimension
    (or list of plain items); ``None`` if it has none."""
    found: list[int] = []

    def count(seq: Any) -> Any:
        found.append(len(seq))
        return seq

    _map_rows(batch, count)
    return found[0] if found else None


def _part(seq: Any, rank: int, world: int) -> Any:
    n = len(seq)
    if n < world:
        raise ValueError(f"a batch of {n} rows cannot be shared by {world} processes; use a "
                         f"batch size of at least {world} (and drop_last=True in the "
                         f"DataLoader if the last batch is smaller)")
    lo, hi = rank * n // world, (rank + 1) * n // world
    return seq[lo:hi]
