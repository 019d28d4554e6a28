"""The forecasting wing: multi-step RNN forecasters with intervals, statistical baselines,
settings search and ensembles, backtests and metrics.

The public names are importable from here, e.g. ``from rnnkit.forecast import Forecaster``,
and load on first use (``import rnnkit.forecast`` imports no torch);
each module names its own.
"""

from __future__ import annotations

from .._lazy import lazy_names

_NAMES = {
    "ForecasterConfig": "config", "ForecastEnsemble": "ensemble",
    "load_forecaster": "ensemble", "Forecaster": "forecaster", "ForecastNet": "network",
    "plot_forecast": "plots", "Forecast": "result",
    "ForecastCombination": "combine",
    "ESRNN": "esrnn", "ESRNNConfig": "esrnn",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_names(__name__, _NAMES)
