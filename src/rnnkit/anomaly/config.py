"""The settings of an :class:`~rnnkit.anomaly.detector.AnomalyDetector`: the model, its
scores and thresholds in :class:`AnomalyConfig`, training in its one ``train``
(:class:`~rnnkit.train.TrainConfig`) field.

>>> cfg = AnomalyConfig(input_len=16, max_steps=200, seed=3)   # old flat keywords still work
>>> cfg.train.max_steps, cfg.train.warmup_steps, cfg.train.seed, cfg.seed
(200, 20, 3, 3)
>>> AnomalyConfig(input_len=16, train=anomaly_train(200, seed=3)) == cfg
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..train.budget import as_train_config, flat_train_keywords, step_budget
from ..train.config import TrainConfig

__all__ = ["FLAT_TRAIN_KEYWORDS", "AnomalyConfig", "anomaly_train"]

#: the training keywords AnomalyConfig used to hold itself (now fields of ``train``)
FLAT_TRAIN_KEYWORDS = ("max_steps", "lr", "seed", "device")


def anomaly_train(max_steps: int = 500, **overrides: Any) -> TrainConfig:
    """The detectors' default training: :func:`~rnnkit.train.budget.step_budget` of
    ``max_steps`` (lr 3e-3, seed 0, CPU, cosine after ``min(50, max_steps // 10)`` warm-up
    steps); ``overrides`` change any field."""
    return step_budget(max_steps, **{"lr": 3e-3, "seed": 0, "device": "cpu", **overrides})


@flat_train_keywords({k: k for k in FLAT_TRAIN_KEYWORDS}, anomaly_train)
@dataclass
class AnomalyConfig:
    """Settings of :class:`~rnnkit.anomaly.detector.AnomalyDetector`.

    Attributes:
        method: the scorer, "forecast", "autoencoder" or "window" (see
            :mod:`rnnkit.anomaly.scorers`).
        cell: "lstm", "gru", "elman" or any registered cell.
        hidden_size: recurrent units per layer.
        num_layers: stacked recurrent layers.
        input_len: past steps seen by the forecaster / the autoencoder window length W.
        smoothing: span of the exponentially weighted mean of the errors; 1 = none.
        z_range: (low, high, step) of the threshold search.
        prune: minimum relative drop between successive peak errors to keep a flagged run;
            0 = no pruning.
        threshold_window: errors the streaming threshold is computed over.
        clean_z: steps with errors above mean + clean_z * std are replaced by their
            predictions in the model input; 0 = off.
        pool: "window" only: average-pool factor p; the model sees W / p steps, W must be a
            multiple of p.
        batch_size: training windows per step.
        train: the :class:`~rnnkit.train.TrainConfig` (default :func:`anomaly_train`: 500
            steps, lr 3e-3, seed 0, CPU).

    The old flat training keywords ``max_steps``, ``lr``, ``seed`` and ``device`` are still
    accepted (a new ``max_steps`` also sets the warm-up and log interval that follow from it)
    and read and set through ``train``.
    """

    method: str = "forecast"
    cell: str = "lstm"
    hidden_size: int = 32
    num_layers: int = 1
    input_len: int = 32
    smoothing: int = 1
    z_range: tuple[float, float, float] = (2.0, 10.0, 0.5)
    prune: float = 0.13
    threshold_window: int = 1000
    clean_z: float = 3.0
    pool: int = 1
    batch_size: int = 64
    train: TrainConfig = field(default_factory=anomaly_train)

    def __post_init__(self) -> None:
        from .scorers import scorer_class

        self.train = as_train_config(self.train)
        for name in ("hidden_size", "num_layers", "input_len", "batch_size", "smoothing",
                     "threshold_window", "pool"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.train.max_steps, int) or self.train.max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got "
                             f"{self.train.max_steps!r}")
        self.z_range = tuple(float(z) for z in self.z_range)
        if len(self.z_range) != 3 or self.z_range[2] <= 0 or self.z_range[0] > self.z_range[1]:
            raise ValueError(f"z_range must be (low, high, step>0), got {self.z_range}")
        scorer_class(self.method).check(self)
