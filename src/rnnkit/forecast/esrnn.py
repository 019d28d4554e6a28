r"""ES-RNN: a hybrid of per-series exponential smoothing and one global recurrent network
(Smyl, "A hybrid method of exponential smoothing and recurrent neural networks for time series
forecasting", IJF 2020; the M4 winner).

**Exponential smoothing, per series** ``i`` (season ``m``; the series is first divided by a
positive per-series scale :math:`c_i`, the mean of :math:`|y|` over its fitted steps, so
:math:`z_t = y_t / c_i`). Multiplicative form, for strictly positive series:

.. math::
    l_t = \alpha_i \frac{z_t}{s_t} + (1-\alpha_i)\, l_{t-1}, \qquad
    s_{t+m} = \gamma_i \frac{z_t}{l_t} + (1-\gamma_i)\, s_t,

started at :math:`l_0 = z_0 / s_0` with the initial seasonal indices
:math:`s_{1..m} = \exp(\sigma_{i,1..m})` and :math:`\alpha_i = \mathrm{sigmoid}(a_i)`,
:math:`\gamma_i = \mathrm{sigmoid}(g_i)`; :math:`a_i, g_i, \sigma_i` are ``nn.Parameter``\ s
trained with the network by the same optimizer. ``season=1`` means no seasonal part
(:math:`s \equiv 1`, only the level is smoothed).

**The network's view** at origin ``t`` (last observed step; input length ``L``, horizon ``H``),
with the seasonal indices *known at t* repeated over the horizon,
:math:`\hat s_{t+k} = s_{t + ((k-1) \bmod m) + 1}` (each computed from :math:`z_{\le t}`):

.. math::
    x_j = \log \frac{z_{t-L+j}}{l_t\, s_{t-L+j}} \;(j = 1..L), \qquad
    \text{target}_k = \log \frac{z_{t+k}}{l_t\, \hat s_{t+k}} \;(k = 1..H),

and the forecast re-seasonalises and re-levels the network's output :math:`o_k`:
:math:`\hat y_{t+k} = c_i \exp(o_k)\, l_t\, \hat s_{t+k}`. Windows thus never see a future
value: the level and the seasonal indices at ``t`` depend on :math:`z_{\le t}` only.

**Additive form**, used for a series with a value ``<= 0`` (``form="auto"``; or for every series
with ``form="additive"``): the same recursion with differences instead of ratios on the scaled
values :math:`z` (:math:`l_t = \alpha (z_t - s_t) + (1-\alpha) l_{t-1}`,
:math:`s_{t+m} = \gamma (z_t - l_t) + (1-\gamma) s_t`, :math:`s_{1..m} = \sigma_{i,1..m}`),
:math:`x_j = z_{t-L+j} - l_t - s_{t-L+j}`, target :math:`z_{t+k} - l_t - \hat s_{t+k}` and
:math:`\hat y_{t+k} = c_i (l_t + \hat s_{t+k} + o_k)`. A multiplicative series is never logged
through a non-positive value: ``form="multiplicative"`` with such data, or a forecast history of
a multiplicative series with one, is an error naming the fix (no silent NaN).

**The global network** (one for all series): an rnnkit
:class:`~rnnkit.recurrent.Recurrent` (``cell``, ``num_layers``) over the ``L`` window steps
``[B, L, 1]``, its last output ``[B, hidden]`` through a linear head to ``[B, H, Q]``: the
median and the quantiles of the central intervals at ``levels`` (80 and 95 %: quantiles
0.025, 0.1, 0.5, 0.9, 0.975), kept ordered by construction (the median plus / minus cumulative
softplus offsets), so ``lower < mean < upper`` always holds.

**Loss** per step: the pinball loss :math:`\rho_\tau(e) = \max(\tau e, (\tau - 1) e)` averaged
over the ``Q`` quantiles and ``H`` steps of the sampled windows, plus the level-variability
penalty :math:`\lambda \cdot \mathrm{mean}_t (d_t - d_{t-1})^2`,
:math:`d_t = \log l_t - \log l_{t-1}` (additive: :math:`l_t - l_{t-1}`), which keeps the level
smooth so that the network, not the level, models the trend and the noise.

**Training** (:meth:`ESRNN.fit`): every window of every series (the last ``max_history`` steps
of each) is a training example of one global model. Each Adam step runs the ES recursion over
all series at once (a Python loop over time, vectorised over series), samples ``batch_size``
windows, and clips the gradient norm at ``clip``. Early stopping uses a **rolling-origin
validation inside the training data**: the last ``val_windows`` origins of each series,
``val_stride`` apart (forecasting the last ``H + (val_windows - 1) * val_stride`` steps), scored
by their MASE every ``eval_every`` steps; training windows end before the first of them. By
default (``refit=False``) the weights of the best score are kept; ``refit=True`` re-trains
from the same seed for the best step count on *all* windows, the validated ones included. On
the development series (``benchmarks/esrnn_dev.py``) keeping the best weights was both better
(mean MASE 0.604 vs 0.707 over 3 seeds) and less seed-dependent than refitting.

**Series not seen by fit**: ``predict`` forecasts them too, with the median of the fitted
:math:`\alpha_i, \gamma_i` and initial seasonal indices from a classical decomposition of the
first seasons of their history (no gradient step; see :func:`initial_seasonality`).

>>> import numpy as np
>>> t = np.arange(96)
>>> y = [(10 + 0.05 * t + k) * (1 + 0.2 * np.sin(2 * np.pi * t / 12)) for k in range(3)]
>>> from rnnkit.data.timeseries import from_array
>>> data = [from_array(v, freq="MS", start="2000-01-01")[0] for v in y]
>>> for k, s in enumerate(data): s.name = f"s{k}"
>>> cfg = ESRNNConfig(horizon=6, season=12, hidden_size=8, max_steps=20, eval_every=10)
>>> f = ESRNN(cfg).fit(data).predict(levels=(80,))
>>> f.mean[0].shape, bool((f.lower[80][0] < f.mean[0]).all() and (f.mean[0] < f.upper[80][0]).all())
((6, 1), True)
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time as _time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..data.timeseries import Series, as_series, check_length, future_index
from ..recurrent import Recurrent
from ..saving import Savable
from .result import Forecast, check_levels

if TYPE_CHECKING:
    from ..train.resumable import FitProgress

__all__ = ["ESRNN", "ESRNNConfig", "ESRNNNet", "es_filter", "initial_seasonality",
           "pinball_loss"]

FORMS = ("auto", "multiplicative", "additive")


# -- configuration -----------------------------------------------------------------------------
@dataclass
class ESRNNConfig:
    """Settings of :class:`ESRNN`.

    Attributes:
        horizon: H, steps forecast (all at once: one multi-output head).
        season: m, the seasonal period in steps (1: no seasonal part).
        input_len: L, window steps the network sees; ``None``: ``max(H, m, 4)`` (one season
            and at least one horizon of deseasonalised history).
        cell: "lstm", "gru" or any registered rnnkit cell.
        hidden_size, num_layers, dropout: the global network.
        levels: central interval levels in percent the quantile head learns (``()``: the
            median only).
        form: "auto" (multiplicative for a series whose values are all > 0, else additive),
            "multiplicative" or "additive" (for every series).
        lr: Adam's learning rate for the network; es_lr: for the per-series ES parameters
            (``None``: ``lr``).
        level_penalty: lambda of the level-variability penalty.
        max_steps: the step budget; batch_size: windows per step.
        eval_every: steps between validation scores; patience: scores without improvement
            before stopping.
        val_windows: rolling validation origins per series (0: no validation, train
            ``max_steps`` and keep the last weights); val_stride: steps between them
            (``None``: ``max(1, H // 2)``).
        refit: re-train on all windows for the chosen step count (default: keep the weights of
            the best validation score).
        clip: gradient-norm clipping.
        max_history: only the last ``max_history`` steps of each series are used for training
            (and for the ES state at forecast time); ``None``: all.
        seed: seeds the initialisation and the window sampling.
    """

    horizon: int = 12
    season: int = 1
    input_len: int | None = None
    cell: str = "lstm"
    hidden_size: int = 32
    num_layers: int = 2
    dropout: float = 0.0
    levels: tuple[float, ...] = (80, 95)
    form: str = "auto"
    lr: float = 3e-3
    es_lr: float | None = None
    level_penalty: float = 10.0
    max_steps: int = 1000
    batch_size: int = 128
    eval_every: int = 50
    patience: int = 6
    val_windows: int = 3
    val_stride: int | None = None
    refit: bool = False
    clip: float = 1.0
    max_history: int | None = 600
    seed: int = 0

    def __post_init__(self) -> None:
        def pos_int(name: str, zero: bool = False) -> None:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if zero else 1):
                raise ValueError(f"{name} must be a {'non-negative' if zero else 'positive'} "
                                 f"integer, got {v!r}; e.g. ESRNNConfig({name}="
                                 f"{0 if zero else 12})")

        for name in ("horizon", "season", "hidden_size", "num_layers", "max_steps",
                     "batch_size", "eval_every", "patience"):
            pos_int(name)
        pos_int("val_windows", zero=True)
        if self.input_len is None:
            self.input_len = max(self.horizon, self.season, 4)
        pos_int("input_len")
        if self.val_stride is None:
            self.val_stride = max(1, self.horizon // 2)
        pos_int("val_stride")
        if self.max_history is not None:
            pos_int("max_history")
            need = self.input_len + self.horizon + (self.val_windows > 0) * (
                self.horizon + (self.val_windows - 1) * self.val_stride)
            if self.max_history < need:
                raise ValueError(f"max_history={self.max_history} is shorter than one training "
                                 f"window plus the validation origins ({need} steps); raise "
                                 f"max_history or set it to None")
        if self.form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {self.form!r}")
        for name in ("lr", "level_penalty", "clip"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or \
                    (v == 0 and name != "level_penalty"):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        if self.es_lr is not None and not (isinstance(self.es_lr, (int, float))
                                           and math.isfinite(self.es_lr) and self.es_lr > 0):
            raise ValueError(f"es_lr must be a positive number or None (the network's lr), got "
                             f"{self.es_lr!r}")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        self.levels = tuple(sorted(float(v) for v in check_levels(self.levels, ())))
        if not isinstance(self.refit, bool):
            raise ValueError(f"refit must be True or False, got {self.refit!r}")

    @property
    def quantiles(self) -> tuple[float, ...]:
        """The head's quantiles, ascending, the median among them (e.g. ``levels=(80,)``:
        0.1, 0.5, 0.9)."""
        lo = [(1 - lv / 100) / 2 for lv in self.levels]
        return tuple(sorted({0.5, *(round(q, 10) for q in lo), *(round(1 - q, 10) for q in lo)}))

    def min_length(self) -> int:
        """Fewest steps a series needs: one window, ``input_len + horizon``."""
        return self.input_len + self.horizon


# -- exponential smoothing ---------------------------------------------------------------------
def es_filter(z: Tensor, alpha: Tensor, gamma: Tensor, s0: Tensor, start: Tensor | None = None,
              multiplicative: bool = True) -> tuple[Tensor, Tensor]:
    r"""Holt-Winters level and seasonal recursion (module docstring) for ``S`` series at once.

    Args:
        z: values ``[S, T]``; series ``i`` starts at column ``start[i]`` (left padding before
            it is ignored but must be finite, and positive in the multiplicative form).
        alpha, gamma: smoothing weights ``[S]`` in (0, 1).
        s0: initial seasonal indices ``[S, m]`` for the series' first ``m`` steps (factors in
            the multiplicative form, offsets in the additive one); ``m = 1``: no seasonality
            (``s0`` and ``gamma`` are ignored, the seasonal part is 1 or 0).
        start: first real column per series ``[S]`` (``None``: all 0).

    Returns:
        ``level [S, T]`` (:math:`l_t`, equal to :math:`l_{start}` on padded columns) and
        ``season [S, T + m]`` (:math:`s_t`; column ``t + m`` is updated at step ``t``).
    """
    S, T = z.shape
    m = s0.shape[1]
    if start is None:
        start = torch.zeros(S, dtype=torch.long, device=z.device)
    cols = torch.arange(T, device=z.device)
    real = (cols[None, :] >= start[:, None]).to(z.dtype)  # [S, T]
    a = (alpha[:, None] * real).unbind(1)
    zs = z.unbind(1)
    first = z.gather(1, start[:, None])[:, 0]
    if m == 1:
        neutral = torch.ones_like(z[:, :1]) if multiplicative else torch.zeros_like(z[:, :1])
        l_prev = first
        levels = []
        for t in range(T):
            l_prev = torch.lerp(l_prev, zs[t], a[t])
            levels.append(l_prev)
        return torch.stack(levels, 1), neutral.expand(S, T + 1)
    # rotate the initial indices so that column t holds the factor of global step t
    phase = (torch.arange(m, device=z.device)[None, :] - start[:, None]) % m  # [S, m]
    seas = list(s0.gather(1, phase).unbind(1))
    g = (gamma[:, None] * real).unbind(1)
    s_first = s0[:, 0]
    l_prev = first / s_first if multiplicative else first - s_first
    levels = []
    for t in range(T):
        st = seas[t]
        if multiplicative:
            lt = torch.lerp(l_prev, zs[t] / st, a[t])
            seas.append(torch.lerp(st, zs[t] / lt, g[t]))
        else:
            lt = torch.lerp(l_prev, zs[t] - st, a[t])
            seas.append(torch.lerp(st, zs[t] - lt, g[t]))
        levels.append(lt)
        l_prev = lt
    return torch.stack(levels, 1), torch.stack(seas, 1)


def initial_seasonality(z: np.ndarray, m: int, multiplicative: bool = True) -> np.ndarray:
    """Classical-decomposition estimate of the first season's indices ``[m]`` from a series
    ``z [T]``: over the first ``min(T, 6m)`` steps, the trend is the centred moving average of
    order ``m`` (``2 x m`` for even ``m``), and the ratios (differences) of the values to it are
    averaged per phase; factors are scaled to a geometric mean of 1 (offsets to mean 0).
    Fewer than ``2m + 1`` steps: ratios to the first season's mean; fewer than ``m`` steps, or
    ``m = 1``: neutral indices."""
    z = np.asarray(z, dtype=np.float64)
    if m == 1 or len(z) < m:
        return np.ones(m) if multiplicative else np.zeros(m)
    n = min(len(z), 6 * m)
    if n < 2 * m + 1:
        v, trend, phase = z[:m], np.full(m, z[:m].mean()), np.arange(m)
    else:
        w = np.ones(m + 1 - m % 2)
        if m % 2 == 0:
            w[0] = w[-1] = 0.5
        trend = np.convolve(z[:n], w / m, mode="valid")
        off = len(w) // 2
        v, phase = z[off:off + len(trend)], np.arange(off, off + len(trend)) % m
    if multiplicative:
        trend = np.where(trend > 1e-12, trend, np.abs(z[:n]).mean() or 1.0)
        r = np.log(np.clip(v / trend, 1e-3, 1e3))
    else:
        r = v - trend
    idx = np.bincount(phase, weights=r, minlength=m) / np.bincount(phase, minlength=m)
    idx = idx - idx.mean()
    return np.exp(idx) if multiplicative else idx


def pinball_loss(pred: Tensor, target: Tensor, quantiles: Tensor) -> Tensor:
    r"""Mean pinball loss of quantile forecasts ``pred [..., Q]`` for ``target [...]``:
    :math:`\rho_\tau(e) = \max(\tau e, (\tau - 1) e)`, :math:`e = y - q_\tau`."""
    e = target[..., None] - pred
    return torch.maximum(quantiles * e, (quantiles - 1) * e).mean()


# -- the global network ------------------------------------------------------------------------
class ESRNNNet(nn.Module):
    """The global network: ``Recurrent`` over the window ``[B, L, 1]``, then a linear head to
    ordered quantiles ``[B, H, Q]`` (index ``mid`` is the median)."""

    def __init__(self, config: ESRNNConfig) -> None:
        super().__init__()
        c = config
        qs = c.quantiles
        self.H, self.Q, self.mid = c.horizon, len(qs), qs.index(0.5)
        self.rnn = Recurrent(c.cell, 1, c.hidden_size, num_layers=c.num_layers,
                             dropout=c.dropout)
        self.head = nn.Linear(c.hidden_size, c.horizon * self.Q)
        with torch.no_grad():  # start at the ES forecast with narrow intervals
            self.head.weight.mul_(0.1)
            b = self.head.bias.view(c.horizon, self.Q)
            b.zero_()
            b[:, [j for j in range(self.Q) if j != self.mid]] = -3.0

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, L]`` normalised window -> quantiles ``[B, H, Q]``, ascending."""
        out, _ = self.rnn(x[..., None])
        raw = self.head(out[:, -1]).view(-1, self.H, self.Q)
        med = raw[..., self.mid:self.mid + 1]
        up = med + torch.cumsum(F.softplus(raw[..., self.mid + 1:]) + 1e-4, -1)
        down = med - torch.cumsum(F.softplus(raw[..., :self.mid].flip(-1)) + 1e-4, -1).flip(-1)
        return torch.cat([down, med, up], -1)


