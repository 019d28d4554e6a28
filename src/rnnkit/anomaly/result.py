"""What a detector returns: :class:`Detection`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Detection"]


@dataclass
class Detection:
    """Per step ``[T]``: raw ``scores``, ``smoothed`` scores, the ``threshold`` used and the
    0/1 ``flags``. Steps before the first full window score 0 and are never flagged
    (``method="window"`` scores every step). ``extra["window_scores"]`` (``"window"`` only,
    ``[T]``): the score :math:`w_k` of each window at its last step ``k + W - 1``, 0 before
    step ``W - 1`` — what :meth:`~rnnkit.anomaly.detector.AnomalyDetector.update` streams."""

    scores: np.ndarray
    smoothed: np.ndarray
    threshold: float
    flags: np.ndarray
    extra: dict = field(default_factory=dict)
