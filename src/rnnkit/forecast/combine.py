r"""Forecast combinations: :class:`ForecastCombination` weights several forecasters per series
by their errors on a rolling-origin validation inside the training data.

Combining forecasts is what the M competitions reward: the M4 benchmark "Comb" is the plain
mean of SES, Holt and damped-trend exponential smoothing, and FFORMA (Montero-Manso et al.,
2020) weights members per series. Here, for ``S`` series and members ``j = 1..M``:

1. **Validation.** On each series' training data, the last ``validation_windows`` origins
   ``o_1 < ... < o_V`` (spaced ``stride`` steps, the last one ``horizon`` steps before the
   end) are scored with :func:`~rnnkit.forecast.backtest.backtest` (``refit=True``: member
   ``j`` is fitted on the data before each origin; ``refit=False``: once, before the first).
   Its error on series ``i`` is the mean
   scaled error over the windows,

   .. math::
       e_{ij} = \frac1V \sum_{v=1}^{V} \mathrm{MASE}_{ijv}.

2. **Weights** ``w_{ij}`` (rows sum to 1; ``weights_``, a DataFrame ``[S, M]``):

   * ``"inverse_error"``: :math:`w_{ij} = e_{ij}^{-1} / \sum_{k \in K_i} e_{ik}^{-1}` for
     ``j`` in :math:`K_i`, the ``top_k`` members of lowest error on series ``i`` (all when
     ``top_k`` is ``None``), else 0. Members with zero error share all the weight.
   * ``"best"``: 1 for the member of lowest :math:`e_{ij}` (ties: the first), else 0.
   * ``"mean"`` / ``"median"``: :math:`w_{ij} = 1/M` (plain baselines; the validation errors
     are still computed for inspection, unless ``validation_windows=0``).

3. **Refit.** Every member is refitted on all the data.

**Prediction.** With member point forecasts :math:`\hat y_{ij} \in \mathbb{R}^{H \times C}`,
``"inverse_error"``/``"best"``/``"mean"`` return :math:`\sum_j w_{ij} \hat y_{ij}` and
``"median"`` the element-wise median over members. Interval bounds at each level are combined
the same way (quantile averaging, Lichtendahl et al. 2013). This is an **approximation**: a
weighted average of quantiles is not the quantile of the mixture of the members'
distributions, and it ignores their correlation; check coverage in a backtest.

Series unknown to the fit (``predict(history=...)`` with new names) get the mean weights over
the fitted series, renormalised.

>>> import numpy as np
>>> from rnnkit.forecast.baselines import SeasonalNaive
>>> y = np.tile([1.0, 3.0, 2.0, 5.0], 12) + np.arange(48) * 0.1
>>> comb = ForecastCombination({"naive": SeasonalNaive(season=1, horizon=4),
...                             "snaive": SeasonalNaive(season=4, horizon=4)},
...                            season=4, horizon=4).fit(y)
>>> comb.weights_.round(3).to_dict("records")
[{'naive': 0.154, 'snaive': 0.846}]
>>> comb.predict(levels=()).mean[0].shape
(4, 1)
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data.timeseries import Series, as_series
from ..train.resumable import FitProgress, Stopped
from .backtest import backtest

__all__ = ["ForecastCombination", "METHODS", "combination_weights"]

METHODS = ("inverse_error", "mean", "median", "best")


def combination_weights(errors: np.ndarray, method: str = "inverse_error",
                        top_k: int | None = None) -> np.ndarray:
    r"""Weights ``[S, M]`` from validation errors ``[S, M]`` (see the module docstring; rows
    sum to 1). Errors must be finite and non-negative.

    >>> combination_weights(np.array([[1.0, 3.0]])).tolist()
    [[0.75, 0.25]]
    """
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 2 or e.shape[1] == 0:
        raise ValueError(f"errors must be a [series, members] array, got shape {e.shape}")
    if not np.isfinite(e).all() or (e < 0).any():
        raise ValueError("validation errors must be finite and >= 0; a member produced a "
                         f"NaN/inf or negative error: {e.tolist()}")
    S, M = e.shape
    if method in ("mean", "median"):
        return np.full((S, M), 1.0 / M)
    if method == "best":
        w = np.zeros((S, M))
        w[np.arange(S), e.argmin(axis=1)] = 1.0
        return w
    if method != "inverse_error":
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    k = M if top_k is None else min(top_k, M)
    w = np.zeros((S, M))
    for i in range(S):
        keep = np.argsort(e[i], kind="stable")[:k]
        ei = e[i, keep]
        if (ei == 0).any():  # a perfect member: 1/0; the perfect ones share the weight
            inv = (ei == 0).astype(float)
        else:
            inv = 1.0 / ei
        w[i, keep] = inv / inv.sum()
    return w


def _is_model(m: Any) -> bool:
    """A model instance (a class, even a model class, is a factory)."""
    return not isinstance(m, type) and hasattr(m, "fit") and hasattr(m, "predict")


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


class ForecastCombination:
    """A per-series weighted combination of forecasters (see the module docstring).

    Args:
        members: ``{name: model or factory}``; a model (with ``fit`` and ``predict``) is copied
            fresh (``copy.deepcopy``) for every fit, a factory is a no-argument callable
            returning a new unfitted model. Every member must forecast ``horizon`` steps.
        method: ``"inverse_error"``, ``"mean"``, ``"median"`` or ``"best"``.
        validation_windows: rolling origins ``V`` scored inside the training data (``0``: no
            validation, only for ``"mean"`` / ``"median"``).
        season: seasonal period of the MASE scale (and nothing else).
        horizon: steps forecast; also the validation windows' length.
        top_k: with ``"inverse_error"``, keep only the ``k`` best members per series.
        stride: steps between validation origins (default ``horizon``).
        refit: refit each member at every validation origin (default); ``False`` fits it once
            on the data before the first origin and lets it condition on the newer history (a
            global RNN's usual use; local models such as ARIMA and ETS re-estimate their
            parameters on each history anyway), which costs one fit instead of ``V``.

    Attributes after :meth:`fit`: ``weights_`` and ``errors_`` (pandas DataFrames, series x
    member), ``validation_`` (``{member: BacktestResult}``), ``models_`` (``{member: fitted
    model}``), ``fit_seconds_`` (``{member: seconds}`` of the final refit).
    """

    def __init__(self, members: Mapping[str, Any], method: str = "inverse_error",
                 validation_windows: int = 3, season: int = 1, horizon: int = 12,
                 top_k: int | None = None, stride: int | None = None,
                 refit: bool = True) -> None:
        if not isinstance(members, Mapping) or not members:
            raise ValueError("members must be a non-empty dict {name: model or factory}, e.g. "
                             "{'ets': ETS(season=12, horizon=12), 'arima': lambda: ARIMA(...)}"
                             f"; got {members!r}")
        for name, m in members.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"member names must be non-empty strings, got {name!r}")
            if not _is_model(m) and not callable(m):
                raise TypeError(f"member {name!r} is neither a model (with fit and predict) "
                                f"nor a factory returning one; got {type(m).__name__}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.validation_windows = _check_int(validation_windows, "validation_windows", 0)
        if self.validation_windows == 0 and method in ("inverse_error", "best"):
            raise ValueError(f"method={method!r} weights members by their validation errors, so "
                             "it needs validation_windows >= 1 (or use method='mean'/'median')")
        self.season = _check_int(season, "season", 1)
        self.horizon = _check_int(horizon, "horizon", 1)
        if top_k is not None:
            top_k = _check_int(top_k, "top_k", 1)
            if method != "inverse_error":
                raise ValueError(f"top_k only applies to method='inverse_error' (got "
                                 f"method={method!r}); 'best' already keeps one member")
        self.stride = None if stride is None else _check_int(stride, "stride", 1)
        self.members, self.method, self.top_k = dict(members), method, top_k
        self.refit = bool(refit)
        self.weights_ = self.errors_ = None
        self.validation_: dict = {}
        self.models_: dict = {}
        self.fit_seconds_: dict[str, float] = {}
        self.series: list[Series] = []

    def _fresh(self, name: str) -> Any:
        m = self.members[name]
        if _is_model(m):
            return copy.deepcopy(m)
        model = m()
        if not (hasattr(model, "fit") and hasattr(model, "predict")):
            raise TypeError(f"the factory of member {name!r} returned a "
                            f"{type(model).__name__}, not a model with fit and predict")
        return model

    def fit(self, data, progress: str | os.PathLike | FitProgress | None = None,
            key: str = "", **kw: Any) -> ForecastCombination:
        """Validate, weight and refit the members on ``data`` (DataFrame / array / Series list;
        ``kw`` as for :func:`~rnnkit.data.timeseries.as_series`).

        ``progress``: a file that keeps every member validated or fitted so far, and an ES-RNN
        member's training loop when the fit is stopped in it (:mod:`rnnkit.forecast.progress`):
        on SIGINT or SIGTERM the fit saves after the step in flight and raises
        :class:`~rnnkit.train.TrainingInterrupted`; ``fit`` again with the same data, members
        and file continues and gives the same combination as a fit that was never stopped
        (members that cannot be saved, see :meth:`state`, are fitted again). ``validation_``
        then holds only the members validated in this call. An outer combination passes its
        own :class:`~rnnkit.train.resumable.FitProgress` and a ``key`` naming this one in it
        (its units are kept under ``key/``): the member protocol the ES-RNN follows too.
        """
        from .progress import fitting

        series = as_series(data, **kw)
        with fitting(progress, self._describe(), series) as run:
            return self._fit(series, run, f"{key}/" if key else "")

    def _describe(self) -> dict:
        """The settings a progress file must match: this combination's and its members'."""
        def member(m: Any) -> Any:
            if isinstance(m, ForecastCombination):
                return m._describe()
            if not _is_model(m):  # a factory: what it makes
                made = m()
                return member(made) if _is_model(made) else type(made).__name__
            cfg = getattr(m, "config", None)
            if dataclasses.is_dataclass(cfg):
                return {"class": type(m).__name__, **dataclasses.asdict(cfg)}
            import inspect

            params = [p for p in inspect.signature(type(m).__init__).parameters
                      if p not in ("self", "args", "kwargs")]
            return {"class": type(m).__name__,
                    **{p: repr(getattr(m, p, None)) for p in params}}

        return {"model": "combination", "method": self.method,
                "validation_windows": self.validation_windows, "season": self.season,
                "horizon": self.horizon, "top_k": self.top_k, "stride": self.stride,
                "refit": self.refit, "members": {n: member(m) for n, m in self.members.items()}}

    def _fit(self, series: list[Series], run: FitProgress | None,
             prefix: str) -> ForecastCombination:
        import time

        import pandas as pd

        names = list(self.members)
        # as many validation windows as the shortest series has room for (backtest needs
        # H + (V - 1) * stride + season + 2 steps); none: equal weights
        stride = self.stride or self.horizon
        room = min(len(s) for s in series) - self.horizon - max(self.season, 1) - 2
        n_val = min(self.validation_windows, room // stride + 1 if room >= 0 else 0)
        if n_val < self.validation_windows:
            import warnings

            warnings.warn(f"ForecastCombination: the shortest series ({min(map(len, series))} "
                          f"steps) has room for {n_val} of the {self.validation_windows} "
                          f"validation windows of horizon {self.horizon}; " +
                          ("the weights use those" if n_val else
                           "the members get equal weights (a mean combination)") +
                          "; lower validation_windows or horizon to choose yourself",
                          stacklevel=2)
        if n_val:
            errors = np.zeros((len(series), len(names)))
            for j, name in enumerate(names):
                key = f"{prefix}val/{name}"
                if run is not None and run.get(key) is not None:  # validated before a stop
                    errors[:, j] = run.get(key)
                    continue

                def fit(model, hist, k, key=key):
                    return _fit_member(model, hist, run, f"{key}/w{k}")

                try:
                    res = backtest(lambda name=name: self._fresh(name), series, self.horizon,
                                   n_windows=n_val, stride=self.stride,
                                   refit=self.refit, season=self.season, levels=(), fit=fit)
                except (Stopped, KeyboardInterrupt):
                    raise
                except Exception as err:
                    raise type(err)(f"validating combination member {name!r}: {err}") from err
                self.validation_[name] = res
                per = res.scores.groupby("series", sort=False)["mase"].mean()
                errors[:, j] = [per[s.name] for s in series]
                if run is not None:  # the errors are what is kept; the fitted models go
                    run.drop([k for k in run.units if k.startswith(f"{key}/")])
                    run.put(key, errors[:, j].tolist())
            self.errors_ = pd.DataFrame(errors, index=[s.name for s in series], columns=names)
            w = combination_weights(errors, self.method, self.top_k)
        else:
            w = np.full((len(series), len(names)), 1.0 / len(names))
        self.weights_ = pd.DataFrame(w, index=[s.name for s in series], columns=names)
        self.models_, self.fit_seconds_ = {}, {}
        for name in names:
            t0 = time.perf_counter()
            self.models_[name] = _fit_member(self._fresh(name), series, run,
                                             f"{prefix}fit/{name}")
            self.fit_seconds_[name] = time.perf_counter() - t0
        self.series = series
        return self

    def _weights_for(self, names: Sequence[str]) -> np.ndarray:
        w = self.weights_
        default = w.to_numpy().mean(axis=0)
        default = default / default.sum()
        return np.stack([w.loc[n].to_numpy() if n in w.index else default for n in names])

    def predict(self, history=None, future=None, levels: Sequence[float] | None = None):
        """The combined :class:`~rnnkit.forecast.result.Forecast` of the members' forecasts
        (``history``, ``future``, ``levels`` passed to each member's ``predict``). Interval
        levels are those every member returns; their bounds are combined like the means (an
        approximation, see the module docstring)."""
        from .result import Forecast

        if not self.models_:
            raise RuntimeError("ForecastCombination is not fitted; call fit(data) first")
        fcs = [m.predict(history=history, future=future, levels=levels)
               for m in self.models_.values()]
        f0 = fcs[0]
        for name, f in zip(self.models_, fcs):
            if list(f.names) != list(f0.names) or any(
                    a.shape != b.shape for a, b in zip(f.mean, f0.mean)):
                raise ValueError(f"member {name!r} forecast series {list(f.names)} with shapes "
                                 f"{[a.shape for a in f.mean]}, member "
                                 f"{next(iter(self.models_))!r} {list(f0.names)} with "
                                 f"{[a.shape for a in f0.mean]}; every member must forecast "
                                 f"the same series for horizon={self.horizon}")
        W = self._weights_for([str(n) for n in f0.names])  # [S, M]

        def comb(get) -> list[np.ndarray]:
            out = []
            for i in range(len(f0.names)):
                stack = np.stack([get(f)[i] for f in fcs])  # [M, H, C]
                if self.method == "median":
                    out.append(np.median(stack, axis=0))
                else:
                    out.append(np.tensordot(W[i], stack, axes=1))
            return out

        shared = [lv for lv in f0.lower if all(lv in f.lower for f in fcs)]
        return Forecast(list(f0.names), f0.target_names, f0.time, comb(lambda f: f.mean),
                        {lv: comb(lambda f, lv=lv: f.lower[lv]) for lv in shared},
                        {lv: comb(lambda f, lv=lv: f.upper[lv]) for lv in shared})

    # -- saving ----------------------------------------------------------------------------

    KIND, VERSION = "rnnkit.forecast_combination", 1

    def state(self) -> dict:
        """Settings, ``weights_`` / ``errors_`` and every fitted member: rnnkit models
        (:class:`~rnnkit.forecast.Forecaster`, :class:`~rnnkit.forecast.ForecastEnsemble`) by
        their own ``state()``, the statistical baselines (:mod:`rnnkit.forecast.baselines`) by
        their settings, the ARIMA orders / ETS forms they chose and their fitted series. Other
        members (e.g. wrappers of other libraries) cannot be saved. ``validation_`` is not
        kept."""
        if not self.models_:
            raise RuntimeError("ForecastCombination is not fitted; call fit(data) before save")

        def frame(df):
            return None if df is None else {"index": [str(i) for i in df.index],
                                            "columns": list(df.columns),
                                            "values": df.to_numpy().tolist()}

        return {"method": self.method, "validation_windows": self.validation_windows,
                "season": self.season, "horizon": self.horizon, "top_k": self.top_k,
                "stride": self.stride, "refit": self.refit, "weights": frame(self.weights_),
                "errors": frame(self.errors_), "fit_seconds": dict(self.fit_seconds_),
                "series": [_series_state(x) for x in self.series],
                "members": {n: _member_state(n, m) for n, m in self.models_.items()}}

    @classmethod
    def from_state(cls, blob: dict) -> ForecastCombination:
        """The combination :meth:`state` describes; its members are the fitted models, which
        also serve as templates (copied) when it is fitted again."""
        import pandas as pd

        def frame(d):
            return None if d is None else pd.DataFrame(d["values"], index=d["index"],
                                                       columns=d["columns"], dtype=float)

        models = {n: _member_from_state(d) for n, d in blob["members"].items()}
        obj = cls(models, blob["method"], blob["validation_windows"], blob["season"],
                  blob["horizon"], blob["top_k"], blob["stride"], blob.get("refit", True))
        obj.models_, obj.fit_seconds_ = models, dict(blob["fit_seconds"])
        obj.weights_, obj.errors_ = frame(blob["weights"]), frame(blob["errors"])
        obj.series = [_series_from_state(d) for d in blob["series"]]
        return obj

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted combination to ``path`` (:meth:`state`; ``rnnkit.load`` or
        :meth:`load` reads it back). Members other than rnnkit models and the statistical
        baselines raise ``NotImplementedError``."""
        from ..saving import save

        save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ForecastCombination:
        """Read a file :meth:`save` wrote."""
        from ..saving import read_state, rebuild

        return rebuild(cls, read_state(path, cls.KIND, version=cls.VERSION), path)


# -- member and series states --------------------------------------------------------------------

_BASELINES = ("SeasonalNaive", "Naive2", "ARIMA", "ETS")


def _series_state(s: Series) -> dict:
    return {"name": s.name, "freq": s.freq, "time": [str(t) for t in s.time],
            "target": s.target.tolist(), "past": s.past.tolist(), "future": s.future.tolist(),
            "target_names": list(s.target_names), "past_names": list(s.past_names),
            "future_names": list(s.future_names)}


def _series_from_state(d: dict) -> Series:
    import pandas as pd

    n = len(d["target"])
    time = (pd.DatetimeIndex(pd.to_datetime(d["time"]), freq=d["freq"]) if d["freq"] else
            pd.RangeIndex(int(d["time"][0]), int(d["time"][0]) + n) if n else pd.RangeIndex(0))

    def arr(v):
        return np.asarray(v, dtype=np.float64).reshape(n, -1)

    return Series(d["name"], time, arr(d["target"]), arr(d["past"]), arr(d["future"]),
                  d["freq"], tuple(d["target_names"]), tuple(d["past_names"]),
                  tuple(d["future_names"]))


def _member_state(name: str, m: Any) -> dict:
    import inspect

    from . import baselines

    cls = type(m)
    if isinstance(getattr(cls, "KIND", None), str) and callable(getattr(m, "state", None)):
        return {"type": "rnnkit", "kind": cls.KIND, "state": m.state()}
    if cls.__name__ in _BASELINES and getattr(baselines, cls.__name__) is cls:
        params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        orders = [[k, j, list(o), list(so), bool(ic), np.asarray(pr, float).tolist()]
                  for (k, j), (o, so, ic, pr) in getattr(m, "orders", {}).items()]
        forms = [[k, j, t, bool(d), se] for (k, j), (t, d, se) in getattr(m, "forms", {}).items()]
        return {"type": "baseline", "class": cls.__name__,
                "init": {p: getattr(m, p) for p in params}, "orders": orders, "forms": forms,
                "series": [_series_state(x) for x in m.series]}
    raise NotImplementedError(
        f"combination member {name!r} is a {cls.__name__}, which cannot be saved: a "
        f"ForecastCombination saves rnnkit models (Forecaster, ForecastEnsemble) and the "
        f"statistical baselines ({', '.join(_BASELINES)}) only; refit it from the data instead, "
        f"or keep the weights with comb.weights_.to_csv(path)")


def _fit_member(model: Any, data: list[Series], run: FitProgress | None, key: str) -> Any:
    """``model`` fitted on ``data``, and kept in ``run`` under ``key`` (once there, reloaded
    instead of fitted again). A member whose ``fit`` takes ``progress=`` and ``key=`` keeps its
    own units under ``key/`` (a combination) or its training loop under ``key#loop`` (the
    ES-RNN) until it is done."""
    if run is None:
        model.fit(data)
        return model
    done = run.get(key)
    if done is not None:
        return _member_from_state(done)
    if _fits_with_progress(model):
        model.fit(data, progress=run, key=key)
    else:
        model.fit(data)
    run.drop([k for k in run.units if k.startswith(f"{key}/") or k == f"{key}#loop"])
    try:
        state = _member_state(key, model)
    except NotImplementedError:  # a member that cannot be saved is fitted again on resume
        run.check()
        return model
    run.put(key, state)
    return model


def _fits_with_progress(model: Any) -> bool:
    """Whether ``model.fit`` takes ``progress=`` and ``key=`` (the ES-RNN, a combination)."""
    import inspect

    try:
        params = inspect.signature(model.fit).parameters
    except (TypeError, ValueError):
        return False
    return "progress" in params and "key" in params


def _member_from_state(d: dict) -> Any:
    from . import baselines

    if d["type"] == "rnnkit":
        from ..saving import KINDS, _resolve

        if d["kind"] not in KINDS:
            raise ValueError(f"a combination member is of kind {d['kind']!r}, unknown to this "
                             f"rnnkit; upgrade rnnkit to read it")
        return _resolve(KINDS[d["kind"]]).from_state(d["state"])
    if d["class"] not in _BASELINES:
        raise ValueError(f"unknown baseline member class {d['class']!r}")
    m = getattr(baselines, d["class"])(**d["init"])
    if hasattr(m, "orders"):
        m.orders = {(k, j): (tuple(o), tuple(so), ic, np.asarray(pr, dtype=np.float64))
                    for k, j, o, so, ic, pr in d["orders"]}
    if hasattr(m, "forms"):
        m.forms = {(k, j): (t, dm, se) for k, j, t, dm, se in d["forms"]}
    m.series = [_series_from_state(x) for x in d["series"]]
    return m
