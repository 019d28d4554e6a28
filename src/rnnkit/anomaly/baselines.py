"""Detectors without training, to compare the RNN detectors against."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.timeseries import as_series
from .result import Detection

__all__ = ["RollingZScore"]


class RollingZScore:
    """Baseline: flag :math:`|y_t - \\bar y| / s > z` with mean and std over the previous
    ``window`` steps (multivariate: the mean absolute z over columns).

    >>> y = np.zeros(100) + np.sin(np.arange(100)); y[80] = 10
    >>> np.nonzero(RollingZScore(window=20, z=4).detect(y).flags)[0].tolist()
    [80]
    """

    def __init__(self, window: int = 50, z: float = 3.0) -> None:
        if window < 2:
            raise ValueError(f"window must be at least 2, got {window}")
        self.window, self.z = window, z

    def detect(self, data, **data_kw: Any) -> Detection:
        import pandas as pd

        s = as_series(data, **data_kw)
        y = pd.DataFrame(s[0].target)
        past = y.shift(1).rolling(self.window)
        zs = ((y - past.mean()).abs() / past.std().replace(0, np.nan)).mean(axis=1)
        scores = zs.fillna(0.0).to_numpy()
        flags = (scores > self.z).astype(np.int8)
        return Detection(scores, scores, float(self.z), flags)
