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
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import TrainConfig

if TYPE_CHECKING:  # pragma: no cover - annotations only: the configs stay torch-free
    from torch import nn
    from torch.utils.data import Dataset

__all__ = ["as_train_config", "fit_steps", "flat_train_keywords", "retrain", "step_budget"]


def step_budget(max_steps: int = 1000, **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` that stops after ``max_steps`` optimizer steps (epochs
    unbounded), with a cosine schedule after ``min(50, max_steps // 10)`` warm-up steps,
    global-norm clipping at 1, no files and one log record per run; ``overrides`` change any
    field."""
    base = TrainConfig(max_steps=max_steps, epochs=10**6, lr=3e-3, scheduler="cosine",
                       warmup_steps=min(50, max_steps // 10), clip_norm=1.0, progress=False,
                       device="cpu", log_every=max(max_steps, 1), plot=False)
    return dataclasses.replace(base, **overrides)


def retrain(train: TrainConfig, **changes: Any) -> TrainConfig:
    """``train`` with ``changes``; a new ``max_steps`` also sets the warm-up and log interval
    that follow from it, as :func:`step_budget` does."""
    if "max_steps" in changes:
        budget = step_budget(changes["max_steps"])
        changes = {"warmup_steps": budget.warmup_steps, "log_every": budget.log_every,
                   **changes}
    return dataclasses.replace(train, **changes)


def as_train_config(value: Any) -> TrainConfig:
    """``value`` as a :class:`TrainConfig`; a dict is a TOML table or a saved config."""
    if isinstance(value, TrainConfig):
        return value
    if isinstance(value, dict):
        return TrainConfig.from_dict(value)
    raise TypeError(f"train must be a TrainConfig, got {type(value).__name__}")


def flat_train_keywords(keywords: dict[str, str], default: Callable[[], TrainConfig]):
    """Class decorator for an application config dataclass with a ``train: TrainConfig`` field
    that once held its training settings itself: ``cls(lr=..., seed=...)`` (and so
    ``dataclasses.replace``) routes each old keyword into ``train`` (``keywords`` maps old
    name -> TrainConfig field; ``default()`` is the training used when ``train`` is not
    given), any other unknown keyword is a ``TypeError`` naming the known ones, and each old
    name stays readable and settable as a property over ``train``.

    >>> @flat_train_keywords({"lr": "lr", "steps": "max_steps"}, lambda: step_budget(100))
    ... @dataclasses.dataclass
    ... class Cfg:
    ...     hidden: int = 8
    ...     train: TrainConfig = dataclasses.field(default_factory=lambda: step_budget(100))
    >>> c = Cfg(hidden=4, steps=300, lr=1e-2)
    >>> c.train.max_steps, c.train.warmup_steps, c.lr
    (300, 30, 0.01)
    >>> c.lr = 0.5; c.train.lr
    0.5
    """

    def decorate(cls: type) -> type:
        init = cls.__init__
        fields = [f.name for f in dataclasses.fields(cls)]

        @functools.wraps(init)
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            unknown = sorted(set(kwargs) - set(fields) - set(keywords))
            if unknown:
                raise TypeError(f"{cls.__name__} got unknown setting(s) {', '.join(unknown)}; "
                                f"model settings: {', '.join(fields)}; training settings go "
                                f"in train=TrainConfig(...) (or the keywords "
                                f"{', '.join(keywords)})")
            flat = {keywords[k]: kwargs.pop(k) for k in list(kwargs) if k in keywords}
            if flat:
                train = kwargs.get("train")
                train = default() if train is None else as_train_config(train)
                kwargs["train"] = retrain(train, **flat)
            init(self, *args, **kwargs)

        def accessor(new: str) -> property:
            def get(self: Any) -> Any:
                return getattr(self.train, new)

            def set_(self: Any, value: Any) -> None:
                self.train = retrain(self.train, **{new: value})

            return property(get, set_, doc=f"``train.{new}`` (the old flat name)")

        cls.__init__ = __init__
        for old, new in keywords.items():
            setattr(cls, old, accessor(new))
        return cls

    return decorate


def fit_steps(model: nn.Module, train: Dataset, val: Dataset | None, config: TrainConfig,
              batch_size: int, val_batch_size: int = 256) -> dict[str, Any]:
    """Train ``model`` on ``train`` (shuffled by a generator seeded with ``config.seed``) with
    :class:`~rnnkit.train.Trainer`; with ``val``, evaluate every ``config.eval_every`` steps,
    stop early after ``config.early_stop_patience`` evaluations without improvement and load
    the best weights back. Returns ``{"steps", "best_val_loss", "history"}``.

    Under ``torchrun`` the Trainer trains data-parallel: every rank draws the same shuffled
    batches (the generator is seeded with ``config.seed``), takes its share of each and
    averages gradients; the validation loss is combined over the ranks, so early stopping and
    the best weights agree on every rank. Every rank must call it with the same data."""
    import torch
    from torch.utils.data import DataLoader

    from .callbacks import KeepBest
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
