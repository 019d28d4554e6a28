r"""What differs between the anomaly detectors: how a step is scored. A :class:`Scorer` builds
the network, scores a whole series and one streamed step, and says where thresholding
starts and how many steps make one independent score; the
:class:`~rnnkit.anomaly.detector.AnomalyDetector` around it does the rest (scaling,
training, smoothing, the dynamic threshold, pruning, streaming, saving). Scorers are
registered by name (:data:`SCORERS`, :func:`register_scorer`); ``AnomalyConfig(method=...)``
picks one.

* ``"forecast"`` (:class:`ForecastErrorScorer`) — the telemanom recipe (Hundman et al., KDD
  2018): a one-step RNN forecaster (:class:`~rnnkit.forecast.ForecastNet`, ``horizon=1``)
  gives errors :math:`e_t = \|y_t - \hat y_t\|_1 / C`.
* ``"autoencoder"`` (:class:`ReconstructionScorer`) — an LSTM autoencoder
  (:class:`~rnnkit.anomaly.networks.LSTMAutoencoder`) reconstructs each window ``[W, C]``;
  a step's error is its reconstruction error in the newest window that contains it.
* ``"window"`` (:class:`WindowScorer`) — a beat-level autoencoder for anomalies that are whole
  abnormal cycles (an ECG's premature beat): every window ``x_{k:k+W}`` (about one period,
  :func:`~rnnkit.anomaly.thresholds.estimate_period`), average-pooled by ``pool``, is
  reconstructed as a whole, the decoder also getting each output step's position
  :math:`\tau \in [-1, 1]`. The window score is :math:`w_k = \frac{1}{(W/p) C}
  \sum |\hat x - x|` and a step's score the mean over the ``W`` windows containing it,
  :math:`e_t = \operatorname{mean}\{w_k : k \le t < k + W\}`. Neighbouring step scores share
  windows, so the threshold counts flagged steps in units of ``W`` (``span``) and pruning's
  "largest normal error" is taken at least ``W`` steps away from flagged runs.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ..forecast import ForecasterConfig, ForecastNet
from .networks import LSTMAutoencoder

if TYPE_CHECKING:
    from .config import AnomalyConfig

__all__ = ["SCORERS", "ForecastErrorScorer", "ReconstructionScorer", "Scorer", "WindowScorer",
           "register_scorer", "scorer_class"]

#: method name -> its :class:`Scorer` class
SCORERS: dict[str, type[Scorer]] = {}


def register_scorer(cls: type[Scorer]) -> type[Scorer]:
    """Make ``AnomalyConfig(method=cls.name)`` use ``cls`` (a class decorator)."""
    SCORERS[cls.name] = cls
    return cls


def scorer_class(method: str) -> type[Scorer]:
    """The scorer registered as ``method``; an unknown name lists the known ones."""
    if method not in SCORERS:
        known = list(SCORERS)
        raise ValueError(f"method must be {', '.join(map(repr, known[:-1]))} or "
                         f"{known[-1]!r}, got {method!r}")
    return SCORERS[method]


class Scorer:
    """How one method scores steps, for a fitted network ``net`` on scaled inputs.

    ``name``: the ``method`` it is registered as; ``first``: the first step with a score;
    ``start``: the first step that is smoothed and thresholded; ``span``: steps per
    independent score (the threshold's unit and pruning's margin)."""

    name: ClassVar[str]

    def __init__(self, config: AnomalyConfig) -> None:
        self.config = config
        self.W = config.input_len

    @classmethod
    def check(cls, config: AnomalyConfig) -> None:
        """Raise for settings this method cannot use."""
        if config.pool != 1:
            raise ValueError(f"pool={config.pool} only applies to method='window'; leave it "
                             "at 1")

    @property
    def first(self) -> int:
        return self.W

    @property
    def start(self) -> int:
        return self.W

    @property
    def span(self) -> int:
        return 1

    def build(self, n_features: int) -> nn.Module:
        """A new (untrained) network for ``n_features`` columns."""
        raise NotImplementedError

    def scores(self, net: nn.Module, z: Tensor) -> tuple[np.ndarray, dict]:
        """Per-step errors ``[T]`` of the scaled series ``z [T, C]`` (0 before ``first``) and
        the ``extra`` of the :class:`~rnnkit.anomaly.result.Detection`."""
        raise NotImplementedError

    def step(self, net: nn.Module, buf: deque, z: Tensor) -> float | None:
        """Streaming: the error of the new scaled step ``z [C]`` given the previous steps in
        ``buf`` (a deque of ``W``; this appends ``z``), or ``None`` while it is filling."""
        raise NotImplementedError


class OneStepScorer(Scorer):
    """Errors of one step at a time, from the window ending ``offset`` steps after the step
    before it, with outliers kept out of the model's input (``clean_z``): going forward in
    time, a step whose error exceeds ``mean + clean_z * std`` of the first-pass errors is
    replaced by its prediction in the input and the steps whose windows contain it are
    re-predicted, so one outlier does not also spoil the predictions after it."""

    offset: ClassVar[int] = 0

    def predict_windows(self, net: nn.Module, win: Tensor) -> Tensor:
        """The predicted newest step ``[N, C]`` of each window ``win [N, W, C]``."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, net: nn.Module, z_in: Tensor, lo: int, hi: int) -> Tensor:
        """Predictions ``[hi-lo, C]`` of steps ``[lo, hi)`` from the inputs ``z_in [T, C]``."""
        W, off, dev = self.W, self.offset, next(net.parameters()).device
        outs = []
        for s0 in range(lo, hi, 1024):
            s1 = min(hi, s0 + 1024)
            win = z_in[s0 - W + off:s1 + off - 1].unfold(0, W, 1).permute(0, 2, 1).to(dev)
            outs.append(self.predict_windows(net, win).cpu())
        return torch.cat(outs)

    def scores(self, net: nn.Module, z: Tensor) -> tuple[np.ndarray, dict]:
        T, W, first, clean_z = len(z), self.W, self.first, self.config.clean_z
        pred = z.clone()
        pred[first:] = self.predict(net, z, first, T)
        err = (pred - z).abs().mean(-1).numpy()
        err[:first] = 0.0
        if clean_z > 0:
            e = err[first:]
            bar = e.mean() + clean_z * e.std()
            z_in, t = z.clone(), first
            while True:
                over = np.nonzero(err[t:] > bar)[0]
                if not len(over):
                    break
                t += int(over[0])
                z_in[t] = pred[t]
                hi = min(T, t + W + 1)
                if t + 1 < hi:
                    pred[t + 1:hi] = self.predict(net, z_in, t + 1, hi)
                    err[t + 1:hi] = (pred[t + 1:hi] - z[t + 1:hi]).abs().mean(-1).numpy()
                t += 1
        return err, {}


