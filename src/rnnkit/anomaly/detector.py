r"""Time-series anomaly detection with recurrent models, batch and streaming.

One detector, :class:`AnomalyDetector`, with one interface (``fit`` on normal-ish data,
``detect`` a series, ``update`` one new step at a time) around a scorer picked by
``AnomalyConfig(method=...)`` (:mod:`rnnkit.anomaly.scorers`: one-step forecast errors,
one-step reconstruction errors, or whole-window scores). Whatever the scorer, the errors are
smoothed by an exponentially weighted mean :math:`e^s_t`, thresholded by telemanom's
non-parametric dynamic threshold and pruned (Hundman et al., KDD 2018, *Detecting Spacecraft
Anomalies Using LSTMs and Nonparametric Dynamic Thresholding*;
:mod:`rnnkit.anomaly.thresholds`).

>>> import numpy as np
>>> y = np.sin(np.arange(400) * 0.3); y[300] += 4.0
>>> det = AnomalyDetector(AnomalyConfig(input_len=16, hidden_size=8, max_steps=20))
>>> res = det.fit(y[:250]).detect(y)
>>> bool(res.flags[300:303].any()), res.flags.shape
(True, (400,))
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.timeseries import SeriesScaler, WindowDataset, as_series
from ..saving import Savable
from ..train.budget import fit_steps
from .config import AnomalyConfig
from .result import Detection
from .scorers import Scorer, scorer_class
from .thresholds import dynamic_threshold, ewm, prune_anomalies

__all__ = ["AnomalyDetector"]


class AnomalyDetector(Savable):
    """RNN anomaly detector (see :mod:`rnnkit.anomaly.scorers` for the methods).

    ``fit(data)`` trains on (mostly normal) data; ``detect(data)`` scores a whole series and
    thresholds it; ``update(x)`` is the streaming form: one new step ``[C]`` (or a scalar) in,
    ``(score, flagged)`` out, with the threshold recomputed over the last
    ``threshold_window`` smoothed errors.
    """

    def __init__(self, config: AnomalyConfig | None = None, **overrides: Any) -> None:
        cfg = config or AnomalyConfig()
        self.config = AnomalyConfig(**{**asdict(cfg), **overrides})
        self.scorer: Scorer = scorer_class(self.config.method)(self.config)
        self.net: nn.Module | None = None
        self.scaler: SeriesScaler | None = None
        self.n_features = 0
        self.reset_stream()

    # -- training -------------------------------------------------------------------------------
    def _values(self, data, **kw) -> np.ndarray:
        s = as_series(data, **kw)
        if len(s) != 1:
            raise ValueError(f"expected one series, got {len(s)}; detect them one at a time")
        return s[0].target

    def fit(self, data, **data_kw: Any) -> AnomalyDetector:
        """Train on ``data`` (array ``[T]`` / ``[T, C]``, DataFrame with ``time=`` and
        ``target=``) for ``config.train``; scaling statistics come from it too."""
        c = self.config
        y = self._values(data, **data_kw)
        need = c.input_len + 1 + 8
        if len(y) < need:
            raise ValueError(f"{len(y)} training steps are too few for input_len={c.input_len}; "
                             f"give at least {need} or lower input_len")
        self.n_features = y.shape[1]
        self.scaler = SeriesScaler().fit([y])
        z = self.scaler.transform(0, y)
        torch.manual_seed(c.train.seed)
        self.net = self.scorer.build(self.n_features)
        ds = WindowDataset([z], c.input_len, 1)   # the autoencoders use x only: W-step windows
        fit_steps(self.net, ds, None, c.train, c.batch_size)
        self.net.eval()
        self.reset_stream()
        return self

    def _check_fitted(self) -> None:
        if self.net is None:
            raise RuntimeError("the detector is not fitted; call fit(...) first")

    # -- batch scoring ----------------------------------------------------------------------------
    def score(self, data, **data_kw: Any) -> np.ndarray:
        """Per-step errors ``[T]`` (0 before the first full window).

        Outliers are kept out of the model's *input* (one-step methods): going forward in
        time, a step whose error exceeds ``mean + clean_z * std`` of the first-pass errors is
        replaced by its prediction in the input, and the steps whose windows contain it are
        re-predicted, so one outlier does not also spoil the forecasts after it (each step is
        still scored against its observed value). ``clean_z=0`` turns this off.
        ``method="window"``: the mean score of the windows containing each step (no
        cleaning)."""
        return self._scores(data, **data_kw)[0]

    def _scores(self, data, **data_kw: Any) -> tuple[np.ndarray, dict]:
        """``score`` plus ``extra`` for :class:`~rnnkit.anomaly.result.Detection`."""
        self._check_fitted()
        c = self.config
        y = self._values(data, **data_kw)
        if y.shape[1] != self.n_features:
            raise ValueError(f"the series has {y.shape[1]} columns, the detector was fitted "
                             f"on {self.n_features}")
        if len(y) <= c.input_len + 1:
            raise ValueError(f"the series has {len(y)} steps; scoring needs more than "
                             f"input_len + 1 = {c.input_len + 1}")
        z = torch.tensor(self.scaler.transform(0, y), dtype=torch.float32)
        return self.scorer.scores(self.net, z)

    def detect(self, data, **data_kw: Any) -> Detection:
        """Score, smooth, threshold and prune a whole series."""
        c, s = self.config, self.scorer
        raw, extra = self._scores(data, **data_kw)
        W, span = s.start, s.span                  # first thresholded step, steps per score
        sm = np.zeros_like(raw)
        sm[W:] = ewm(raw[W:], c.smoothing)
        eps = dynamic_threshold(sm[W:], c.z_range, span)
        flags = np.zeros(len(raw), dtype=bool)
        flags[W:] = sm[W:] > eps
        flags[W:] = prune_anomalies(sm[W:], flags[W:], c.prune, 0 if span == 1 else span)
        return Detection(raw, sm, eps, flags.astype(np.int8), extra)

    # -- streaming --------------------------------------------------------------------------------
    def reset_stream(self) -> None:
        """Forget the streaming buffers (start a new stream)."""
        self._buf: deque = deque(maxlen=self.config.input_len)
        self._errs: deque = deque(maxlen=self.config.threshold_window)
        self._acc: float | None = None
        self.stream_threshold: float | None = None

    def update(self, x) -> tuple[float, bool]:
        """Feed one new step ``x`` (scalar or ``[C]``); returns its smoothed error and whether
        it is flagged (the threshold it was compared with is ``stream_threshold``; ``None``
        while there are too few errors for one). The first ``input_len`` steps only fill the
        buffer (score 0, not flagged). ``method="window"``: the score is :math:`w_k` of the
        window that ``x`` completes (the newest ``W`` steps;
        ``Detection.extra["window_scores"]`` in batch), so a flag says "the last ``W`` steps
        hold an anomaly"; the autoencoders start scoring one step earlier, at step ``W - 1``."""
        self._check_fitted()
        c = self.config
        v = np.asarray(x, dtype=np.float64).reshape(-1)
        if v.shape != (self.n_features,) or not np.isfinite(v).all():
            raise ValueError(f"update expects {self.n_features} finite value(s), got {x!r}")
        z = torch.tensor(self.scaler.transform(0, v[None]), dtype=torch.float32)  # [1, C]
        err = self.scorer.step(self.net, self._buf, z[0])
        if err is None:
            return 0.0, False
        a = 2.0 / (c.smoothing + 1) if c.smoothing > 1 else 1.0
        self._acc = err if self._acc is None else a * err + (1 - a) * self._acc
        self._errs.append(self._acc)
        if len(self._errs) < 2 * c.input_len:   # too few errors for a threshold yet
            return self._acc, False
        self.stream_threshold = dynamic_threshold(np.asarray(self._errs), c.z_range,
                                                  self.scorer.span)
        return self._acc, bool(self._acc > self.stream_threshold)

    # -- persistence ------------------------------------------------------------------------------
    #: version 2: ``config`` holds training in its ``train`` table (version 1: flat keys)
    KIND, VERSION = "rnnkit.anomaly", 2


    def state(self) -> dict:
        """Everything :meth:`load` needs, as tensors and plain Python values."""
        self._check_fitted()
        return {"config": asdict(self.config),
                "n_features": self.n_features, "scaler": self.scaler.state_dict(),
                "state_dict": self.net.state_dict()}


    @classmethod
    def from_state(cls, blob: dict) -> AnomalyDetector:
        """The detector :meth:`state` describes (version 1's flat training keys, e.g.
        ``max_steps``, go to ``config.train``)."""
        self = cls(AnomalyConfig(**dict(blob["config"])))
        self.n_features = int(blob["n_features"])
        self.scaler = SeriesScaler.from_state_dict(blob["scaler"])
        self.net = self.scorer.build(self.n_features)
        self.net.load_state_dict(blob["state_dict"])
        self.net.eval()
        return self
