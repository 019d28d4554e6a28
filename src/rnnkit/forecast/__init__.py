"""The forecasting wing: multi-step RNN forecasters with intervals, statistical baselines,
settings search and ensembles, backtests and metrics.

Import each from its own module, e.g. ``from rnnkit.forecast.forecaster import Forecaster``.
"""
