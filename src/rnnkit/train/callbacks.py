"""Hooks into the training loop. Subclass :class:`Callback` and override what you need.

A callback may stop training cleanly by setting ``trainer.should_stop = True`` (the trainer
finishes the step, evaluates, saves and returns).

>>> class StopAt(Callback):
...     def __init__(self, n):
...         self.n = n
...     def on_step_end(self, trainer, step, logs):
...         if step >= self.n:
...             trainer.should_stop = True
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["Callback", "KeepBest"]


class Callback:
    """Every method is an optional no-op; ``trainer`` is the running
    :class:`~rnnkit.train.Trainer`."""

    def on_fit_start(self, trainer: Any) -> None:
        """Before the first step (after a resume has restored the state)."""

    def step_context(self, trainer: Any) -> contextlib.AbstractContextManager | None:
        """A context manager the next training step's forward and backward pass run inside
        (e.g. a FLOP counter), or ``None``."""
        return None

    def on_step_end(self, trainer: Any, step: int, logs: dict[str, float]) -> None:
        """After optimizer step ``step`` (1-based); ``logs`` has this step's ``loss`` (mean
        over all processes), ``grad_norm`` (pre-clip), ``lr``, ``items`` and the model's
        metrics."""

    def on_eval_end(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        """After an evaluation; ``metrics`` has ``loss`` and the model's metrics."""

    def on_epoch_end(self, trainer: Any, epoch: int) -> None:
        """After epoch ``epoch`` (0-based) and its evaluation."""

    def on_fit_end(self, trainer: Any) -> None:
        """After the last checkpoint, logs and curves are written."""

    def on_fit_stopped(self, trainer: Any, error: BaseException) -> None:
        """Instead of :meth:`on_fit_end` when the fit ends with ``error``: an interruption
        (Ctrl-C, SIGTERM: ``last.pt`` was written) or a failure (a non-finite loss, ...). Only
        this process is stopping: do no collective (DDP) operations here."""


class KeepBest(Callback):
    """Remember the weights with the lowest validation loss (``best``, ``state``, the
    ``best_step`` they were seen at) and every evaluation as ``curve`` ``[(step, loss)]``, so a
    caller can tell a run that was still improving from one that had converged; the caller
    loads ``state`` back after training."""

    def __init__(self) -> None:
        self.best, self.state, self.best_step = float("inf"), None, None
        self.curve: list[tuple[int, float]] = []

    def on_eval_end(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        loss = float(metrics.get("loss", float("inf")))
        self.curve.append((int(step), loss))
        if loss < self.best:
            self.best_step = int(step)
            import copy

            self.best = loss
            self.state = copy.deepcopy(trainer.model.state_dict())
