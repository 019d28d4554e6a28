"""Layer-normalized LSTM and GRU cells (Ba et al., 2016), in the form of the haste library.

Layer normalization is applied to the input and the recurrent pre-activations *separately*
(each over all ``G`` gate units, with its own gain and no shift; one shared bias is added after
them) and, in the LSTM, to the cell state before the output ``tanh``:

.. math::
    \\mathrm{LN}(v; \\gamma, \\beta) = \\gamma \\odot \\frac{v - \\mu(v)}{\\sqrt{\\sigma^2(v)
    + \\epsilon}} + \\beta, \\qquad \\epsilon = 10^{-5}.

Normalizing ``W_ih x_t`` needs no state, so it is part of the time-parallel ``project_input``.
Both cells take the ``zoneout`` and ``recurrent_dropout`` options of
:mod:`rnnkit.cells.regularization`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import Cell, LSTMState, lstm_initial_state, uniform_init_
from .regularization import Regularized

__all__ = ["LayerNormGRUCell", "LayerNormLSTMCell", "layer_norm"]

EPS = 1e-5


def layer_norm(v: Tensor, gain: Tensor, shift: Tensor | None = None, eps: float = EPS) -> Tensor:
    """``LN(v; gain, shift)`` over the last dimension, for the per-step ``[B, G]`` tensors.

    Same values as ``F.layer_norm``; written with ``var_mean`` because ATen's fused layer-norm
    kernel always forks threads, which costs milliseconds per call on small rows when the CPU is
    busy (measured: 21 ms vs 3 us for a ``[2, 12]`` input on a loaded 2-core machine).

    >>> v, w = torch.randn(3, 6), torch.rand(6)
    >>> torch.allclose(layer_norm(v, w), F.layer_norm(v, (6,), w), atol=1e-6)
    True
    """
    var, mean = torch.var_mean(v, dim=-1, correction=0, keepdim=True)
    out = (v - mean) * torch.rsqrt(var + eps) * gain
    return out if shift is None else out + shift


class _LayerNormCell(Regularized, Cell):
    """Shared parameters: ``weight_ih [G, I]``, ``weight_hh [G, H]``, gains ``ln_ih_weight``
    and ``ln_hh_weight`` ``[G]`` (ones), biases ``bias_ih``, ``bias_hh`` ``[G]``."""

    n_gates: int

    def __init__(self, input_size: int, hidden_size: int, bias: bool, zoneout: float,
                 recurrent_dropout: float, device: Any, dtype: torch.dtype | None) -> None:
        super().__init__()
        self._init_regularization(zoneout, recurrent_dropout)
        kw = {"device": device, "dtype": dtype}
        G = self.n_gates * hidden_size
        self.input_size, self.hidden_size = input_size, hidden_size
        self.output_size, self.gate_size, self.bias = hidden_size, G, bias
        self.weight_ih = nn.Parameter(torch.empty(G, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(G, hidden_size, **kw))
        self.ln_ih_weight = nn.Parameter(torch.empty(G, **kw))
        self.ln_hh_weight = nn.Parameter(torch.empty(G, **kw))
        self._init_biases(G, bias, **kw)

    def reset_parameters(self) -> None:
        uniform_init_(self, self.hidden_size)  # weights and biases ~ U(-1/sqrt(H), 1/sqrt(H))
        for name, p in self.named_parameters():
            if name.startswith("ln_"):
                nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)

    def project_input(self, x: Tensor) -> Tensor:
        """``[..., I] -> [..., G]``: ``LN(W_ih x; gamma_ih) + b_ih``."""
        xp = layer_norm(F.linear(x, self.weight_ih), self.ln_ih_weight)
        return xp if self.bias_ih is None else xp + self.bias_ih

    def _project_hidden(self, h: Tensor) -> Tensor:
        """``[B, H] -> [B, G]``: ``LN(W_hh h; gamma_hh) + b_hh`` (``h`` after recurrent dropout)."""
        hp = layer_norm(F.linear(self.drop_recurrent(h), self.weight_hh), self.ln_hh_weight)
        return hp if self.bias_hh is None else hp + self.bias_hh


class LayerNormLSTMCell(_LayerNormCell):
    r"""LSTM with layer normalization of the gates and the cell state (haste's LayerNormLSTM).

    .. math::
        \begin{aligned}
        a_t &= \mathrm{LN}(W_{ih} x_t; \gamma_{ih}) + b_{ih}
              + \mathrm{LN}(W_{hh} h_{t-1}; \gamma_{hh}) + b_{hh}
              = [a^i_t; a^f_t; a^g_t; a^o_t] \\
        c_t &= \sigma(a^f_t) \odot c_{t-1} + \sigma(a^i_t) \odot \tanh(a^g_t) \\
        h_t &= \sigma(a^o_t) \odot \tanh(\mathrm{LN}(c_t; \gamma_c, \beta_c))
        \end{aligned}

    :math:`\sigma` is the logistic sigmoid; gate order ``i, f, g, o`` as in torch. Each LN
    normalizes over the ``4H`` gate units (``H`` for the cell state).

    Shapes: input ``[B, I]``; state :class:`LSTMState` ``(h [B, H], c [B, H])``; output
    ``h_t [B, H]``.
    Parameters: ``weight_ih [4H, I]``, ``weight_hh [4H, H]``, ``bias_ih``, ``bias_hh [4H]``
    (all ~ U(-1/sqrt(H), 1/sqrt(H))), ``ln_ih_weight``, ``ln_hh_weight [4H]`` and
    ``ln_cell_weight [H]`` (ones), ``ln_cell_bias [H]`` (zeros).
    Options: ``zoneout`` (on ``h`` and ``c``) and ``recurrent_dropout`` (on ``h_{t-1}``).

    >>> cell = LayerNormLSTMCell(4, 8, zoneout=0.1)
    >>> out, (h, c) = cell.step(cell.project_input(torch.randn(3, 4)), cell.initial_state(3))
    >>> tuple(out.shape), tuple(c.shape)
    ((3, 8), (3, 8))
    """

    n_gates = 4

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 zoneout: float = 0.0, recurrent_dropout: float = 0.0, device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, zoneout, recurrent_dropout, device, dtype)
        kw = {"device": device, "dtype": dtype}
        self.ln_cell_weight = nn.Parameter(torch.empty(hidden_size, **kw))
        self.ln_cell_bias = nn.Parameter(torch.empty(hidden_size, **kw))
        self.reset_parameters()

    initial_state = lstm_initial_state

    def step(self, xp_t: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        h_prev, c_prev = state
        a = xp_t + self._project_hidden(h_prev)  # [B, 4H]
        i, f, g, o = a.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        c_norm = layer_norm(c, self.ln_cell_weight, self.ln_cell_bias)
        h = torch.sigmoid(o) * torch.tanh(c_norm)
        h, c = self.zone(h, h_prev), self.zone(c, c_prev)
        return h, LSTMState(h, c)


class LayerNormGRUCell(_LayerNormCell):
    r"""GRU with layer normalization of the input and recurrent projections (haste's
    LayerNormGRU, with torch's gate order).

    .. math::
        \begin{aligned}
        [x^r_t; x^z_t; x^n_t] &= \mathrm{LN}(W_{ih} x_t; \gamma_{ih}) + b_{ih}, \qquad
        [u^r_t; u^z_t; u^n_t] = \mathrm{LN}(W_{hh} h_{t-1}; \gamma_{hh}) + b_{hh} \\
        r_t &= \sigma(x^r_t + u^r_t), \quad z_t = \sigma(x^z_t + u^z_t), \quad
        n_t = \tanh(x^n_t + r_t \odot u^n_t) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}
        \end{aligned}

    Shapes: input ``[B, I]``; state and output ``h_t [B, H]``.
    Parameters: ``weight_ih [3H, I]``, ``weight_hh [3H, H]``, ``bias_ih``, ``bias_hh [3H]``
    (all ~ U(-1/sqrt(H), 1/sqrt(H))), ``ln_ih_weight``, ``ln_hh_weight [3H]`` (ones).
    Options: ``zoneout`` and ``recurrent_dropout``.

    >>> cell = LayerNormGRUCell(4, 8)
    >>> tuple(cell(torch.randn(3, 4)).shape)
    (3, 8)
    """

    n_gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 zoneout: float = 0.0, recurrent_dropout: float = 0.0, device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, zoneout, recurrent_dropout, device, dtype)
        self.reset_parameters()

    def step(self, xp_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        x_r, x_z, x_n = xp_t.chunk(3, dim=-1)
        u_r, u_z, u_n = self._project_hidden(state).chunk(3, dim=-1)
        r = torch.sigmoid(x_r + u_r)
        z = torch.sigmoid(x_z + u_z)
        n = torch.tanh(x_n + r * u_n)
        h = self.zone(n + z * (state - n), state)
        return h, h
