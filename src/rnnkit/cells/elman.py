"""The Elman (vanilla) RNN cell."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .base import Cell


class ElmanCell(Cell):
    r"""Elman RNN cell, equal to ``torch.nn.RNNCell``.

    .. math::
        h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})

    where :math:`\phi` is ``tanh`` (default) or ``relu``.

    Shapes: input ``x_t`` ``[B, I]``; state and output ``h_t`` ``[B, H]``.
    Parameters: ``weight_ih [H, I]``, ``weight_hh [H, H]``, ``bias_ih [H]``, ``bias_hh [H]``,
    all initialized ~ U(-1/sqrt(H), 1/sqrt(H)) as in torch.

    >>> cell = ElmanCell(4, 8)
    >>> h = cell(torch.randn(3, 4))
    >>> tuple(h.shape)
    (3, 8)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        kw = {"device": device, "dtype": dtype}
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = hidden_size
        self.gate_size = hidden_size
        self.bias = bias
        self.nonlinearity = nonlinearity
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size, **kw))
        self._init_biases(hidden_size, bias, **kw)
        self.reset_parameters()



    def step(self, xp_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        pre = xp_t + nn.functional.linear(state, self.weight_hh, self.bias_hh)
        h = torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)
        return h, h
