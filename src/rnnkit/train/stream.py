r"""A long token stream cut into chunks for truncated backpropagation through time.

Truncated BPTT (Williams & Peng, 1990; the seeds' picture) unrolls the network over a long
stream but backpropagates through at most ``k2`` steps, once every ``k1`` steps::

    stream:  x1 x2 x3 x4 | x5 x6 x7 x8 | x9 ...      (k1 = k2 = 4: non-overlapping chunks)
             ─────────►    ─────────►                 forward: the state flows on, chunk to
             ◄─────────    ◄─────────                 chunk; backward stops at the chunk edge
                      h4 ──(detach)──► h4 starts the next chunk

With ``overlap = k2 - k1 > 0`` each chunk also re-reads the last ``overlap`` steps of the
previous one, so the gradient of every new target reaches ``k2`` steps back::

    chunk j:   [ x_{s-o} ... x_{s-1} | x_s ... x_{s+k1-1} ]   targets of the overlap are ignored
                 └── overlap (re-read) ┘└── k1 new steps ──┘

The stream is split into ``batch_size`` contiguous rows (row ``b`` holds tokens
``b L .. (b + 1) L - 1``), so row ``b`` of consecutive chunks continues the same text and the
state carried for row ``b`` is the state at the end of that row's previous chunk.

>>> s = BPTTStream(torch.arange(20), batch_size=2, bptt=4)
>>> len(s)
3
>>> x, y = next(iter(s))
>>> x.tolist(), y.tolist()
([[0, 1, 2, 3], [10, 11, 12, 13]], [[1, 2, 3, 4], [11, 12, 13, 14]])
>>> [tuple(x.shape) for x, _ in s]
[(2, 4), (2, 4), (2, 1)]
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["IGNORE_INDEX", "BPTTStream"]

#: Target value of re-read (overlap) positions: ``torch.nn.functional.cross_entropy``'s default
#: ``ignore_index``, so a standard language-model loss skips them.
IGNORE_INDEX = -100


class BPTTStream:
    """Chunks ``(x [B, bptt], y [B, bptt])`` of a token stream, in order; ``y`` is ``x`` shifted
    by one step. The trainer carries the model's state across chunks (detached) and resets it at
    the start of every pass.

    Args:
        tokens: ``LongTensor [N]``, the whole stream (``N >= batch_size + 1``).
        batch_size: ``B``, the number of contiguous rows the stream is split into.
        bptt: ``k1``, new time steps per chunk; the last chunk may be shorter.
        overlap: ``k2 - k1`` (``0 <= overlap < bptt``): steps of the previous chunk re-read at
            the start of each chunk so gradients reach ``k2 = bptt + overlap`` steps back. Their
            targets are :data:`IGNORE_INDEX`, so the model's loss must ignore that value (as
            ``F.cross_entropy`` does by default). The trainer then calls the model twice per
            chunk inside one graph, split at :meth:`split_point` (the state after the first
            part is the one the next chunk starts from).

    Length: ``len()`` is the number of chunks, ``ceil((L - 1) / bptt)`` with
    ``L = N // batch_size`` tokens per row; ``num_tokens`` is the number of targets.
    """

    def __init__(self, tokens: Tensor, batch_size: int, bptt: int, overlap: int = 0) -> None:
        if not isinstance(tokens, Tensor):
            raise TypeError(f"tokens must be a LongTensor [N], got {type(tokens).__name__}; "
                            f"convert it with torch.as_tensor(tokens, dtype=torch.long)")
        if tokens.dim() != 1:
            raise ValueError(f"tokens must be one flat stream [N], got shape "
                             f"{list(tokens.shape)}; flatten it with tokens.reshape(-1)")
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or \
                tokens.dtype == torch.bool:
            raise TypeError(f"tokens must be integer ids, got {tokens.dtype}; "
                            f"convert them with tokens.long()")
        for name, value, low in (("batch_size", batch_size, 1), ("bptt", bptt, 1),
                                 ("overlap", overlap, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if overlap >= bptt:
            raise ValueError(f"overlap ({overlap}) must be smaller than bptt ({bptt}); "
                             f"raise bptt or lower the overlap")
        row = tokens.shape[0] // batch_size
        if row < 2:
            raise ValueError(f"the stream has {tokens.shape[0]} tokens, too few for "
                             f"batch_size={batch_size} rows of at least 2 tokens; give at "
                             f"least {2 * batch_size} tokens or a smaller batch_size")
        self.data = tokens[: row * batch_size].long().reshape(batch_size, row)  # [B, L]
        self.batch_size = batch_size
        self.bptt = bptt
        self.overlap = overlap

    @property
    def num_tokens(self) -> int:
        """Number of (input, target) pairs in one pass: ``B * (L - 1)``."""
        return self.batch_size * (self.data.shape[1] - 1)

    def __len__(self) -> int:
        n = self.data.shape[1] - 1
        return (n + self.bptt - 1) // self.bptt

    def chunk(self, i: int) -> tuple[Tensor, Tensor]:
        """Chunk ``i`` (``0 <= i < len(self)``) as ``(x [B, T], y [B, T])``."""
        n = self.data.shape[1] - 1
        start = i * self.bptt
        if not 0 <= start < n:
            raise IndexError(f"chunk {i} out of range for a stream of {len(self)} chunks")
        stop = min(start + self.bptt, n)
        lo = max(start - self.overlap, 0)
        x = self.data[:, lo:stop]  # [B, T]
        y = self.data[:, lo + 1 : stop + 1].clone()  # [B, T]
        y[:, : start - lo] = IGNORE_INDEX  # re-read steps were scored in the previous chunk
        return x, y

    def split_point(self, i: int) -> int | None:
        """With overlap: how many leading steps of chunk ``i`` end where chunk ``i + 1`` starts
        re-reading, i.e. after which step the state to carry is taken (the trainer runs the
        chunk as two calls split there). ``None`` without overlap and for the last chunk.

        >>> s = BPTTStream(torch.arange(40), batch_size=2, bptt=6, overlap=2)
        >>> [s.split_point(i) for i in range(len(s))]
        [4, 6, 6, None]
        """
        if not self.overlap or i >= len(self) - 1:
            return None
        start = i * self.bptt
        return start + self.bptt - self.overlap - max(start - self.overlap, 0)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for i in range(len(self)):
            yield self.chunk(i)

    def __repr__(self) -> str:
        return (f"BPTTStream(rows={self.batch_size}, row_length={self.data.shape[1]}, "
                f"bptt={self.bptt}, overlap={self.overlap}, chunks={len(self)})")
