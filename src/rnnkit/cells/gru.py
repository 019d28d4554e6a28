"""The gated recurrent unit cell."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .base import Cell
from .regularization import Regularized


class GRUCell(Regularized, Cell):
    r"""Gated recurrent unit cell, equal to ``torch.nn.GRUCell``.

    .. math::
        \begin{aligned}
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}
        \end{aligned}

    Gate order in the stacked weights is ``r, z, n`` as in torch.

    Shapes: input ``[B, I]``; state and output ``h_t [B, H]``.
    Parameters: ``weight_ih [3H, I]``, ``weight_hh [3H, H]``, ``bias_ih [3H]``, ``bias_hh [3H]``,
    all ~ U(-1/sqrt(H), 1/sqrt(H)).

    Options (keyword-only, off by default; see :mod:`rnnkit.cells.regularization`):
    ``zoneout`` on ``h``, and variational ``recurrent_dropout`` on ``h_{t-1}`` where it enters
    the recurrent projection (the interpolation with ``h_{t-1}`` uses the undropped state).
    With either on, the fused kernels cannot serve the layer.

    >>> cell = GRUCell(4, 8)
    >>> tuple(cell(torch.randn(3, 4)).shape)
    (3, 8)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: torch.dtype | None = None,
        *,
        zoneout: float = 0.0,
        recurrent_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self._init_regularization(zoneout, recurrent_dropout)
        kw = {"device": device, "dtype": dtype}
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = hidden_size
        self.gate_size = 3 * hidden_size
        self.bias = bias
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size, **kw))
        self._init_biases(3 * hidden_size, bias, **kw)
        self.reset_parameters()



    def step(self, xp_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        hp = nn.functional.linear(self.drop_recurrent(state), self.weight_hh,
                                  self.bias_hh)  # [B, 3H]
        x_r, x_z, x_n = xp_t.chunk(3, dim=-1)
        h_r, h_z, h_n = hp.chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h = n + z * (state - n)  # = (1 - z) * n + z * h_{t-1}
        if self.zoneout:
            h = self.zone(h, state)
        return h, h
