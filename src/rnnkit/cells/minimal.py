"""minGRU and minLSTM (Feng et al., 2024, "Were RNNs All We Needed?"), with a parallel scan.

Their gates read only ``x_t``, so each step is a *linear* recurrence in the state,

.. math:: h_t = a_t \\odot h_{t-1} + b_t, \\qquad a_t, b_t \\text{ functions of } x_t \\text{ only,}

and the whole sequence can be computed without a step-by-step loop over ``h``:

* :func:`log_space_scan` is the paper's formulation (section 3.1 and appendix B, after Heinsen,
  2023): :math:`\\log h_t = a^*_t + \\log\\sum_{s \\le t} \\exp(\\log b_s - a^*_s)` with
  :math:`a^*_t = \\sum_{s \\le t} \\log a_s`, evaluated with ``logcumsumexp``. Kept as the
  reference parallel form; it needs ``b > 0`` and loses about ``eps * |a^*_t|`` of relative
  precision, which grows with ``T`` when gates saturate.
* :func:`linear_scan` is the parallel form used here: a two-level (chunked) scan in linear
  space. Each chunk of ``C ~ sqrt(T)`` steps is scanned for all chunks at once, then the chunk
  carries are propagated, then added back (``O(T)`` work, ``O(sqrt(T))`` Python steps). It
  multiplies numbers in ``[0, 1]`` and never divides, so it cannot overflow, accepts any sign
  of ``b`` and of the initial state, and has the rounding of the sequential loop. Its backward
  is the same scan run backwards (hand-written, checked by float64 gradcheck).

The cells' :meth:`~MinGRUCell.scan` runs it inside :func:`gated_scan`, which fuses the gate
formulas with the scan and writes their backward by hand: autograd through the formulas cost
more than the scan and the input projection together (minGRU, B=8, T=4096, H=256, 1 thread:
700 ms of 1580 ms per training step).

The gate coefficients are computed in log space as in the paper, so that ``1 - z_t`` stays exact
when ``z_t`` saturates: :math:`\\log \\sigma(k) = -\\mathrm{softplus}(-k)`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import Cell

__all__ = ["MinGRUCell", "MinLSTMCell", "g", "gated_scan", "linear_scan", "log_g",
           "log_space_scan"]


def g(v: Tensor) -> Tensor:
    """The paper's positive activation (appendix B.3): ``v + 1/2`` for ``v >= 0``, else
    ``sigmoid(v)``; continuous, > 0 everywhere.

    >>> g(torch.tensor([-100.0, 0.0, 2.0])).tolist()[1:]
    [0.5, 2.5]
    """
    # sigma(min(v, 0)) + max(v, 0): the values of where(v >= 0, v + 0.5, sigma(v)) (sigma(0) is
    # exactly 0.5) in cheaper passes than a boolean mask and a select
    return torch.sigmoid(v.clamp(max=0.0)) + v.clamp(min=0.0)


def log_g(v: Tensor) -> Tensor:
    """``log g(v)``, computed without forming ``g(v)`` for very negative ``v``."""
    return torch.where(v >= 0, torch.log(F.relu(v) + 0.5), -F.softplus(-v))


# -- the linear recurrence h_t = a_t * h_{t-1} + b_t ---------------------------------------------
def _scan(a: Tensor, b: Tensor, h0: Tensor, reverse: bool = False) -> Tensor:
    """``a, b [B, T, H]``, ``h0 [B, H]`` -> ``h [B, T, H]`` by the two-level chunked scan of
    ``h_t = a_t h_{t-1} + b_t`` (or, ``reverse``, ``h_t = a_t h_{t+1} + b_t`` from ``h_T = h0``).
    """
    B, T, H = a.shape
    C = max(1, math.isqrt(T))  # chunk length: C + T/C Python steps, minimal at sqrt(T)
    N = -(-T // C)  # chunks
    pad = N * C - T
    if pad:  # padded steps are processed after the last real one, so they cannot change it
        where = (0, 0, pad, 0) if reverse else (0, 0, 0, pad)
        a, b = F.pad(a, where, value=1.0), F.pad(b, where)
    a4, b4 = a.reshape(B, N, C, H), b.reshape(B, N, C, H)
    first, last, order = (C - 1, 0, range(C - 2, -1, -1)) if reverse else (0, C - 1, range(1, C))
    # 1. every chunk from a zero state, all chunks at once: h_loc (local state), A (prod of a)
    h_loc, A = torch.empty_like(b4), torch.empty_like(a4)
    h_loc[:, :, first], A[:, :, first] = b4[:, :, first], a4[:, :, first]
    step = 1 if reverse else -1
    for j in order:
        torch.addcmul(b4[:, :, j], a4[:, :, j], h_loc[:, :, j + step], out=h_loc[:, :, j])
        torch.mul(A[:, :, j + step], a4[:, :, j], out=A[:, :, j])
    # 2. the true state entering each chunk
    start = torch.empty(B, N, H, dtype=a.dtype, device=a.device)
    carry = h0
    for n in (range(N - 1, -1, -1) if reverse else range(N)):
        start[:, n] = carry
        carry = torch.addcmul(h_loc[:, n, last], A[:, n, last], carry)
    # 3. h = h_loc + A * start
    h = torch.addcmul(h_loc, A, start.unsqueeze(2), out=h_loc).reshape(B, N * C, H)
    return h[:, pad:] if reverse else h[:, :T]


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
        h = _scan(a, b, h0)
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: Tensor):
        a, h, h0 = ctx.saved_tensors
        grad = _grad_states(a, grad_h, h0)
        return _shift_in(h, h0).mul_(grad), grad, a[:, 0] * grad[:, 0]


def linear_scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """All states of ``h_t = a_t * h_{t-1} + b_t``: ``a, b [B, T, H]``, ``h0 [B, H]`` ->
    ``h [B, T, H]`` (``h[:, t]`` is :math:`h_{t+1}` in 1-based time). Differentiable in all
    three inputs, with a hand-written backward.

    >>> a, b, h0 = torch.rand(2, 9, 3), torch.randn(2, 9, 3), torch.randn(2, 3)
    >>> h, ref = linear_scan(a, b, h0), h0
    >>> for t in range(9):
    ...     ref = a[:, t] * ref + b[:, t]
    >>> torch.allclose(h[:, -1], ref, atol=1e-6)
    True
    """
    return _LinearScan.apply(a.contiguous(), b.contiguous(), h0.contiguous())


def _shift_in(h: Tensor, h0: Tensor) -> Tensor:
    """``[h0, h_1, ..., h_{T-1}]``: the state entering each step, ``[B, T, H]``."""
    h_prev = torch.empty_like(h)
    h_prev[:, 0] = h0
    h_prev[:, 1:] = h[:, :-1]
    return h_prev


def _grad_states(a: Tensor, grad_h: Tensor, h0: Tensor) -> Tensor:
    """Total ``dL/dh_t = grad_h_t + a_{t+1} dL/dh_{t+1}``: the same recurrence, reversed."""
    a_next = torch.empty_like(a)
    a_next[:, :-1] = a[:, 1:]
    a_next[:, -1] = 0.0
    return _scan(a_next, grad_h.contiguous(), torch.zeros_like(h0), reverse=True)


class _GatedScan(torch.autograd.Function):
    r"""``h_t = sigma(-k_t) h_{t-1} + sigma(k_t) g(v_t)`` in one Function, from the input
    projection ``xp``: ``[k; v] [B, T, 2H]`` (minGRU) or ``[k^f; k^i; v] [B, T, 3H]`` (minLSTM,
    :math:`k = \mathrm{softplus}(-k^f) - \mathrm{softplus}(-k^i) = -d`).

    Autograd through the coefficient formulas would store and revisit about twenty ``[B, T, H]``
    intermediates; here the backward is written out,

    .. math::
        \partial k_t = \bar h_t (g(v_t) - h_{t-1})\, a_t s_t, \qquad
        \partial v_t = \bar h_t\, s_t\, g'(v_t), \qquad
        \partial h_0 = a_1 \bar h_1,

    (minLSTM: :math:`\partial k^f = -\partial k\, \sigma(-k^f)`,
    :math:`\partial k^i = \partial k\, \sigma(-k^i)`) with :math:`a = \sigma(-k)`,
    :math:`s = \sigma(k)` and :math:`\bar h_t` the total gradient of :math:`h_t` (the reversed
    scan). ``keep [B, T, 1]`` (bool or ``None``): ``False`` freezes the state (``a = 1``,
    ``b = 0``) and receives no gradient.
    """

    @staticmethod
    def forward(ctx, xp: Tensor, h0: Tensor, keep: Tensor | None) -> Tensor:
        if xp.shape[-1] == 3 * h0.shape[-1]:
            k_f, k_i, v = xp.chunk(3, dim=-1)
            k = F.softplus(torch.neg(k_f)).sub_(F.softplus(torch.neg(k_i)))
        else:
            k, v = xp.chunk(2, dim=-1)
        s, a, gv = torch.sigmoid(k), torch.sigmoid(torch.neg(k)), g(v)
        b = torch.mul(s, gv)
        if keep is not None:
            a.masked_fill_(~keep, 1.0)
            b.masked_fill_(~keep, 0.0)
        h = _scan(a, b, h0)
        ctx.save_for_backward(xp, h0, keep, a, s, gv, h)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: Tensor):
        xp, h0, keep, a, s, gv, h = ctx.saved_tensors
        minlstm = xp.shape[-1] == 3 * h0.shape[-1]
        hbar = _grad_states(a, grad_h, h0)
        grad_xp = torch.empty_like(xp)
        parts = grad_xp.chunk(3 if minlstm else 2, dim=-1)
        dk = torch.empty_like(gv) if minlstm else parts[0]
        dv = parts[-1]
        torch.sub(gv[:, 1:], h[:, :-1], out=dk[:, 1:])  # g(v_t) - h_{t-1}
        torch.sub(gv[:, 0], h0, out=dk[:, 0])
        dk.mul_(hbar).mul_(a).mul_(s)
        if minlstm:  # k = softplus(-k_f) - softplus(-k_i); softplus' = sigma
            k_f, k_i, _ = xp.chunk(3, dim=-1)
            torch.sigmoid(torch.neg(k_f), out=parts[0]).mul_(dk).neg_()
            torch.sigmoid(torch.neg(k_i), out=parts[1]).mul_(dk)
        # g'(v) = 1 for v >= 0, sigma'(v) = g(v) (1 - g(v)) below
        v = xp.chunk(3 if minlstm else 2, dim=-1)[-1]
        g_prime = torch.rsub(gv, 1.0).mul_(gv).masked_fill_(v >= 0, 1.0)
        torch.mul(hbar, s, out=dv).mul_(g_prime)
        if keep is not None:
            grad_xp.masked_fill_(~keep, 0.0)
        return grad_xp, a[:, 0] * hbar[:, 0], None


def gated_scan(xp: Tensor, h0: Tensor, keep: Tensor | None = None) -> Tensor:
    """All states of ``h_t = sigma(-k_t) h_{t-1} + sigma(k_t) g(v_t)`` from the input projection
    ``xp`` of a minGRU (``[k; v] [B, T, 2H]``) or a minLSTM (``[k^f; k^i; v] [B, T, 3H]``,
    ``k = -d``), ``h0 [B, H]``, optional ``keep [B, T, 1]`` (bool; ``False`` freezes the state)
    -> ``h [B, T, H]``. A hand-written backward: about a third of the memory traffic of autograd
    through :meth:`MinGRUCell.coefficients` + :func:`linear_scan`.

    >>> kv, h0 = torch.randn(2, 7, 6), torch.randn(2, 3)
    >>> k, v = kv.chunk(2, dim=-1)
    >>> torch.allclose(gated_scan(kv, h0), linear_scan(torch.sigmoid(-k),
    ...                torch.sigmoid(k) * g(v), h0), atol=1e-6)
    True
    """
    return _GatedScan.apply(xp.contiguous(), h0.contiguous(), keep)


def log_space_scan(log_a: Tensor, log_b: Tensor, h0: Tensor) -> Tensor:
    """The paper's parallel form: ``h_t = a_t h_{t-1} + b_t`` with ``b > 0`` given as logs.

    ``log_a, log_b [B, T, H]``, ``h0 [B, H]`` of any sign -> ``h [B, T, H]``. The initial state
    enters linearly (:math:`h_t = A_t h_0 + \\ldots`), so a negative ``h0`` needs no complex log.
    Differentiable by autograd.
    """
    a_star = torch.cumsum(log_a, dim=1)  # [B, T, H], log of prod_{s<=t} a_s
    inputs = torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1))
    return inputs + torch.exp(a_star) * h0.unsqueeze(1)


# -- the cells ---------------------------------------------------------------------------------
class _MinimalCell(Cell):
    """Shared parts: ``weight_ih [G, I]``, ``bias_ih [G]``; state ``[B, H]``; no recurrent
    weights. Subclasses define :meth:`coefficients` ``xp [..., G] -> (a, b) [..., H]``."""

    n_gates: int
    has_scan = True  # the parallel form below; the scan backend serves these cells

    def __init__(self, input_size: int, hidden_size: int, bias: bool, device: Any,
                 dtype: torch.dtype | None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        G = self.n_gates * hidden_size
        self.input_size, self.hidden_size = input_size, hidden_size
        self.output_size, self.gate_size, self.bias = hidden_size, G, bias
        self.weight_ih = nn.Parameter(torch.empty(G, input_size, **kw))
        self.bias_ih = nn.Parameter(torch.empty(G, **kw)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = self.input_size ** -0.5  # nn.Linear's default
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def step(self, xp_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """Sequential form, for streaming: ``h_t = a_t * h_{t-1} + b_t``."""
        a, b = self.coefficients(xp_t)
        h = torch.addcmul(b, a, state)
        return h, h

    def scan(self, xp: Tensor, state: Tensor, mask: Tensor | None = None
             ) -> tuple[Tensor, Tensor]:
        """Parallel form: ``xp [B, T, G]``, ``state [B, H]`` -> ``(h [B, T, H], h_T)``, by
        :func:`gated_scan`.

        ``mask [B, T, 1]`` (bool, optional) freezes the state at padded steps (``a = 1``,
        ``b = 0`` there); their outputs are the frozen state, which the runner zeroes.
        """
        h = gated_scan(xp, state, mask)
        return h, h[:, -1]


class MinGRUCell(_MinimalCell):
    r"""minGRU: a GRU whose gate and candidate read only the input (paper, section 3.1.2).

    .. math::
        \begin{aligned}
        [k_t; v_t] &= W_{ih} x_t + b_{ih}, \qquad z_t = \sigma(k_t), \qquad
        \tilde h_t = g(v_t) \\
        h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t
        \end{aligned}

    with :math:`g` the positive activation :func:`g` of the paper's log-space version (used in
    both forms, so they agree). ``1 - z_t`` is computed as :math:`\sigma(-k_t)`.

    Shapes: input ``[B, I]``; state and output ``h_t [B, H]``.
    Parameters: ``weight_ih [2H, I]``, ``bias_ih [2H]`` ~ U(-1/sqrt(I), 1/sqrt(I)).

    >>> cell = MinGRUCell(4, 8)
    >>> xp, h0 = cell.project_input(torch.randn(2, 5, 4)), torch.randn(2, 8)
    >>> h, last = cell.scan(xp, h0)
    >>> ref = h0
    >>> for t in range(5):
    ...     _, ref = cell.step(xp[:, t], ref)
    >>> torch.allclose(last, ref, atol=1e-6)
    True
    """

    n_gates = 2

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        """``a = 1 - z = sigma(-k)``, ``b = z * g(v)``."""
        k, v = xp.chunk(2, dim=-1)
        return torch.sigmoid(-k), torch.sigmoid(k) * g(v)

    def log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        """``(log a, log b)`` for :func:`log_space_scan`."""
        k, v = xp.chunk(2, dim=-1)
        return -F.softplus(k), -F.softplus(-k) + log_g(v)


class MinLSTMCell(_MinimalCell):
    r"""minLSTM: an LSTM with input-only gates, normalized so the state stays bounded
    (paper, section 3.2.3).

    .. math::
        \begin{aligned}
        [k^f_t; k^i_t; v_t] &= W_{ih} x_t + b_{ih}, \qquad
        f_t = \sigma(k^f_t), \quad i_t = \sigma(k^i_t), \quad \tilde h_t = g(v_t) \\
        f'_t &= \frac{f_t}{f_t + i_t}, \qquad i'_t = \frac{i_t}{f_t + i_t} \\
        h_t &= f'_t \odot h_{t-1} + i'_t \odot \tilde h_t
        \end{aligned}

    The normalized gates are computed stably as :math:`f'_t = \sigma(d_t)`,
    :math:`i'_t = \sigma(-d_t)` with :math:`d_t = \log\sigma(k^f_t) - \log\sigma(k^i_t)`.

    Shapes: input ``[B, I]``; state and output ``h_t [B, H]``.
    Parameters: ``weight_ih [3H, I]``, ``bias_ih [3H]`` ~ U(-1/sqrt(I), 1/sqrt(I)).

    >>> cell = MinLSTMCell(4, 8)
    >>> tuple(cell(torch.randn(3, 4)).shape)
    (3, 8)
    """

    n_gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def _d(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        k_f, k_i, v = xp.chunk(3, dim=-1)
        return F.softplus(-k_i) - F.softplus(-k_f), v  # d = log f - log i

    def coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        """``a = f' = sigma(d)``, ``b = i' * g(v) = sigma(-d) * g(v)``."""
        d, v = self._d(xp)
        return torch.sigmoid(d), torch.sigmoid(-d) * g(v)

    def log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        """``(log a, log b)`` for :func:`log_space_scan`."""
        d, v = self._d(xp)
        return -F.softplus(-d), -F.softplus(d) + log_g(v)
