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

from .baselines import RollingZScore
from .config import AnomalyConfig, anomaly_train
from .detector import AnomalyDetector
from .metrics import as_binary, f1_scores, point_adjust
from .networks import LSTMAutoencoder
from .plots import plot_anomalies
from .result import Detection
from .scorers import (
    SCORERS,
    ForecastErrorScorer,
    ReconstructionScorer,
    Scorer,
    WindowScorer,
    register_scorer,
)
from .thresholds import (
    beat_window,
    dynamic_threshold,
    estimate_period,
    pooled_window,
    prune_anomalies,
)
from .union import AnomalyUnion

__all__ = ["SCORERS", "AnomalyConfig", "AnomalyDetector", "AnomalyUnion", "Detection",
           "ForecastErrorScorer", "LSTMAutoencoder", "ReconstructionScorer", "RollingZScore",
           "Scorer", "WindowScorer", "anomaly_train", "as_binary", "beat_window",
           "dynamic_threshold", "estimate_period", "f1_scores", "plot_anomalies",
           "point_adjust", "pooled_window", "prune_anomalies", "register_scorer"]
