"""Value checks for config dataclasses, with messages in one form that the CLI rewrites into
its flags (``hidden_size must be a positive integer, got 0`` -> ``--hidden must be ...``).

>>> positive_ints(hidden_size=8, num_layers=2)
>>> probabilities(dropout=1.5)
Traceback (most recent call last):
ValueError: dropout must be a probability in [0, 1], got 1.5
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

__all__ = ["check_sampling", "choice", "non_negative_ints", "positive_ints", "probabilities"]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_ints(**values: Any) -> None:
    """Each value an integer >= 1."""
    for name, value in values.items():
        if not _is_int(value) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def non_negative_ints(**values: Any) -> None:
    """Each value an integer >= 0."""
    for name, value in values.items():
        if not _is_int(value) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def probabilities(**values: Any) -> None:
    """Each value a number in [0, 1]."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not (math.isfinite(value) and 0 <= value <= 1):
            raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def choice(name: str, value: Any, choices: Collection[Any]) -> None:
    """``value`` one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")


def check_sampling(temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> None:
    """Raise an error naming the fix for sampling settings :func:`sample_logits` would
    refuse; lets a config fail when it is built rather than at its first sample."""
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not 0 <= temperature < float("inf")):
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got "
                         f"{temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or top_k < 1):
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
                              or not 0.0 < top_p <= 1.0):
        raise ValueError(f"top_p must lie in (0, 1], got {top_p!r}")
