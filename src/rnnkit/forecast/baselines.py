r"""Classical forecasting baselines in the same ``fit`` / ``predict`` API as
:class:`~rnnkit.forecast.forecaster.Forecaster`, for side-by-side tables.

* :class:`SeasonalNaive` — :math:`\hat y_{T+h} = y_{T+h-m\lceil h/m \rceil}` (``season=1``:
  the naive last-value forecast), with the textbook interval
  :math:`\hat\sigma\sqrt{\lfloor (h-1)/m \rfloor + 1}` from in-sample seasonal-naive residuals.
* :class:`Naive2` — the M4 competition's benchmark behind OWA: the last value of the
  seasonally adjusted series, re-seasonalised (classical multiplicative decomposition, used only
  when the lag-``m`` autocorrelation passes the 90 % test
  :math:`|r_m| > 1.645 \sqrt{(1 + 2\sum_{k<m} r_k^2)/T}`; else the plain naive forecast).
* :class:`ARIMA` — automatic order search with ``pmdarima.auto_arima`` (seasonal for
  ``season <= 12``; longer seasons use Fourier terms as regressors, i.e. dynamic harmonic
  regression).
* :class:`ETS` — statsmodels' ``ETSModel``: error/trend/damping/seasonality chosen by AICc.

These are *local* models: ``predict(history=...)`` re-estimates the parameters on that history
(the ARIMA order and the ETS form found by the first forecast are kept, as is usual in
backtests). Each target column is modelled on its own.

>>> import numpy as np
>>> m = SeasonalNaive(season=4, horizon=3).fit(np.arange(8.0))
>>> m.predict(levels=()).mean[0][:, 0].tolist()
[4.0, 5.0, 6.0]
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from ..data.timeseries import Series, as_series, check_length, future_index
from .result import Forecast, check_levels, normal_quantile

__all__ = ["ARIMA", "ETS", "Naive2", "SeasonalNaive", "seasonal_indices"]


class _Local:
    """Shared plumbing: keep the series, loop over series and target columns."""

    name = "local"

    def __init__(self, season: int = 1, horizon: int = 12) -> None:
        if not isinstance(season, int) or season < 1:
            raise ValueError(f"season must be a positive integer, got {season!r}")
        if not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
        self.season, self.horizon = season, horizon
        self.series: list[Series] = []

    def fit(self, data, time=None, target=None, series=None, freq=None, fill="raise", **_):
        self.series = as_series(data, time, target, series, freq=freq, fill=fill)
        check_length(self.series, self.min_length(), f"{type(self).__name__}")
        return self

    def min_length(self) -> int:
        return self.season + 1

    def predict(self, history=None, future=None,
                levels: Sequence[float] | None = None) -> Forecast:
        """Forecast ``horizon`` steps after each series (``history``: the series to forecast
        from instead of the fitted ones) with intervals at ``levels`` percent (any level;
        ``None``: 80 and 95)."""
        if not self.series and history is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(...) first")
        levels = check_levels(levels)
        hs = self.series if history is None else as_series(history)
        check_length(hs, self.min_length(), f"{type(self).__name__}")
        H = self.horizon
        means, lows, highs = [], {lv: [] for lv in levels}, {lv: [] for lv in levels}
        for k, s in enumerate(hs):
            cols = [self._forecast_1d(s.target[:, j], (k, j), levels)
                    for j in range(s.target.shape[1])]
            means.append(np.stack([c[0] for c in cols], axis=1))
            for lv in levels:
                lows[lv].append(np.stack([c[1][lv][0] for c in cols], axis=1))
                highs[lv].append(np.stack([c[1][lv][1] for c in cols], axis=1))
        for m in means:
            if not np.isfinite(m).all():
                raise FloatingPointError(f"{type(self).__name__} produced a non-finite "
                                         "forecast; the series may be degenerate")
        return Forecast([s.name for s in hs], hs[0].target_names,
                        [future_index(s.time, H) for s in hs], means, lows, highs)

    def _forecast_1d(self, y: np.ndarray, key, levels):  # pragma: no cover - abstract
        raise NotImplementedError


class SeasonalNaive(_Local):
    """Repeat the last season (``season=1``: the last value)."""

    name = "seasonal_naive"

    def _forecast_1d(self, y, key, levels):
        m, H = self.season, self.horizon
        h = np.arange(1, H + 1)
        mean = y[len(y) - m + (h - 1) % m]
        resid = y[m:] - y[:-m]
        sigma = np.sqrt(np.mean(resid ** 2)) if len(resid) else 0.0
        sd = sigma * np.sqrt((h - 1) // m + 1)
        iv = {lv: (mean - normal_quantile(0.5 + lv / 200) * sd,
                   mean + normal_quantile(0.5 + lv / 200) * sd) for lv in levels}
        return mean, iv


def seasonal_indices(y: np.ndarray, m: int) -> np.ndarray | None:
    """The M4 rule for Naive2: multiplicative seasonal indices ``[m]`` (phase ``k`` is step
    ``t`` with ``t % m == k``; mean 1) of ``y`` from a classical decomposition (centred
    ``2 x m`` moving average), or ``None`` when ``m == 1``, the series is shorter than
    ``3 m``, has a value ``<= 0`` or fails the 90 % autocorrelation test at lag ``m``.

    >>> t = np.arange(48)
    >>> idx = seasonal_indices(10 + np.sin(2 * np.pi * t / 12), 12)
    >>> idx.shape, bool(abs(idx.mean() - 1) < 1e-9), seasonal_indices(np.arange(1.0, 49), 1)
    ((12,), True, None)
    """
    y = np.asarray(y, dtype=float)
    T = len(y)
    if m <= 1 or T < 3 * m or (y <= 0).any():
        return None
    d = y - y.mean()
    den = float(d @ d)
    if den == 0.0:
        return None
    r = np.array([float(d[k:] @ d[:T - k]) / den for k in range(1, m + 1)])
    if abs(r[-1]) <= 1.645 * np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / T):
        return None
    w = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    trend = np.convolve(y, w, mode="valid")             # centred: trend[j] is step j + k
    k = (len(w) - 1) // 2
    ratio = y[k:k + len(trend)] / trend
    phase = np.arange(k, k + len(trend)) % m
    idx = np.array([ratio[phase == p].mean() for p in range(m)])
    return idx / idx.mean()


class Naive2(_Local):
    r"""The M4 benchmark Naive2 (see the module docstring): naive on the seasonally adjusted
    series; intervals from the adjusted series' one-step naive residuals,
    :math:`\hat\sigma\sqrt{h}`, re-seasonalised."""

    name = "naive2"

    def _forecast_1d(self, y, key, levels):
        m, H, T = self.season, self.horizon, len(y)
        idx = seasonal_indices(y, m)
        s_in = np.ones(T) if idx is None else idx[np.arange(T) % m]
        s_out = np.ones(H) if idx is None else idx[np.arange(T, T + H) % m]
        adj = y / s_in
        mean = adj[-1] * s_out
        resid = np.diff(adj)
        sigma = np.sqrt(np.mean(resid ** 2)) if len(resid) else 0.0
        sd = sigma * np.sqrt(np.arange(1, H + 1)) * s_out
        iv = {lv: (mean - normal_quantile(0.5 + lv / 200) * sd,
                   mean + normal_quantile(0.5 + lv / 200) * sd) for lv in levels}
        return mean, iv


def _fourier(t: np.ndarray, period: int, k: int) -> np.ndarray:
    cols = []
    for i in range(1, k + 1):
        cols += [np.sin(2 * np.pi * i * t / period), np.cos(2 * np.pi * i * t / period)]
    return np.stack(cols, axis=1)


class ARIMA(_Local):
    """Auto-ARIMA (``pmdarima.auto_arima``, stepwise search by AIC). Seasonal ARIMA for
    ``season <= 12``; for longer seasons ``fourier_k`` sine/cosine pairs of period ``season``
    enter as regressors. The search is bounded (p <= ``max_p``, q <= ``max_q``, P, Q <= 1,
    p+q+P+Q <= ``max_order``) and ``max_history`` caps the steps used, to keep backtests to
    seconds per series. The order (and whether there is an intercept) found by the first
    forecast of a series is kept (refitting without the searched intercept would forecast
    with a different model); later forecasts re-estimate the parameters by maximum
    likelihood, started from the previous estimate (fewer iterations than a cold start)."""

    name = "arima"

    def __init__(self, season: int = 1, horizon: int = 12, max_history: int | None = 300,
                 fourier_k: int = 3, max_p: int = 2, max_q: int = 2, max_order: int = 4) -> None:
        super().__init__(season, horizon)
        self.max_history, self.fourier_k = max_history, fourier_k
        self.max_p, self.max_q, self.max_order = max_p, max_q, max_order
        self.orders: dict = {}

    def _forecast_1d(self, y, key, levels):
        try:
            import pmdarima as pm
        except ModuleNotFoundError as err:  # pragma: no cover
            raise ModuleNotFoundError("the ARIMA baseline needs pmdarima; install it with "
                                      "`pip install rnnkit[data]`", name="pmdarima") from err
        n0 = len(y)
        if self.max_history and len(y) > self.max_history:
            y = y[-self.max_history:]
        m, H = self.season, self.horizon
        t = np.arange(n0 - len(y), n0 + H, dtype=float)
        X = Xf = None
        seasonal = 1 < m <= 12 and len(y) >= 3 * m
        if m > 12:
            F = _fourier(t, m, self.fourier_k)
            X, Xf = F[:len(y)], F[len(y):]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if key not in self.orders:
                model = pm.auto_arima(y, X=X, seasonal=seasonal, m=m if seasonal else 1,
                                      stepwise=True, suppress_warnings=True,
                                      error_action="ignore", max_p=self.max_p,
                                      max_q=self.max_q, max_P=1, max_Q=1,
                                      max_order=self.max_order, maxiter=30)
            else:
                order, sorder, intercept, start = self.orders[key]
                model = pm.ARIMA(order=order, seasonal_order=sorder, with_intercept=intercept,
                                 start_params=start, suppress_warnings=True).fit(y, X=X)
            self.orders[key] = (model.order, model.seasonal_order, model.with_intercept,
                                model.params())
            mean = np.asarray(model.predict(H, X=Xf), dtype=float)
            iv = {}
            for lv in levels:
                _, ci = model.predict(H, X=Xf, return_conf_int=True, alpha=1 - lv / 100)
                iv[lv] = (np.asarray(ci[:, 0], float), np.asarray(ci[:, 1], float))
        return mean, iv


class ETS(_Local):
    """Exponential smoothing state-space model (statsmodels ``ETSModel``). Candidates: additive
    error; no / additive / damped trend; no / additive seasonality (when ``1 < season`` and two
    full seasons exist) — the lowest AICc wins. As for :class:`ARIMA`, the form chosen by the
    first forecast of a series is kept and later forecasts re-estimate its parameters.
    ``max_history`` caps the steps used."""

    name = "ets"

    def __init__(self, season: int = 1, horizon: int = 12, max_history: int | None = 1500) -> None:
        super().__init__(season, horizon)
        self.max_history = max_history
        self.forms: dict = {}

    def _forecast_1d(self, y, key, levels):
        import pandas as pd
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        if self.max_history and len(y) > self.max_history:
            y = y[-self.max_history:]
        y = pd.Series(y)  # statsmodels' prediction frames need an index
        m, H = self.season, self.horizon
        seasons = [None, "add"] if m > 1 and len(y) >= 2 * m + 2 else [None]
        forms = [self.forms[key]] if key in self.forms else \
            [(t, d, s) for t, d in ((None, False), ("add", False), ("add", True)) for s in seasons]
        best, best_aic = None, np.inf
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for trend, damped, seas in forms:
                try:
                    res = ETSModel(y, error="add", trend=trend, damped_trend=damped,
                                   seasonal=seas, seasonal_periods=m if seas else None
                                   ).fit(disp=False, maxiter=200)
                except (ValueError, np.linalg.LinAlgError):
                    continue
                if np.isfinite(res.aicc) and res.aicc < best_aic:
                    best, best_aic, self.forms[key] = res, res.aicc, (trend, damped, seas)
            if best is None:
                raise ValueError("no ETS model could be fitted; the series may be too short "
                                 "or constant")
            pred = best.get_prediction(start=len(y), end=len(y) + H - 1)
            mean = np.asarray(pred.predicted_mean, dtype=float)
            iv = {}
            for lv in levels:
                frame = pred.summary_frame(alpha=1 - lv / 100)
                iv[lv] = (frame["pi_lower"].to_numpy(float), frame["pi_upper"].to_numpy(float))
        return mean, iv
