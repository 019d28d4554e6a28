r"""Per-data-set choice of :class:`~rnnkit.forecast.forecaster.Forecaster` settings by validation,
then a seed ensemble of the winner.

Every candidate of ``grid`` (the Cartesian product of its value lists, each applied to the base
:class:`~rnnkit.forecast.config.ForecasterConfig`) is fitted once on the data given to
``fit``. Its validation score is the mean absolute scaled error of its forecasts from every
origin ``o`` of the held-out tail (the last ``val_fraction`` of each series, which the
candidate does not train on; it only picks the candidate's best step; raised to one horizon
when that is shorter):

.. math::
    \mathrm{score} = \frac{1}{|S|}\sum_{s\in S}\operatorname{mean}_{o,k,c}
        \frac{|y_{o+k,c} - \hat y_{o+k,c}|}{\operatorname{mean}_{t<e}|y_{t,c} - y_{t-m,c}|},

with ``e`` the series' training end, ``m`` the season and ``k = 0..H-1``: in data units, so
it compares candidates with different transforms or baselines. The ``top_k`` lowest scores
win (default 1); each winner is averaged with ``n_models - 1`` more seeds of its configuration
and the forecast is the mean over all of them (as
:class:`~rnnkit.forecast.ensemble.ForecastEnsemble`). Nothing after the data given to ``fit``
is ever seen, so in a backtest the choice uses only the data before the origin.

``top_k > 1`` is the N-BEATS recipe (Oreshkin et al., 2020: an ensemble over input lengths
and losses as well as seeds): on short series the validation tail holds a few windows, its
ranking is noisy, and a mean over several good settings is more reliable than the single
best-scoring one (``top_k=len(candidates)`` averages every candidate and ignores the scores).

Cost: ``len(candidates) + top_k * (n_models - 1)`` trainings.

>>> import numpy as np
>>> from rnnkit.forecast import ForecasterConfig
>>> y = 10 + np.sin(np.arange(150) * 2 * np.pi / 12) + np.random.default_rng(0).normal(0, .1, 150)
>>> cfg = ForecasterConfig(horizon=6, input_len=24, season=12, hidden_size=4, max_steps=10)
>>> s = ForecastSearch(cfg, {"baseline": ["last", "seasonal"]}, n_models=2).fit(y)
>>> len(s.scores), s.best_overrides in ({"baseline": "last"}, {"baseline": "seasonal"})
(2, True)
>>> s.predict(levels=()).mean[0].shape
(6, 1)
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..data.timeseries import SeriesTooShortError
from .config import TRAIN_KEYWORDS, ForecasterConfig
from .ensemble import ForecastEnsemble
from .forecaster import Forecaster
from .result import Forecast

__all__ = ["ForecastSearch", "validation_score"]


def _effective(cfg: ForecasterConfig) -> ForecasterConfig:
    """Settings that behave the same map to one config (a seasonal baseline with
    ``season=1`` is the ``"last"`` baseline), so the search trains each model only once."""
    if cfg.season == 1 and cfg.baseline.startswith("seasonal"):
        return dataclasses.replace(cfg, baseline="last")
    return cfg


def validation_score(model: Forecaster) -> float:
    """The scaled validation error of a fitted ``model`` (module docstring): its forecasts from
    every origin of each series' held-out tail, in data units."""
    c = model.config
    errs = []
    for s in model.series:
        n_val = c.validation_steps(len(s))
        if not n_val:
            continue
        end = len(s) - n_val
        origins = range(max(end, c.input_len), len(s) - c.horizon + 1)
        if not origins:
            continue
        fc = model.predict(history=[s.head(o) for o in origins], levels=())
        y = s.target
        m = c.season if end > c.season + 1 else 1
        scale = np.abs(y[m:end] - y[:end - m]).mean(axis=0)                      # [C]
        scale = np.where(scale > 1e-12, scale, 1.0)
        err = [np.abs(y[o:o + c.horizon] - f) / scale for o, f in zip(origins, fc.mean)]
        errs.append(float(np.mean(err)))
    if not errs:
        raise ValueError(f"no validation windows: the model was fitted with "
                         f"val_fraction={c.val_fraction}; fit it with val_fraction > 0")
    return float(np.mean(errs))


