r"""Forecast and anomaly-detection metrics.

Point metrics delegate to sktime's maintained implementations
(``sktime.performance_metrics.forecasting``); interval coverage / width and the detection
scores (precision, recall, F1, point-adjusted F1) are a few lines of numpy each.

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
>>> f1_scores(np.array([0, 1, 1, 1, 0]), np.array([0, 0, 1, 0, 0]))["f1_pa"]
1.0
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "coverage",
    "f1_scores",
    "forecast_metrics",
    "mae",
    "mase",
    "point_adjust",
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


# -- anomaly detection ---------------------------------------------------------------------------

def _segments(labels: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of ones."""
    padded = np.concatenate([[0], labels.astype(np.int8), [0]])
    d = np.diff(padded)
    return list(zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]))


def _binary(values, what: str) -> np.ndarray:
    """``values`` as a bool array, if they are all 0/1 (or True/False): anything else (NaN, 2,
    text) would silently count as an anomaly."""
    a = np.asarray(values)
    if a.dtype == bool:
        return a
    if np.issubdtype(a.dtype, np.number) and bool(np.isin(a, (0, 1)).all()):
        return a.astype(bool)
    # keyed by str: NaNs are unequal to each other, so dict.fromkeys would list each one
    odd = {str(v): v for v in a.ravel().tolist() if v not in (0, 1)}
    if odd:
        raise ValueError(f"{what} must be 0/1 (or True/False); found {list(odd.values())[:5]}: "
                         f"map the label column to 1 = anomaly, 0 = normal and fill or drop "
                         f"missing rows")
    return a.astype(bool)  # 0/1 or True/False held in an object array


def point_adjust(labels, pred) -> np.ndarray:
    """Point adjustment (Xu et al., 2018): if any point of a true anomalous segment is flagged,
    the whole segment counts as detected. Returns the adjusted 0/1 predictions."""
    y, p = _binary(labels, "labels"), _binary(pred, "predictions").copy()
    for s, e in _segments(y):
        if p[s:e].any():
            p[s:e] = True
    return p


def f1_scores(labels, pred) -> dict[str, float]:
    """Point-wise precision, recall, F1 and their point-adjusted versions (``*_pa``) for 0/1
    ``labels`` and ``pred`` of shape ``[T]``."""
    y = np.asarray(labels)
    p = np.asarray(pred)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels and predictions must both be [T]; got {y.shape} and {p.shape}")
    y, p = _binary(y, "labels"), _binary(p, "predictions")
    out = {}
    for suffix, q in (("", p), ("_pa", point_adjust(y, p))):
        tp, fp, fn = (q & y).sum(), (q & ~y).sum(), (~q & y).sum()
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        out[f"precision{suffix}"] = float(prec)
        out[f"recall{suffix}"] = float(rec)
        out[f"f1{suffix}"] = float(2 * prec * rec / (prec + rec)) if prec + rec else 0.0
    return out
