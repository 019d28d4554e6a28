"""Padding and length bucketing for variable-length sequences.

Sequences of similar length are batched together (:class:`BucketBatchSampler`) so little
compute is spent on padding, and each batch is padded to its own longest sequence
(:func:`pad_sequences`) with the lengths kept beside it for the model.

>>> x, lengths = pad_sequences([[5, 6, 7], [8]])
>>> x.tolist(), lengths.tolist()
([[5, 6, 7], [8, 0, 0]], [3, 1])
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

__all__ = ["BucketBatchSampler", "pad_sequences", "pair_loader", "sequence_loader"]


def pad_sequences(seqs: Sequence, pad: float = 0, dtype: torch.dtype | None = None,
                  min_length: int = 0) -> tuple[Tensor, Tensor]:
    """Stack sequences of lengths ``T_b`` into ``[B, max(min_length, max T_b), ...]`` and
    ``lengths [B]``. A fixed ``min_length`` gives every batch one shape (each new input shape
    costs oneDNN a setup far above a step's time).

    Items may be lists of ids, 1-d tensors ``[T]`` or feature tensors ``[T, F]``.

    >>> x, n = pad_sequences([[1, 2], [3]], min_length=4)
    >>> x.tolist(), n.tolist()
    ([[1, 2, 0, 0], [3, 0, 0, 0]], [2, 1])
    """
    if len(seqs) == 0:
        raise ValueError("cannot pad an empty list of sequences")
    tensors = [torch.as_tensor(s, dtype=dtype) for s in seqs]
    lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.long)
    if int(lengths.min()) == 0:
        raise ValueError(f"sequence {int(lengths.argmin())} is empty; every sequence needs at "
                         "least one step (drop empty ones first)")
    out = torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True, padding_value=pad)
    if out.shape[1] < min_length:
        fill = out.new_full((out.shape[0], min_length - out.shape[1], *out.shape[2:]), pad)
        out = torch.cat([out, fill], dim=1)
    return out, lengths


class BucketBatchSampler(torch.utils.data.Sampler):
    """Batches of indices with similar lengths, for ``DataLoader(batch_sampler=...)``.

    Indices are shuffled (if ``shuffle``), cut into pools of ``batch_size * pool`` items, each
    pool sorted by length and cut into batches, and the batches shuffled again. A new order
    every epoch (seeded by ``seed`` and the epoch count).

    >>> s = BucketBatchSampler([5, 1, 4, 2, 3, 6], batch_size=2, shuffle=False)
    >>> list(s)
    [[1, 3], [4, 2], [0, 5]]
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True,
                 pool: int = 50, seed: int = 0, drop_last: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = list(lengths)
        self.batch_size, self.shuffle, self.pool = batch_size, shuffle, pool
        self.seed, self.drop_last, self.epoch = seed, drop_last, 0

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1
        idx = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(idx)
        size = self.batch_size * self.pool
        batches = []
        for start in range(0, len(idx), size):
            chunk = sorted(idx[start : start + size], key=lambda i: self.lengths[i])
            for b in range(0, len(chunk), self.batch_size):
                batch = chunk[b : b + self.batch_size]
                if len(batch) == self.batch_size or not self.drop_last:
                    batches.append(batch)
        if self.shuffle:
            rng.shuffle(batches)
        return iter(batches)

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def sequence_loader(seqs: Sequence, targets: Sequence, batch_size: int = 32,
                    shuffle: bool = True, seed: int = 0, pad: float = 0,
                    target_pad: int = -100) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` of length-bucketed ``(x, lengths, y)`` batches.

    ``seqs``: token-id lists / ``[T]`` tensors (padded with ``pad``) or ``[T, F]`` feature
    tensors. ``targets``: one class id per sequence (``y [B]``) or one per step (``y [B, T]``,
    padded with ``target_pad``).

    >>> loader = sequence_loader([[4, 5, 6], [7]], [1, 0], batch_size=2, shuffle=False)
    >>> x, lengths, y = next(iter(loader))
    >>> x.tolist(), lengths.tolist(), y.tolist()
    ([[7, 0, 0], [4, 5, 6]], [1, 3], [0, 1])
    """
    if len(seqs) != len(targets):
        raise ValueError(f"got {len(seqs)} sequences but {len(targets)} targets")
    items = list(zip(seqs, targets))
    per_step = isinstance(targets[0], (list, tuple, Tensor)) and \
        torch.as_tensor(targets[0]).dim() == 1

    def collate(batch):
        x, lengths = pad_sequences([s for s, _ in batch], pad=pad)
        if per_step:
            y, _ = pad_sequences([t for _, t in batch], pad=target_pad, dtype=torch.long)
        else:
            y = torch.tensor([int(t) for _, t in batch], dtype=torch.long)
        return x, lengths, y

    sampler = BucketBatchSampler([len(s) for s in seqs], batch_size, shuffle=shuffle, seed=seed)
    return torch.utils.data.DataLoader(items, batch_sampler=sampler, collate_fn=collate)


def pair_loader(src: Sequence, tgt: Sequence, batch_size: int = 64, shuffle: bool = True,
                seed: int = 0) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` of length-bucketed ``(src [B, S], src_lengths [B], tgt [B, T])``
    batches for sequence-to-sequence models; ``tgt`` items are already framed
    (``BOS .. EOS``); both are padded with 0.

    >>> x, lengths, y = next(iter(pair_loader([[5, 6], [7]], [[2, 8, 3], [2, 3]], 2, False)))
    >>> x.tolist(), lengths.tolist(), y.tolist()
    ([[7, 0], [5, 6]], [1, 2], [[2, 3, 0], [2, 8, 3]])
    """
    if len(src) != len(tgt):
        raise ValueError(f"got {len(src)} sources but {len(tgt)} targets")
    items = list(zip(src, tgt))

    def collate(batch):
        x, lengths = pad_sequences([s for s, _ in batch], dtype=torch.long)
        y, _ = pad_sequences([t for _, t in batch], dtype=torch.long)
        return x, lengths, y

    sampler = BucketBatchSampler([len(s) for s in src], batch_size, shuffle=shuffle, seed=seed)
    return torch.utils.data.DataLoader(items, batch_sampler=sampler, collate_fn=collate)
