"""The ``compiled`` backend: native time loops with a hand-written backward through time.

For the cells that have a native kernel (``layernorm_lstm``, ``layernorm_gru``,
``peephole_lstm``, ``indrnn``, and the standard ``gru``; see ``csrc/`` and
:mod:`rnnkit.backends.native`), one direction of one layer is a single
:class:`torch.autograd.Function`:

* forward: the input projection for all steps (one GEMM on a time-major copy of ``x``, so the
  kernel gets a contiguous ``[T, B, G]`` without copying it; ``b_hh`` folded into ``b_ih`` for
  the LSTMs; the input layer norms by ATen's fused ``F.layer_norm``), then a C++ loop over
  time that makes one BLAS GEMM call per step (``h_{t-1} W_hh^T``, raw pointers, no
  dispatcher, no allocation) and runs the gate math in vectorized passes (AVX2 ``exp`` where
  the CPU has it). It saves what the backward needs -- the activated gates, or for the
  layer-norm cells only the normalized recurrent projection ``r^`` (and ``c^``), the gates
  being recomputed from ``xp`` and ``r^`` -- and without autograd nothing;
* backward: the reverse C++ loop computes the gate gradients (one GEMM per step for
  ``dA_t W_hh``) and accumulates ``dW_hh = sum_t dA_t^T h_{t-1}`` by one GEMM per chunk of
  about 256 rows, in cache, instead of writing a ``[T, B, G]`` tensor for one GEMM after it.

Fresh memory is the hidden cost at small ``B * H``: a first-touched page costs about 1.5 us on
the 2-core test machine, so at (8, 2048, 16, 64) writing the LN-LSTM's gates cost as much as
computing them; hence the recomputation and the chunked ``dW_hh``.
Its compile cost is the one-time C++ build (3-12 s on 2 cores, cached; independent of ``T``,
nothing is unrolled).
Zoneout, variational recurrent dropout and ``lengths`` enter as "keep" coefficients,
``s_t = k_t s_{t-1} + (1 - k_t) \\tilde s_t`` (``k = 1`` at padded steps), so the kernels stay
equal to the ``loop`` backend. Every other cell, and every cell when no C++ toolchain is
available, runs the pure-PyTorch ``loop`` direction instead; the result is the same.

``auto`` rules (``AUTO_ORDER`` = compiled, fused, scan, loop; measured with
``benchmarks/speed_cells.py``, ratios in one process). ``compiled`` comes first because it
serves no cell that ``fused`` runs faster; it steps aside (:meth:`CompiledBackend.auto_unsupported`)
when the native kernels cannot be built, the GPU or a dtype other than float32/float64:

* ``layernorm_lstm``, ``layernorm_gru``, ``peephole_lstm``, ``indrnn`` -> ``compiled``: 3-80x
  faster than the loop in training at the issue's three shapes (1 thread, training,
  ``nn.LSTM`` time x: LN-LSTM 1.05-1.35, LN-GRU 0.73-0.83, peephole 0.71-0.99, IndRNN
  0.13-0.23; with zoneout 0.1 LN-LSTM 1.22-1.42, LN-GRU 0.73-0.91; the plain loop LSTM 6-81).
* ``gru`` -> ``compiled``: ``torch.nn.GRU``'s CPU kernel is slow (its forward is 1.5-6.6x
  ``nn.LSTM``'s), the native GRU takes ``nn.GRU`` time x 0.56 / 0.05 / 0.08 in training and
  x 0.76 / 0.13 / 0.19 forward at (32,100,64,256), (1,1000,32,128), (8,2048,16,64), 1 thread.
  At (32, 100, 64, 256) its forward is bound by GEMMs: the per-step ``h W_hh^T`` runs at
  ~100 GFLOP/s, as fast as one large matmul of the same FLOPs, and with the input projection
  it is 0.42-0.45 of ``nn.GRU``'s time before any gate math. With recurrent dropout (no native
  kernel) a GRU goes to ``loop``; on a GPU to ``fused`` (cuDNN).
* The first forward builds the kernels (3-12 s on 2 cores, once per machine, cached).

>>> from rnnkit import Recurrent
>>> Recurrent("layernorm_gru", 3, 8).active_backend  # the kernels are built on the first forward
'compiled'
>>> Recurrent("gru", 3, 8).active_backend  # 'fused' where no C++ toolchain is installed
'compiled'
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cells import (
    Cell,
    GRUCell,
    IndRNNCell,
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LSTMState,
    PeepholeLSTMCell,
    State,
    state_map,
)
from ..cells.layernorm import EPS
from .base import Backend
from .loop import run_direction
from .native import native_build_error, native_module, native_unavailable

__all__ = ["CompiledBackend", "NATIVE_CELLS", "compiled_direction", "gru_native", "indrnn_native",
           "layernorm_gru_native", "layernorm_lstm_native", "peephole_native"]

def _opt(t: Tensor | None, like: Tensor) -> Tensor:
    """``t`` contiguous, or an empty tensor meaning "absent" to the kernels."""
    return torch.empty(0, dtype=like.dtype) if t is None else t.contiguous()


def _needs_backward(args: tuple[Tensor, ...]) -> bool:
    """Whether autograd will ask for a backward; without one the kernels save nothing."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in args)


