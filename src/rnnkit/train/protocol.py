"""The contract between task models and the :class:`~rnnkit.train.Trainer`.

A task model is an ``nn.Module`` with a ``loss`` method::

    def loss(self, batch, state=None) -> LossOutput

``batch`` is whatever its data loader yields (moved to the device by the trainer if it is a
tensor, or a tuple/list/dict of tensors). ``state`` is the recurrent state carried between
consecutive chunks under truncated BPTT (``None`` at the start of a stream, and always ``None``
under full BPTT). The model returns the mean loss, the state to carry (or ``None``), extra
metrics for the logs, and the number of items (tokens, examples) the mean is over, so the
trainer can average exactly across batches and processes.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

from torch import Tensor

__all__ = ["LossOutput", "TaskModel"]


class LossOutput(NamedTuple):
    """What ``model.loss(batch, state)`` returns.

    Attributes:
        loss: scalar mean loss to backpropagate.
        state: recurrent state to carry into the next chunk (truncated BPTT), else ``None``.
        metrics: extra metrics as ``{name: float or 0-d tensor}``, means over ``weight`` items.
        weight: number of items (tokens, examples) the means are over.
    """

    loss: Tensor
    state: Any = None
    metrics: dict[str, Any] = {}
    weight: int = 1


@runtime_checkable
class TaskModel(Protocol):
    """Any module with ``loss(batch, state=None) -> LossOutput`` can be trained."""

    def loss(self, batch: Any, state: Any = None) -> LossOutput:  # pragma: no cover
        ...
