"""Settings of :class:`~rnnkit.series.classifier.SeriesClassifier`, without torch (the CLI
builds its flags from this dataclass without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MODELS", "SeriesClassifierConfig"]

#: model name -> the recurrent branch's cell (None: FCN alone)
MODELS = {"fcn": None, "lstm-fcn": "lstm", "gru-fcn": "gru"}


@dataclass
class SeriesClassifierConfig:
    """Settings of :class:`SeriesClassifier` (``[series]`` table of ``rnnkit classify train``).

    Attributes:
        models: comma-separated candidates chosen among by cross-validation: fcn, lstm-fcn,
            gru-fcn.
        shuffle: the recurrent branch's input: "on" (dimension shuffle: channels as steps),
            "off" (time steps as steps), "both" (cross-validate both) or "auto" (both when the
            series have at most rnn_max_steps steps, else "on").
        hidden_size: state size of the recurrent branch.
        dropout: dropout on the recurrent branch's output.
        width: scale of the convolution filter counts (1.0 = 128, 256, 128 as in the papers).
        epochs: most epochs of every training run (raised to reach min_steps); the epoch is
            chosen by cross-validation.
        min_steps: at least this many optimizer steps (batches) over the whole training data:
            small data sets get more epochs.
        lr: Adam learning rate (cosine decay to 0 over epochs).
        weight_decay: Adam weight decay.
        batch_size: series per batch.
        cv_folds: stratified folds of the training data for the choice of recipe and epoch
            (1: no choice, the first recipe trained for all epochs).
        max_steps: a longer series of ``T`` steps is pooled over windows of
            ``ceil(T / max_steps)`` steps (to at most this many); shorter ones are kept whole.
        norm: the input features: "global" (every channel standardised over all training
            steps), "log" (first mapped by ``asinh(x / s)``, ``s`` the channel's median
            absolute deviation: magnitudes that differ by orders) or "series+log" (the log
            channels and each series z-normalised on its own), or "auto": "series+log" when the
            training series' standard deviations spread over more than 10 times (10th to 90th
            percentile), else "global".
        pool: how those windows are pooled: "mean", "max" (keeps spikes) or "mean+max"
            (both, as two channels per channel).
        rnn_max_steps: with shuffle "auto", the longest series (after averaging) whose steps
            the recurrent branch also reads one by one.
        combine: which recipes are refit: "best" (the top one of the cross-validation),
            "band" (every recipe within one standard error of the top one's held-out
            accuracy, and at least one series) or "auto" (the band when the average of its
            held-out probabilities is at least as accurate on the folds as the top recipe
            alone, else the top one).
        ensemble: models refit on all the training data per kept recipe (seeds seed,
            seed + 1, ...); the probabilities of all are averaged.
        seed: seed of the folds, the initialisation and the batch order.
    """

    models: str = "fcn,lstm-fcn,gru-fcn"
    shuffle: str = "auto"
    hidden_size: int = 8
    dropout: float = 0.8
    width: float = 1.0
    epochs: int = 60
    min_steps: int = 1000
    lr: float = 3e-3
    weight_decay: float = 0.0
    batch_size: int = 16
    cv_folds: int = 3
    max_steps: int = 512
    norm: str = "auto"
    pool: str = "mean"
    rnn_max_steps: int = 64
    combine: str = "auto"
    ensemble: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        from ..checks import choice, positive_ints

        positive_ints(hidden_size=self.hidden_size, epochs=self.epochs, min_steps=self.min_steps,
                      batch_size=self.batch_size, cv_folds=self.cv_folds,
                      max_steps=self.max_steps, rnn_max_steps=self.rnn_max_steps,
                      ensemble=self.ensemble)
        choice("shuffle", self.shuffle, ("auto", "on", "off", "both"))
        choice("norm", self.norm, ("auto", "global", "log", "series+log"))
        choice("pool", self.pool, ("mean", "max", "mean+max"))
        choice("combine", self.combine, ("auto", "best", "band"))
        for m in self.model_list():
            choice("models", m, tuple(MODELS))
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}")
        if self.width <= 0 or self.lr <= 0:
            raise ValueError(f"width and lr must be positive, got width={self.width!r}, "
                             f"lr={self.lr!r}")

    def model_list(self) -> list[str]:
        return [m.strip() for m in self.models.split(",") if m.strip()]
