"""Training that knows RNNs: full and truncated BPTT, clipping, checkpoints, DDP."""

from .protocol import LossOutput, TaskModel

__all__ = ["LossOutput", "TaskModel"]