class _ESParams(nn.Module):
    """Per-series ES parameters: ``alpha``/``gamma`` logits ``[S]`` and the initial seasonal
    parameters ``[S, m]`` (log factors, or offsets)."""

    def __init__(self, S: int, m: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(S))
        self.gamma = nn.Parameter(torch.full((S,), -1.0))
        self.init_season = nn.Parameter(torch.zeros(S, m))


# -- batching of series ------------------------------------------------------------------------
@dataclass
class _Batch:
    """Series of one ES form, right-aligned in ``z [S, T]`` (column ``T - 1`` is the last step
    of every series; series ``i`` starts at column ``start[i]``)."""

    z: Tensor
    start: Tensor
    mult: bool


def _pad(zs: list[np.ndarray], dtype=torch.float32) -> tuple[Tensor, Tensor]:
    T = max(len(v) for v in zs)
    out = np.empty((len(zs), T))
    start = np.empty(len(zs), dtype=np.int64)
    for i, v in enumerate(zs):
        start[i] = T - len(v)
        out[i, :start[i]] = v[0]
        out[i, start[i]:] = v
    return torch.tensor(out, dtype=dtype), torch.from_numpy(start)


# -- the forecaster ----------------------------------------------------------------------------
class _Loop:
    """Where one ES-RNN fit keeps the state of its training loop in a
    :class:`~rnnkit.train.resumable.FitProgress` (``key + "#loop"``): the phase it was stopped
    in (``"select"``: training with early stopping on the validation origins, ``"final"``: the
    refit, or the only training), that phase's loop state and, for ``"final"``, what the
    selection chose. Without a progress every method is a no-op."""

    def __init__(self, progress: FitProgress | None, key: str) -> None:
        self.progress, self.key = progress, f"{key}#loop"
        self.blob = progress.get(self.key) if progress is not None else None
        if self.blob is not None and not (
                isinstance(self.blob, dict) and self.blob.get("phase") in ("select", "final")
                and isinstance(self.blob.get("state"), dict)
                and (self.blob["phase"] == "select" or isinstance(self.blob.get("select"), dict))):
            raise self.damaged()
        self.phase = self.blob["phase"] if self.blob is not None else None
        self.select = self.blob.get("select") if self.blob is not None else None
        self.saved: dict | None = None
        self._now: tuple[str, dict | None] | None = None

    def at(self, phase: str, select: dict | None = None) -> _Loop | None:
        """This loop for the training of ``phase`` (``select``: the selection's result, kept
        with a ``"final"`` state); its :attr:`saved` state, if it was stopped in it."""
        if self.progress is None:
            return None
        self.saved = self.blob["state"] if self.phase == phase else None
        self._now = (phase, select)
        return self

    def requested(self) -> bool:
        return self.progress is not None and self.progress.requested()

    def damaged(self) -> ValueError:
        path = self.progress.path if self.progress is not None else None
        return ValueError(f"{path} holds a damaged ES-RNN training state ({self.key}); delete "
                          f"the file to start the fit over")

    def save(self, state: dict) -> None:
        """Keep ``state`` (the loop after its last finished step) and stop the fit."""
        assert self.progress is not None and self._now is not None
        phase, select = self._now
        self.progress.put(self.key, {"phase": phase, "select": select, "state": state})

    def done(self) -> None:
        if self.progress is not None:
            self.progress.drop([self.key])


