r"""RNN forecaster: an encoder :class:`~rnnkit.Recurrent` over the last ``L`` steps and either a
direct multi-output head or an autoregressive decoder, with point, Gaussian or quantile
outputs.

Given past inputs :math:`x_{t-L+1..t}` (scaled targets, past covariates, known-future
covariates) the encoder gives :math:`h_t`. With ``decoder="direct"`` one linear layer maps
:math:`[h_t; u_{t+1..t+H}]` (flattened known-future covariates) to all :math:`H` steps at once;
with ``decoder="autoregressive"`` a second recurrent layer starts from the encoder state and
steps :math:`s_k = \mathrm{cell}([\hat y_{t+k-1}; u_{t+k}], s_{k-1})`, feeding back its own
point forecast at inference (the true value in training: teacher forcing).

The input's target channels are taken relative to the last observed value :math:`y_t`, and
the network outputs corrections to a baseline forecast :math:`b_{t+k}` (``baseline="last"``:
:math:`y_t`; ``"seasonal"``: the seasonal naive :math:`y_{t+k-m\lceil k/m\rceil}`;
``"seasonal_mean"``: the mean of that value over the :math:`n = \lfloor L/m \rfloor` seasons in
the input, shifted to the level of the last season,

.. math::
    b_{t+k} = \frac1n \sum_{j=0}^{n-1} y_{t+k-m\lceil k/m\rceil - jm}
              + \bar y_{\text{last } m} - \bar y_{\text{last } nm},

which equals the seasonal naive forecast on a noiseless linear trend plus a fixed pattern but
averages the noise of ``n`` seasons away (:math:`n = 1`: the seasonal naive); ``"none"``:
0). So a trending series never leaves the range seen in training, and an untrained network
(zero-initialised head) starts as the naive / seasonal naive forecast.

``ar_window=p > 0`` adds LSTNet's linear autoregressive "highway" (Lai et al., 2018) to the
baseline: :math:`b_{t+k} \mathrel{+}= \sum_{j<p} a_{kj}\,(y_{t-j} - y_t) + c_k`, one linear map
from the last ``p`` level-relative values (raw scaled values with ``baseline="none"``) to the
``H`` steps, shared by the target columns and zero-initialised. It gives the network the
linear AR structure an ARIMA model fits (e.g. the damped cycle of sunspots) so the recurrent
part only learns what is not linear.

``transform="log"`` (or ``"auto"``: log when every training value is positive) models
:math:`\log y`, which makes multiplicative seasonality additive.

Heads (per step and target): ``"point"`` (L1 or MSE loss), ``"gaussian"`` (mean and standard
deviation, Gaussian negative log-likelihood) and ``"quantile"`` (one output per quantile,
pinball loss; sorted at prediction so quantiles never cross).

Shapes: batch ``x [B, L, C+P+K]``, ``y [B, H, C]``, ``fut [B, H, K]``; network output
``[B, H, C, O]`` with ``O`` = 1, 2 or the number of quantiles.

>>> import numpy as np
>>> from rnnkit.forecast.forecaster import Forecaster, ForecasterConfig
>>> y = np.sin(np.arange(200) * 2 * np.pi / 12) + np.random.default_rng(0).normal(0, .1, 200)
>>> cfg = ForecasterConfig(horizon=6, input_len=24, hidden_size=8, max_steps=10, head="gaussian")
>>> fc = Forecaster(cfg).fit(y, freq="MS")
>>> f = fc.predict(levels=(80,))
>>> f.mean[0].shape, f.lower[80][0].shape, bool((f.lower[80][0] < f.upper[80][0]).all())
((6, 1), (6, 1), True)
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.timeseries import (
    Series,
    SeriesScaler,
    WindowDataset,
    as_series,
    calendar_features,
    check_length,
    future_index,
    resolve_calendar,
)
from ..recurrent import Recurrent
from ..saving import parse_tag, read_state, save
from ..train.callbacks import Callback
from ..train.protocol import LossOutput

__all__ = ["Forecast", "ForecastEnsemble", "ForecastNet", "Forecaster", "ForecasterConfig",
           "check_levels", "load_forecaster", "normal_quantile", "plot_forecast"]

HEADS = ("point", "gaussian", "quantile")
DECODERS = ("direct", "autoregressive")
BASELINES = ("last", "seasonal", "seasonal_mean", "none")


@dataclass
class ForecasterConfig:
    """Model and training settings of :class:`Forecaster`.

    Model: ``horizon`` (H), ``input_len`` (L, past steps seen), ``cell`` ("lstm", "gru",
    "elman", any registered cell), ``hidden_size``, ``num_layers``, ``dropout``, ``decoder``
    ("direct" | "autoregressive"), ``head`` ("point" | "gaussian" | "quantile"),
    ``quantiles`` (quantile head), ``point_loss`` ("mae" | "mse", point head), ``baseline``
    ("last" | "seasonal" | "seasonal_mean" | "none": what the network corrects, see the module
    docstring), ``ar_window`` (past steps of LSTNet's linear autoregressive highway added to
    the baseline; 0 = none, at most ``input_len``), ``season`` (period ``m`` of the seasonal
    baselines), ``transform`` ("none" | "log" | "auto"), ``calendar`` ("auto", or a list
    from hour, dayofweek, dayofmonth, dayofyear, month, quarter; ``()`` for none) and
    ``holidays`` (dates flagged as a known-future 0/1 covariate; off by default).

    Training (through :class:`rnnkit.train.Trainer`): ``max_steps``, ``batch_size``, ``lr``,
    ``weight_decay``, ``val_fraction`` (last part of each series held out to pick the best
    step; 0 = no validation), ``eval_every``, ``patience`` (evaluations without improvement
    before stopping), ``seed``, ``max_time`` (seconds), ``progress``, ``device`` ("cpu",
    "cuda" or "auto"; these small models are usually fastest on the CPU).
    """

    horizon: int = 12
    input_len: int = 36
    cell: str = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    decoder: str = "direct"
    head: str = "point"
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    point_loss: str = "mae"
    baseline: str = "last"
    ar_window: int = 0
    season: int = 1
    transform: str = "none"
    calendar: Any = "auto"
    holidays: tuple[str, ...] = ()
    max_steps: int = 1000
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    eval_every: int = 100
    patience: int | None = 5
    seed: int = 0
    max_time: float | None = None
    progress: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}")
        if self.transform not in ("none", "log", "auto"):
            raise ValueError(f"transform must be 'none', 'log' or 'auto', got {self.transform!r}")
        for name in ("horizon", "input_len", "hidden_size", "num_layers", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.season, int) or self.season < 1:
            raise ValueError(f"season must be a positive integer, got {self.season!r}")
        if self.baseline.startswith("seasonal") and self.season > self.input_len:
            raise ValueError(f"baseline={self.baseline!r} needs input_len >= season, got "
                             f"input_len={self.input_len} < season={self.season}; raise "
                             "input_len")
        if not isinstance(self.ar_window, int) or isinstance(self.ar_window, bool) \
                or not 0 <= self.ar_window <= self.input_len:
            raise ValueError(f"ar_window must be an integer in [0, input_len={self.input_len}], "
                             f"got {self.ar_window!r}; lower ar_window or raise input_len")
        if self.point_loss not in ("mae", "mse"):
            raise ValueError(f"point_loss must be 'mae' or 'mse', got {self.point_loss!r}")
        self.quantiles = tuple(float(q) for q in self.quantiles)
        if self.head == "quantile" and (not self.quantiles or
                                        not all(0 < q < 1 for q in self.quantiles)):
            raise ValueError(f"quantiles must lie strictly between 0 and 1, got {self.quantiles}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        self.holidays = tuple(str(h) for h in self.holidays)
        if self.calendar != "auto":
            self.calendar = tuple(self.calendar)


def check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    """Prediction-interval levels in percent, each strictly between 0 and 100 (else an error
    naming the fix; 150 would give NaN bounds, 100 infinite ones, -5 an inverted interval).
    Shared by :meth:`Forecaster.predict` and the baselines' ``predict``."""
    if isinstance(levels, (numbers.Number, str)) or not hasattr(levels, "__iter__"):
        raise TypeError(f"levels must be a sequence of percentages such as (80, 95), got "
                        f"{levels!r}")
    levels = tuple(levels)
    bad = [lv for lv in levels if isinstance(lv, bool) or not isinstance(lv, numbers.Real)
           or not 0 < lv < 100]
    if bad:
        raise ValueError(f"levels are central interval widths in percent and must lie strictly "
                         f"between 0 and 100 (e.g. 80, 95); got {bad}")
    return levels


