"""Training that knows RNNs: full and truncated BPTT, clipping, checkpoints, DDP.

>>> from rnnkit.train import Trainer, TrainConfig, BPTTStream, Callback, load_checkpoint
>>> TrainConfig().optimizer
'adamw'

The names load on first use (PEP 562): the CLI imports :class:`TrainingInterrupted` without
importing torch.
"""

from __future__ import annotations

from .._lazy import lazy_names

#: public name -> the module that defines it
_NAMES = {
    "Callback": "callbacks", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "TrainConfig": "config", "TrainingInterrupted": "interrupt", "LossOutput": "protocol",
    "TaskModel": "protocol", "IGNORE_INDEX": "stream", "BPTTStream": "stream",
    "NonFiniteLossError": "trainer", "Trainer": "trainer", "resolve_device": "trainer",
}

__all__ = sorted(_NAMES)


__getattr__, __dir__ = lazy_names(__name__, _NAMES)
