r"""Several anomaly detectors side by side: a step is flagged when any of them flags it.

Point anomalies (a spike) and collective anomalies (an abnormal beat whose samples all stay in
the normal range) need different scores: one-step forecast errors see the first and miss the
second, whole-window reconstruction errors the reverse (:mod:`rnnkit.anomaly.scorers`). When
it is not known which kind to expect, :class:`AnomalyUnion` runs one detector per scale. Each
member keeps its own non-parametric threshold and pruning, which flag nothing when no error
stands out from that member's own errors, so a member adds its detections without adding the
noise of its scores to the others'.

The union's score puts the members on one scale, each smoothed score in units of that
member's threshold :math:`\epsilon_i`,

.. math:: s_t = \max_i \, e^s_{i,t} / \epsilon_i ,

so :math:`s_t > 1` where some member's threshold is crossed (its pruning may still drop the
step); the union's flags are the OR of the members' flags.

>>> import numpy as np
>>> y = np.sin(np.arange(400) * 2 * np.pi / 20); y[300] += 4.0
>>> u = AnomalyUnion.of_methods(("forecast", "window"), input_len=20, hidden_size=8,
...                             max_steps=20)
>>> res = u.fit(y[:250]).detect(y)
>>> bool(res.flags[300:303].any()), sorted(res.extra["members"])
(True, ['forecast', 'window'])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..saving import Savable
from .config import AnomalyConfig
from .detector import AnomalyDetector
from .result import Detection

__all__ = ["AnomalyUnion"]


class AnomalyUnion(Savable):
    """Run ``detectors`` (unfitted or fitted :class:`AnomalyDetector` s) together; same
    ``fit`` / ``detect`` / ``update`` / ``save`` interface as one detector.

    ``detect`` returns a :class:`~rnnkit.anomaly.result.Detection` whose ``scores`` and
    ``smoothed`` are :math:`\\max_i e_{i,t} / \\epsilon_i` (module docstring), ``threshold`` 1,
    ``flags`` the OR of the members' flags, and ``extra["members"]`` the members'
    own detections by name (their ``method``; ``method#2`` ... for repeats).
    """

    def __init__(self, detectors: Sequence[AnomalyDetector]) -> None:
        detectors = list(detectors)
        if not detectors or not all(isinstance(d, AnomalyDetector) for d in detectors):
            raise ValueError("AnomalyUnion needs a non-empty list of AnomalyDetector objects, "
                             f"got {detectors!r}")
        self.detectors = detectors
        self.names: list[str] = []
        for d in detectors:
            name, k = d.config.method, 2
            while name in self.names:
                name, k = f"{d.config.method}#{k}", k + 1
            self.names.append(name)

    @classmethod
    def of_methods(cls, methods: Sequence[str] = ("forecast", "window"),
                   config: AnomalyConfig | None = None, **overrides: Any) -> AnomalyUnion:
        """One detector per method, each with ``config`` plus ``overrides`` (a ``pool``
        applies to the ``"window"`` member only)."""
        base = dataclasses.asdict(config or AnomalyConfig())
        base.update(overrides)
        pool = base.pop("pool", 1)
        return cls([AnomalyDetector(AnomalyConfig(**{**base, "method": m,
                                                     "pool": pool if m == "window" else 1}))
                    for m in methods])

    def fit(self, data, **data_kw: Any) -> AnomalyUnion:
        """Fit every member on ``data`` (see :meth:`AnomalyDetector.fit`)."""
        for d in self.detectors:
            d.fit(data, **data_kw)
        return self

    def detect(self, data, **data_kw: Any) -> Detection:
        """Every member's detection, and their union (class docstring)."""
        dets = [d.detect(data, **data_kw) for d in self.detectors]
        scaled = np.stack([_in_threshold_units(det.smoothed, det.threshold) for det in dets])
        score = scaled.max(axis=0)
        flags = np.stack([det.flags for det in dets]).max(axis=0).astype(np.int8)
        return Detection(score, score.copy(), 1.0, flags,
                         {"members": dict(zip(self.names, dets))})

    def reset_stream(self) -> None:
        for d in self.detectors:
            d.reset_stream()

    def update(self, x) -> tuple[float, bool]:
        """Feed one new step to every member; returns :math:`\\max_i e^s_i / \\epsilon_i` over
        the members that have a streaming threshold yet (0 before) and whether any member
        flags the step."""
        score, flagged = 0.0, False
        for d in self.detectors:
            e, f = d.update(x)
            flagged |= f
            if d.stream_threshold is not None:
                score = max(score, float(_in_threshold_units(np.array(e), d.stream_threshold)))
        return score, flagged

    #: version 2: the members are version 2 detector states (version 1 members still load)
    KIND, VERSION = "rnnkit.anomaly_union", 2


    def state(self) -> dict:
        """Every member's :meth:`AnomalyDetector.state`."""
        return {"members": [d.state() for d in self.detectors]}

    @classmethod
    def from_state(cls, blob: dict) -> AnomalyUnion:
        """The union :meth:`state` describes."""
        return cls([AnomalyDetector.from_state(b) for b in blob["members"]])



def _in_threshold_units(scores: np.ndarray, threshold: float) -> np.ndarray:
    """``scores / threshold``; a zero threshold (all errors equal) makes any positive score
    infinitely far above it."""
    if threshold > 0:
        return scores / threshold
    return np.where(scores > 0, np.inf, 0.0)
