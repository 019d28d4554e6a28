"""Series classification: readers for UCR/UEA files (:mod:`.files`), FCN / LSTM-FCN /
GRU-FCN networks (:mod:`.fcn`) and the user-facing :class:`~.classifier.SeriesClassifier`.

The names below load on first use, so importing this package imports no torch.
"""

from __future__ import annotations

from .._lazy import lazy_names

_NAMES = {"SeriesData": "files", "read_series_file": "files", "is_series_file": "files",
          "FCN": "fcn", "SeriesClassifier": "classifier",
          "SeriesClassifierConfig": "config"}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_names(__name__, _NAMES, ())
