r"""Optimizers and learning-rate schedules named by :class:`~rnnkit.train.TrainConfig`.

Cosine with linear warm-up (``W`` warm-up steps, ``S`` total steps, peak ``lr``, floor
``min_lr``), as a multiplier of the peak at optimizer step ``s`` (0-based):

.. math::
    m(s) = \begin{cases} (s + 1) / W & s < W \\
    r + (1 - r) \tfrac12 \bigl(1 + \cos(\pi \min(1, (s - W) / \max(1, S - W)))\bigr)
    & s \ge W \end{cases}, \qquad r = \mathrm{min\_lr} / \mathrm{lr}

>>> cosine_warmup(0, warmup=4, total=10), cosine_warmup(3, warmup=4, total=10)
(0.25, 1.0)
>>> round(cosine_warmup(10, warmup=4, total=10, floor=0.1), 3)
0.1
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch import nn

from .config import TrainConfig

__all__ = ["build_optimizer", "build_scheduler", "cosine_warmup"]


def cosine_warmup(step: int, warmup: int, total: int | None, floor: float = 0.0) -> float:
    """The lr multiplier at optimizer step ``step``; ``total=None`` means constant after
    warm-up."""
    if step < warmup:
        return (step + 1) / warmup
    if total is None:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(params: Any, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, Adam or SGD (with ``momentum``) at ``config.lr``."""
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig,
                    total_steps: int | None) -> Any:
    """The schedule; stepped by the trainer after every optimizer step (``LambdaLR``) or after
    every evaluation with the validation loss (``ReduceLROnPlateau``). ``None`` if the lr is
    constant."""
    if config.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.plateau_factor,
            patience=config.plateau_patience, min_lr=config.min_lr)
    if config.scheduler == "none" and not config.warmup_steps:
        return None
    total = total_steps if config.scheduler == "cosine" else None
    if config.scheduler == "cosine" and total is None:
        raise ValueError("scheduler='cosine' needs the number of steps: set max_steps, or give "
                         "training data with a len() (a DataLoader, list or BPTTStream)")
    lam = functools.partial(cosine_warmup, warmup=config.warmup_steps, total=total,
                            floor=config.min_lr / config.lr)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lam)


def is_plateau(scheduler: Any) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]
