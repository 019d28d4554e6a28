"""The settings of a :class:`~rnnkit.forecast.forecaster.Forecaster`: the model and its data
windows in :class:`ForecasterConfig`, training in its one ``train``
(:class:`~rnnkit.train.TrainConfig`) field.

>>> cfg = ForecasterConfig(horizon=6, max_steps=200, lr=1e-2)   # old flat keywords still work
>>> cfg.train.max_steps, cfg.train.lr, cfg.train.warmup_steps
(200, 0.01, 20)
>>> ForecasterConfig(horizon=6, train=forecast_train(200, lr=1e-2)) == cfg
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..train.budget import as_train_config, flat_train_keywords, step_budget
from ..train.config import TrainConfig

__all__ = ["BASELINES", "DECODERS", "HEADS", "TRAIN_KEYWORDS", "ForecasterConfig",
           "forecast_train"]

HEADS = ("point", "gaussian", "quantile")
DECODERS = ("direct", "autoregressive")
BASELINES = ("last", "seasonal", "seasonal_mean", "none")

#: the training keywords ForecasterConfig used to hold itself -> their TrainConfig field
TRAIN_KEYWORDS = {"max_steps": "max_steps", "lr": "lr", "weight_decay": "weight_decay",
                  "eval_every": "eval_every", "patience": "early_stop_patience", "seed": "seed",
                  "max_time": "max_time", "progress": "progress", "device": "device"}


def forecast_train(max_steps: int = 1000, **overrides: Any) -> TrainConfig:
    """The forecasters' default training: :func:`~rnnkit.train.budget.step_budget` of
    ``max_steps`` with lr 3e-3, an evaluation every 100 steps and early stopping after 5
    evaluations without improvement; ``overrides`` change any field."""
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    return step_budget(max_steps, **{"lr": 3e-3, "eval_every": 100, "early_stop_patience": 5,
                                     **overrides})


@flat_train_keywords(TRAIN_KEYWORDS, forecast_train)
@dataclass
class ForecasterConfig:
    """Model settings of :class:`~rnnkit.forecast.forecaster.Forecaster`, plus its training.

    Attributes:
        horizon: H, the steps forecast.
        input_len: L, the past steps seen.
        cell: "lstm", "gru", "elman" or any registered cell.
        hidden_size: recurrent units per layer.
        num_layers: stacked recurrent layers.
        dropout: between recurrent layers.
        decoder: "direct" (one linear map to all steps) or "autoregressive".
        head: "point", "gaussian" or "quantile".
        quantiles: the quantiles of the quantile head.
        point_loss: "mae" or "mse" (point head).
        baseline: "last", "seasonal", "seasonal_mean" or "none": what the network corrects
            (see :mod:`rnnkit.forecast.network`).
        ar_window: past steps of LSTNet's linear autoregressive highway added to the
            baseline; 0 = none, at most input_len.
        season: period m of the seasonal baselines.
        transform: "none", "log" or "auto" (log when every training value is positive).
        calendar: "auto", or a list from hour, dayofweek, dayofmonth, dayofyear, month,
            quarter; () for none.
        holidays: dates flagged as a known-future 0/1 covariate (off by default).
        batch_size: training windows per step.
        val_fraction: last part of each series held out to pick the best step, at least one
            horizon (see :meth:`validation_steps`); 0 = no validation.
        train: the :class:`~rnnkit.train.TrainConfig` (default :func:`forecast_train`:
            1000 steps, lr 3e-3, evaluation every 100 steps, patience 5, CPU; these small
            models are usually fastest on the CPU).

    The old flat training keywords (``max_steps``, ``lr``, ``weight_decay``, ``eval_every``,
    ``patience``, ``seed``, ``max_time``, ``progress``, ``device``) are still accepted and
    read and set: they go to and come from ``train`` (see
    :func:`~rnnkit.train.budget.flat_train_keywords`).
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
    batch_size: int = 64
    val_fraction: float = 0.1
    train: TrainConfig = field(default_factory=forecast_train)

    def __post_init__(self) -> None:
        self.train = as_train_config(self.train)  # a dict: a TOML table or a saved config
        for name, choices in (("head", HEADS), ("decoder", DECODERS), ("baseline", BASELINES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
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

    # -- what these settings need and give ------------------------------------------------------
    def validation_steps(self, length: int) -> int:
        """Steps at the end of a series of ``length`` steps held out for validation:
        ``val_fraction`` of them, but at least one ``horizon`` (one validation window); 0 when
        ``val_fraction`` is 0.

        >>> ForecasterConfig(horizon=7, val_fraction=0.1).validation_steps(30)
        7
        """
        if not self.val_fraction:
            return 0
        return max(int(round(length * self.val_fraction)), self.horizon)

    def min_length(self) -> int:
        """The fewest steps a series needs for training: ``input_len + horizon`` for one
        training window, plus its :meth:`validation_steps`.

        >>> ForecasterConfig(horizon=7, input_len=14).min_length()
        28
        """
        n = self.input_len + self.horizon
        while n - self.validation_steps(n) < self.input_len + self.horizon:
            n += 1
        return n

    def interval_levels(self, levels: Sequence[float] | None = None) -> tuple[float, ...]:
        """The prediction-interval levels (percent) a model of these settings gives for the
        requested ``levels``: the gaussian head any level, the quantile head those whose
        quantiles ``q`` and ``1 - q`` both exist (0.1 and 0.9 give 80), the point head none.
        ``None`` asks for the head's default: (80, 95), every quantile pair's level, none. A
        level the head cannot give is an error naming those it can and how to get others.

        >>> ForecasterConfig(head="quantile", quantiles=(0.1, 0.5, 0.9)).interval_levels()
        (80,)
        >>> ForecasterConfig(head="quantile").interval_levels((80, 95))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: levels 95: not available from this model's quantile head (quantiles 0.1, \
0.5, 0.9), which gives levels 80; ask for those, or train with head='gaussian' (any level) ...
        """
        from .result import check_levels

        if self.head == "gaussian":
            return check_levels(levels)
        pairs = {} if self.head == "point" else {
            _percent(1 - 2 * q): q for q in sorted(self.quantiles)
            if q < 0.5 and any(math.isclose(1 - q, p) for p in self.quantiles)}
        levels = check_levels(levels, default=tuple(pairs))
        missing = [lv for lv in levels if not any(math.isclose(lv, a) for a in pairs)]
        if not missing:
            return levels
        asked = " ".join(f"{lv:g}" for lv in missing)
        if self.head == "point":
            raise ValueError(f"levels {asked}: not available from this model's point head, "
                             f"which gives no intervals; leave the levels out, or train with "
                             f"head='gaussian' (any level) or head='quantile'")
        gives = " ".join(f"{lv:g}" for lv in pairs) or "none"
        need = ", ".join(f"{(1 - lv / 100) / 2:g} and {(1 + lv / 100) / 2:g}" for lv in missing)
        raise ValueError(f"levels {asked}: not available from this model's quantile head "
                         f"(quantiles {', '.join(f'{q:g}' for q in self.quantiles)}), which "
                         f"gives levels {gives}; ask for those, or train with head='gaussian' "
                         f"(any level) or with quantiles that include {need}")


def _percent(x: float) -> float:
    """``x`` in percent, rounded off float noise (an int when whole: 0.8 -> 80)."""
    v = round(100 * x, 6)
    return int(v) if v.is_integer() else v
