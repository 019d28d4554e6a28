"""The LSTM cell (optionally with a projection of the hidden state)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .base import Cell, LSTMState, lstm_initial_state
from .regularization import Regularized


class LSTMCell(Regularized, Cell):
    r"""Long short-term memory cell, equal to ``torch.nn.LSTMCell`` (and, with ``proj_size``,
    to one layer-step of ``torch.nn.LSTM(proj_size=P)``).

    .. math::
        \begin{aligned}
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t &= o_t \odot \tanh(c_t) \quad (\text{then } h_t \leftarrow W_{hr} h_t
               \text{ if } P > 0)
        \end{aligned}

    Gate order in the stacked weights is ``i, f, g, o`` as in torch.

    Shapes: input ``[B, I]``; state :class:`LSTMState` ``(h [B, O], c [B, H])`` with
    ``O = P`` if ``proj_size > 0`` else ``H``; output ``h_t [B, O]``.
    Parameters: ``weight_ih [4H, I]``, ``weight_hh [4H, O]``, ``bias_ih [4H]``,
    ``bias_hh [4H]``, and ``weight_hr [P, H]`` when projecting; all ~ U(-1/sqrt(H), 1/sqrt(H)).

    Options (keyword-only, off by default; see :mod:`rnnkit.cells.regularization`):
    ``zoneout`` on ``h`` and ``c``, and variational ``recurrent_dropout`` on ``h_{t-1}``.
    With either on, the layer runs on the ``loop`` backend (the fused kernels have neither).

    >>> cell = LSTMCell(4, 8)
    >>> h, c = cell(torch.randn(3, 4))
    >>> tuple(h.shape), tuple(c.shape)
    ((3, 8), (3, 8))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: torch.dtype | None = None,
        *,
        proj_size: int = 0,
        zoneout: float = 0.0,
        recurrent_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self._init_regularization(zoneout, recurrent_dropout)
        if proj_size < 0:
            raise ValueError(f"proj_size must be >= 0, got {proj_size}")
        if proj_size >= hidden_size and proj_size > 0:
            raise ValueError(
                f"proj_size ({proj_size}) must be smaller than hidden_size ({hidden_size})"
            )
        kw = {"device": device, "dtype": dtype}
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.proj_size = proj_size
        self.output_size = proj_size or hidden_size
        self.gate_size = 4 * hidden_size
        self.bias = bias
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, self.output_size, **kw))
        self._init_biases(4 * hidden_size, bias, **kw)
        if proj_size:
            self.weight_hr = nn.Parameter(torch.empty(proj_size, hidden_size, **kw))
        else:
            self.register_parameter("weight_hr", None)
        self.reset_parameters()

    initial_state = lstm_initial_state

    def step(self, xp_t: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        h_prev, c_prev = state
        gates = xp_t + nn.functional.linear(self.drop_recurrent(h_prev), self.weight_hh,
                                            self.bias_hh)  # [B, 4H]
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        if self.weight_hr is not None:
            h = nn.functional.linear(h, self.weight_hr)  # [B, P]
        if self.zoneout:
            h, c = self.zone(h, h_prev), self.zone(c, c_prev)
        return h, LSTMState(h, c)
