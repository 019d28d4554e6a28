"""Drop-in replacements for ``torch.nn.RNN``, ``LSTM``, ``GRU`` and their cells.

Same constructor and forward arguments as torch (``batch_first=False`` by default, ``hx``,
unbatched 2-D input, ``PackedSequence``, ``proj_size``), the same outputs, and state dicts
that load into torch's modules and back. Each is a :class:`rnnkit.Recurrent`, so the extra
keyword ``backend=`` (``"auto"``, ``"loop"``, ``"fused"``, ...) chooses how it runs.

The parameters live in the cells (``named_parameters()`` yields ``cells.0.weight_ih``, ...);
``state_dict()``, ``load_state_dict()`` and attribute access use torch's names
(``weight_ih_l0``, ``bias_hh_l1_reverse``, ``weight_hr_l0``), in torch's order. Unlike
:class:`rnnkit.Recurrent`, the drop-ins do not refuse NaN inputs (torch propagates them).

>>> import torch
>>> ours = LSTM(10, 20, num_layers=2)
>>> theirs = torch.nn.LSTM(10, 20, num_layers=2)
>>> theirs.load_state_dict(ours.state_dict())
<All keys matched successfully>
>>> x = torch.randn(5, 3, 10)
>>> torch.allclose(ours(x)[0], theirs(x)[0], atol=1e-6)
True
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import torch

from .cells import ElmanCell, GRUCell, LSTMCell, LSTMState
from .recurrent import Recurrent

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell"]

# The cells already follow torch's cell API, parameter names and gate order.
RNNCell = ElmanCell

_TORCH_NAME = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
_OUR_NAME = re.compile(r"^cells\.(\d+)\.(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)$")


class _RNNBase(Recurrent):
    """Shared by the drop-ins: torch's argument order, defaults, names and forward."""

    _cell: type

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: torch.dtype | None = None,
        *,
        backend: str = "auto",
        **cell_options: Any,
    ) -> None:
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=3,
            )
        super().__init__(
            self._cell, input_size, hidden_size, num_layers=num_layers,
            bidirectional=bidirectional, dropout=dropout, batch_first=batch_first,
            backend=backend, device=device, dtype=dtype, bias=bias,
            check_finite=False,  # torch propagates NaNs; a drop-in does the same
            **cell_options,
        )
        self.bias = bias
        self.register_state_dict_post_hook(_to_torch_names)
        self.register_load_state_dict_pre_hook(_from_torch_names)

    def forward(self, input, hx=None):  # noqa: A002 - torch's argument names
        """Same as the torch module: ``(output, h_n)`` or ``(output, (h_n, c_n))``."""
        return super().forward(input, hx)

    def flatten_parameters(self) -> None:
        """No-op, for code written for torch (the cells' parameters are used in place)."""

    def _param_index(self, name: str) -> tuple[int, str] | None:
        m = _TORCH_NAME.match(name)
        if m is None:
            return None
        kind, layer, reverse = m.group(1), int(m.group(2)), m.group(3) is not None
        if layer >= self.num_layers or (reverse and not self.bidirectional):
            return None
        return layer * self.num_directions + int(reverse), kind

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            found = self._param_index(name) if "cells" in self._modules else None
            if found is None:
                raise
            k, kind = found
            value = getattr(self.cells[k], kind)
            if value is None:
                raise
            return value

    @property
    def all_weights(self) -> list[list[torch.nn.Parameter]]:
        """Parameters per layer and direction, in torch's order."""
        return [[p for p in cell.parameters()] for cell in self.cells]


def _torch_name(rnn: _RNNBase, k: int, kind: str) -> str:
    layer, direction = divmod(k, rnn.num_directions)
    return f"{kind}_l{layer}{'_reverse' if direction else ''}"


def _to_torch_names(module: _RNNBase, state_dict: dict, prefix: str, local_metadata) -> None:
    for key in list(state_dict):
        if not key.startswith(prefix):
            continue
        m = _OUR_NAME.match(key[len(prefix):])
        if m is not None:
            state_dict[prefix + _torch_name(module, int(m.group(1)), m.group(2))] = \
                state_dict.pop(key)


def _from_torch_names(module: _RNNBase, state_dict: dict, prefix: str, *args) -> None:
    for key in list(state_dict):
        if not key.startswith(prefix):
            continue
        found = module._param_index(key[len(prefix):])
        if found is not None:
            k, kind = found
            state_dict[f"{prefix}cells.{k}.{kind}"] = state_dict.pop(key)


class RNN(_RNNBase):
    r"""Drop-in for ``torch.nn.RNN``: :math:`h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1}
    + b_{hh})` per layer, ``nonlinearity`` ``"tanh"`` or ``"relu"``.

    Shapes (``batch_first=False``): input ``[T, B, I]`` (or ``[T, I]``, or packed),
    ``hx`` ``[L * D, B, H]``; returns ``output [T, B, D * H]`` and ``h_n [L * D, B, H]``.
    """

    _cell = ElmanCell

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
                 dtype: torch.dtype | None = None, *, backend: str = "auto") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype, backend=backend,
                         nonlinearity=nonlinearity)
        self.nonlinearity = nonlinearity


class LSTM(_RNNBase):
    """Drop-in for ``torch.nn.LSTM`` (gates ``i, f, g, o``; optional ``proj_size``).

    Shapes (``batch_first=False``): input ``[T, B, I]`` (or ``[T, I]``, or packed); ``hx`` a
    tuple ``(h_0 [L * D, B, O], c_0 [L * D, B, H])`` with ``O = proj_size or H``; returns
    ``output [T, B, D * O]`` and ``(h_n, c_n)`` as an :class:`~rnnkit.LSTMState`.
    """

    _cell = LSTMCell

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: torch.dtype | None = None, *, backend: str = "auto") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype, backend=backend, proj_size=proj_size)
        self.proj_size = proj_size

    def forward(self, input, hx=None):  # noqa: A002
        """Same as ``torch.nn.LSTM.forward``: ``(output, (h_n, c_n))``."""
        if hx is not None and not isinstance(hx, LSTMState):
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError("LSTM expects hx as a tuple (h_0, c_0)")
            hx = LSTMState(*hx)
        return super().forward(input, hx)


class GRU(_RNNBase):
    """Drop-in for ``torch.nn.GRU`` (gates ``r, z, n``).

    Shapes (``batch_first=False``): input ``[T, B, I]`` (or ``[T, I]``, or packed),
    ``hx`` ``[L * D, B, H]``; returns ``output [T, B, D * H]`` and ``h_n [L * D, B, H]``.
    """

    _cell = GRUCell