def normal_quantile(p: float) -> float:
    """Standard normal quantile, e.g. ``normal_quantile(0.9) ~= 1.2816``."""
    return float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(p, dtype=torch.float64)))


class ForecastNet(nn.Module):
    """The network behind :class:`Forecaster`; a task model for :class:`rnnkit.train.Trainer`.

    Args:
        config: a :class:`ForecasterConfig`.
        n_targets: ``C``; n_past: ``P`` past-covariate features; n_future: ``K`` known-future
            features (calendar included). The input has ``C + P + K`` features per step.
    """

    def __init__(self, config: ForecasterConfig, n_targets: int, n_past: int = 0,
                 n_future: int = 0) -> None:
        super().__init__()
        self.config, self.C, self.P, self.K = config, n_targets, n_past, n_future
        c = config
        self.n_out = {"point": 1, "gaussian": 2, "quantile": len(c.quantiles)}[c.head]
        self.register_buffer("q", torch.tensor(c.quantiles or (0.5,)), persistent=False)
        self.encoder = Recurrent(c.cell, n_targets + n_past + n_future, c.hidden_size,
                                 num_layers=c.num_layers, dropout=c.dropout)
        if c.decoder == "direct":
            self.head = nn.Linear(c.hidden_size + c.horizon * n_future,
                                  c.horizon * n_targets * self.n_out)
        else:
            self.decoder = Recurrent(c.cell, n_targets + n_future, c.hidden_size,
                                     num_layers=c.num_layers, dropout=c.dropout)
            self.head = nn.Linear(c.hidden_size, n_targets * self.n_out)
        # start as the naive forecast: a zero change from the last value
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.ar = nn.Linear(c.ar_window, c.horizon) if c.ar_window else None
        if self.ar is not None:
            nn.init.zeros_(self.ar.weight)
            nn.init.zeros_(self.ar.bias)

    # -- forward ----------------------------------------------------------------------------
    def forward(self, x: Tensor, fut: Tensor, y_teacher: Tensor | None = None) -> Tensor:
        """Raw outputs ``[B, H, C, O]`` in scaled units (level added back for means and
        quantiles). ``y_teacher [B, H, C]`` enables teacher forcing (autoregressive only)."""
        B, C, H = x.shape[0], self.C, self.config.horizon
        base, level = self._baseline(x)                         # [B, H, C], [B, 1, C]
        x = torch.cat([x[..., :C] - level, x[..., C:]], dim=-1)  # [B, L, C+P+K]
        if self.ar is not None:                                  # linear AR highway
            p = self.config.ar_window
            base = base + self.ar(x[:, -p:, :C].transpose(1, 2)).transpose(1, 2)
        enc, state = self.encoder(x)                                        # [B, L, Hd]
        if self.config.decoder == "direct":
            z = torch.cat([enc[:, -1], fut.reshape(B, -1)], dim=-1)
            out = self.head(z).view(B, H, C, self.n_out)
        elif y_teacher is not None:
            prev = torch.cat([x[:, -1:, :C], y_teacher[:, :-1] - level], dim=1)  # [B, H, C]
            dec, _ = self.decoder(torch.cat([prev, fut], dim=-1), state)
            out = self.head(dec).view(B, H, C, self.n_out)
        else:
            prev, outs = x[:, -1, :C], []
            for k in range(H):
                h, state = self.decoder.step(torch.cat([prev, fut[:, k]], dim=-1), state)
                o = self.head(h).view(B, C, self.n_out)
                outs.append(o)
                step = self._add_base(o.unsqueeze(1), base[:, k:k + 1])          # [B, 1, C, O]
                prev = self._point(step)[:, 0] - level[:, 0]
            out = torch.stack(outs, dim=1)
        return self._add_base(out, base)

    def _baseline(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Baseline forecast ``b [B, H, C]`` the network corrects, and the input level
        ``[B, 1, C]`` subtracted from the target channels."""
        c, C, L = self.config, self.C, x.shape[1]
        last = x[:, -1:, :C]
        if c.baseline == "none":
            zero = torch.zeros_like(last)
            return zero.expand(-1, c.horizon, -1), zero
        if c.baseline == "last" or c.season == 1:
            return last.expand(-1, c.horizon, -1), last
        m = c.season
        idx = L - m + torch.arange(c.horizon, device=x.device) % m           # y_{t+k-m⌈k/m⌉}
        if c.baseline == "seasonal":
            return x[:, idx, :C], last
        n = L // m                                                # full seasons in the input
        past = torch.stack([x[:, idx - j * m, :C] for j in range(n)]).mean(0)   # [B, H, C]
        shift = x[:, L - m:, :C].mean(1, keepdim=True) - x[:, L - n * m:, :C].mean(1, keepdim=True)
        return past + shift, last

    def _add_base(self, out: Tensor, base: Tensor) -> Tensor:
        if self.config.head == "gaussian":
            return torch.stack([out[..., 0] + base, out[..., 1]], dim=-1)
        return out + base.unsqueeze(-1)

    def _point(self, out: Tensor) -> Tensor:
        """Point forecast ``[B, H, C]`` from raw outputs: mean, median or mid quantile."""
        if self.config.head == "quantile":
            return out.sort(dim=-1).values.gather(
                -1, torch.full_like(out[..., :1], self._mid(), dtype=torch.long))[..., 0]
        return out[..., 0]

    def _mid(self) -> int:
        return int(torch.argmin((self.q - 0.5).abs()))

    @staticmethod
    def _std(raw: Tensor) -> Tensor:
        return F.softplus(raw) + 1e-3

    # -- training -----------------------------------------------------------------------------
    def loss(self, batch: dict[str, Tensor], state: Any = None) -> LossOutput:
        """Training loss on a :class:`~rnnkit.data.timeseries.WindowDataset` batch."""
        x, y, fut = batch["x"], batch["y"], batch["fut"]
        out = self(x, fut, y_teacher=y if self.config.decoder == "autoregressive" else None)
        point = self._point(out)
        head = self.config.head
        if head == "point":
            loss = F.l1_loss(point, y) if self.config.point_loss == "mae" else \
                F.mse_loss(point, y)
        elif head == "gaussian":
            loss = F.gaussian_nll_loss(out[..., 0], y, self._std(out[..., 1]) ** 2, full=True)
        else:
            diff = y.unsqueeze(-1) - out                                     # [B, H, C, Q]
            loss = torch.maximum(self.q * diff, (self.q - 1) * diff).mean()
        mae = (point - y).abs().mean().detach()
        return LossOutput(loss, None, {"mae": mae}, weight=int(y.shape[0]))

    @torch.no_grad()
    def predict_params(self, x: Tensor, fut: Tensor) -> dict[str, Tensor]:
        """``{"point": [B, H, C]}`` plus ``"std"`` (gaussian) or ``"quantiles" [B, H, C, Q]``."""
        out = self(x, fut)
        res = {"point": self._point(out)}
        if self.config.head == "gaussian":
            res["std"] = self._std(out[..., 1])
        elif self.config.head == "quantile":
            res["quantiles"] = out.sort(dim=-1).values
        return res


@dataclass
class Forecast:
    """Forecasts of ``S`` series for ``H`` steps in the data's units.

    Attributes:
        names: series ids ``[S]``; target_names: ``C`` target columns.
        time: per series, the ``H`` future time stamps.
        mean: per series, point forecasts ``[H, C]``.
        lower, upper: ``{level: per series [H, C]}`` prediction-interval bounds (empty for
            a point model).
    """

    names: list[str]
    target_names: tuple[str, ...]
    time: list[Any]
    mean: list[np.ndarray]
    lower: dict[int, list[np.ndarray]] = field(default_factory=dict)
    upper: dict[int, list[np.ndarray]] = field(default_factory=dict)

    def to_frame(self):
        """Long pandas DataFrame: series, time, target, mean, lower_<level>, upper_<level>."""
        import pandas as pd

        rows = []
        for i, name in enumerate(self.names):
            for j, tname in enumerate(self.target_names):
                d = {"series": name, "time": list(self.time[i]), "target": tname,
                     "mean": self.mean[i][:, j]}
                for lv in sorted(self.lower):
                    d[f"lower_{lv}"] = self.lower[lv][i][:, j]
                    d[f"upper_{lv}"] = self.upper[lv][i][:, j]
                rows.append(pd.DataFrame(d))
        return pd.concat(rows, ignore_index=True)


class _KeepBest(Callback):
    """Trainer callback: remember the weights with the lowest validation loss."""

    def __init__(self) -> None:
        self.best, self.state = float("inf"), None

    def on_eval_end(self, trainer, step: int, metrics: dict) -> None:
        loss = float(metrics.get("loss", float("inf")))
        if loss < self.best:
            self.best = loss
            self.state = copy.deepcopy(trainer.model.state_dict())


class Forecaster:
    """Fit / predict / save wrapper around :class:`ForecastNet` (the user-facing model).

    ``fit`` takes a pandas DataFrame (``time``, ``target`` column names; ``series`` for several
    series in one global model; ``past_covariates``, ``future_covariates``), a numpy array or
    a list of :class:`~rnnkit.data.timeseries.Series`. Scaling is fitted per series on the data
    given to ``fit`` only; ``predict`` returns forecasts in the original units.
    """

    def __init__(self, config: ForecasterConfig | None = None, **overrides: Any) -> None:
        config = config or ForecasterConfig()
        self.config = dataclasses.replace(config, **overrides) if overrides else config
        self.net: ForecastNet | None = None
        self.scaler: SeriesScaler | None = None
        self.series: list[Series] = []
        self.calendar: tuple[str, ...] = ()
        self.history: dict | None = None
        self.columns: dict[str, Any] = {}
        self.log = False

    def _fwd(self, y: np.ndarray, name: str = "") -> np.ndarray:
        """The target transform (log when ``self.log``)."""
        if not self.log:
            return y
        if (y <= 0).any():
            raise ValueError(f"series {name!r} has values <= 0 but the model forecasts log "
                             "values (transform='log'/'auto'); use transform='none'")
        return np.log(y)

    def _inv(self, i: int, z: np.ndarray) -> np.ndarray:
        y = self.scaler.inverse_transform(i, z)
        return np.exp(np.clip(y, -700, 700)) if self.log else y

    # -- features -----------------------------------------------------------------------------
    def _features(self, s: Series, i: int, time=None, fut_cov=None) -> tuple[np.ndarray, ...]:
        """Scaled target ``[T, C]``, past features ``[T, P]``, future features ``[T, K]`` (user
        known-future covariates scaled with their training statistics, then calendar)."""
        time = s.time if time is None else time
        cal = calendar_features(time, self.calendar, self.config.holidays)
        fut = s.future if fut_cov is None else fut_cov
        fut = (fut - self._cov_mean[i][1]) / self._cov_std[i][1] if fut.shape[1] else fut
        past = (s.past - self._cov_mean[i][0]) / self._cov_std[i][0] if s.past.shape[1] \
            else s.past
        tgt = self.scaler.transform(i, self._fwd(s.target, s.name)) if len(s) else s.target
        return tgt, past, np.concatenate([fut, cal], axis=1)

    def _fit_cov_scalers(self, series: list[Series]) -> None:
        self._cov_mean, self._cov_std = [], []
        for s in series:
            ms, ss = [], []
            for a in (s.past, s.future):
                sd = a.std(axis=0) if len(a) else np.ones(a.shape[1])
                ms.append(a.mean(axis=0) if len(a) else np.zeros(a.shape[1]))
                ss.append(np.where(sd > 1e-12, sd, 1.0))
            self._cov_mean.append(ms)
            self._cov_std.append(ss)

    # -- fit ----------------------------------------------------------------------------------
    def fit(self, data, time: str | None = None, target: str | Sequence[str] | None = None,
            series: str | None = None, past_covariates: Sequence[str] = (),
            future_covariates: Sequence[str] = (), freq: str | None = None,
            fill: str = "raise") -> Forecaster:
        """Train on ``data`` (see the class docstring). Returns ``self``."""
        c = self.config
        self.series = as_series(data, time, target, series, past_covariates, future_covariates,
                                freq, fill)
        self.columns = {"time": time, "target": target, "series": series,
                        "past_covariates": list(past_covariates),
                        "future_covariates": list(future_covariates)}
        s0 = self.series[0]
        for s in self.series[1:]:
            if s.target.shape[1] != s0.target.shape[1] or s.freq != s0.freq:
                raise ValueError("all series must have the same targets and frequency")
        n_val = [int(round(len(s) * c.val_fraction)) if c.val_fraction else 0
                 for s in self.series]
        n_val = [v if v >= c.horizon else 0 for v in n_val]
        check_length(self.series, c.input_len + c.horizon + max(n_val),
                     f"input_len={c.input_len} + horizon={c.horizon} (+ validation)")
        self.calendar = resolve_calendar(c.calendar, s0.freq)
        train_end = [len(s) - v for s, v in zip(self.series, n_val)]
        positive = all((s.target > 0).all() for s in self.series)
        if c.transform == "log" and not positive:
            raise ValueError("transform='log' needs strictly positive targets; use "
                             "transform='none' (or 'auto', which logs only positive data)")
        self.log = c.transform == "log" or (c.transform == "auto" and positive)
        self.scaler = SeriesScaler().fit([self._fwd(s.target) for s in self.series], train_end)
        self._fit_cov_scalers([s.head(e) for s, e in zip(self.series, train_end)])
        feats = [self._features(s, i) for i, s in enumerate(self.series)]
        tg, pa, fu = zip(*feats)
        train = WindowDataset(tg, c.input_len, c.horizon, pa, fu, end=train_end)
        if len(train) == 0:
            raise ValueError("no training windows: the series are too short for input_len="
                             f"{c.input_len} and horizon={c.horizon}")
        val = None
        if any(n_val):
            # validation windows forecast the held-out tail; their inputs may reach back
            val = WindowDataset(tg, c.input_len, c.horizon, pa, fu, start=train_end,
                                stride=max(1, c.horizon // 2))
            val = val if len(val) else None
        torch.manual_seed(c.seed)
        self.net = ForecastNet(c, s0.target.shape[1], s0.past.shape[1], fu[0].shape[1])
        self.history = _train(self.net, train, val, c)
        self.net.eval()
        return self

    # -- predict ------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.net is None:
            raise RuntimeError("this Forecaster is not fitted; call fit(...) or "
                               "Forecaster.load(path) first")

    def _history(self, history) -> list[Series]:
        if history is None:
            return self.series
        col = self.columns
        hs = as_series(history, col.get("time"), col.get("target"), col.get("series"),
                       col.get("past_covariates", ()), col.get("future_covariates", ()),
                       self.series[0].freq if self.series else None)
        names = [s.name for s in self.series]
        for h in hs:
            if h.name not in names:
                if len(names) == 1 and len(hs) == 1:
                    h.name = names[0]   # a new history of a single-series model
                else:
                    raise ValueError(f"series {h.name!r} was not in the training data "
                                     f"({names}); the scaler is per series")
            if h.target.shape[1] != self.net.C:
                raise ValueError(f"history has {h.target.shape[1]} target columns, the model "
                                 f"was trained on {self.net.C}")
        return hs

    def predict(self, history=None, future=None, levels: Sequence[int] = (80, 95)) -> Forecast:
        """Forecast ``horizon`` steps after the end of each series.

        Args:
            history: the recent data to forecast from (DataFrame with the training columns, an
                array, or Series); ``None`` forecasts from the end of the training data. At
                least ``input_len`` steps are needed.
            future: known-future covariates over the horizon when the model was trained with
                them: per series ``[H, K]`` arrays (a list), or a DataFrame with the time,
                series and covariate columns.
            levels: central prediction-interval levels in percent (Gaussian head: any; quantile
                head: those whose quantile pairs exist, e.g. 80 for 0.1/0.9; point head: none).
        """
        self._check_fitted()
        levels = check_levels(levels)
        c, net = self.config, self.net
        hs = self._history(history)
        check_length(hs, c.input_len, f"predict with input_len={c.input_len}")
        names = [s.name for s in self.series]
        xs, futs, times = [], [], []
        for k, h in enumerate(hs):
            i = names.index(h.name)
            ft = future_index(h.time, c.horizon)
            fcov = self._future_cov(future, k, h, ft)
            tg, pa, fu = self._features(h, i)
            _, _, fu_next = self._features(h.head(0), i, time=ft, fut_cov=fcov)
            x = np.concatenate([tg, pa, fu], axis=1)[-c.input_len:]
            xs.append(x)
            futs.append(fu_next)
            times.append(ft)
        dev = next(net.parameters()).device
        with torch.no_grad():
            p = net.predict_params(torch.tensor(np.stack(xs), dtype=torch.float32, device=dev),
                                   torch.tensor(np.stack(futs), dtype=torch.float32, device=dev))
            p = {k: v.cpu() for k, v in p.items()}
        idx = [names.index(h.name) for h in hs]
        inv = self._inv
        mean = [inv(i, p["point"][k].double().numpy()) for k, i in enumerate(idx)]
        lower, upper = {}, {}
        for lv in levels:
            a = (1 - lv / 100) / 2
            if c.head == "gaussian":
                z = normal_quantile(1 - a)
                lo = p["point"] - z * p["std"]
                hi = p["point"] + z * p["std"]
            elif c.head == "quantile":
                qs = np.asarray(c.quantiles)
                jl, jh = np.nonzero(np.isclose(qs, a))[0], np.nonzero(np.isclose(qs, 1 - a))[0]
                if not (len(jl) and len(jh)):
                    continue
                lo, hi = p["quantiles"][..., jl[0]], p["quantiles"][..., jh[0]]
            else:
                continue
            lower[lv] = [inv(i, lo[k].double().numpy()) for k, i in enumerate(idx)]
            upper[lv] = [inv(i, hi[k].double().numpy()) for k, i in enumerate(idx)]
        for m in mean:
            if not np.isfinite(m).all():  # pragma: no cover - guarded by input validation
                raise FloatingPointError("the forecast is not finite; check the inputs")
        return Forecast([h.name for h in hs], self.series[0].target_names, times, mean,
                        lower, upper)

    def _future_cov(self, future, k: int, h: Series, ft) -> np.ndarray:
        K = h.future.shape[1]
        H = self.config.horizon
        if K == 0:
            return np.zeros((H, 0))
        if future is None:
            raise ValueError(f"the model uses known-future covariates {list(h.future_names)}; "
                             f"pass their next {H} values with predict(..., future=...)")
        import pandas as pd

        if isinstance(future, pd.DataFrame):
            col = self.columns
            f = future if col.get("series") is None else \
                future[future[col["series"]].astype(str) == h.name]
            arr = f[list(h.future_names)].to_numpy(dtype=np.float64)
        else:
            arr = np.asarray(future[k] if isinstance(future, (list, tuple)) else future,
                             dtype=np.float64).reshape(-1, K)
        if arr.shape != (H, K) or not np.isfinite(arr).all():
            raise ValueError(f"future covariates for series {h.name!r} must be {H} finite rows "
                             f"of {K} columns, got shape {arr.shape}")
        return arr

    # -- persistence ----------------------------------------------------------------------------
    KIND, VERSION = "rnnkit.forecaster", 1

    def save(self, path: str | os.PathLike) -> None:
        """Write the model atomically; :func:`rnnkit.load` or :meth:`load` reads it."""
        save(self, path)

    def state(self) -> dict:
        """Everything :meth:`load` needs, as tensors and plain Python values."""
        self._check_fitted()
        s0 = self.series[0]
        return {
            "config": asdict(self.config),
            "dims": [self.net.C, self.net.P, self.net.K], "state_dict": self.net.state_dict(),
            "scaler": self.scaler.state_dict(), "calendar": list(self.calendar), "log": self.log,
            "cov_mean": [[m.tolist() for m in ms] for ms in self._cov_mean],
            "cov_std": [[m.tolist() for m in ms] for ms in self._cov_std],
            "columns": self.columns, "freq": s0.freq,
            "series": [{"name": s.name, "target_names": list(s.target_names),
                        "past_names": list(s.past_names), "future_names": list(s.future_names),
                        "tail": s.target[-self.config.input_len:].tolist(),
                        "time_tail": [str(t) for t in s.time[-self.config.input_len:]],
                        "past_tail": s.past[-self.config.input_len:].tolist(),
                        "future_tail": s.future[-self.config.input_len:].tolist()}
                       for s in self.series],
        }

    @classmethod
    def load(cls, path: str | os.PathLike) -> Forecaster:
        """Rebuild a saved model (``torch.load(weights_only=True)``); it can ``predict`` from
        the end of its training data or from a new ``history``."""
        return cls.from_state(read_state(path, cls.KIND))

    @classmethod
    def from_state(cls, blob: dict) -> Forecaster:
        """The model :meth:`state` describes."""
        import pandas as pd

        cfg = dict(blob["config"])
        cfg["quantiles"] = tuple(cfg["quantiles"])
        self = cls(ForecasterConfig(**cfg))
        self.net = ForecastNet(self.config, *blob["dims"])
        self.net.load_state_dict(blob["state_dict"])
        self.net.eval()
        self.scaler = SeriesScaler.from_state_dict(blob["scaler"])
        self.calendar = tuple(blob["calendar"])
        self.log = bool(blob["log"])
        self._cov_mean = [[np.asarray(m) for m in ms] for ms in blob["cov_mean"]]
        self._cov_std = [[np.asarray(m) for m in ms] for ms in blob["cov_std"]]
        self.columns = blob["columns"]
        freq = blob["freq"]
        self.series = []
        for d in blob["series"]:
            t = pd.DatetimeIndex(pd.to_datetime(d["time_tail"]), freq=freq) if freq else \
                pd.RangeIndex(int(d["time_tail"][0]), int(d["time_tail"][-1]) + 1)
            n = len(d["tail"])
            self.series.append(Series(
                d["name"], t, np.asarray(d["tail"], dtype=np.float64).reshape(n, -1),
                np.asarray(d["past_tail"], dtype=np.float64).reshape(n, -1),
                np.asarray(d["future_tail"], dtype=np.float64).reshape(n, -1), freq,
                tuple(d["target_names"]), tuple(d["past_names"]), tuple(d["future_names"])))
        return self


def load_forecaster(path: str | os.PathLike) -> Forecaster | ForecastEnsemble:
    """A saved :class:`Forecaster` or :class:`ForecastEnsemble` (also what
    :meth:`~rnnkit.forecast.search.ForecastSearch.save` writes), whichever the file
    holds."""
    blob = read_state(path, (Forecaster.KIND, ForecastEnsemble.KIND))
    if parse_tag(blob)[0] == ForecastEnsemble.KIND:
        return ForecastEnsemble.from_state(blob)
    return Forecaster.from_state(blob)


def _train(net: ForecastNet, train: WindowDataset, val: WindowDataset | None,
           c: ForecasterConfig) -> dict:
    """Fit ``net`` with :class:`rnnkit.train.Trainer`, keeping the weights of the best
    validation loss."""
    from torch.utils.data import DataLoader

    from ..train import TrainConfig, Trainer

    g = torch.Generator().manual_seed(c.seed)
    train_dl = DataLoader(train, batch_size=c.batch_size, shuffle=True, drop_last=False,
                          generator=g)
    val_dl = DataLoader(val, batch_size=256) if val is not None else None
    tc = TrainConfig(max_steps=c.max_steps, epochs=10**6, lr=c.lr, weight_decay=c.weight_decay,
                     scheduler="cosine", warmup_steps=min(50, c.max_steps // 10),
                     clip_norm=1.0, eval_every=c.eval_every if val_dl is not None else 0,
                     early_stop_patience=c.patience if val_dl is not None else None,
                     seed=c.seed, max_time=c.max_time, progress=c.progress, device=c.device,
                     log_every=max(c.max_steps, 1))
    keep = _KeepBest()
    trainer = Trainer(net, tc, train_dl, val_dl, callbacks=[keep] if val_dl is not None else [])
    history = trainer.fit()
    if keep.state is not None:
        net.load_state_dict(keep.state)
    return {"steps": trainer.step, "best_val_loss": keep.best,
            "history": history if isinstance(history, (dict, list)) else None}


def plot_forecast(history: Sequence[Series], forecast: Forecast, path: str = "forecast.png",
                  backtest: Any = None, last: int | None = 200, title: str = "") -> str:
    """PNG of each series' history (its ``last`` steps), the forecast and its prediction
    intervals, plus the backtest forecasts of a
    :class:`~rnnkit.forecast.backtest.BacktestResult` when given. Returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(forecast.names)
    fig, axes = plt.subplots(n, 1, figsize=(11, 3.2 * n), squeeze=False)
    by_name = {s.name: s for s in history}
    for i, (ax, name) in enumerate(zip(axes[:, 0], forecast.names)):
        s = by_name.get(name)
        if s is not None:
            k = slice(-last, None) if last else slice(None)
            ax.plot(s.time[k], s.target[k, 0], color="black", lw=1, label="history")
        ax.plot(forecast.time[i], forecast.mean[i][:, 0], color="tab:blue", lw=1.5,
                label="forecast")
        for lv, alpha in zip(sorted(forecast.lower, reverse=True), (0.15, 0.3, 0.45)):
            ax.fill_between(forecast.time[i], forecast.lower[lv][i][:, 0],
                            forecast.upper[lv][i][:, 0], color="tab:blue", alpha=alpha,
                            lw=0, label=f"{lv}% interval")
        if backtest is not None:
            for w, fc in enumerate(backtest.forecasts):
                if name in fc.names:
                    j = fc.names.index(name)
                    ax.plot(fc.time[j], fc.mean[j][:, 0], color="tab:orange", lw=1,
                            label="backtest" if w == 0 else None)
        ax.set_title(f"{title} {name}: {forecast.target_names[0]}".strip())
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


class ForecastEnsemble:
    """``n_models`` :class:`Forecaster` s with seeds ``seed, seed + 1, ...``, averaged: point
    forecasts and interval bounds are the members' means (quantile averaging). Lowers the
    variance of small-data fits; same ``fit`` / ``predict`` / ``save`` API. :meth:`of` builds
    one from fitted forecasters of different settings.

    >>> import numpy as np
    >>> ens = ForecastEnsemble(ForecasterConfig(horizon=3, input_len=8, hidden_size=4,
    ...                                         max_steps=5), n_models=2)
    >>> f = ens.fit(np.sin(np.arange(60.0))).predict(levels=())
    >>> f.mean[0].shape, len(ens.members)
    ((3, 1), 2)
    """

    def __init__(self, config: ForecasterConfig | None = None, n_models: int = 3) -> None:
        if not isinstance(n_models, int) or n_models < 1:
            raise ValueError(f"n_models must be a positive integer, got {n_models!r}")
        self.config = config or ForecasterConfig()
        self.members = [Forecaster(dataclasses.replace(self.config, seed=self.config.seed + k))
                        for k in range(n_models)]

    @classmethod
    def of(cls, members: Sequence[Forecaster]) -> ForecastEnsemble:
        """The mean of given (fitted) forecasters, e.g. of different settings; ``config`` is
        the first one's."""
        members = list(members)  # a generator would be used up by the checks below
        if not members or not all(isinstance(m, Forecaster) for m in members):
            raise ValueError("an ensemble needs at least one forecaster, and only Forecaster "
                             f"objects (an ensemble's own are its .members); got {members!r}")
        for m in members:
            m._check_fitted()
        key = [(m.config.horizon, [s.name for s in m.series], m.series[0].target_names)
               for m in members]
        if any(k != key[0] for k in key):
            raise ValueError("ensemble members must forecast the same horizon of the same "
                             "series and targets; got (horizon, series, targets) = "
                             f"{sorted(set(map(str, key)))}; fit them on the same data")
        heads = {m.config.head for m in members}
        if "point" in heads and len(heads) > 1:
            raise ValueError(f"ensemble members mix a point head with interval heads {heads}: "
                             "the mean would have no intervals; use one kind of head")
        ens = cls.__new__(cls)
        ens.config, ens.members = members[0].config, members
        return ens

    KIND, VERSION = "rnnkit.forecast_ensemble", 1

    def save(self, path: str | os.PathLike) -> None:
        """Write every member into one file, atomically; :func:`rnnkit.load` reads it."""
        save(self, path)

    def state(self) -> dict:
        """Every member's :meth:`Forecaster.state`."""
        return {"members": [m.state() for m in self.members]}

    @classmethod
    def from_state(cls, blob: dict) -> ForecastEnsemble:
        """The ensemble :meth:`state` describes."""
        return cls.of([Forecaster.from_state(b) for b in blob["members"]])

    @classmethod
    def load(cls, path: str | os.PathLike) -> ForecastEnsemble:
        """Rebuild what :meth:`save` wrote (``torch.load(weights_only=True)``)."""
        return cls.from_state(read_state(path, cls.KIND))

    def _history(self, history) -> list[Series]:
        """The series to plot: from the member that keeps the longest saved tail."""
        return max(self.members, key=lambda m: m.config.input_len)._history(history)

    def fit(self, data, **kw: Any) -> ForecastEnsemble:
        for m in self.members:
            m.fit(data, **kw)
        return self

    def predict(self, history=None, future=None, levels: Sequence[int] = (80, 95)) -> Forecast:
        """The members' mean: point forecasts and the bounds of the interval levels they all
        give are averaged."""
        fs = [m.predict(history=history, future=future, levels=levels) for m in self.members]
        f0 = fs[0]

        def avg(get):
            return [np.mean([get(f)[i] for f in fs], axis=0) for i in range(len(f0.names))]

        shared = [lv for lv in f0.lower if all(lv in f.lower for f in fs)]
        return Forecast(f0.names, f0.target_names, f0.time, avg(lambda f: f.mean),
                        {lv: avg(lambda f, lv=lv: f.lower[lv]) for lv in shared},
                        {lv: avg(lambda f, lv=lv: f.upper[lv]) for lv in shared})
