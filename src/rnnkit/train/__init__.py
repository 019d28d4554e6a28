"""Training that knows RNNs: full and truncated BPTT, clipping, checkpoints, DDP.

>>> from rnnkit.train import Trainer, TrainConfig, BPTTStream, Callback, load_checkpoint
>>> TrainConfig().optimizer
'adamw'
"""

from .callbacks import Callback
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .interrupt import TrainingInterrupted
from .protocol import LossOutput, TaskModel
from .stream import IGNORE_INDEX, BPTTStream
from .trainer import NonFiniteLossError, Trainer, resolve_device

__all__ = [
    "IGNORE_INDEX",
    "BPTTStream",
    "Callback",
    "LossOutput",
    "NonFiniteLossError",
    "TaskModel",
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
]
