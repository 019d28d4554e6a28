"""Recurrence equations, one family per module, and the registry that names them.

>>> get_cell("lstm").__name__
'LSTMCell'
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Cell, LSTMState, State, state_map, state_tensors
from .convlstm import ConvLSTMCell
from .elman import ElmanCell
from .gru import GRUCell
from .indrnn import IndRNNCell
from .layernorm import LayerNormGRUCell, LayerNormLSTMCell
from .lstm import LSTMCell
from .minimal import MinGRUCell, MinLSTMCell
from .peephole import PeepholeLSTMCell

__all__ = [
    "Cell",
    "ConvLSTMCell",
    "ElmanCell",
    "GRUCell",
    "IndRNNCell",
    "LSTMCell",
    "LSTMState",
    "LayerNormGRUCell",
    "LayerNormLSTMCell",
    "MinGRUCell",
    "MinLSTMCell",
    "PeepholeLSTMCell",
    "State",
    "available_cells",
    "get_cell",
    "register_cell",
    "state_map",
    "state_tensors",
]

_REGISTRY: dict[str, type[Cell]] = {}


def register_cell(name: str) -> Callable[[type[Cell]], type[Cell]]:
    """Class decorator adding a cell to the registry under ``name``."""

    def add(cls: type[Cell]) -> type[Cell]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"a cell named {name!r} is already registered")
        _REGISTRY[name] = cls
        return cls

    return add


def get_cell(name: str) -> type[Cell]:
    """The cell class registered under ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"cell must be a registered cell ({', '.join(sorted(_REGISTRY))}); "
                         f"unknown cell {name!r}") from None


def available_cells(feature_dims: int | None = 1) -> list[str]:
    """Names of the registered cells whose steps take features of rank ``feature_dims``
    (:attr:`Cell.feature_dims`): ``1``, the default, lists the sequence cells (``[B, T, I]``
    input) that every task model can use; ``3`` the spatial ones (``[B, T, C, H, W]``, e.g.
    ``"convlstm"``); ``None`` all of them.

    >>> "lstm" in available_cells(), available_cells(3)
    (True, ['convlstm'])
    """
    return sorted(name for name, cls in _REGISTRY.items()
                  if feature_dims is None or cls.feature_dims == feature_dims)


register_cell("elman")(ElmanCell)
register_cell("rnn")(ElmanCell)
register_cell("lstm")(LSTMCell)
register_cell("gru")(GRUCell)
register_cell("layernorm_lstm")(LayerNormLSTMCell)
register_cell("layernorm_gru")(LayerNormGRUCell)
register_cell("peephole_lstm")(PeepholeLSTMCell)
register_cell("indrnn")(IndRNNCell)
register_cell("mingru")(MinGRUCell)
register_cell("minlstm")(MinLSTMCell)
register_cell("convlstm")(ConvLSTMCell)