@register_scorer
class ForecastErrorScorer(OneStepScorer):
    """``"forecast"``: one-step forecast errors (module docstring)."""

    name = "forecast"

    def build(self, n_features: int) -> nn.Module:
        c = self.config
        fc = ForecasterConfig(horizon=1, input_len=c.input_len, cell=c.cell,
                              hidden_size=c.hidden_size, num_layers=c.num_layers,
                              calendar=(), point_loss="mse")
        return ForecastNet(fc, n_features)

    def predict_windows(self, net: nn.Module, win: Tensor) -> Tensor:
        fut = torch.zeros(len(win), 1, 0, device=win.device)
        return net.predict_params(win, fut)["point"][:, 0]

    @torch.no_grad()
    def step(self, net: nn.Module, buf: deque, z: Tensor) -> float | None:
        if len(buf) < self.W:
            buf.append(z)
            return None
        window = torch.stack(list(buf))[None].to(next(net.parameters()).device)  # [1, W, C]
        err = float((self.predict_windows(net, window)[0].cpu() - z).abs().mean())
        buf.append(z)
        return err


class AutoencoderScorer(Scorer):
    """The autoencoder methods: an :class:`~rnnkit.anomaly.networks.LSTMAutoencoder` whose
    streaming score comes from the window of the newest ``W`` steps."""

    position: ClassVar[bool] = False

    def build(self, n_features: int) -> nn.Module:
        c = self.config
        return LSTMAutoencoder(n_features, c.hidden_size, c.cell, c.num_layers, pool=c.pool,
                               position=self.position)

    def window_error(self, net: nn.Module, window: Tensor, z: Tensor) -> float:
        """The streamed score of the newest ``window [1, W, C]``, whose last step is ``z``."""
        raise NotImplementedError

    @torch.no_grad()
    def step(self, net: nn.Module, buf: deque, z: Tensor) -> float | None:
        buf.append(z)
        if len(buf) < self.W:
            return None
        window = torch.stack(list(buf))[None].to(next(net.parameters()).device)  # [1, W, C]
        return self.window_error(net, window, z)


