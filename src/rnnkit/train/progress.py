"""One progress bar for loops outside the trainer (feature extraction, evaluation, dataset
building): ``tqdm`` on stderr when it is installed (the ``train`` extra), else the plain
iterable.

>>> list(maybe_tqdm(range(3), desc="x", disable=True))
[0, 1, 2]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["maybe_tqdm"]


def maybe_tqdm(iterable: Iterable[Any], desc: str = "", disable: bool = False,
               total: int | None = None) -> Iterable[Any]:
    """``iterable`` wrapped in a tqdm bar named ``desc`` (nothing when ``disable``)."""
    if disable:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the train extra
        return iterable
    return tqdm(iterable, desc=desc, total=total, dynamic_ncols=True, leave=False)