class _PeepholeLoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, c0, w_hh, w_ch, keep_h, keep_c, rmask):
        mod = native_module()
        hs, cs, gates, ct = mod.peephole_forward(xp, h0, c0, w_hh.t().contiguous(), w_ch,
                                                 keep_h, keep_c, rmask)
        ctx.save_for_backward(hs, cs, gates, ct, h0, c0, w_hh, w_ch, keep_h, keep_c, rmask)
        return hs, cs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gh, gc):
        hs, cs, gates, ct, h0, c0, w_hh, w_ch, keep_h, keep_c, rmask = ctx.saved_tensors
        gh = torch.zeros_like(hs) if gh is None else gh
        gc = torch.zeros_like(cs) if gc is None else gc
        da, dh0, dc0, dw_hh, dw_ch = native_module().peephole_backward(
            gh, gc, hs, cs, gates, ct, h0, c0, w_hh, w_ch, keep_h, keep_c, rmask)
        return da, dh0, dc0, dw_hh, dw_ch, None, None, None


class _LayerNormLSTMLoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, c0, w_hh, g_hh, g_c, b_c, keep_h, keep_c, rmask):
        hs, cs, *saved = native_module().lnlstm_forward(
            xp, h0, c0, w_hh.t().contiguous(), g_hh, g_c, b_c, keep_h, keep_c, rmask, EPS)
        # saved: r^, rstd_r, c^, rstd_c; the backward recomputes the gates from xp and r^
        ctx.save_for_backward(xp, hs, cs, *saved, h0, c0, w_hh, g_hh, g_c, b_c, keep_h, keep_c,
                              rmask)
        return hs, cs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gh, gc):
        xp, hs, cs, *rest = ctx.saved_tensors
        gh = torch.zeros_like(hs) if gh is None else gh
        gc = torch.zeros_like(cs) if gc is None else gc
        da, dh0, dc0, dw_hh, dg_hh, dg_c, db_c = native_module().lnlstm_backward(
            gh, gc, xp, hs, cs, *rest)
        return da, dh0, dc0, dw_hh, dg_hh, dg_c, db_c, None, None, None


class _GRULoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, w_hh, b_hh, keep_h):
        hs, saved = native_module().gru_forward(xp, h0, w_hh.t().contiguous(), b_hh, keep_h,
                                                True)
        ctx.save_for_backward(hs, saved, h0, w_hh, keep_h)
        ctx.has_bias = b_hh.numel() > 0
        return hs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gh):
        hs, saved, h0, w_hh, keep_h = ctx.saved_tensors
        dxp, dh0, dw_hh, db_hh = native_module().gru_backward(gh, hs, saved, h0, w_hh, keep_h)
        return dxp, dh0, dw_hh, db_hh if ctx.has_bias else None, None


