r"""Detection scores: precision, recall, F1 and their point-adjusted versions (Xu et al.,
2018), for 0/1 labels and predictions of shape ``[T]``.

>>> import numpy as np
>>> f1_scores(np.array([0, 1, 1, 1, 0]), np.array([0, 0, 1, 0, 0]))["f1_pa"]
1.0
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_binary", "f1_scores", "point_adjust"]

def _segments(labels: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of ones."""
    padded = np.concatenate([[0], labels.astype(np.int8), [0]])
    d = np.diff(padded)
    return list(zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]))


def as_binary(values, what: str) -> np.ndarray:
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
    y, p = as_binary(labels, "labels"), as_binary(pred, "predictions").copy()
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
    y, p = as_binary(y, "labels"), as_binary(p, "predictions")
    out = {}
    for suffix, q in (("", p), ("_pa", point_adjust(y, p))):
        tp, fp, fn = (q & y).sum(), (q & ~y).sum(), (~q & y).sum()
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        out[f"precision{suffix}"] = float(prec)
        out[f"recall{suffix}"] = float(rec)
        out[f"f1{suffix}"] = float(2 * prec * rec / (prec + rec)) if prec + rec else 0.0
    return out
