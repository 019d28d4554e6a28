"""Pictures of a detection: :func:`plot_anomalies`."""

from __future__ import annotations

import numpy as np

from ..saving import atomic_write_figure
from .result import Detection
from .thresholds import flagged_runs

__all__ = ["plot_anomalies"]


def plot_anomalies(values, detection: Detection, labels=None, path: str = "anomalies.png",
                   title: str = "", time=None) -> str:
    """PNG: the series ``values`` ``[T]`` (or ``[T, C]``) with true anomalies (``labels``
    ``[T]``, 0/1) shaded red and detected steps marked, and below it the smoothed score with
    its threshold. The x-axis is ``time`` ``[T]`` (datetimes or numbers, e.g. the CSV's time
    column), else the row number. The PNG is written atomically to exactly ``path`` (a failed
    write leaves no file). Returns ``path``."""
    atomic_write_figure(_figure(values, detection, labels, title, time), path)
    return path


def _figure(values, detection: Detection, labels, title: str, time):
    """The matplotlib figure of :func:`plot_anomalies`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = np.asarray(values, dtype=float).reshape(len(detection.flags), -1)
    t = np.arange(len(y)) if time is None else np.asarray(time)
    if len(t) != len(y):
        raise ValueError(f"time has {len(t)} steps but the series {len(y)}; give one time "
                         f"stamp per row")
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(12, 5), sharex=True,
                                 gridspec_kw={"height_ratios": [2, 1]})
    ax.plot(t, y, lw=0.8, color="tab:blue", label="series")
    if labels is not None:
        for i, (s, e) in enumerate(flagged_runs(np.asarray(labels).astype(bool))):
            # from half a step before the run's first row to half a step after its last
            lo = t[s] - (t[s + 1] - t[s]) / 2 if s + 1 < len(t) else t[s]
            hi = t[e - 1] + (t[e - 1] - t[e - 2]) / 2 if e >= 2 else t[e - 1]
            ax.axvspan(lo, hi, color="red", alpha=0.25,
                       label="true anomaly" if i == 0 else None)
    hit = np.nonzero(detection.flags)[0]
    ax.scatter(t[hit], y[hit, 0], color="black", marker="x", s=30, zorder=3, label="detected")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title)
    bx.plot(t, detection.smoothed, lw=0.8, color="tab:green", label="score")
    bx.axhline(detection.threshold, color="tab:red", ls="--", lw=0.8, label="threshold")
    bx.legend(loc="upper left", fontsize=8)
    if np.issubdtype(t.dtype, np.datetime64):
        fig.autofmt_xdate()
    fig.tight_layout()
    return fig