class ForecastSearch:
    """Rank the settings of ``grid`` by validation, then average seeds of the ``top_k``
    best.

    Args:
        config: the base :class:`ForecasterConfig` (``val_fraction`` must be > 0).
        grid: ``{field: [values, ...]}`` of :class:`ForecasterConfig` fields to search, e.g.
            ``{"baseline": ["last", "seasonal", "seasonal_mean"], "input_len": [24, 48]}``.
        n_models: seeds of each winner averaged in the final model (its first seed is
            reused).
        top_k: how many of the best-scoring candidates are averaged (at most the number of
            candidates that fit; a larger ``top_k`` averages them all).
        progress: called with a line per fitted network (``"setting 3/8 {'baseline':
            'seasonal'}: validation score 0.912 (14 s)"``); ``None`` (the default): silent.

    After ``fit``: ``scores`` (``[(overrides, score)]`` per distinct candidate, in grid
    order), ``best_overrides`` and ``best_config`` (the lowest score), ``chosen`` (the
    ``top_k`` winners' overrides, best first), ``ensemble`` (a
    :class:`~rnnkit.forecast.ensemble.ForecastEnsemble` of the winners' seeds, which
    ``predict`` and ``save`` use), ``members`` (its forecasters) and
    ``skipped`` (``[(overrides, reason)]``: candidates whose window is longer than a series
    allows, e.g. a long ``input_len`` on a short series; an error if all are).
    """

    def __init__(self, config: ForecasterConfig | None = None,
                 grid: Mapping[str, Sequence[Any]] | None = None, n_models: int = 3,
                 top_k: int = 1, progress: Callable[[str], None] | None = None) -> None:
        self.config = config or ForecasterConfig()
        if not self.config.val_fraction:
            raise ValueError("ForecastSearch scores candidates on a validation tail; set "
                             "val_fraction > 0 in the config")
        if not isinstance(n_models, int) or n_models < 1:
            raise ValueError(f"n_models must be a positive integer, got {n_models!r}")
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        grid = dict(grid or {})
        names = {f.name for f in dataclasses.fields(ForecasterConfig)} - {"train"}
        names |= set(TRAIN_KEYWORDS)  # the training keywords ForecasterConfig routes
        for k, v in grid.items():
            if k not in names:
                raise ValueError(f"grid key {k!r} is not a ForecasterConfig field; choose "
                                 f"from {sorted(names)}")
            if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or not v:
                raise ValueError(f"grid[{k!r}] must be a non-empty list of values, got {v!r}")
        self.grid, self.n_models, self.top_k = grid, n_models, top_k
        self.progress = progress
        self.candidates: list[tuple[dict, ForecasterConfig]] = []
        seen = []
        for values in itertools.product(*grid.values()):
            over = dict(zip(grid, values))
            try:
                cfg = _effective(dataclasses.replace(self.config, **over))  # validates values
            except ValueError as err:
                raise ValueError(f"grid setting {over}: {err}") from None
            if cfg not in seen:
                seen.append(cfg)
                self.candidates.append((over, cfg))
        self.scores: list[tuple[dict, float]] = []
        self.skipped: list[tuple[dict, str]] = []
        self.best_overrides: dict | None = None
        self.best_config: ForecasterConfig | None = None
        self.chosen: list[dict] = []
        self.ensemble: ForecastEnsemble | None = None

    @property
    def members(self) -> list[Forecaster]:
        return self.ensemble.members if self.ensemble is not None else []

    def fit(self, data, **kw: Any) -> ForecastSearch:
        """Fit every candidate on ``data`` (``kw`` as for :meth:`Forecaster.fit`), keep the
        ``top_k`` best by :func:`validation_score` and train ``n_models - 1`` more seeds of
        each."""
        fitted, self.scores, self.skipped = [], [], []
        n = len(self.candidates)
        for i, (over, cfg) in enumerate(self.candidates, 1):
            t = time.perf_counter()
            try:  # validation tails hold at least one horizon (ForecasterConfig.validation_steps)
                model = Forecaster(cfg).fit(data, **kw)
            except SeriesTooShortError as err:  # only a too-long window is skipped
                self.skipped.append((over, str(err)))
                self._say(f"setting {i}/{n} {over}: skipped, its window does not fit the "
                          f"series")
                continue
            fitted.append(model)
            self.scores.append((over, validation_score(model)))
            self._say(f"setting {i}/{n} {over}: validation score {self.scores[-1][1]:.4f} "
                      f"({time.perf_counter() - t:.0f} s)")
        if not fitted:
            raise ValueError("no candidate fits these series: "
                             + "; ".join(f"{o}: {e}" for o, e in self.skipped))
        order = np.argsort([s for _, s in self.scores], kind="stable")[:self.top_k]
        self.best_overrides, self.best_config = self.scores[order[0]][0], fitted[order[0]].config
        self.chosen, members = [], []
        for i in order:
            seeds = ForecastEnsemble(fitted[i].config, self.n_models).members
            for j, m in enumerate(seeds[1:], 2):
                t = time.perf_counter()
                m.fit(data, **kw)
                self._say(f"seed {j}/{self.n_models} of {self.scores[i][0]}: fitted "
                          f"({time.perf_counter() - t:.0f} s)")
            self.chosen.append(self.scores[i][0])
            members += [fitted[i], *seeds[1:]]
        self.ensemble = ForecastEnsemble.of(members)
        return self

    def _say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)

    def predict(self, history=None, future=None,
                levels: Sequence[float] | None = None) -> Forecast:
        """The mean forecast of the winners' seeds (see :meth:`ForecastEnsemble.predict`)."""
        self._check_fitted()
        return self.ensemble.predict(history=history, future=future, levels=levels)

    def save(self, path) -> None:
        """Write the winners' ensemble (:meth:`ForecastEnsemble.save`); read it back with
        :func:`~rnnkit.forecast.ensemble.load_forecaster` or ``ForecastEnsemble.load``."""
        self._check_fitted()
        self.ensemble.save(path)

    def _check_fitted(self) -> None:
        if self.ensemble is None:
            raise RuntimeError("this ForecastSearch is not fitted; call fit(...) first")
