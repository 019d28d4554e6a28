"""The LSTM with peephole connections (Gers & Schmidhuber, 2000)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .base import Cell, LSTMState, lstm_initial_state
from .regularization import Regularized

__all__ = ["PeepholeLSTMCell"]


class PeepholeLSTMCell(Regularized, Cell):
    r"""LSTM whose gates also read the cell state through diagonal "peephole" weights.

    .. math::
        \begin{aligned}
        [a^i_t; a^f_t; a^g_t; a^o_t] &= W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh} \\
        i_t &= \sigma(a^i_t + p_i \odot c_{t-1}), \qquad
        f_t = \sigma(a^f_t + p_f \odot c_{t-1}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot \tanh(a^g_t) \\
        o_t &= \sigma(a^o_t + p_o \odot c_t), \qquad h_t = o_t \odot \tanh(c_t)
        \end{aligned}

    The input and forget gates peek at the old cell state, the output gate at the new one
    (Gers, Schraudolph & Schmidhuber, 2002, "Learning precise timing with LSTM recurrent
    networks", fig. 1). Gate order ``i, f, g, o`` as in torch.

    Shapes: input ``[B, I]``; state :class:`LSTMState` ``(h [B, H], c [B, H])``; output
    ``h_t [B, H]``.
    Parameters: ``weight_ih [4H, I]``, ``weight_hh [4H, H]``, ``bias_ih``, ``bias_hh [4H]``,
    ``weight_ch [3, H]`` (rows ``p_i, p_f, p_o``), all ~ U(-1/sqrt(H), 1/sqrt(H)).
    Options: ``zoneout`` (on ``h`` and ``c``) and ``recurrent_dropout`` (on ``h_{t-1}``).

    >>> cell = PeepholeLSTMCell(4, 8)
    >>> h, c = cell(torch.randn(3, 4))
    >>> tuple(h.shape), tuple(c.shape)
    ((3, 8), (3, 8))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 zoneout: float = 0.0, recurrent_dropout: float = 0.0, device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self._init_regularization(zoneout, recurrent_dropout)
        kw = {"device": device, "dtype": dtype}
        self.input_size, self.hidden_size = input_size, hidden_size
        self.output_size, self.gate_size, self.bias = hidden_size, 4 * hidden_size, bias
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size, **kw))
        self.weight_ch = nn.Parameter(torch.empty(3, hidden_size, **kw))
        self._init_biases(4 * hidden_size, bias, **kw)
        self.reset_parameters()

    initial_state = lstm_initial_state

    def step(self, xp_t: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        h_prev, c_prev = state
        a = xp_t + nn.functional.linear(self.drop_recurrent(h_prev), self.weight_hh,
                                        self.bias_hh)  # [B, 4H]
        a_i, a_f, a_g, a_o = a.chunk(4, dim=-1)
        p_i, p_f, p_o = self.weight_ch  # [H] each
        c = torch.sigmoid(a_f + p_f * c_prev) * c_prev + \
            torch.sigmoid(a_i + p_i * c_prev) * torch.tanh(a_g)
        h = torch.sigmoid(a_o + p_o * c) * torch.tanh(c)
        h, c = self.zone(h, h_prev), self.zone(c, c_prev)
        return h, LSTMState(h, c)
