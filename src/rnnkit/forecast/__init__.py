"""The forecasting wing: multi-step RNN forecasters with intervals, statistical baselines,
settings search and ensembles, backtests and metrics.

The public names are importable from here, e.g. ``from rnnkit.forecast import Forecaster``;
each module names its own.
"""

from .config import ForecasterConfig
from .ensemble import ForecastEnsemble, load_forecaster
from .forecaster import Forecaster
from .network import ForecastNet
from .plots import plot_forecast
from .result import Forecast

__all__ = ["Forecast", "ForecastEnsemble", "ForecastNet", "Forecaster", "ForecasterConfig",
           "load_forecaster", "plot_forecast"]
