"""The independently recurrent neural network, IndRNN (Li et al., CVPR 2018)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .base import Cell
from .regularization import Regularized

__all__ = ["IndRNNCell"]


class IndRNNCell(Regularized, Cell):
    r"""IndRNN: every unit reads only its own previous value through a scalar weight.

    .. math::
        h_t = \phi(W_{ih} x_t + b_{ih} + u \odot h_{t-1})

    with :math:`\phi` = ``relu`` (default, as in the paper) or ``tanh``. Because the recurrent
    weight ``u`` is a vector, each unit's gradient through time is
    :math:`\prod_t u \, \phi'(\cdot)`; keeping :math:`|u| \le 2^{1/T}`-ish lets ReLU IndRNNs
    learn dependencies over thousands of steps (paper, section 3.1). ``recurrent_max`` clips
    :math:`|u|` in the forward pass when set.

    Shapes: input ``[B, I]``; state and output ``h_t [B, H]``.
    Parameters: ``weight_ih [H, I]`` ~ U(-1/sqrt(I), 1/sqrt(I)), ``weight_hh [H]`` (the
    diagonal ``u``) ~ U(0, 1) (paper, section 5.1), ``bias_ih [H]`` zeros.
    Options: ``zoneout`` and ``recurrent_dropout``.

    >>> cell = IndRNNCell(4, 8)
    >>> tuple(cell(torch.randn(3, 4)).shape)
    (3, 8)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "relu", recurrent_max: float | None = None,
                 zoneout: float = 0.0, recurrent_dropout: float = 0.0, device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if nonlinearity not in ("relu", "tanh"):
            raise ValueError(f"nonlinearity must be 'relu' or 'tanh', got {nonlinearity!r}")
        if recurrent_max is not None and not recurrent_max > 0:
            raise ValueError(f"recurrent_max must be positive or None, got {recurrent_max!r}")
        self._init_regularization(zoneout, recurrent_dropout)
        kw = {"device": device, "dtype": dtype}
        self.input_size, self.hidden_size = input_size, hidden_size
        self.output_size, self.gate_size, self.bias = hidden_size, hidden_size, bias
        self.nonlinearity, self.recurrent_max = nonlinearity, recurrent_max
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, **kw))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(hidden_size, **kw))
        else:
            self.register_parameter("bias_ih", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = self.input_size ** -0.5
        nn.init.uniform_(self.weight_ih, -bound, bound)
        nn.init.uniform_(self.weight_hh, 0.0, 1.0)
        if self.bias_ih is not None:
            nn.init.zeros_(self.bias_ih)

    def recurrent_weight(self) -> Tensor:
        """``u [H]``, clipped to ``[-recurrent_max, recurrent_max]`` when that is set."""
        u = self.weight_hh
        return u if self.recurrent_max is None else u.clamp(-self.recurrent_max,
                                                            self.recurrent_max)

    def step(self, xp_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        pre = xp_t + self.recurrent_weight() * self.drop_recurrent(state)  # [B, H]
        h = torch.relu(pre) if self.nonlinearity == "relu" else torch.tanh(pre)
        h = self.zone(h, state)
        return h, h