@register_scorer
class ReconstructionScorer(OneStepScorer, AutoencoderScorer):
    """``"autoencoder"``: a step's error in the newest reconstructed window containing it."""

    name, offset = "autoencoder", 1

    @property
    def first(self) -> int:
        return self.W - 1

    def predict_windows(self, net: nn.Module, win: Tensor) -> Tensor:
        return net(win)[:, -1]

    def window_error(self, net: nn.Module, window: Tensor, z: Tensor) -> float:
        return float((net(window)[0, -1].cpu() - z).abs().mean())


@register_scorer
class WindowScorer(AutoencoderScorer):
    """``"window"``: whole-window (beat-level) reconstruction scores (module docstring)."""

    name, position = "window", True

    @classmethod
    def check(cls, config: AnomalyConfig) -> None:
        W, p = config.input_len, config.pool
        if W % p or W // p < 2:
            raise ValueError(f"input_len={W} must be a multiple of pool={p} giving at least 2 "
                             f"pooled steps; round input_len to {max(2, round(W / p)) * p}")

    @property
    def first(self) -> int:
        return 0

    @property
    def start(self) -> int:
        return 0

    @property
    def span(self) -> int:
        return self.W

    @torch.no_grad()
    def window_scores(self, net: nn.Module, z: Tensor) -> np.ndarray:
        """:math:`w_k` of every window ``z[k:k+W]``, ``[T - W + 1]``."""
        W, dev = self.W, next(net.parameters()).device
        n, outs = len(z) - W + 1, []
        for k0 in range(0, n, 1024):
            k1 = min(n, k0 + 1024)
            win = z[k0:k1 + W - 1].unfold(0, W, 1).permute(0, 2, 1).to(dev)    # [k1-k0, W, C]
            outs.append((net(win) - net.target(win)).abs().mean((1, 2)).cpu())
        return torch.cat(outs).numpy().astype(np.float64)

    def scores(self, net: nn.Module, z: Tensor) -> tuple[np.ndarray, dict]:
        T, W = len(z), self.W
        w = self.window_scores(net, z)                                          # [T - W + 1]
        # step t lies in windows k = max(0, t-W+1) .. min(T-W, t): their mean, by cumsum
        cs = np.concatenate([[0.0], np.cumsum(w)])
        t = np.arange(T)
        a, b = np.maximum(0, t - W + 1), np.minimum(T - W, t)
        ends = np.zeros(T)
        ends[W - 1:] = w
        return (cs[b + 1] - cs[a]) / (b - a + 1), {"window_scores": ends}

    def window_error(self, net: nn.Module, window: Tensor, z: Tensor) -> float:
        return float((net(window) - net.target(window)).abs().mean())
