"""What a forecaster returns (:class:`Forecast`) and the interval helpers the RNN forecasters
and the baselines share (:func:`check_levels`, :func:`normal_quantile`)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["Forecast", "check_levels", "normal_quantile"]


def check_levels(levels: Sequence[float] | None,
                 default: Sequence[float] = (80, 95)) -> tuple[float, ...]:
    """Prediction-interval levels in percent, each strictly between 0 and 100 (else an error
    naming the fix; 150 would give NaN bounds, 100 infinite ones, -5 an inverted interval);
    ``None`` is ``default``. Shared by :meth:`Forecaster.predict` and the baselines'
    ``predict``."""
    if levels is None:
        return tuple(default)
    if isinstance(levels, (numbers.Number, str)) or not hasattr(levels, "__iter__"):
        raise TypeError(f"levels must be a sequence of percentages such as (80, 95), got "
                        f"{levels!r}")
    levels = tuple(levels)
    bad = [lv for lv in levels if isinstance(lv, bool) or not isinstance(lv, numbers.Real)
           or not 0 < lv < 100]
    if bad:
        raise ValueError(f"levels must be central interval widths in percent, each strictly "
                         f"between 0 and 100 (e.g. 80 and 95); got {bad}")
    return levels


def normal_quantile(p: float) -> float:
    """Standard normal quantile, e.g. ``normal_quantile(0.9) ~= 1.2816``."""
    return float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(p, dtype=torch.float64)))


@dataclass
class Forecast:
    """Forecasts of ``S`` series for ``H`` steps in the data's units.

    Attributes:
        names: series ids ``[S]``; target_names: ``C`` target columns.
        time: per series, the ``H`` future time stamps.
        mean: per series, point forecasts ``[H, C]``.
        lower, upper: ``{level: per series [H, C]}`` prediction-interval bounds (empty for
            a point model).
    """

    names: list[str]
    target_names: tuple[str, ...]
    time: list[Any]
    mean: list[np.ndarray]
    lower: dict[int, list[np.ndarray]] = field(default_factory=dict)
    upper: dict[int, list[np.ndarray]] = field(default_factory=dict)

    def to_frame(self):
        """Long pandas DataFrame: series, time, target, mean, lower_<level>, upper_<level>."""
        import pandas as pd

        rows = []
        for i, name in enumerate(self.names):
            for j, tname in enumerate(self.target_names):
                d = {"series": name, "time": list(self.time[i]), "target": tname,
                     "mean": self.mean[i][:, j]}
                for lv in sorted(self.lower):
                    d[f"lower_{lv}"] = self.lower[lv][i][:, j]
                    d[f"upper_{lv}"] = self.upper[lv][i][:, j]
                rows.append(pd.DataFrame(d))
        return pd.concat(rows, ignore_index=True)


