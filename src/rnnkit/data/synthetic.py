"""Synthetic sequence tasks for tests, examples and diagnostics (real data is in
:mod:`rnnkit.data.datasets`).

The *adding problem* (Hochreiter & Schmidhuber, 1997): each step carries a value
``u_t ~ U(0, 1)`` and a marker; exactly two steps are marked, one in each half of the sequence,
and the target is the sum of the two marked values. Guessing the mean (1) scores the
variance of that sum, ``1/6``; a network must carry the first marked value across at least
``T/2`` steps to do better, which is why it measures memory.

>>> x, y = adding_problem(4, 10, torch.Generator().manual_seed(0))
>>> tuple(x.shape), tuple(y.shape), x[..., 1].sum(1).tolist()
((4, 10, 2), (4, 1), [2.0, 2.0, 2.0, 2.0])
>>> bool(torch.allclose(y[:, 0], (x[..., 0] * x[..., 1]).sum(1)))
True
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ADDING_BASELINE_MSE", "adding_problem"]

#: the mean-guess error of the adding problem: the variance of the sum of two U(0, 1) values
ADDING_BASELINE_MSE = 1.0 / 6.0


def adding_problem(n: int, length: int, generator: torch.Generator | None = None
                   ) -> tuple[Tensor, Tensor]:
    """``n`` sequences of the adding problem: ``x [n, length, 2]`` (value, marker) and targets
    ``y [n, 1]``; ``length >= 2``."""
    if not isinstance(length, int) or length < 2:
        raise ValueError(f"the adding problem needs length >= 2 (one marker per half), got "
                         f"{length!r}")
    values = torch.rand(n, length, generator=generator)
    half = length // 2
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, length, (n,), generator=generator)
    markers = torch.zeros(n, length)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)  # [n, T, 2]
    y = (values * markers).sum(1, keepdim=True)  # [n, 1]
    return x, y
