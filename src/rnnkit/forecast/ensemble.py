"""Averages of forecasters: :class:`ForecastEnsemble` (seeds of one config, or fitted
forecasters of different settings) and :func:`load_forecaster`, which reads either kind of
saved file."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.timeseries import Series
from ..saving import Savable, parse_tag, read_state, rebuild
from .config import ForecasterConfig
from .forecaster import Forecaster
from .result import Forecast

__all__ = ["ForecastEnsemble", "load_forecaster"]


class ForecastEnsemble(Savable):
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
        train = self.config.train
        self.members = [Forecaster(dataclasses.replace(
            self.config, train=dataclasses.replace(train, seed=train.seed + k)))
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

    KIND, VERSION = "rnnkit.forecast_ensemble", 2  # 2: members' configs as in Forecaster 2


    def state(self) -> dict:
        """Every member's :meth:`Forecaster.state`."""
        return {"members": [m.state() for m in self.members]}

    @classmethod
    def from_state(cls, blob: dict) -> ForecastEnsemble:
        """The ensemble :meth:`state` describes."""
        return cls.of([Forecaster.from_state(b) for b in blob["members"]])


    def _history(self, history) -> list[Series]:
        """The series to plot: from the member that keeps the longest saved tail."""
        return max(self.members, key=lambda m: m.config.input_len)._history(history)

    def fit(self, data, **kw: Any) -> ForecastEnsemble:
        for m in self.members:
            m.fit(data, **kw)
        return self

    def predict(self, history=None, future=None,
                levels: Sequence[float] | None = None) -> Forecast:
        """The members' mean: point forecasts and the bounds of the interval levels they all
        give are averaged (``levels`` as for :meth:`Forecaster.predict`: every member must give
        a level asked for; ``None``, the levels all members give by default)."""
        fs = [m.predict(history=history, future=future, levels=levels) for m in self.members]
        f0 = fs[0]

        def avg(get):
            return [np.mean([get(f)[i] for f in fs], axis=0) for i in range(len(f0.names))]

        shared = [lv for lv in f0.lower if all(lv in f.lower for f in fs)]
        return Forecast(f0.names, f0.target_names, f0.time, avg(lambda f: f.mean),
                        {lv: avg(lambda f, lv=lv: f.lower[lv]) for lv in shared},
                        {lv: avg(lambda f, lv=lv: f.upper[lv]) for lv in shared})


def load_forecaster(path: str | os.PathLike) -> Any:
    """The forecast model a file holds: a saved :class:`Forecaster`, :class:`ForecastEnsemble`
    (also what :meth:`~rnnkit.forecast.search.ForecastSearch.save` writes),
    :class:`~rnnkit.forecast.esrnn.ESRNN` or
    :class:`~rnnkit.forecast.combine.ForecastCombination`, whichever it is. Another file
    (another rnnkit kind, a corrupt or foreign one, one of a newer rnnkit) raises an error
    saying what it is and which command makes a forecast model."""
    from ..saving import KINDS, _check_version, _resolve

    classes = {Forecaster.KIND: Forecaster, ForecastEnsemble.KIND: ForecastEnsemble,
               FORECAST_KINDS[0]: None, FORECAST_KINDS[1]: None}
    blob = read_state(path, tuple(classes), version=10**9)  # each kind's version: below
    kind, version = parse_tag(blob)
    cls = classes[kind] or _resolve(KINDS[kind])
    _check_version(os.fspath(path), (kind, version), cls.VERSION)
    return rebuild(cls, blob, path)


#: the kinds besides Forecaster's and ForecastEnsemble's that :func:`load_forecaster` reads
FORECAST_KINDS = ("rnnkit.esrnn", "rnnkit.forecast_combination")
