"""rnnkit: recurrent neural networks done right, on PyTorch.

>>> import torch, rnnkit
>>> layer = rnnkit.Recurrent("gru", input_size=3, hidden_size=5)
>>> out, h = layer(torch.randn(2, 7, 3))
>>> tuple(out.shape), tuple(h.shape)
((2, 7, 5), (1, 2, 5))

``rnnkit.nn`` holds drop-ins for ``torch.nn.RNN/LSTM/GRU``; :func:`rnnkit.save` and
:func:`rnnkit.load` write and read every rnnkit model, ensemble, detector and tokenizer;
:func:`rnnkit.export` writes any of them as ONNX, and :mod:`rnnkit.onnx` runs those files
with onnxruntime alone.

The names below load on first use (PEP 562), so ``import rnnkit`` itself imports nothing
heavy: the CLI's ``--help`` and the torch-free :mod:`rnnkit.onnx` runtime stay fast.
"""

from __future__ import annotations

from ._lazy import lazy_names

__version__ = "0.1.0"

#: public name -> the module that defines it
_NAMES = {
    "Cell": "cells", "ElmanCell": "cells", "GRUCell": "cells", "LSTMCell": "cells",
    "LSTMState": "cells", "available_cells": "cells", "get_cell": "cells",
    "register_cell": "cells",
    "available_backends": "backends", "register_backend": "backends",
    "Recurrent": "recurrent",
    "load": "saving", "register_kind": "saving", "save": "saving",
}
#: subpackages reached as attributes (``rnnkit.export`` is also callable: ``rnnkit.export(
#: model, path)``, see :mod:`rnnkit.export`)
_SUBMODULES = ("nn", "export", "onnx")

__all__ = sorted([*_NAMES, *_SUBMODULES])


__getattr__, __dir__ = lazy_names(__name__, _NAMES, _SUBMODULES)