class _LayerNormGRULoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, w_hh, g_hh, b_hh, keep_h, rmask):
        hs, rhat, rstd = native_module().lngru_forward(xp, h0, w_hh.t().contiguous(), g_hh, b_hh,
                                                       keep_h, rmask, EPS, True)
        # the backward recomputes the gates from xp and r^
        ctx.save_for_backward(xp, hs, rhat, rstd, h0, w_hh, g_hh, b_hh, keep_h, rmask)
        return hs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gh):
        xp, hs, *rest, b_hh, keep_h, rmask = ctx.saved_tensors
        dxp, dh0, dw_hh, dg_hh, db_hh = native_module().lngru_backward(gh, xp, hs, *rest, b_hh,
                                                                       keep_h, rmask)
        return dxp, dh0, dw_hh, dg_hh, db_hh if b_hh.numel() else None, None, None


class _IndRNNLoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, u, keep_h, rmask, relu):
        hs, hn = native_module().indrnn_forward(xp, h0, u, keep_h, rmask, relu)
        ctx.save_for_backward(hs, hn, h0, u, keep_h, rmask)
        ctx.relu = relu
        return hs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gh):
        hs, hn, h0, u, keep_h, rmask = ctx.saved_tensors
        dxp, dh0, du = native_module().indrnn_backward(gh.contiguous(), hs, hn, h0, u, keep_h,
                                                       rmask, ctx.relu)
        return dxp, dh0, du, None, None, None


