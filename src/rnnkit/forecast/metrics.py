r"""Forecast metrics.

Point metrics delegate to sktime's maintained implementations
(``sktime.performance_metrics.forecasting``); interval coverage and width are a few lines of
numpy each.

Forecast metrics take ``y_true`` and ``y_pred`` of shape ``[H]`` or ``[H, C]`` (averaged over
columns); MASE also needs the in-sample history ``y_train`` ``[T]`` / ``[T, C]``:

.. math::
    \mathrm{sMAPE} = \frac{100}{H}\sum_h \frac{2|y_h - \hat y_h|}{|y_h| + |\hat y_h|}, \qquad
    \mathrm{MASE} = \frac{\frac1H \sum_h |y_h - \hat y_h|}
                         {\frac{1}{T-m}\sum_{t>m} |y_t - y_{t-m}|}

>>> import numpy as np
>>> y, p = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 3.0, 5.0])
>>> mae(y, p), round(smape(y, p), 2), mase(y, p, y_train=np.arange(1.0, 8.0), season=1)
(0.375, 15.56, 0.375)
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "coverage",
    "forecast_metrics",
    "mae",
    "mase",
    "rmse",
    "smape",
    "width",
]


def _skt():
    try:
        from sktime.performance_metrics import forecasting
    except ModuleNotFoundError as err:  # pragma: no cover
        raise ModuleNotFoundError(
            "forecast metrics use sktime; install it with `pip install rnnkit[data]`",
            name="sktime") from err
    return forecasting


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"y_true has shape {a.shape} but y_pred has {b.shape}; they must match")
    if a.size == 0:
        raise ValueError("cannot score an empty forecast")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("y_true / y_pred contain NaN or inf; a forecast must be finite")
    return a, b


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    a, b = _pair(y_true, y_pred)
    return float(_skt().mean_absolute_error(a, b))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(_skt().mean_squared_error(a, b)))


def smape(y_true, y_pred) -> float:
    """Symmetric MAPE in percent (0 to 200), M4-competition convention."""
    a, b = _pair(y_true, y_pred)
    return 100.0 * float(_skt().mean_absolute_percentage_error(a, b, symmetric=True))


def mase(y_true, y_pred, y_train, season: int = 1) -> float:
    """Mean absolute scaled error against the in-sample seasonal naive forecast of period
    ``season`` on ``y_train``. Raises when that scale is zero (a constant training series)."""
    a, b = _pair(y_true, y_pred)
    tr = np.asarray(y_train, dtype=np.float64)
    if len(tr) <= season:
        raise ValueError(f"MASE with season {season} needs more than {season} training steps, "
                         f"got {len(tr)}; use a smaller season or a longer history")
    scale = np.abs(tr[season:] - tr[:-season]).mean()
    if scale <= 1e-12 * max(1.0, np.abs(tr).max()):
        raise ValueError("MASE is undefined: the training series does not change over one "
                         "season (constant), so the naive error is zero; report MAE instead")
    return float(_skt().mean_absolute_scaled_error(a, b, y_train=tr, sp=season))


def coverage(y_true, lower, upper) -> float:
    """Fraction of observations inside ``[lower, upper]`` (nominal: the interval's level)."""
    a, lo = _pair(y_true, lower)
    _, hi = _pair(y_true, upper)
    return float(((a >= lo) & (a <= hi)).mean())


def width(lower, upper) -> float:
    """Mean width of the prediction interval ``upper - lower``."""
    lo, hi = _pair(lower, upper)
    return float((hi - lo).mean())


def forecast_metrics(y_true, y_pred, y_train, season: int = 1,
                     intervals: dict | None = None) -> dict[str, float]:
    """All point metrics (MAE, RMSE, sMAPE, MASE) and, for ``intervals`` given as
    ``{level: (lower, upper)}``, ``coverage_<level>`` and ``width_<level>``."""
    out = {"mae": mae(y_true, y_pred), "rmse": rmse(y_true, y_pred),
           "smape": smape(y_true, y_pred), "mase": mase(y_true, y_pred, y_train, season)}
    for level, (lo, hi) in (intervals or {}).items():
        out[f"coverage_{level}"] = coverage(y_true, lo, hi)
        out[f"width_{level}"] = width(lo, hi)
    return out
