"""Moving digits: the Moving-MNIST protocol (Srivastava et al. 2015) built from the real MNIST
digits that ship with rnnkit (:func:`~rnnkit.vision.datasets.mnist_digits`).

Each sequence is ``frames`` frames of a ``size x size`` canvas (64 x 64, 20 frames: 10 seen,
10 to predict) on which ``digits`` 28 x 28 digits move in straight lines at constant speed
and bounce off the edges; overlapping digits combine by the pixel-wise maximum. Starting
positions are uniform over the canvas, directions uniform on the circle, speeds uniform in
``[2, 5]`` pixels per frame.

The split is by digit *instance*: a digit image is a test digit when a hash of its index in
the 5,000-digit set says so (:func:`digit_split`, about 20 %), so sequences of the
``"test"`` split show only digits no training sequence ever shows. Everything is generated
deterministically from a seed (NumPy's PCG64), nothing is downloaded.

>>> x = moving_digits(2, split="test", seed=0)
>>> tuple(x.shape), x.dtype, 0.0 <= float(x.min()) and float(x.max()) <= 1.0
((2, 20, 1, 64, 64), torch.float32, True)
>>> bool(torch.equal(x, moving_digits(2, split="test", seed=0)))
True
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

__all__ = ["MovingDigitsBatches", "digit_split", "moving_digits"]

SPLITS = ("train", "test")
DIGIT = 28  # MNIST digit side, pixels


@functools.lru_cache(maxsize=2)
def digit_split(split: str) -> np.ndarray:
    """``float32 [N, 28, 28]`` digit images in ``[0, 1]`` of ``split`` (``"train"``: 80 %,
    ``"test"``: 20 %), chosen by a multiplicative hash of each digit's index (Knuth's
    2654435761), independent of any seed.

    >>> len(digit_split("train")) + len(digit_split("test"))
    5000
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test' (held-out digits), got {split!r}")
    from .datasets import mnist_digits

    images, _ = mnist_digits()
    index = np.arange(len(images), dtype=np.uint64)
    held_out = ((index * np.uint64(2654435761)) % np.uint64(2 ** 32)) % np.uint64(5) == 0
    keep = held_out if split == "test" else ~held_out
    return images[keep].astype(np.float32) / 255.0


def _check_sizes(n: int, frames: int, size: int, digits: int) -> None:
    for name, value, low in (("n", n, 1), ("frames", frames, 1), ("size", size, DIGIT),
                             ("digits", digits, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}"
                             + (" (a canvas must hold a 28 x 28 digit)" if name == "size"
                                else ""))


def _trajectories(rng: np.random.Generator, n: int, frames: int, room: int) -> np.ndarray:
    """``int [n, frames, 2]`` top-left corners of digits bouncing in ``[0, room]``."""
    pos = rng.uniform(0, room, size=(n, 2))
    angle = rng.uniform(0, 2 * np.pi, size=n)
    speed = rng.uniform(2.0, 5.0, size=n)
    vel = np.stack([np.sin(angle), np.cos(angle)], axis=1) * speed[:, None]
    out = np.empty((n, frames, 2), dtype=np.int64)
    for t in range(frames):
        out[:, t] = np.rint(pos)
        pos = pos + vel
        for axis in range(2):  # bounce: reflect the position and the velocity at the walls
            low, high = pos[:, axis] < 0, pos[:, axis] > room
            pos[low, axis] = -pos[low, axis]
            pos[high, axis] = 2 * room - pos[high, axis]
            vel[low | high, axis] *= -1
    return out


def moving_digits(n: int, *, split: str = "train", seed: int = 0, frames: int = 20,
                  size: int = 64, digits: int = 2) -> Tensor:
    """``n`` sequences ``float32 [n, frames, 1, size, size]`` in ``[0, 1]`` of ``digits``
    bouncing digits of ``split`` (``"train"`` or held-out ``"test"`` digits); the same
    arguments give the same tensor."""
    _check_sizes(n, frames, size, digits)
    pool = digit_split(split)
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    video = np.zeros((n, frames, size, size), dtype=np.float32)
    room = size - DIGIT
    for _ in range(digits):
        which = pool[rng.integers(0, len(pool), size=n)]  # [n, 28, 28]
        corners = _trajectories(rng, n, frames, room)
        for i in range(n):
            for t in range(frames):
                r, c = corners[i, t]
                patch = video[i, t, r:r + DIGIT, c:c + DIGIT]
                np.maximum(patch, which[i], out=patch)
    return torch.from_numpy(video).unsqueeze(2)


class MovingDigitsBatches:
    """Training batches of moving digits, drawn afresh every epoch: a re-iterable for the
    :class:`~rnnkit.train.Trainer` of ``batches`` batches ``[batch_size, frames, 1, size,
    size]``. Each epoch's seeds come from :attr:`generator` (a ``torch.Generator``), which the
    trainer saves in its checkpoints, so a resumed run sees the same sequences."""

    def __init__(self, batch_size: int, batches: int, *, split: str = "train", seed: int = 0,
                 frames: int = 20, size: int = 64, digits: int = 2) -> None:
        _check_sizes(batch_size, frames, size, digits)
        if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
            raise ValueError(f"batches must be an integer >= 1, got {batches!r}")
        self.batch_size, self.batches, self.split = batch_size, batches, split
        self.frames, self.size, self.digits = frames, size, digits
        self.generator = torch.Generator().manual_seed(seed)
        digit_split(split)  # fail now, not in the first step, when the digits are missing

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[Tensor]:
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=self.generator))
        for b in range(self.batches):
            yield moving_digits(self.batch_size, split=self.split, seed=seed + b,
                                frames=self.frames, size=self.size, digits=self.digits)
