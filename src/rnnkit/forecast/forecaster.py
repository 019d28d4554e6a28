"""The user-facing RNN forecaster: :class:`Forecaster` fits a
:class:`~rnnkit.forecast.network.ForecastNet` on series (scaling, covariates, calendar,
validation tail), predicts in the data's units and saves itself.

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

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

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
from ..saving import Savable
from ..train.budget import fit_steps
from .config import ForecasterConfig
from .network import ForecastNet
from .result import Forecast, normal_quantile

__all__ = ["Forecaster"]


class Forecaster(Savable):
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
        window = f"input_len={c.input_len} + horizon={c.horizon}"
        check_length(self.series, c.input_len + c.horizon, window,
                     "give a longer series or lower input_len or horizon")
        check_length(self.series, c.min_length(),  # no silent training without validation
                     f"{window} plus a validation tail (val_fraction={c.val_fraction:g} of the "
                     f"series, at least horizon={c.horizon} steps)",
                     "give a longer series or lower input_len or horizon, or set "
                     "val_fraction=0 to train without validation (no choice of the best step)")
        n_val = [c.validation_steps(len(s)) for s in self.series]
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
            # validation windows forecast the held-out tail (at least one horizon, so there is
            # at least one window); their inputs may reach back
            val = WindowDataset(tg, c.input_len, c.horizon, pa, fu, start=train_end,
                                stride=max(1, c.horizon // 2))
        torch.manual_seed(c.train.seed)
        self.net = ForecastNet(c, s0.target.shape[1], s0.past.shape[1], fu[0].shape[1])
        self.history = fit_steps(self.net, train, val, c.train, c.batch_size)
        self.net.eval()
        best = self.history["best_val_loss"]
        if val is not None and not math.isfinite(best):
            raise ValueError(f"the validation loss is {best} after {self.history['steps']} "
                             f"steps: the model does not forecast the validation tail; lower "
                             f"lr or check the data for extreme values")
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

    def predict(self, history=None, future=None,
                levels: Sequence[float] | None = None) -> Forecast:
        """Forecast ``horizon`` steps after the end of each series.

        Args:
            history: the recent data to forecast from (DataFrame with the training columns, an
                array, or Series); ``None`` forecasts from the end of the training data. At
                least ``input_len`` steps are needed.
            future: known-future covariates over the horizon when the model was trained with
                them: per series ``[H, K]`` arrays (a list), or a DataFrame with the time,
                series and covariate columns.
            levels: central prediction-interval levels in percent (gaussian head: any; quantile
                head: those whose quantile pairs exist, e.g. 80 for 0.1/0.9; point head: none;
                another level is an error, see :meth:`ForecasterConfig.interval_levels`);
                ``None``: the head's default ((80, 95), the quantile pairs' levels, none).
        """
        self._check_fitted()
        levels = self.config.interval_levels(levels)
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
            else:  # a quantile head (interval_levels allows only its quantile pairs' levels)
                qs = np.asarray(c.quantiles)
                jl, jh = np.nonzero(np.isclose(qs, a))[0], np.nonzero(np.isclose(qs, 1 - a))[0]
                lo, hi = p["quantiles"][..., jl[0]], p["quantiles"][..., jh[0]]
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
    #: version 2 nests the training settings in ``config["train"]``; version 1 files (and the
    #: untagged ones before them) hold a flat config, whose keys ForecasterConfig still takes
    KIND, VERSION = "rnnkit.forecaster", 2


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
    def from_state(cls, blob: dict) -> Forecaster:
        """The model :meth:`state` describes (also the flat config of older files)."""
        import pandas as pd

        self = cls(ForecasterConfig(**blob["config"]))  # nested or old flat training keys
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
