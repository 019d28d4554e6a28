"""Training for a fixed budget of optimizer steps, keeping the best validation weights: the
recipe the forecasting and anomaly wings share (small models on windows of a series).

An application's config holds its model settings and one :class:`TrainConfig` for training;
:func:`step_budget` gives the wings' default training settings, :func:`fit_steps` runs them.

>>> tc = step_budget(200, lr=1e-2)
>>> tc.max_steps, tc.scheduler, tc.warmup_steps, tc.epochs > 10**5
(200, 'cosine', 20, True)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .callbacks import KeepBest
from .config import TrainConfig

__all__ = ["fit_steps", "step_budget"]


def step_budget(max_steps: int = 1000, **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` that stops after ``max_steps`` optimizer steps (epochs
    unbounded), with a cosine schedule after ``min(50, max_steps // 10)`` warm-up steps,
    global-norm clipping at 1, no files and one log record per run; ``overrides`` change any
    field."""
    base = TrainConfig(max_steps=max_steps, epochs=10**6, lr=3e-3, scheduler="cosine",
                       warmup_steps=min(50, max_steps // 10), clip_norm=1.0, progress=False,
                       device="cpu", log_every=max(max_steps, 1), plot=False)
    return dataclasses.replace(base, **overrides)


def fit_steps(model: nn.Module, train: Dataset, val: Dataset | None, config: TrainConfig,
              batch_size: int, val_batch_size: int = 256) -> dict[str, Any]:
    """Train ``model`` on ``train`` (shuffled by a generator seeded with ``config.seed``) with
    :class:`~rnnkit.train.Trainer`; with ``val``, evaluate every ``config.eval_every`` steps,
    stop early after ``config.early_stop_patience`` evaluations without improvement and load
    the best weights back. Returns ``{"steps", "best_val_loss", "history"}``."""
    from .trainer import Trainer

    g = torch.Generator().manual_seed(config.seed)
    train_dl = DataLoader(train, batch_size=batch_size, shuffle=True, drop_last=False,
                          generator=g)
    val_dl = DataLoader(val, batch_size=val_batch_size) if val is not None else None
    if val_dl is None:
        config = dataclasses.replace(config, eval_every=0, early_stop_patience=None)
    keep = KeepBest()
    callbacks = [keep] if val_dl is not None else []
    trainer = Trainer(model, config, train_dl, val_dl, callbacks=callbacks)
    history = trainer.fit()
    if keep.state is not None:
        model.load_state_dict(keep.state)
    return {"steps": trainer.step, "best_val_loss": keep.best,
            "history": history if isinstance(history, (dict, list)) else None}
