"""Pictures of a detection: :func:`plot_anomalies`."""

from __future__ import annotations

import numpy as np

from .result import Detection
from .thresholds import flagged_runs

__all__ = ["plot_anomalies"]


def plot_anomalies(values, detection: Detection, labels=None, path: str = "anomalies.png",
                   title: str = "") -> str:
    """PNG: the series with true anomalies shaded red and detected steps marked, and below it
    the smoothed score with its threshold. Returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = np.asarray(values, dtype=float).reshape(len(detection.flags), -1)
    t = np.arange(len(y))
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(12, 5), sharex=True,
                                 gridspec_kw={"height_ratios": [2, 1]})
    ax.plot(t, y, lw=0.8, color="tab:blue", label="series")
    if labels is not None:
        for i, (s, e) in enumerate(flagged_runs(np.asarray(labels).astype(bool))):
            ax.axvspan(s - 0.5, e - 0.5, color="red", alpha=0.25,
                       label="true anomaly" if i == 0 else None)
    hit = np.nonzero(detection.flags)[0]
    ax.scatter(hit, y[hit, 0], color="black", marker="x", s=30, zorder=3, label="detected")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title)
    bx.plot(t, detection.smoothed, lw=0.8, color="tab:green", label="score")
    bx.axhline(detection.threshold, color="tab:red", ls="--", lw=0.8, label="threshold")
    bx.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