class ESRNN(Savable):
    """ES-RNN forecaster (module docstring): ``fit`` learns per-series ES parameters and one
    global network across all given series; ``predict`` forecasts in the data's units with
    quantile intervals; ``save`` / :func:`rnnkit.load` persist it.

    ``fit(data)`` takes what :func:`~rnnkit.data.timeseries.as_series` takes (a DataFrame with
    ``time``/``target``/``series`` columns, an array, a list of Series); one target column,
    no covariates. ``predict(history=...)`` matches histories to fitted series by name (one
    series and one history: the same series); other names are unseen series (see the module
    docstring)."""

    KIND, VERSION = "rnnkit.esrnn", 1

    def __init__(self, config: ESRNNConfig | None = None, **overrides: Any) -> None:
        config = config or ESRNNConfig()
        self.config = dataclasses.replace(config, **overrides) if overrides else config
        self.net: ESRNNNet | None = None
        self.es: _ESParams | None = None
        self.names: list[str] = []
        self.scale: np.ndarray = np.ones(0)
        self.mult: np.ndarray = np.ones(0, dtype=bool)
        self.start_time: list[str] = []
        self.series: list[Series] = []
        self.freq: str | None = None
        self.target_names: tuple[str, ...] = ("y",)
        self.columns: dict[str, Any] = {}
        self.history: dict[str, Any] = {}

    # -- data ---------------------------------------------------------------------------------
    def _check_series(self, series: list[Series], what: str) -> None:
        for s in series:
            if s.target.shape[1] != 1:
                raise ValueError(f"ESRNN forecasts one target column; series {s.name!r} has "
                                 f"{s.target.shape[1]} ({list(s.target_names)}): pass one "
                                 f"target= column (fit one model per column)")
            if s.past.shape[1] or s.future.shape[1]:
                raise ValueError(f"ESRNN uses no covariates but series {s.name!r} has "
                                 f"{list(s.past_names) + list(s.future_names)}; drop "
                                 f"past_covariates= / future_covariates=")
            if not np.isfinite(s.target).all():  # as_series checks; Series built by hand
                raise ValueError(f"series {s.name!r} has NaN/inf values in {what}; clean them "
                                 f"or build the series with fill='interpolate'")
        names = [s.name for s in series]
        if len(set(names)) != len(names):
            raise ValueError(f"series names must be unique (they key the per-series "
                             f"parameters), got {names}")

    def _form(self, y: np.ndarray, name: str) -> bool:
        """Whether series ``name`` (values ``y``) takes the multiplicative form."""
        positive = bool((y > 0).all())
        if self.config.form == "multiplicative" and not positive:
            raise ValueError(f"series {name!r} has values <= 0 but form='multiplicative' "
                             f"needs positive ones; use form='auto' or 'additive'")
        return positive if self.config.form == "auto" else self.config.form == "multiplicative"

    def _used(self, y: np.ndarray) -> np.ndarray:
        mh = self.config.max_history
        return y if mh is None or len(y) <= mh else y[-mh:]

    def _states(self, z: Tensor, start: Tensor, mult: bool, alpha: Tensor, gamma: Tensor,
                s0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(value term [S, T], level term [S, T], seasonal term [S, T + m])``: log z, log l,
        log s (multiplicative) or z, l, s (additive)."""
        lev, sea = es_filter(z, alpha, gamma, s0, start, mult)
        if mult:
            return z.log(), lev.log(), sea.log()
        return z, lev, sea

    def _es_tensors(self, rows: Tensor, mult: bool) -> tuple[Tensor, Tensor, Tensor]:
        es = self.es
        a = torch.sigmoid(es.alpha[rows])
        g = torch.sigmoid(es.gamma[rows])
        s0 = es.init_season[rows]
        return a, g, (s0.exp() if mult else s0)

    def _all_states(self, groups: list[tuple[_Batch, Tensor, tuple]]):
        """Concatenate the states of the form groups; rows follow the groups' order."""
        vals, levs, seas = [], [], []
        for b, _, (a, g, s0) in groups:
            v, lv, se = self._states(b.z, b.start, b.mult, a, g, s0)
            vals.append(v)
            levs.append(lv)
            seas.append(se)
        return torch.cat(vals), torch.cat(levs), torch.cat(seas)

    def _windows(self, val: Tensor, lev: Tensor, sea: Tensor, rows: Tensor, t: Tensor,
                 with_target: bool = True) -> tuple[Tensor, Tensor | None, Tensor]:
        """Network inputs ``[B, L]``, targets ``[B, H]`` and the re-levelling term ``[B, H]``
        (log l_t + log s-hat, or l_t + s-hat) of windows at origins ``t`` of rows ``rows``."""
        c = self.config
        L, H, m = c.input_len, c.horizon, c.season
        idx = t[:, None] + torch.arange(-L + 1, 1)[None, :]  # [B, L]
        lt = lev[rows, t][:, None]
        x = val[rows[:, None], idx] - sea[rows[:, None], idx] - lt
        k = torch.arange(1, H + 1)[None, :]
        shat = sea[rows[:, None], t[:, None] + (k - 1) % m + 1]  # [B, H]
        base = lt + shat
        y = val[rows[:, None], t[:, None] + k] - base if with_target else None
        return x, y, base

    # -- fit ----------------------------------------------------------------------------------
    def fit(self, data, time: str | None = None, target: str | Sequence[str] | None = None,
            series: str | None = None, past_covariates: Sequence[str] = (),
            future_covariates: Sequence[str] = (), freq: str | None = None,
            fill: str = "raise", progress: str | os.PathLike | FitProgress | None = None,
            key: str = "esrnn") -> ESRNN:
        """Learn the per-series ES parameters and the global network on all windows of all
        series (see the module docstring). Returns ``self``; ``self.history`` holds the
        validation curve, the chosen step count and the fit time.

        ``progress``: a file that keeps the fit when it is stopped
        (:mod:`rnnkit.forecast.progress`). On SIGINT or SIGTERM the fit finishes the Adam step
        in flight, saves the state of its training loop (weights, optimizer, random generators,
        the validation curve so far) there and raises
        :class:`~rnnkit.train.TrainingInterrupted`; ``fit`` again with the same data, settings
        and file continues from that step and gives the same model, to the bit, as a fit that
        was never stopped. An outer fit (a combination) passes its own
        :class:`~rnnkit.train.resumable.FitProgress` and a ``key`` naming this fit in it."""
        c = self.config
        t0 = _time.perf_counter()
        if len(past_covariates) or len(future_covariates):
            raise ValueError(f"ESRNN uses no covariates, got past_covariates="
                             f"{list(past_covariates)} future_covariates="
                             f"{list(future_covariates)}; leave them out (or use Forecaster)")
        ss = as_series(data, time, target, series, freq=freq, fill=fill)
        self.columns = {"time": time, "target": target, "series": series}
        from .progress import fitting

        with fitting(progress, {"model": "esrnn", **asdict(c)}, ss) as run:
            return self._fit(ss, run, key, t0)

    def _fit(self, ss: list[Series], progress: FitProgress | None, key: str,
             t0: float) -> ESRNN:
        c = self.config
        torch.manual_seed(c.seed)
        self._check_series(ss, "fit")
        check_length(ss, c.min_length(),
                     f"ESRNN with input_len={c.input_len} + horizon={c.horizon}",
                     "give a longer series or lower input_len or horizon")
        self.freq, self.target_names = ss[0].freq, ss[0].target_names
        self.names = [s.name for s in ss]
        ys = [self._used(s.target[:, 0]) for s in ss]
        self.mult = np.array([self._form(y, s.name) for y, s in zip(ys, ss)])
        self.scale = np.array([float(np.abs(y).mean()) or 1.0 for y in ys])
        self.series = [Series(s.name, s.time[-len(y):], s.target[-len(y):], s.past[-len(y):],
                              s.future[-len(y):], s.freq, s.target_names)
                       for s, y in zip(ss, ys)]
        self.start_time = [str(s.time[0]) for s in self.series]
        zs = [y / sc for y, sc in zip(ys, self.scale)]

        groups = self._groups(zs, list(range(len(zs))), self.mult)
        T = groups[0][0].z.shape[1]
        # the origins (last observed column) of training and validation windows, per group row
        L, H = c.input_len, c.horizon
        # as many validation origins as leave the longest series a training window before them
        fit = (T - L - 2 * H) // c.val_stride + 1 if T >= L + 2 * H else 0
        n_val = min(c.val_windows, fit)
        if n_val < c.val_windows:
            warnings.warn(f"ESRNN: the longest series ({T} steps) leaves room for {n_val} of "
                          f"the {c.val_windows} validation windows (input_len={L}, horizon={H},"
                          f" val_stride={c.val_stride}); "
                          + ("early stopping uses those" if n_val else
                             f"training runs all max_steps={c.max_steps} steps without early "
                             "stopping") + "; lower val_windows, input_len or horizon to "
                          "choose yourself", stacklevel=3)
        val_o = [T - 1 - H - j * c.val_stride for j in range(n_val)]
        first_val = min(val_o) if val_o else T - 1
        tr, va, tr_all = [], [], []
        row0 = 0
        for b, _, _ in groups:
            for r in range(b.z.shape[0]):
                lo = int(b.start[r]) + L - 1
                tr += [(row0 + r, t) for t in range(lo, first_val - H + 1)]
                tr_all += [(row0 + r, t) for t in range(lo, T - H)]
                va += [(row0 + r, o) for o in val_o if o >= lo]
            row0 += b.z.shape[0]
        if not tr:  # pragma: no cover - min_length() guarantees L + H steps
            raise ValueError(f"no training windows: the longest series needs at least {L + H} "
                             f"steps (input_len={L}, horizon={H}); lower input_len or horizon, "
                             "or give longer series")
        zcat = torch.cat([b.z for b, _, _ in groups])
        real = torch.arange(T)[None, :] >= torch.cat([b.start for b, _, _ in groups])[:, None]
        scale_val = self._naive_scale(zcat, real, first_val)

        loop = _Loop(progress, key)
        curve, best = [], (math.inf, 0, None)
        if va and loop.phase == "final":  # stopped while refitting: the choice is made
            best = (loop.select["best"], loop.select["step"], None)
            curve = [tuple(p) for p in loop.select["curve"]]
            n_steps = best[1]
        elif va:
            steps, best, curve = self._train(groups, tr, va, first_val, real, scale_val,
                                             c.max_steps, loop.at("select"))
            n_steps = best[1]
        else:
            n_steps = c.max_steps
        final = loop.at("final", {"best": best[0], "step": n_steps, "curve": curve})
        if va and c.refit:
            torch.manual_seed(c.seed)
            self._train(groups, tr_all, [], T - 1, real, scale_val, n_steps, final)
        elif va:
            self.net.load_state_dict(best[2][0])
            self.es.load_state_dict(best[2][1])
        else:
            self._train(groups, tr_all, [], T - 1, real, scale_val, n_steps, final)
        loop.done()
        self.net.eval()
        self.history = {"val_curve": curve, "best_step": n_steps,
                        "best_val_mase": best[0] if va else None, "val_windows": len(va),
                        "refit": bool(va and c.refit),
                        "train_windows": len(tr_all if (not va or c.refit) else tr),
                        "fit_seconds": _time.perf_counter() - t0}
        return self

    def _groups(self, zs: list[np.ndarray], rows: list[int], mult: np.ndarray):
        """Form groups ``[(batch, model rows, None)]`` of the series ``zs`` (model rows
        ``rows``), padded to one common length so that all groups share the time axis."""
        T = max(len(v) for v in zs)
        out = []
        for flag in (True, False):
            sel = [k for k in range(len(zs)) if bool(mult[k]) == flag]
            if not sel:
                continue
            padded = [np.concatenate([np.full(T - len(zs[k]), zs[k][0]), zs[k]]) for k in sel]
            z, _ = _pad(padded)
            start = torch.tensor([T - len(zs[k]) for k in sel], dtype=torch.long)
            out.append((_Batch(z, start, flag), torch.tensor([rows[k] for k in sel]), None))
        return out

    def _naive_scale(self, z: Tensor, real: Tensor, end: int) -> Tensor:
        """Per row, the in-sample seasonal-naive MAE of ``z`` up to column ``end`` (MASE
        denominator of the validation score); 1 where it is 0 or undefined."""
        m = self.config.season
        m = m if z.shape[1] - 1 > m else 1
        d = (z[:, m:end + 1] - z[:, :end + 1 - m]).abs()
        ok = (real[:, m:end + 1] & real[:, :end + 1 - m]).float()
        sc = (d * ok).sum(1) / ok.sum(1).clamp(min=1)
        return torch.where(sc > 1e-9, sc, torch.ones_like(sc))

    def _init_params(self, groups) -> None:
        c = self.config
        self.net = ESRNNNet(c)
        S = len(self.names)
        self.es = _ESParams(S, c.season)
        with torch.no_grad():
            for b, rows, _ in groups:
                for r in range(b.z.shape[0]):
                    v = b.z[r, int(b.start[r]):].double().numpy()
                    s0 = initial_seasonality(v, c.season, b.mult)
                    self.es.init_season[rows[r]] = torch.tensor(
                        np.log(s0) if b.mult else s0, dtype=torch.float32)

    def _train(self, groups, windows, val_windows, pen_end, real, scale_val, n_steps,
               loop: _Loop | None = None):
        """``n_steps`` Adam steps on ``windows`` ``[(row, origin)]``; with ``val_windows``,
        early stopping on their MASE. Returns ``(steps, (best, step, weights), curve)``.
        ``loop``: where a stop signal saves this loop's state, and the state it continues
        from (see :meth:`fit`)."""
        c = self.config
        self._init_params(groups)
        opt = torch.optim.Adam([
            {"params": self.net.parameters(), "lr": c.lr},
            {"params": self.es.parameters(), "lr": c.es_lr or c.lr}])
        gen = torch.Generator().manual_seed(c.seed)
        win = torch.tensor(windows, dtype=torch.long)
        qs = torch.tensor(self.config.quantiles)
        pen_mask = real[:, 2:pen_end + 1] & real[:, :pen_end - 1]
        best, curve, bad = (math.inf, 0, None), [], 0
        step = first = 0
        params = [*self.net.parameters(), *self.es.parameters()]
        if loop is not None and loop.saved is not None:  # continue a stopped fit
            d = loop.saved
            try:
                self.net.load_state_dict(d["net"])
                self.es.load_state_dict(d["es"])
                opt.load_state_dict(d["opt"])
                gen.set_state(d["gen"])
                torch.set_rng_state(d["rng"])
                best, curve, bad = (d["best"], d["best_step"], d["best_weights"]), \
                    [tuple(p) for p in d["curve"]], int(d["bad"])
                step = first = int(d["step"])
            except (KeyError, TypeError, ValueError, RuntimeError):
                raise loop.damaged() from None
            if val_windows and bad >= c.patience:  # stopped at the step early stopping ended
                first = n_steps
        for step in range(first + 1, n_steps + 1):
            self.net.train()
            es_t = [(b, rows, self._es_tensors(rows, b.mult)) for b, rows, _ in groups]
            val, lev, sea = self._all_states(es_t)
            pick = torch.randint(len(win), (min(c.batch_size, len(win)),), generator=gen)
            w = win[pick]
            x, y, _ = self._windows(val, lev, sea, w[:, 0], w[:, 1])
            loss = pinball_loss(self.net(x), y, qs)
            if c.level_penalty and pen_mask.any():
                d = lev[:, 1:pen_end + 1] - lev[:, :pen_end]
                dd = (d[:, 1:] - d[:, :-1]) ** 2
                loss = loss + c.level_penalty * dd[pen_mask].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, c.clip)
            opt.step()
            if val_windows and (step % c.eval_every == 0 or step == n_steps):
                score = self._val_score(groups, val_windows, scale_val)
                curve.append((step, score))
                if score < best[0] - 1e-6:
                    best = (score, step, (copy.deepcopy(self.net.state_dict()),
                                          copy.deepcopy(self.es.state_dict())))
                    bad = 0
                else:
                    bad += 1
            if loop is not None and loop.requested():  # saves, then raises Stopped
                loop.save({"net": self.net.state_dict(), "es": self.es.state_dict(),
                           "opt": opt.state_dict(), "gen": gen.get_state(),
                           "rng": torch.get_rng_state(), "best": best[0], "best_step": best[1],
                           "best_weights": best[2], "curve": curve, "bad": bad, "step": step})
            if val_windows and bad >= c.patience:
                break
        if val_windows and best[2] is None:
            raise ValueError(f"the validation MASE is {curve[-1][1] if curve else 'missing'} "
                             f"after {step} steps: the model does not forecast the validation "
                             f"origins; lower lr or check the data for extreme values")
        return step, best, curve

    @torch.no_grad()
    def _val_score(self, groups, val_windows, scale_val) -> float:
        self.net.eval()
        es_t = [(b, rows, self._es_tensors(rows, b.mult)) for b, rows, _ in groups]
        val, lev, sea = self._all_states(es_t)
        mult = torch.cat([torch.full((b.z.shape[0],), b.mult) for b, _, _ in groups])
        w = torch.tensor(val_windows, dtype=torch.long)
        x, _, base = self._windows(val, lev, sea, w[:, 0], w[:, 1], with_target=False)
        med = self.net(x)[..., self.net.mid] + base
        k = torch.arange(1, self.config.horizon + 1)[None, :]
        truth = val[w[:, :1], w[:, 1:] + k]
        mm = mult[w[:, 0]][:, None]
        pred, truth = torch.where(mm, med.exp(), med), torch.where(mm, truth.exp(), truth)
        err = (pred - truth).abs().mean(1) / scale_val[w[:, 0]]
        score = float(err.mean())
        return score if math.isfinite(score) else math.inf

    # -- predict ------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.net is None:
            raise RuntimeError("this ESRNN is not fitted; call fit(...) or ESRNN.load(path) "
                               "first")

    def _history(self, history) -> list[Series]:
        if history is None:
            return self.series
        col = self.columns
        hs = as_series(history, col.get("time"), col.get("target"), col.get("series"),
                       freq=self.freq)
        self._check_series(hs, "the history")
        if len(hs) == 1 and len(self.names) == 1 and hs[0].name not in self.names:
            hs[0] = dataclasses.replace(hs[0], name=self.names[0])  # a single-series model
        return hs

    def _start_in(self, h: Series, k: int) -> int:
        """Where the fitted ES start of series ``k`` lies in history ``h`` (-1: not in it)."""
        import pandas as pd

        stamp = self.start_time[k]
        key = pd.Timestamp(stamp) if isinstance(h.time, pd.DatetimeIndex) else int(stamp)
        try:
            pos = h.time.get_loc(key)
        except (KeyError, TypeError, ValueError):
            return -1
        return pos if isinstance(pos, (int, np.integer)) else -1

    def predict(self, history=None, future=None,
                levels: Sequence[float] | None = None) -> Forecast:
        """Forecast ``horizon`` steps after each series.

        Args:
            history: the series to forecast from (what ``fit`` takes); ``None``: the end of
                the fitted data. A fitted series is smoothed from the step its fit started at
                (with its learned parameters) to the end of its history; a history that does
                not contain that step, or an unseen series, is smoothed from its own
                ``max_history``-capped start with the median fitted alpha, gamma and a
                classical initial seasonality.
            future: ignored (ESRNN uses no covariates); only empty covariates are accepted.
            levels: interval levels in percent among the fitted ``config.levels`` (``None``:
                all of them; ``()``: none).
        """
        self._check_fitted()
        c = self.config
        levels = tuple(float(v) for v in check_levels(levels, c.levels))
        missing = [lv for lv in levels if not any(math.isclose(lv, f) for f in c.levels)]
        if missing:
            raise ValueError(f"levels {missing} were not learned: this model has quantiles for "
                             f"levels {list(c.levels)}; fit with ESRNNConfig(levels=...) "
                             f"including them")
        if future is not None and any(
                np.asarray(f).size for f in (future if isinstance(future, (list, tuple))
                                             else [future])):
            raise ValueError("ESRNN uses no covariates; pass future=None")
        hs = self._history(history)
        zs, mult, alpha, gamma, s0 = [], [], [], [], []
        with torch.no_grad():
            med_a = float(torch.sigmoid(self.es.alpha).median())
            med_g = float(torch.sigmoid(self.es.gamma).median())
        scales = []
        for h in hs:
            y = h.target[:, 0]
            k = self.names.index(h.name) if h.name in self.names else -1
            pos = self._start_in(h, k) if k >= 0 else -1
            if pos >= 0:
                y = y[pos:]
                is_mult, sc = bool(self.mult[k]), float(self.scale[k])
                with torch.no_grad():
                    a = float(torch.sigmoid(self.es.alpha[k]))
                    g = float(torch.sigmoid(self.es.gamma[k]))
                    s = self.es.init_season[k].double()
                    s = (s.exp() if is_mult else s).numpy()
            else:
                y = self._used(y)
                is_mult = bool(self.mult[k]) if k >= 0 else self._form(y, h.name)
                sc = float(self.scale[k]) if k >= 0 else (float(np.abs(y).mean()) or 1.0)
                a, g = med_a, med_g
                s = initial_seasonality(y / sc, c.season, is_mult)
            if len(y) < c.input_len:
                raise ValueError(f"history of series {h.name!r} has {len(y)} steps from its "
                                 f"ES start but the model needs input_len={c.input_len}; give "
                                 f"a longer history")
            if is_mult and not (y > 0).all():
                raise ValueError(f"series {h.name!r} was fitted in the multiplicative form "
                                 f"(positive values) but its history has values <= 0; refit "
                                 f"with form='additive'")
            zs.append(y / sc)
            mult.append(is_mult)
            alpha.append(a)
            gamma.append(g)
            s0.append(s)
            scales.append(sc)
        H = c.horizon
        out = [None] * len(hs)
        for flag in (True, False):
            sel = [k for k in range(len(hs)) if mult[k] == flag]
            if not sel:
                continue
            z, start = _pad([zs[k] for k in sel])
            T = z.shape[1]
            with torch.no_grad():
                v, lv, se = self._states(
                    z, start, flag, torch.tensor([alpha[k] for k in sel]),
                    torch.tensor([gamma[k] for k in sel]),
                    torch.tensor(np.stack([s0[k] for k in sel]), dtype=torch.float32))
                rows = torch.arange(len(sel))
                x, _, base = self._windows(v, lv, se, rows, torch.full((len(sel),), T - 1),
                                           with_target=False)
                q = (self.net(x) + base[..., None]).double()
                q = q.exp() if flag else q
            for j, k in enumerate(sel):
                out[k] = q[j].numpy() * scales[k]
        qs = c.quantiles
        mid = qs.index(0.5)
        mean = [o[:, mid:mid + 1] for o in out]
        lower, upper = {}, {}
        for lv in levels:
            a = (1 - lv / 100) / 2
            jl = min(range(len(qs)), key=lambda j: abs(qs[j] - a))
            jh = min(range(len(qs)), key=lambda j: abs(qs[j] - (1 - a)))
            key = int(lv) if float(lv).is_integer() else lv
            lower[key] = [o[:, jl:jl + 1] for o in out]
            upper[key] = [o[:, jh:jh + 1] for o in out]
        for h, mu in zip(hs, mean):
            if not np.isfinite(mu).all():
                raise FloatingPointError(f"the forecast of series {h.name!r} is not finite; "
                                         f"check its history for extreme values")
        return Forecast([h.name for h in hs], self.target_names,
                        [future_index(h.time, H) for h in hs], mean, lower, upper)

    def parameters_frame(self):
        """Per fitted series: form, alpha, gamma and the initial seasonal indices (pandas)."""
        import pandas as pd

        self._check_fitted()
        with torch.no_grad():
            a = torch.sigmoid(self.es.alpha).numpy()
            g = torch.sigmoid(self.es.gamma).numpy()
            s = self.es.init_season.numpy()
        return pd.DataFrame({"series": self.names,
                             "form": np.where(self.mult, "multiplicative", "additive"),
                             "alpha": a, "gamma": g,
                             "init_season": [np.where(mm, np.exp(r), r).round(4).tolist()
                                             for mm, r in zip(self.mult, s)]})

    # -- persistence --------------------------------------------------------------------------
    def state(self) -> dict:
        """Everything :meth:`from_state` needs, as tensors and plain values."""
        self._check_fitted()
        return {
            "config": asdict(self.config), "net": self.net.state_dict(),
            "es": self.es.state_dict(), "names": list(self.names),
            "scale": self.scale.tolist(), "mult": [bool(v) for v in self.mult],
            "start_time": list(self.start_time), "freq": self.freq,
            "target_names": list(self.target_names), "columns": dict(self.columns),
            "series": [{"time": [str(t) for t in s.time], "values": s.target[:, 0].tolist()}
                       for s in self.series],
            "history": {k: v for k, v in self.history.items() if k != "val_curve"},
        }

    @classmethod
    def from_state(cls, blob: dict) -> ESRNN:
        """The model :meth:`state` describes."""
        import pandas as pd

        cfg = dict(blob["config"])
        cfg["levels"] = tuple(cfg["levels"])
        self = cls(ESRNNConfig(**cfg))
        self.names = list(blob["names"])
        self.net = ESRNNNet(self.config)
        self.net.load_state_dict(blob["net"])
        self.net.eval()
        self.es = _ESParams(len(self.names), self.config.season)
        self.es.load_state_dict(blob["es"])
        self.scale = np.asarray(blob["scale"], dtype=np.float64)
        self.mult = np.asarray(blob["mult"], dtype=bool)
        self.start_time = list(blob["start_time"])
        self.freq = blob["freq"]
        self.target_names = tuple(blob["target_names"])
        self.columns = dict(blob["columns"])
        self.history = dict(blob.get("history", {}))
        self.series = []
        for name, d in zip(self.names, blob["series"]):
            n = len(d["values"])
            t = pd.DatetimeIndex(pd.to_datetime(d["time"]), freq=self.freq) if self.freq \
                else pd.RangeIndex(int(d["time"][0]), int(d["time"][-1]) + 1)
            self.series.append(Series(name, t, np.asarray(d["values"], np.float64).reshape(n, 1),
                                      np.zeros((n, 0)), np.zeros((n, 0)), self.freq,
                                      self.target_names))
        return self
