"""The convolutional LSTM cell (Shi et al. 2015): an LSTM whose states are feature maps."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import Cell, LSTMState

__all__ = ["ConvLSTMCell"]


class ConvLSTMCell(Cell):
    r"""Convolutional LSTM cell (Shi et al. 2015, "Convolutional LSTM Network", eq. 3): every
    matrix product of the LSTM becomes a 'same'-padded 2-D convolution, so the input, the
    hidden state and the cell state are ``[C, H, W]`` feature maps.

    .. math::
        \begin{aligned}
        i_t &= \sigma(W_{xi} * X_t + W_{hi} * H_{t-1} + W_{ci} \circ C_{t-1} + b_i) \\
        f_t &= \sigma(W_{xf} * X_t + W_{hf} * H_{t-1} + W_{cf} \circ C_{t-1} + b_f) \\
        g_t &= \tanh(W_{xg} * X_t + W_{hg} * H_{t-1} + b_g) \\
        C_t &= f_t \circ C_{t-1} + i_t \circ g_t \\
        o_t &= \sigma(W_{xo} * X_t + W_{ho} * H_{t-1} + W_{co} \circ C_t + b_o) \\
        H_t &= o_t \circ \tanh(C_t)
        \end{aligned}

    Legend: :math:`*` convolution (stride 1, zero 'same' padding, odd ``kernel_size`` ``k``),
    :math:`\circ` Hadamard product, :math:`\sigma` the logistic sigmoid. The peephole terms
    :math:`W_c \circ C` are off by default (``peephole=True`` turns them on); the paper's
    :math:`W_c` are full ``[C_h, H, W]`` maps, which would tie the cell to one image size, so
    here they are per channel (``[C_h, 1, 1]``, broadcast over space).

    Shapes: per step input ``[B, C_in, H, W]``; state :class:`LSTMState`
    ``(h [B, C_h, H, W], c [B, C_h, H, W])``; output ``h_t [B, C_h, H, W]``.
    :meth:`project_input` maps ``[..., C_in, H, W] -> [..., 4 C_h, H, W]`` (the input
    convolution for every step at once), :meth:`step` takes ``[B, 4 C_h, H, W]``.
    ``input_size = C_in`` and ``hidden_size = output_size = C_h`` count channels; the cell
    declares :attr:`feature_dims` ``= 3``, and :meth:`initial_state` needs ``spatial_size``.

    Parameters (gate order ``i, f, g, o`` as in torch): ``weight_ih [4 C_h, C_in, k, k]``,
    ``weight_hh [4 C_h, C_h, k, k]``, ``bias_ih [4 C_h]`` (the one bias :math:`b` of the
    paper; ``bias_hh`` is ``None``), and with ``peephole`` ``weight_ch [3, C_h, 1, 1]``
    (:math:`W_{ci}, W_{cf}, W_{co}`). Initialization: weights and bias ~ U(-1/sqrt(C_h k^2),
    1/sqrt(C_h k^2)), the fan-in of the recurrent convolution; peepholes start at 0.

    >>> cell = ConvLSTMCell(2, 4, kernel_size=3)
    >>> h, c = cell(torch.randn(5, 2, 8, 8))
    >>> tuple(h.shape), tuple(c.shape)
    ((5, 4, 8, 8), (5, 4, 8, 8))
    """

    feature_dims: ClassVar[int] = 3
    _repr_options = ("bias", "kernel_size", "peephole")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: torch.dtype | None = None,
        *,
        kernel_size: int = 3,
        peephole: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ConvLSTMCell {name} (channels) must be a positive integer, "
                                 f"got {value!r}")
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or \
                kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer (odd kernels keep "
                             f"the feature maps' size with 'same' padding), got "
                             f"{kernel_size!r}; e.g. kernel_size=3 or 5")
        kw = {"device": device, "dtype": dtype}
        k = kernel_size
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = hidden_size
        self.gate_size = 4 * hidden_size
        self.kernel_size = kernel_size
        self.peephole = bool(peephole)
        self.bias = bias
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, k, k, **kw))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size, k, k, **kw))
        self.register_parameter(
            "bias_ih", nn.Parameter(torch.empty(4 * hidden_size, **kw)) if bias else None)
        self.register_parameter("bias_hh", None)
        self.register_parameter(
            "weight_ch", nn.Parameter(torch.empty(3, hidden_size, 1, 1, **kw))
            if peephole else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size * self.kernel_size ** 2)
        for p in (self.weight_ih, self.weight_hh, self.bias_ih):
            if p is not None:
                nn.init.uniform_(p, -bound, bound)
        if self.weight_ch is not None:
            nn.init.zeros_(self.weight_ch)

    def project_input(self, x: Tensor) -> Tensor:
        """``[..., C_in, H, W] -> [..., 4 C_h, H, W]``: :math:`W_x * X + b` for every leading
        index (batch and time) in one convolution."""
        lead, (C, H, W) = x.shape[:-3], x.shape[-3:]
        xp = F.conv2d(x.reshape(-1, C, H, W), self.weight_ih, self.bias_ih,
                      padding=self.kernel_size // 2)  # [N, 4 C_h, H, W]
        return xp.reshape(*lead, self.gate_size, H, W)

    def step(self, xp_t: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        """``([B, 4 C_h, H, W], state) -> (h_t [B, C_h, H, W], LSTMState(h_t, c_t))``."""
        h_prev, c_prev = state
        gates = xp_t + F.conv2d(h_prev, self.weight_hh, padding=self.kernel_size // 2)
        i, f, g, o = gates.chunk(4, dim=1)  # [B, C_h, H, W] each
        if self.weight_ch is not None:
            w_ci, w_cf, w_co = self.weight_ch  # [C_h, 1, 1] each
            i, f = i + w_ci * c_prev, f + w_cf * c_prev
        c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        if self.weight_ch is not None:
            o = o + w_co * c
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, LSTMState(h, c)

    def initial_state(self, batch: int, *, device: Any = None, dtype: torch.dtype | None = None,
                      spatial_size: tuple[int, int] | None = None) -> LSTMState:
        """Zero state ``(h, c)``, each ``[batch, C_h, H, W]`` with ``(H, W) = spatial_size``
        (the input's feature-map size; the runner passes it)."""
        if spatial_size is None or len(spatial_size) != 2:
            raise ValueError(f"ConvLSTMCell.initial_state needs spatial_size=(H, W), the size "
                             f"of the input feature maps, got {spatial_size!r}")
        shape = (batch, self.hidden_size, *(int(s) for s in spatial_size))
        zeros = torch.zeros(shape, device=device, dtype=dtype)
        return LSTMState(zeros, zeros.clone())

    def forward(self, input: Tensor, hx: LSTMState | tuple | None = None) -> LSTMState:
        """One step, as a torch cell: ``input [B, C_in, H, W]``, ``hx`` ``(h, c)`` each
        ``[B, C_h, H, W]`` (zeros when omitted) -> ``LSTMState(h', c')``."""
        if not isinstance(input, Tensor) or input.dim() != 4:
            raise ValueError(f"ConvLSTMCell expects input of shape [B, {self.input_size}, H, W], "
                             f"got {list(input.shape) if isinstance(input, Tensor) else input!r}")
        if input.shape[1] != self.input_size:
            raise ValueError(f"ConvLSTMCell was built for {self.input_size} input channels, got "
                             f"{input.shape[1]} (input shape {list(input.shape)})")
        B, _, H, W = input.shape
        if hx is None:
            hx = self.initial_state(B, device=input.device, dtype=input.dtype,
                                    spatial_size=(H, W))
        want = [B, self.hidden_size, H, W]
        if len(hx) != 2 or any(not isinstance(s, Tensor) or list(s.shape) != want for s in hx):
            raise ValueError(f"ConvLSTMCell expects the state as (h, c), each of shape {want}")
        return self.step(self.project_input(input), LSTMState(*hx))[1]
