"""The anomaly-detection wing: forecast-error, reconstruction and window scorers, dynamic
thresholds, the union of detectors and detection metrics. It uses the forecasting wing's
network through its public name (:class:`rnnkit.forecast.ForecastNet`).

One concept per module: :mod:`~rnnkit.anomaly.config` (:class:`AnomalyConfig`),
:mod:`~rnnkit.anomaly.scorers` (one :class:`Scorer` per ``method``),
:mod:`~rnnkit.anomaly.networks`, :mod:`~rnnkit.anomaly.thresholds`,
:mod:`~rnnkit.anomaly.detector` (:class:`AnomalyDetector`), :mod:`~rnnkit.anomaly.result`,
:mod:`~rnnkit.anomaly.union`, :mod:`~rnnkit.anomaly.baselines`,
:mod:`~rnnkit.anomaly.metrics` and :mod:`~rnnkit.anomaly.plots`. The public names are
importable from here, e.g. ``from rnnkit.anomaly import AnomalyDetector``.
"""

from __future__ import annotations

from .._lazy import lazy_names

_NAMES = {
    "RollingZScore": "baselines", "AnomalyConfig": "config", "anomaly_train": "config",
    "AnomalyDetector": "detector", "as_binary": "metrics", "f1_scores": "metrics",
    "point_adjust": "metrics", "LSTMAutoencoder": "networks", "plot_anomalies": "plots",
    "Detection": "result", "SCORERS": "scorers", "ForecastErrorScorer": "scorers",
    "ReconstructionScorer": "scorers", "Scorer": "scorers", "WindowScorer": "scorers",
    "register_scorer": "scorers", "beat_window": "thresholds",
    "dynamic_threshold": "thresholds", "estimate_period": "thresholds",
    "pooled_window": "thresholds", "prune_anomalies": "thresholds", "AnomalyUnion": "union",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_names(__name__, _NAMES)
