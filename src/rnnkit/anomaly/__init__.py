"""The anomaly-detection wing: forecast-error, reconstruction and window scorers, dynamic
thresholds, the union of detectors and detection metrics. It uses the forecasting wing's
network through its public name (:class:`rnnkit.forecast.forecaster.ForecastNet`).

Import each from its own module, e.g. ``from rnnkit.anomaly.detector import AnomalyDetector``.
"""
