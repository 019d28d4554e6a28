"""The forecasting wing: multi-step RNN forecasters with intervals, statistical baselines,
settings search and ensembles, backtests and metrics.

The public names are importable from here, e.g. ``from rnnkit.forecast import Forecaster``;
they are loaded lazily, on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "ForecasterConfig": "rnnkit.forecast.config",
    "ForecastNet": "rnnkit.forecast.network",
    "Forecaster": "rnnkit.forecast.forecaster",
    "ForecastEnsemble": "rnnkit.forecast.ensemble",
    "Forecast": "rnnkit.forecast.result",
    "load_forecaster": "rnnkit.forecast.ensemble",
    "plot_forecast": "rnnkit.forecast.plots",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
