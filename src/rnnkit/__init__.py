"""rnnkit: recurrent neural networks done right, on PyTorch.

>>> import torch, rnnkit
>>> layer = rnnkit.Recurrent("gru", input_size=3, hidden_size=5)
>>> out, h = layer(torch.randn(2, 7, 3))
>>> tuple(out.shape), tuple(h.shape)
((2, 7, 5), (1, 2, 5))

``rnnkit.nn`` holds drop-ins for ``torch.nn.RNN/LSTM/GRU``; :func:`rnnkit.save` and
:func:`rnnkit.load` write and read every rnnkit model, ensemble, detector and tokenizer.
"""

from . import nn
from .backends import available_backends, register_backend
from .cells import (
    Cell,
    ElmanCell,
    GRUCell,
    LSTMCell,
    LSTMState,
    available_cells,
    get_cell,
    register_cell,
)
from .recurrent import Recurrent
from .saving import load, register_kind, save

__version__ = "0.1.0"

__all__ = [
    "Cell",
    "ElmanCell",
    "GRUCell",
    "LSTMCell",
    "LSTMState",
    "Recurrent",
    "available_backends",
    "available_cells",
    "get_cell",
    "load",
    "nn",
    "register_backend",
    "register_cell",
    "register_kind",
    "save",
]
