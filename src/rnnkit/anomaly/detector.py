r"""Time-series anomaly detection with recurrent models, batch and streaming.

Three detectors share one interface (``fit`` on normal-ish data, ``detect`` a series, ``update``
one new step at a time):

* ``method="forecast"`` — the telemanom recipe (Hundman et al., KDD 2018, *Detecting Spacecraft
  Anomalies Using LSTMs and Nonparametric Dynamic Thresholding*): a one-step RNN forecaster
  (:class:`~rnnkit.forecast.forecaster.ForecastNet`, ``horizon=1``) gives errors
  :math:`e_t = \|y_t - \hat y_t\|_1 / C`, smoothed by an exponentially weighted mean
  :math:`e^s_t`; then the non-parametric threshold of §3.2 picks
  :math:`\epsilon = \mu(e^s) + z\sigma(e^s)`, :math:`z \in` ``z_range``, maximising

  .. math:: \frac{\Delta\mu/\mu(e^s) + \Delta\sigma/\sigma(e^s)}{|e_a| + |E_{seq}|^2}

  (:math:`\Delta\mu, \Delta\sigma`: drop in mean / std when the points above
  :math:`\epsilon` are removed; :math:`e_a`: those points; :math:`E_{seq}`: their runs),
  and §3.3's pruning drops flagged runs whose peak error is within ``prune`` (13 %) of the
  next lower peak.
* ``method="autoencoder"`` — an LSTM autoencoder: an encoder :class:`~rnnkit.Recurrent`
  reads a window ``[B, W, C]``, its last state is repeated ``W`` times into a decoder
  :class:`~rnnkit.Recurrent` and a linear read-out reconstructs the window; a step's error
  is its reconstruction error in the newest window that contains it. The same smoothing and
  threshold apply.
* ``method="window"`` — a beat-level (windowed) autoencoder for signals whose anomalies are
  whole abnormal cycles rather than single odd steps (an ECG's premature beat, a missing
  T wave): every window ``x_{k:k+W}`` of ``W = input_len`` steps (about one period, see
  :func:`estimate_period`), average-pooled by ``pool`` to ``W/p`` steps, is encoded and
  reconstructed as a whole; the decoder also gets the position
  :math:`\tau \in [-1, 1]` of each output step, so it need not count steps itself. The
  window score is the mean reconstruction error :math:`w_k = \frac{1}{(W/p) C}
  \sum |\hat x - x|` and a step's score is the mean over the ``W`` windows that contain it,
  :math:`e_t = \operatorname{mean}\{w_k : k \le t < k + W\}`; the same smoothing,
  threshold and pruning apply, except that neighbouring step scores share windows: the
  threshold counts flagged steps in units of ``W`` and pruning's "largest normal error" is
  taken at least ``W`` steps away from flagged runs. One-step errors cannot see such
  anomalies: each of their steps is locally plausible and the ordinary beats' sharp QRS
  complexes dominate the per-step errors.

:class:`RollingZScore` is the simple baseline: :math:`|y_t - \bar y_{t-w:t}| / s_{t-w:t} > z`.

>>> import numpy as np
>>> y = np.sin(np.arange(400) * 0.3); y[300] += 4.0
>>> det = AnomalyDetector(AnomalyConfig(input_len=16, hidden_size=8, max_steps=20))
>>> res = det.fit(y[:250]).detect(y)
>>> bool(res.flags[300:303].any()), res.flags.shape
(True, (400,))
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data.timeseries import SeriesScaler, WindowDataset, as_series
from ..forecast.forecaster import ForecasterConfig, ForecastNet
from ..recurrent import Recurrent
from ..saving import read_state, save
from ..train.protocol import LossOutput

__all__ = [
    "AnomalyConfig",
    "AnomalyDetector",
    "Detection",
    "LSTMAutoencoder",
    "RollingZScore",
    "beat_window",
    "dynamic_threshold",
    "estimate_period",
    "plot_anomalies",
    "pooled_window",
    "prune_anomalies",
]


@dataclass
class AnomalyConfig:
    """Settings of :class:`AnomalyDetector`.

    ``method`` ("forecast" | "autoencoder" | "window"), ``cell``, ``hidden_size``,
    ``num_layers``, ``input_len`` (past steps seen by the forecaster / autoencoder window
    length ``W``), ``pool`` ("window" only: average-pool factor ``p``; the model sees
    ``W / p`` steps, ``W`` must be a multiple of ``p``),
    training (``max_steps``, ``batch_size``, ``lr``, ``seed``, ``device``), ``smoothing``
    (span of the exponentially weighted mean of the errors; 1 = none), ``z_range``
    (``(low, high, step)`` of the threshold search), ``prune`` (minimum relative drop between
    successive peak errors to keep a flagged run; 0 = no pruning), ``threshold_window``
    (errors the streaming threshold is computed over), ``clean_z`` (steps with errors above
    ``mean + clean_z * std`` are replaced by their predictions in the model input; 0 = off).
    """

    method: str = "forecast"
    cell: str = "lstm"
    hidden_size: int = 32
    num_layers: int = 1
    input_len: int = 32
    max_steps: int = 500
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    device: str = "cpu"
    smoothing: int = 1
    z_range: tuple[float, float, float] = (2.0, 10.0, 0.5)
    prune: float = 0.13
    threshold_window: int = 1000
    clean_z: float = 3.0
    pool: int = 1

    def __post_init__(self) -> None:
        if self.method not in ("forecast", "autoencoder", "window"):
            raise ValueError("method must be 'forecast', 'autoencoder' or 'window', got "
                             f"{self.method!r}")
        for name in ("hidden_size", "num_layers", "input_len", "max_steps", "batch_size",
                     "smoothing", "threshold_window", "pool"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.z_range = tuple(float(z) for z in self.z_range)
        if len(self.z_range) != 3 or self.z_range[2] <= 0 or self.z_range[0] > self.z_range[1]:
            raise ValueError(f"z_range must be (low, high, step>0), got {self.z_range}")
        if self.method == "window" and (self.input_len % self.pool
                                        or self.input_len // self.pool < 2):
            raise ValueError(f"input_len={self.input_len} must be a multiple of pool="
                             f"{self.pool} giving at least 2 pooled steps; round input_len to "
                             f"{max(2, round(self.input_len / self.pool)) * self.pool}")
        if self.method != "window" and self.pool != 1:
            raise ValueError(f"pool={self.pool} only applies to method='window'; leave it at 1")


# -- thresholding ------------------------------------------------------------------------------

def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
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
        score = (d_mu + d_sd) / (n_above / unit + len(_runs(above)) ** 2)
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
    runs = _runs(flags)
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


def _ewm(e: np.ndarray, span: int) -> np.ndarray:
    if span <= 1:
        return e.copy()
    a, out, acc = 2.0 / (span + 1), np.empty_like(e), e[0]
    for t, v in enumerate(e):
        acc = a * v + (1 - a) * acc
        out[t] = acc
    return out


def estimate_period(values, max_period: int | None = None) -> int:
    r"""The dominant period of ``values`` (``[T]`` or ``[T, C]``, columns averaged): the lag of
    the highest autocorrelation :math:`r_k = \sum_t \tilde y_t \tilde y_{t+k} /
    \sum_t \tilde y_t^2` (:math:`\tilde y`: the demeaned series) after :math:`r` first
    turns negative, searched up to ``max_period`` (default ``T // 2``). A window length for
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
    return lo + int(np.argmax(r[lo:top + 1]))


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


# -- the autoencoder ----------------------------------------------------------------------------

class LSTMAutoencoder(nn.Module):
    r"""Sequence autoencoder: ``x [B, W, C]`` → average-pooled by ``pool`` to
    ``u [B, W/p, C]`` → encoder final output ``[B, H]`` repeated ``W/p`` times (with
    ``position``: and a last input column :math:`\tau` running from -1 to 1) → decoder
    ``[B, W/p, H]`` → linear ``[B, W/p, C]``, the reconstruction of ``u`` (:meth:`target`).
    A task model (``loss`` = MSE). ``pool=1, position=False`` is the plain recipe."""

    def __init__(self, n_features: int, hidden_size: int = 32, cell: str = "lstm",
                 num_layers: int = 1, pool: int = 1, position: bool = False) -> None:
        super().__init__()
        self.pool, self.position = pool, position
        self.encoder = Recurrent(cell, n_features, hidden_size, num_layers=num_layers)
        self.decoder = Recurrent(cell, hidden_size + int(position), hidden_size,
                                 num_layers=num_layers)
        self.out = nn.Linear(hidden_size, n_features)

    def target(self, x: Tensor) -> Tensor:
        """``x [B, W, C]`` average-pooled to ``[B, W/p, C]`` (what :meth:`forward` rebuilds)."""
        if self.pool == 1:
            return x
        B, W, C = x.shape
        return x.reshape(B, W // self.pool, self.pool, C).mean(2)

    def forward(self, x: Tensor) -> Tensor:
        u = self.target(x)                                       # [B, W/p, C]
        enc, _ = self.encoder(u)                                 # [B, W/p, H]
        z = enc[:, -1:].expand(-1, u.shape[1], -1)               # [B, W/p, H]
        if self.position:
            tau = torch.linspace(-1.0, 1.0, u.shape[1], device=u.device, dtype=u.dtype)
            z = torch.cat([z, tau.view(1, -1, 1).expand(u.shape[0], -1, 1)], -1)
        dec, _ = self.decoder(z)
        return self.out(dec)                                     # [B, W/p, C]

    def loss(self, batch: dict[str, Tensor], state: Any = None) -> LossOutput:
        x = batch["x"]
        loss = torch.mean((self(x) - self.target(x)) ** 2)
        return LossOutput(loss, None, {}, weight=int(x.shape[0]))


# -- the detector --------------------------------------------------------------------------------

@dataclass
class Detection:
    """Per step ``[T]``: raw ``scores``, ``smoothed`` scores, the ``threshold`` used and the
    0/1 ``flags``. Steps before the first full window score 0 and are never flagged
    (``method="window"`` scores every step). ``extra["window_scores"]`` (``"window"`` only,
    ``[T]``): the score :math:`w_k` of each window at its last step ``k + W - 1``, 0 before
    step ``W - 1`` — what :meth:`AnomalyDetector.update` streams."""

    scores: np.ndarray
    smoothed: np.ndarray
    threshold: float
    flags: np.ndarray
    extra: dict = field(default_factory=dict)


class AnomalyDetector:
    """RNN anomaly detector (see the module docstring for the three methods).

    ``fit(data)`` trains on (mostly normal) data; ``detect(data)`` scores a whole series and
    thresholds it; ``update(x)`` is the streaming form: one new step ``[C]`` (or a scalar) in,
    ``(score, flagged)`` out, with the threshold recomputed over the last
    ``threshold_window`` smoothed errors.
    """

    def __init__(self, config: AnomalyConfig | None = None, **overrides: Any) -> None:
        cfg = config or AnomalyConfig()
        self.config = AnomalyConfig(**{**asdict(cfg), **overrides})
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
        ``target=``); scaling statistics come from it too."""
        from torch.utils.data import DataLoader

        from ..train import TrainConfig, Trainer

        c = self.config
        y = self._values(data, **data_kw)
        need = c.input_len + 1 + 8
        if len(y) < need:
            raise ValueError(f"{len(y)} training steps are too few for input_len={c.input_len}; "
                             f"give at least {need} or lower input_len")
        self.n_features = y.shape[1]
        self.scaler = SeriesScaler().fit([y])
        z = self.scaler.transform(0, y)
        torch.manual_seed(c.seed)
        self.net = self._build_net()
        ds = WindowDataset([z], c.input_len, 1)   # the autoencoders use x only: W-step windows
        g = torch.Generator().manual_seed(c.seed)
        dl = DataLoader(ds, batch_size=c.batch_size, shuffle=True, generator=g)
        tc = TrainConfig(max_steps=c.max_steps, epochs=10**6, lr=c.lr, scheduler="cosine",
                         warmup_steps=min(50, c.max_steps // 10), seed=c.seed, progress=False,
                         device=c.device, log_every=c.max_steps)
        Trainer(self.net, tc, dl).fit()
        self.net.eval()
        self.reset_stream()
        return self

    def _build_net(self) -> nn.Module:
        c = self.config
        if c.method == "forecast":
            fc = ForecasterConfig(horizon=1, input_len=c.input_len, cell=c.cell,
                                  hidden_size=c.hidden_size, num_layers=c.num_layers,
                                  calendar=(), point_loss="mse")
            return ForecastNet(fc, self.n_features)
        return LSTMAutoencoder(self.n_features, c.hidden_size, c.cell, c.num_layers,
                               pool=c.pool, position=c.method == "window")

    def _check_fitted(self) -> None:
        if self.net is None:
            raise RuntimeError("the detector is not fitted; call fit(...) first")

    # -- batch scoring ----------------------------------------------------------------------------
    def _first(self) -> int:
        """First step with a score: ``W`` (forecast), ``W - 1`` (autoencoder), 0 (window)."""
        W, m = self.config.input_len, self.config.method
        return W if m == "forecast" else W - 1 if m == "autoencoder" else 0

    @torch.no_grad()
    def _window_scores(self, z: Tensor) -> np.ndarray:
        """``method="window"``: :math:`w_k` of every window ``z[k:k+W]``, ``[T - W + 1]``."""
        W, dev = self.config.input_len, next(self.net.parameters()).device
        n, outs = len(z) - W + 1, []
        for k0 in range(0, n, 1024):
            k1 = min(n, k0 + 1024)
            win = z[k0:k1 + W - 1].unfold(0, W, 1).permute(0, 2, 1).to(dev)    # [k1-k0, W, C]
            outs.append((self.net(win) - self.net.target(win)).abs().mean((1, 2)).cpu())
        return torch.cat(outs).numpy().astype(np.float64)

    @torch.no_grad()
    def _predict(self, z_in: Tensor, lo: int, hi: int) -> Tensor:
        """Predictions (forecast) or newest-step reconstructions (autoencoder) ``[hi-lo, C]``
        of steps ``[lo, hi)`` from the inputs ``z_in [T, C]``."""
        W, dev = self.config.input_len, next(self.net.parameters()).device
        off = 0 if self.config.method == "forecast" else 1     # window of step s ends at s-1+off
        outs = []
        for s0 in range(lo, hi, 1024):
            s1 = min(hi, s0 + 1024)
            win = z_in[s0 - W + off:s1 + off - 1].unfold(0, W, 1).permute(0, 2, 1).to(dev)
            if self.config.method == "forecast":
                fut = torch.zeros(len(win), 1, 0, device=dev)
                outs.append(self.net.predict_params(win, fut)["point"][:, 0].cpu())
            else:
                outs.append(self.net(win)[:, -1].cpu())
        return torch.cat(outs)

    def score(self, data, **data_kw: Any) -> np.ndarray:
        """Per-step errors ``[T]`` (0 before the first full window).

        Outliers are kept out of the model's *input*: going forward in time, a step whose
        error exceeds ``mean + clean_z * std`` of the first-pass errors is replaced by its
        prediction in the input, and the steps whose windows contain it are re-predicted, so
        one outlier does not also spoil the forecasts after it (each step is still scored
        against its observed value). ``clean_z=0`` turns this off. ``method="window"``: the
        mean score of the windows containing each step (module docstring; no cleaning)."""
        return self._scores(data, **data_kw)[0]

    def _scores(self, data, **data_kw: Any) -> tuple[np.ndarray, dict]:
        """``score`` plus ``extra`` for :class:`Detection`."""
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
        T, W, first = len(z), c.input_len, self._first()
        if c.method == "window":
            w = self._window_scores(z)                                          # [T - W + 1]
            # step t lies in windows k = max(0, t-W+1) .. min(T-W, t): their mean, by cumsum
            cs = np.concatenate([[0.0], np.cumsum(w)])
            t = np.arange(T)
            a, b = np.maximum(0, t - W + 1), np.minimum(T - W, t)
            ends = np.zeros(T)
            ends[W - 1:] = w
            return (cs[b + 1] - cs[a]) / (b - a + 1), {"window_scores": ends}
        pred = z.clone()
        pred[first:] = self._predict(z, first, T)
        err = (pred - z).abs().mean(-1).numpy()
        err[:first] = 0.0
        if c.clean_z > 0:
            e = err[first:]
            bar = e.mean() + c.clean_z * e.std()
            z_in, t = z.clone(), first
            while True:
                over = np.nonzero(err[t:] > bar)[0]
                if not len(over):
                    break
                t += int(over[0])
                z_in[t] = pred[t]
                hi = min(T, t + W + 1)
                if t + 1 < hi:
                    pred[t + 1:hi] = self._predict(z_in, t + 1, hi)
                    err[t + 1:hi] = (pred[t + 1:hi] - z[t + 1:hi]).abs().mean(-1).numpy()
                t += 1
        return err, {}

    def detect(self, data, **data_kw: Any) -> Detection:
        """Score, smooth, threshold and prune a whole series."""
        c = self.config
        raw, extra = self._scores(data, **data_kw)
        W = 0 if c.method == "window" else c.input_len       # first step that is thresholded
        sm = np.zeros_like(raw)
        sm[W:] = _ewm(raw[W:], c.smoothing)
        span = c.input_len if c.method == "window" else 1   # steps per independent score
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

    @torch.no_grad()
    def update(self, x) -> tuple[float, bool]:
        """Feed one new step ``x`` (scalar or ``[C]``); returns its smoothed error and whether
        it is flagged (the threshold it was compared with is ``stream_threshold``; ``None``
        while there are too few errors for one). The first ``input_len`` steps only fill the
        buffer (score 0, not flagged). ``method="window"``: the score is :math:`w_k` of the
        window that ``x`` completes (the newest ``W`` steps;
        ``Detection.extra["window_scores"]`` in batch), so a flag says "the last ``W`` steps
        hold an anomaly"; buffering starts scoring one step earlier, at step ``W - 1``."""
        self._check_fitted()
        c = self.config
        v = np.asarray(x, dtype=np.float64).reshape(-1)
        if v.shape != (self.n_features,) or not np.isfinite(v).all():
            raise ValueError(f"update expects {self.n_features} finite value(s), got {x!r}")
        z = torch.tensor(self.scaler.transform(0, v[None]), dtype=torch.float32)  # [1, C]
        dev = next(self.net.parameters()).device
        W = c.input_len
        if c.method == "forecast":
            if len(self._buf) < W:
                self._buf.append(z[0])
                return 0.0, False
            window = torch.stack(list(self._buf))[None].to(dev)               # [1, W, C]
            pred = self.net.predict_params(window, torch.zeros(1, 1, 0, device=dev))["point"]
            err = float((pred[0, 0].cpu() - z[0]).abs().mean())
            self._buf.append(z[0])
        else:
            self._buf.append(z[0])
            if len(self._buf) < W:
                return 0.0, False
            window = torch.stack(list(self._buf))[None].to(dev)                # [1, W, C]
            if c.method == "window":
                err = float((self.net(window) - self.net.target(window)).abs().mean())
            else:
                err = float((self.net(window)[0, -1].cpu() - z[0]).abs().mean())
        a = 2.0 / (c.smoothing + 1) if c.smoothing > 1 else 1.0
        self._acc = err if self._acc is None else a * err + (1 - a) * self._acc
        self._errs.append(self._acc)
        if len(self._errs) < 2 * W:   # too few errors for a threshold yet
            return self._acc, False
        span = W if c.method == "window" else 1
        self.stream_threshold = dynamic_threshold(np.asarray(self._errs), c.z_range, span)
        return self._acc, bool(self._acc > self.stream_threshold)

    # -- persistence ------------------------------------------------------------------------------
    KIND, VERSION = "rnnkit.anomaly", 1

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically; :func:`rnnkit.load` or :meth:`load` reads it."""
        save(self, path)

    def state(self) -> dict:
        """Everything :meth:`load` needs, as tensors and plain Python values."""
        self._check_fitted()
        return {"config": asdict(self.config),
                "n_features": self.n_features, "scaler": self.scaler.state_dict(),
                "state_dict": self.net.state_dict()}

    @classmethod
    def load(cls, path: str | os.PathLike) -> AnomalyDetector:
        """Rebuild a saved detector (``torch.load(weights_only=True)``)."""
        return cls.from_state(read_state(path, cls.KIND))

    @classmethod
    def from_state(cls, blob: dict) -> AnomalyDetector:
        """The detector :meth:`state` describes."""
        cfg = dict(blob["config"])
        self = cls(AnomalyConfig(**cfg))
        self.n_features = int(blob["n_features"])
        self.scaler = SeriesScaler.from_state_dict(blob["scaler"])
        self.net = self._build_net()
        self.net.load_state_dict(blob["state_dict"])
        self.net.eval()
        return self


class RollingZScore:
    """Baseline: flag :math:`|y_t - \\bar y| / s > z` with mean and std over the previous
    ``window`` steps (multivariate: the mean absolute z over columns).

    >>> y = np.zeros(100) + np.sin(np.arange(100)); y[80] = 10
    >>> np.nonzero(RollingZScore(window=20, z=4).detect(y).flags)[0].tolist()
    [80]
    """

    def __init__(self, window: int = 50, z: float = 3.0) -> None:
        if window < 2:
            raise ValueError(f"window must be at least 2, got {window}")
        self.window, self.z = window, z

    def detect(self, data, **data_kw: Any) -> Detection:
        import pandas as pd

        s = as_series(data, **data_kw)
        y = pd.DataFrame(s[0].target)
        past = y.shift(1).rolling(self.window)
        zs = ((y - past.mean()).abs() / past.std().replace(0, np.nan)).mean(axis=1)
        scores = zs.fillna(0.0).to_numpy()
        flags = (scores > self.z).astype(np.int8)
        return Detection(scores, scores, float(self.z), flags)


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
        for s, e in _runs(np.asarray(labels).astype(bool)):
            ax.axvspan(s - 0.5, e - 0.5, color="red", alpha=0.25,
                       label="true anomaly" if s == _runs(np.asarray(labels).astype(bool))[0][0]
                       else None)
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

