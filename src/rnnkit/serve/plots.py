"""Plots for the playground: the library's own plot functions (``plot_forecast``,
``plot_anomalies``, ``save_attention_heatmap``), which write a PNG file, drawn into a private
temporary folder and returned as a ``data:image/png;base64,...`` URI that a JSON response can
carry and an ``<img>`` can show. Nothing is left on disk.

matplotlib's pyplot is not thread-safe, so drawings run one at a time (the server answers
requests from a thread pool).
"""

from __future__ import annotations

import base64
import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["png_data_uri"]

_LOCK = threading.Lock()


def png_data_uri(draw: Callable[[str], Any]) -> str:
    """Call ``draw(path)`` (a function that writes a PNG to ``path``) in a temporary folder and
    return the PNG as a data URI.

    >>> uri = png_data_uri(lambda path: open(path, "wb").write(b"\\x89PNG\\r\\n"))
    >>> uri
    'data:image/png;base64,iVBORw0K'
    """
    with _LOCK, tempfile.TemporaryDirectory(prefix="rnnkit-serve-plot-") as folder:
        path = os.path.join(folder, "plot.png")
        draw(path)
        with open(path, "rb") as f:
            data = f.read()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
