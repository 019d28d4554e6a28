"""Recurrence equations, one family per module, and the registry that names them.

>>> get_cell("lstm").__name__
'LSTMCell'
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Cell, LSTMState, State, state_map, state_tensors
from .elman import ElmanCell
from .gru import GRUCell
from .lstm import LSTMCell

__all__ = [
    "Cell",
    "ElmanCell",
    "GRUCell",
    "LSTMCell",
    "LSTMState",
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
        raise ValueError(
            f"unknown cell {name!r}; registered cells: {', '.join(sorted(_REGISTRY))}"
        ) from None


def available_cells() -> list[str]:
    """Names of all registered cells."""
    return sorted(_REGISTRY)


register_cell("elman")(ElmanCell)
register_cell("rnn")(ElmanCell)
register_cell("lstm")(LSTMCell)
register_cell("gru")(GRUCell)