def peephole_native(xp: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, w_ch: Tensor,
                    keep_h: Tensor | None = None, keep_c: Tensor | None = None,
                    rmask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Peephole-LSTM time loop: ``xp [T, B, 4H]`` (input projection plus both biases), states
    ``[B, H]``, ``w_hh [4H, H]``, ``w_ch [3, H]``, keep coefficients ``[T, B, H]``, recurrent
    dropout mask ``[B, H]`` -> all ``h``, all ``c`` ``[T, B, H]``."""
    return _PeepholeLoop.apply(xp.contiguous(), h0.contiguous(), c0.contiguous(), w_hh, w_ch,
                               _opt(keep_h, xp), _opt(keep_c, xp), _opt(rmask, xp))


def layernorm_lstm_native(xp: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, g_hh: Tensor,
                          g_c: Tensor, b_c: Tensor, keep_h: Tensor | None = None,
                          keep_c: Tensor | None = None, rmask: Tensor | None = None
                          ) -> tuple[Tensor, Tensor]:
    """Layer-norm LSTM time loop: ``xp [T, B, 4H]`` (normalized input projection plus both
    biases), states ``[B, H]``, ``w_hh [4H, H]``, LN gains ``g_hh [4H]``, ``g_c [H]`` and shift
    ``b_c [H]`` -> all ``h``, all ``c`` ``[T, B, H]``."""
    args = (xp.contiguous(), h0.contiguous(), c0.contiguous(), w_hh, g_hh, g_c, b_c,
            _opt(keep_h, xp), _opt(keep_c, xp), _opt(rmask, xp))
    if _needs_backward(args[:7]):
        return _LayerNormLSTMLoop.apply(*args)
    hs, cs, *_ = native_module().lnlstm_forward(*args[:3], _transposed(w_hh), *args[4:],
                                                EPS, save=False)
    return hs, cs


#: inference-time ``w_hh.t().contiguous()`` per weight (by ``id``; dropped with the weight),
#: valid while the weight is unchanged
_TRANSPOSED: dict[int, tuple[weakref.ref, tuple, Tensor]] = {}


def _transposed(w: Tensor) -> Tensor:
    """``w.t().contiguous()``, cached per weight tensor and its in-place version counter, so
    streaming (one short call per frame) does not copy every recurrent matrix on every call."""
    key = (w._version, w.data_ptr(), w.dtype, w.device)
    hit = _TRANSPOSED.get(id(w))
    if hit is not None and hit[0]() is w and hit[1] == key:
        return hit[2]
    if hit is None or hit[0]() is not w:
        weakref.finalize(w, _TRANSPOSED.pop, id(w), None)
    wt = w.detach().t().contiguous()
    _TRANSPOSED[id(w)] = (weakref.ref(w), key, wt)
    return wt


def gru_native(xp: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None,
               keep_h: Tensor | None = None) -> Tensor:
    """GRU time loop (torch's equations): ``xp [T, B, 3H]`` (``W_ih x + b_ih``), ``h0 [B, H]``,
    ``w_hh [3H, H]``, ``b_hh [3H]`` or ``None`` -> all ``h [T, B, H]``."""
    b = torch.empty(0, dtype=xp.dtype) if b_hh is None else b_hh
    args = (xp.contiguous(), h0.contiguous(), w_hh, b, _opt(keep_h, xp))
    if _needs_backward(args[:4]):
        return _GRULoop.apply(*args)
    # inference: one fused loop that saves nothing for a backward
    return native_module().gru_forward(*args[:2], _transposed(w_hh), *args[3:], False)[0]


def layernorm_gru_native(xp: Tensor, h0: Tensor, w_hh: Tensor, g_hh: Tensor,
                         b_hh: Tensor | None, keep_h: Tensor | None = None,
                         rmask: Tensor | None = None) -> Tensor:
    """Layer-norm GRU time loop: ``xp [T, B, 3H]`` (``LN(W_ih x; g_ih) + b_ih``), ``h0 [B, H]``,
    ``w_hh [3H, H]``, LN gain ``g_hh [3H]``, ``b_hh [3H]`` or ``None``, keep coefficients
    ``[T, B, H]``, recurrent dropout mask ``[B, H]`` -> all ``h [T, B, H]``."""
    args = (xp.contiguous(), h0.contiguous(), w_hh, g_hh, _opt(b_hh, xp), _opt(keep_h, xp),
            _opt(rmask, xp))
    if _needs_backward(args[:5]):
        return _LayerNormGRULoop.apply(*args)
    # inference: the same loop, saving nothing for a backward
    return native_module().lngru_forward(*args[:2], _transposed(w_hh), *args[3:], EPS,
                                         False)[0]


def indrnn_native(xp: Tensor, h0: Tensor, u: Tensor, keep_h: Tensor | None = None,
                  rmask: Tensor | None = None, relu: bool = True) -> Tensor:
    """IndRNN time loop: ``xp [T, B, H]``, ``h0 [B, H]``, ``u [H]`` -> all ``h [T, B, H]``."""
    return _IndRNNLoop.apply(xp.contiguous(), h0.contiguous(), u.contiguous(),
                             _opt(keep_h, xp), _opt(rmask, xp), relu)


def _keep(cell: Cell, mask_tm: Tensor | None, shape: tuple, like: Tensor) -> Tensor | None:
    """Keep coefficients ``[T, B, H]`` for one state tensor: zoneout, then padding."""
    keep = None
    p = cell.zoneout
    if p:
        # in place: rand().lt_() is 3x faster than bernoulli_ or (rand() < p).to(dtype)
        keep = torch.rand(shape, dtype=like.dtype, device=like.device).lt_(p) \
            if cell.training else torch.full(shape, p, dtype=like.dtype, device=like.device)
    if mask_tm is not None:
        keep = torch.where(mask_tm, keep if keep is not None else 0.0, 1.0).to(like.dtype)
        keep = keep.expand(shape)
    return keep


def _peephole_direction(cell: PeepholeLSTMCell, xp: Tensor, state: LSTMState,
                        mask_tm: Tensor | None) -> tuple[Tensor, LSTMState]:
    shape = (xp.shape[0], xp.shape[1], cell.hidden_size)
    keep_h, keep_c = _keep(cell, mask_tm, shape, xp), _keep(cell, mask_tm, shape, xp)
    hs, cs = peephole_native(xp, state.h, state.c, cell.weight_hh, cell.weight_ch, keep_h,
                             keep_c, cell.recurrent_mask(state.h))
    return hs, LSTMState(hs[-1], cs[-1])


def _both_biases(cell: Cell) -> Tensor | None:
    """``b_ih + b_hh`` (``None`` without biases): the recurrent bias folded into the input's."""
    if cell.bias_ih is None or cell.bias_hh is None:
        return cell.bias_ih
    return cell.bias_ih + cell.bias_hh


def _peephole_project_input(cell: PeepholeLSTMCell, x: Tensor) -> Tensor:
    """``W_ih x + b_ih + b_hh`` for all steps (one GEMM, no extra pass for ``b_hh``)."""
    return F.linear(x, cell.weight_ih, _both_biases(cell))


def _layernorm_input(cell: LayerNormLSTMCell | LayerNormGRUCell, x: Tensor,
                     bias: Tensor | None) -> Tensor:
    """``LN(W_ih x; g_ih) + bias`` for all steps at once (``[T, B, I] -> [T, B, G]``).

    ATen's fused ``F.layer_norm`` (same values) instead of the cell's ``var_mean`` form, which
    is meant for small per-step rows: on the hoisted ``[T, B, 4H]`` tensor ``var_mean`` and its
    elementwise backward cost more than the whole native loop (profiled at (8, 2048, 16, 64)).
    """
    return F.layer_norm(F.linear(x, cell.weight_ih), (cell.gate_size,), cell.ln_ih_weight, bias,
                        EPS)


def _layernorm_lstm_project_input(cell: LayerNormLSTMCell, x: Tensor) -> Tensor:
    """``cell.project_input`` plus ``b_hh``: ``LN(W_ih x; g_ih) + b_ih + b_hh``."""
    return _layernorm_input(cell, x, _both_biases(cell))


def _layernorm_gru_project_input(cell: LayerNormGRUCell, x: Tensor) -> Tensor:
    """``cell.project_input``, ``LN(W_ih x; g_ih) + b_ih`` (``b_hh`` stays in the loop: the
    candidate gates ``u_n``, bias included, by ``r``)."""
    return _layernorm_input(cell, x, cell.bias_ih)


def _layernorm_lstm_direction(cell: LayerNormLSTMCell, xp: Tensor, state: LSTMState,
                              mask_tm: Tensor | None) -> tuple[Tensor, LSTMState]:
    shape = (xp.shape[0], xp.shape[1], cell.hidden_size)
    keep_h, keep_c = _keep(cell, mask_tm, shape, xp), _keep(cell, mask_tm, shape, xp)
    hs, cs = layernorm_lstm_native(xp, state.h, state.c, cell.weight_hh, cell.ln_hh_weight,
                                   cell.ln_cell_weight, cell.ln_cell_bias, keep_h, keep_c,
                                   cell.recurrent_mask(state.h))
    return hs, LSTMState(hs[-1], cs[-1])


def _gru_direction(cell: GRUCell, xp: Tensor, state: Tensor, mask_tm: Tensor | None
                   ) -> tuple[Tensor, Tensor]:
    keep = _keep(cell, mask_tm, (xp.shape[0], xp.shape[1], cell.hidden_size), xp)
    hs = gru_native(xp, state, cell.weight_hh, cell.bias_hh, keep)
    return hs, hs[-1]


def _layernorm_gru_direction(cell: LayerNormGRUCell, xp: Tensor, state: Tensor,
                             mask_tm: Tensor | None) -> tuple[Tensor, Tensor]:
    keep = _keep(cell, mask_tm, (xp.shape[0], xp.shape[1], cell.hidden_size), xp)
    hs = layernorm_gru_native(xp, state, cell.weight_hh, cell.ln_hh_weight, cell.bias_hh, keep,
                              cell.recurrent_mask(state))
    return hs, hs[-1]


def _indrnn_direction(cell: IndRNNCell, xp: Tensor, state: Tensor, mask_tm: Tensor | None
                      ) -> tuple[Tensor, Tensor]:
    keep = _keep(cell, mask_tm, tuple(xp.shape), xp)
    hs = indrnn_native(xp, state, cell.recurrent_weight(), keep, cell.recurrent_mask(state),
                       cell.nonlinearity == "relu")
    return hs, hs[-1]


#: cell classes with a native kernel, and the function that runs one direction of them
NATIVE_CELLS = {PeepholeLSTMCell: _peephole_direction, IndRNNCell: _indrnn_direction,
                LayerNormLSTMCell: _layernorm_lstm_direction, GRUCell: _gru_direction,
                LayerNormGRUCell: _layernorm_gru_direction}
#: hoisted input projections that replace ``cell.project_input`` (same values, faster); the
#: direction functions above get ``xp`` time-major, ``[T, B, G]``
_PROJECT_INPUT = {LayerNormLSTMCell: _layernorm_lstm_project_input,
                  LayerNormGRUCell: _layernorm_gru_project_input,
                  PeepholeLSTMCell: _peephole_project_input}


def compiled_direction(cell: Cell, x: Tensor, state: State, mask: Tensor | None
                       ) -> tuple[Tensor, State]:
    """One direction of one layer by the native kernel of ``cell`` (falls back to
    :func:`~rnnkit.backends.loop.run_direction`); same contract as that function."""
    kernel = NATIVE_CELLS.get(type(cell))
    if kernel is None or native_module() is None:
        return run_direction(cell, x, state, mask)
    if torch.is_autocast_enabled("cpu"):
        # the kernels compute in the parameters' dtype (an fp32 op, as autocast allows): the
        # input and a state carried over from an autocast region are cast back to it
        dtype = cell.weight_ih.dtype
        with torch.autocast("cpu", enabled=False):
            return compiled_direction(cell, x.to(dtype), state_map(lambda s: s.to(dtype), state),
                                      mask)
    cell.begin_sequence()
    mask_tm = None if mask is None else mask.transpose(0, 1)  # [T, B, 1]
    project = _PROJECT_INPUT.get(type(cell), type(cell).project_input)
    # projecting a time-major copy of x gives the kernels a contiguous [T, B, G] directly (no
    # copy of the G-wide projection, nor of its gradient; a contiguous input keeps F.linear on
    # one addmm with the bias fused)
    hs, final = kernel(cell, project(cell, x.transpose(0, 1).contiguous()), state, mask_tm)
    out = hs.transpose(0, 1)  # [B, T, H]
    if mask is not None:
        out = out.masked_fill(~mask, 0.0)
    return out, final


class CompiledBackend(Backend):
    """Native loops with hand-written BPTT for the cells in :data:`NATIVE_CELLS`.

    Serves only those cells (so ``auto`` never sends another cell here); when the C++ build is
    unavailable it still runs them, through the pure-PyTorch loop.
    """

    name = "compiled"
    direction = staticmethod(compiled_direction)

    def unsupported(self, rnn) -> str | None:
        param = rnn.cells[0].weight_ih
        if param.device.type != "cpu":
            return f"the native kernels run on the CPU, the layer is on {param.device}"
        if param.dtype not in (torch.float32, torch.float64):
            return f"the native kernels take float32 or float64, the layer is {param.dtype}"
        for cell in rnn.cells:
            if type(cell) not in NATIVE_CELLS:
                names = ", ".join(sorted(c.__name__ for c in NATIVE_CELLS))
                return f"{type(cell).__name__} has no native kernel (compiled runs {names})"
            if isinstance(cell, GRUCell) and cell.recurrent_dropout:
                return "the native GRU kernel has no recurrent dropout"
        return None

    def auto_unsupported(self, rnn) -> str | None:
        """As :meth:`unsupported`, and not without a working C++ toolchain: the pure-PyTorch
        fallback would then be slower than ``fused`` for a GRU (the other cells reach
        ``loop``, the same code)."""
        reason = self.unsupported(rnn)
        if reason is None:
            missing = native_unavailable() or native_build_error()
            if missing:
                reason = f"the native kernels are unavailable: {missing}"
        return reason
