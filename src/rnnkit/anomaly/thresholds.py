r"""Thresholds and window lengths of the anomaly detectors: telemanom's non-parametric dynamic
threshold (Hundman et al., KDD 2018, §3.2) and pruning (§3.3), the exponentially weighted
smoothing of errors, and the period estimate that sizes ``method="window"``'s window.

The threshold picks :math:`\epsilon = \mu(e^s) + z\sigma(e^s)`, :math:`z \in` ``z_range``,
maximising

.. math:: \frac{\Delta\mu/\mu(e^s) + \Delta\sigma/\sigma(e^s)}{|e_a| + |E_{seq}|^2}

(:math:`\Delta\mu, \Delta\sigma`: drop in mean / std when the points above :math:`\epsilon`
are removed; :math:`e_a`: those points; :math:`E_{seq}`: their runs), and pruning drops
flagged runs whose peak error is within ``prune`` (13 %) of the next lower peak.
"""

from __future__ import annotations

import numpy as np

__all__ = ["beat_window", "dynamic_threshold", "estimate_period", "ewm", "flagged_runs",
           "pooled_window", "prune_anomalies"]


def flagged_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` of each run of true values in ``mask``."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]))


def dynamic_threshold(errors: np.ndarray, z_range=(2.0, 10.0, 0.5), unit: int = 1) -> float:
    """telemanom's non-parametric threshold (Hundman et al. 2018, §3.2) over smoothed errors
    ``[T]``; returns :math:`\\epsilon`. With no candidate above the errors' maximum the
    threshold is :math:`\\mu + z_{max}\\sigma` (nothing flagged).

    ``unit`` is the number of consecutive steps that make one independent error: the
    objective's :math:`|e_a|` counts flagged steps divided by ``unit``. ``method="window"``
    passes ``W``: its step scores are means over ``W`` overlapping windows, so a broad
    anomaly's ``W`` neighbouring steps are one observation, not ``W`` (with ``unit=1`` the
    penalty on :math:`|e_a|` keeps only the top of a broad bump).

    >>> e = np.abs(np.random.default_rng(0).normal(size=500)); e[100:103] = 12.0
    >>> eps = dynamic_threshold(e)
    >>> bool(e[100] > eps > np.sort(e)[-4])
    True
    """
    e = np.asarray(errors, dtype=np.float64)
    mu, sd = e.mean(), e.std()
    lo, hi, step = z_range
    if sd <= 0:
        return float(mu + 1e-12)
    best, best_eps = -np.inf, mu + hi * sd
    for z in np.arange(lo, hi + 1e-9, step):
        eps = mu + z * sd
        below = e[e < eps]
        above = e > eps
        n_above = int(above.sum())
        if n_above == 0 or len(below) == 0:
            continue
        d_mu = (mu - below.mean()) / mu if mu > 0 else 0.0
        d_sd = (sd - below.std()) / sd
        score = (d_mu + d_sd) / (n_above / unit + len(flagged_runs(above)) ** 2)
        if score > best:
            best, best_eps = score, eps
    return float(best_eps)


def prune_anomalies(errors: np.ndarray, flags: np.ndarray, prune: float,
                    margin: int = 0) -> np.ndarray:
    """telemanom's pruning (§3.3): sort the flagged runs' peak errors descending, append the
    largest unflagged error, and keep runs only down to the last peak that is more than
    ``prune`` (relative) above the next one. Unflagged steps within ``margin`` steps of a
    flagged run are left out of that largest unflagged error: with window scores
    (``method="window"``, ``margin=W``) they share windows with the run, so the score just
    below the threshold at a run's edge is not a sample of normal behaviour.

    >>> e = np.array([0.5, 0.5, 0.5, 0.95, 1.0, 0.95, 0.5, 0.5])
    >>> prune_anomalies(e, e > 0.97, 0.13).astype(int).tolist()   # 1.0 vs 0.95: pruned
    [0, 0, 0, 0, 0, 0, 0, 0]
    >>> prune_anomalies(e, e > 0.97, 0.13, margin=1).astype(int).tolist()   # 1.0 vs 0.5
    [0, 0, 0, 0, 1, 0, 0, 0]
    """
    flags = np.asarray(flags, dtype=bool).copy()
    runs = flagged_runs(flags)
    if not runs or prune <= 0:
        return flags
    peaks = np.array([errors[s:e].max() for s, e in runs])
    order = np.argsort(-peaks)
    near = flags.copy()
    for s, e in runs:
        near[max(0, s - margin):e + margin] = True
    rest = errors[~near]
    seq = np.append(peaks[order], rest.max() if len(rest) else 0.0)
    drops = (seq[:-1] - seq[1:]) / np.maximum(seq[:-1], 1e-12)
    keep_n = (np.nonzero(drops > prune)[0].max() + 1) if (drops > prune).any() else 0
    for r in order[keep_n:]:
        s, e = runs[r]
        flags[s:e] = False
    return flags


def ewm(e: np.ndarray, span: int) -> np.ndarray:
    """Exponentially weighted mean of ``e`` with ``span`` (1: a copy)."""
    if span <= 1:
        return e.copy()
    a, out, acc = 2.0 / (span + 1), np.empty_like(e), e[0]
    for t, v in enumerate(e):
        acc = a * v + (1 - a) * acc
        out[t] = acc
    return out


def estimate_period(values, max_period: int | None = None) -> int:
    r"""The dominant period of ``values`` (``[T]`` or ``[T, C]``, columns averaged): the first
    local peak, within 10 % of the highest, of the autocorrelation :math:`r_k = \sum_t
    \tilde y_t \tilde y_{t+k} / \sum_t \tilde y_t^2` (:math:`\tilde y`: the demeaned series)
    after :math:`r` first turns negative (so a multiple of the cycle never wins by a hair),
    searched up to ``max_period`` (default ``T // 2``). A window length for
    ``method="window"`` that spans one cycle.

    >>> t = np.arange(1000)                                 # a noisy pulse every 37 steps
    >>> y = np.exp(-(t % 37 - 5) ** 2 / 4) + np.random.default_rng(0).normal(0, 0.1, 1000)
    >>> estimate_period(y)
    37
    """
    y = np.asarray(values, dtype=np.float64)
    y = (y.reshape(len(y), -1).mean(1)) if y.ndim > 1 else y
    y = y - y.mean()
    T = len(y)
    top = min(max_period or T // 2, T - 1)
    if T < 8 or not y.any():
        raise ValueError(f"cannot estimate a period from {T} steps of a constant or too short "
                         "series; give the window length (input_len) explicitly")
    f = np.fft.rfft(y, 2 * T)
    r = np.fft.irfft(f * np.conj(f))[:T]
    r = r / r[0]
    neg = np.nonzero(r[1:top + 1] < 0)[0]
    if not len(neg):
        raise ValueError(f"no periodicity found within lags 1..{top} (the autocorrelation "
                         "never turns negative); give the window length (input_len) explicitly")
    lo = int(neg[0]) + 1
    seg = r[lo:top + 1]
    best = float(seg.max())
    # the first local peak within 10 % of the highest: with jittered cycles the peak at two
    # periods can edge out the one at one period (a harmonic, not the cycle)
    for k in range(len(seg)):
        left = seg[k - 1] if k else -np.inf
        right = seg[k + 1] if k + 1 < len(seg) else -np.inf
        if seg[k] >= left and seg[k] >= right and seg[k] >= 0.9 * best:
            return lo + k
    return lo + int(np.argmax(seg))  # pragma: no cover - the maximum is always a peak


def beat_window(values, model_steps: int = 50) -> tuple[int, int]:
    """``(input_len, pool)`` for ``method="window"`` from unlabelled data: one period of
    ``values`` (:func:`estimate_period`), pooled so that the model sees about
    ``model_steps`` steps, rounded to a multiple of the pool.

    >>> t = np.arange(3000)
    >>> beat_window(np.exp(-(t % 301 - 40) ** 2 / 30.0))
    (300, 6)
    """
    return pooled_window(estimate_period(values), model_steps=model_steps)


def pooled_window(length: int, pool: int | None = None,
                  model_steps: int = 50) -> tuple[int, int]:
    """``(input_len, pool)`` of a ``method="window"`` detector whose window should cover about
    ``length`` steps: ``pool`` (default: so the model sees about ``model_steps`` steps) and
    ``length`` rounded to a multiple of it, at least 2 pooled steps.

    >>> pooled_window(300), pooled_window(100, pool=3), pooled_window(20)
    ((300, 6), (99, 3), (20, 1))
    """
    if pool is None:
        pool = max(1, round(length / model_steps))
    return max(2, round(length / pool)) * pool, pool
