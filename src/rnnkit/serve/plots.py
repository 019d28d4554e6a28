"""Plots for the playground: the library's own plot functions (``plot_forecast``,
``plot_anomalies``, ``save_attention_heatmap``), which write a PNG file, drawn into a private
temporary folder and returned as a ``data:image/png;base64,...`` URI that a JSON response can
carry and an ``<img>`` can show. Nothing is left on disk.

matplotlib's pyplot is not thread-safe, so drawings run one at a time (the server answers
requests from a thread pool), under :data:`rnnkit.serve.capture.STATE_LOCK`. Text in a drawing
comes from users (a text to translate, CSV column names), so it is drawn as written:
matplotlib's mathtext (``$...$``) is off while drawing, so ``"one $\\frac$ two"`` is a label,
not a parse error.

A plot of a long series is drawn from at most a few thousand of its points
(:func:`decimate`): drawing every one of 200,000 rows takes seconds and shows nothing more.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .capture import STATE_LOCK

__all__ = ["MAX_PLOT_POINTS", "decimate", "png_data_uri"]

#: about the most points a plotted series keeps (:func:`decimate`)
MAX_PLOT_POINTS = 4000


def png_data_uri(draw: Callable[[str], Any]) -> str:
    """Call ``draw(path)`` (a function that writes a PNG to ``path``) in a temporary folder and
    return the PNG as a data URI.

    >>> uri = png_data_uri(lambda path: open(path, "wb").write(b"\\x89PNG\\r\\n"))
    >>> uri
    'data:image/png;base64,iVBORw0K'
    """
    import matplotlib

    with STATE_LOCK, tempfile.TemporaryDirectory(prefix="rnnkit-serve-plot-") as folder, \
            matplotlib.rc_context({"text.parse_math": False}):
        path = os.path.join(folder, "plot.png")
        draw(path)
        with open(path, "rb") as f:
            data = f.read()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def decimate(n: int, curves: Sequence[Any], keep: Any = None,
             max_points: int = MAX_PLOT_POINTS) -> np.ndarray:
    """Row indices (sorted) that draw ``n`` rows faithfully with about ``max_points`` points:
    the rows are cut into buckets and each keeps, for every curve of ``curves`` (arrays
    ``[n]``), its lowest and highest row, so spikes stay visible; ``keep`` (a boolean mask
    ``[n]``, e.g. flagged rows) adds the first marked row of each bucket. All rows when ``n``
    is small enough.

    >>> decimate(5, [np.arange(5.0)]).tolist()
    [0, 1, 2, 3, 4]
    >>> y = np.zeros(100_000); y[54_321] = 9.0
    >>> idx = decimate(len(y), [y], max_points=1000)
    >>> len(idx) <= 1000, 54_321 in idx, int(idx[0]), int(idx[-1])
    (True, True, 0, 99999)
    """
    per_bucket = 2 * len(curves) + (keep is not None)
    buckets = max(1, max_points // max(per_bucket, 1))
    if n <= max(max_points, buckets):
        return np.arange(n)
    edges = np.linspace(0, n, buckets + 1).astype(int)
    starts = edges[:-1]
    picked = [np.array([0, n - 1])]
    for curve in curves:
        c = np.asarray(curve, dtype=float)
        c = np.where(np.isfinite(c), c, 0.0)
        picked += [starts + np.array([c[a:b].argmin() for a, b in zip(edges, edges[1:])]),
                   starts + np.array([c[a:b].argmax() for a, b in zip(edges, edges[1:])])]
    if keep is not None:
        marked = np.flatnonzero(np.asarray(keep, dtype=bool))
        if len(marked):
            picked.append(marked[np.unique(np.searchsorted(edges, marked, side="right") - 1,
                                           return_index=True)[1]])
    return np.unique(np.concatenate([np.asarray(p, dtype=np.int64) for p in picked]))
