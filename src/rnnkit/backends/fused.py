"""Hands the standard Elman/LSTM/GRU cells to PyTorch's fused RNN kernels.

The kernels are the ones behind ``torch.nn.RNN/LSTM/GRU`` (``torch._VF``): cuDNN on GPU,
oneDNN or ATen on CPU. The cells' own parameters are passed as the flat weight list, so nothing
is copied per call and gradients land on the cells' parameters.

A single time step (``T = 1``: streaming :meth:`~rnnkit.Recurrent.step`) goes through the
per-layer cell kernels behind ``torch.nn.LSTMCell/GRUCell/RNNCell`` instead: the sequence
kernel sets up a whole-sequence call for one step and measured 2-3x slower (2-layer LSTM,
H=256, B=1, 1 thread: 2143 us vs 709 us per step; B=32: 4636 vs 2063). The cell path is taken
for unidirectional stacks without ``proj_size`` and without active inter-layer dropout.
"""

from __future__ import annotations

import torch
from torch import _VF, Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..cells import ElmanCell, GRUCell, LSTMCell, LSTMState, State
from .base import Backend

_FUSABLE = (ElmanCell, LSTMCell, GRUCell)


def flat_weights(rnn) -> list[Tensor]:
    """Parameters in torch's ``_flat_weights`` order: per layer and direction
    ``w_ih, w_hh, (b_ih, b_hh), (w_hr)``."""
    weights = []
    for cell in rnn.cells:
        weights += [cell.weight_ih, cell.weight_hh]
        if cell.bias:
            weights += [cell.bias_ih, cell.bias_hh]
        if cell.proj_size:
            weights.append(cell.weight_hr)
    return weights


class FusedBackend(Backend):
    """PyTorch's fused kernels for homogeneous stacks of Elman, LSTM or GRU cells.

    It claims the whole stack (:meth:`run_stack`): torch's kernels run every layer and
    direction, inter-layer dropout included, in one call; it has no single-direction form.
    """

    name = "fused"

    def unsupported(self, rnn) -> str | None:
        cells = list(rnn.cells)
        kind = type(cells[0])
        if kind not in _FUSABLE:
            return (
                f"{kind.__name__} has no fused kernel (fused runs only "
                f"{', '.join(c.__name__ for c in _FUSABLE)})"
            )
        for cell in cells:
            if cell.zoneout or cell.recurrent_dropout:
                return "the fused kernels have no zoneout or recurrent dropout"
        if any(type(c) is not kind for c in cells):
            return "the stacked cells differ in type or 'bias'; fused needs them uniform"
        # one configuration per stack: (bias, nonlinearity, proj_size) of every cell
        configs = [(c.bias, c.nonlinearity if kind is ElmanCell else None, c.proj_size)
                   for c in cells]
        for i, attr in enumerate(("bias", "nonlinearity", "proj_size")):
            if len({config[i] for config in configs}) > 1:
                return f"the stacked cells differ in type or {attr!r}; fused needs them uniform"
        return None

    def run_stack(self, rnn, x: Tensor, state: State, lengths: Tensor | None
                  ) -> tuple[Tensor, State]:
        """The whole stack in one call of torch's kernel (see :meth:`Backend.run_stack`)."""
        cell = rnn.cells[0]
        weights = flat_weights(rnn)
        args = (cell.bias, rnn.num_layers, float(rnn.dropout), rnn.training,
                rnn.num_directions == 2)
        if isinstance(cell, LSTMCell):
            fn, hx = _VF.lstm, (state.h, state.c)
        elif isinstance(cell, GRUCell):
            fn, hx = _VF.gru, state
        else:
            fn, hx = (_VF.rnn_tanh if cell.nonlinearity == "tanh" else _VF.rnn_relu), state
        T = x.shape[1]
        if T == 1 and self._cells_can_step(rnn):
            return self._one_step(rnn, x, state)
        if lengths is None or bool((lengths == T).all()):
            result = fn(x, hx, weights, *args, True)
            return result[0], self._state(cell, result[1:])
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        order, unorder = packed.sorted_indices, packed.unsorted_indices
        hx = tuple(h.index_select(1, order) for h in hx) if isinstance(hx, tuple) else \
            hx.index_select(1, order)
        result = fn(packed.data, packed.batch_sizes, hx, weights, *args)
        out, _ = pad_packed_sequence(
            PackedSequence(result[0], packed.batch_sizes, order, unorder),
            batch_first=True,
            total_length=T,
        )
        final = tuple(h.index_select(1, unorder) for h in result[1:])
        return out, self._state(cell, final)

    @staticmethod
    def _cells_can_step(rnn) -> bool:
        return (rnn.num_directions == 1 and not rnn.cells[0].proj_size
                and not (rnn.training and rnn.dropout > 0))

    @staticmethod
    def _one_step(rnn, x: Tensor, state: State) -> tuple[Tensor, State]:
        """``x [B, 1, I]`` through every layer's cell kernel -> ``(out [B, 1, H], state)``."""
        cell0 = rnn.cells[0]
        lstm = isinstance(cell0, LSTMCell)
        if lstm:
            fn = _VF.lstm_cell
        elif isinstance(cell0, GRUCell):
            fn = _VF.gru_cell
        else:
            fn = _VF.rnn_tanh_cell if cell0.nonlinearity == "tanh" else _VF.rnn_relu_cell
        inp, hs, cs = x[:, 0], [], []
        for layer, cell in enumerate(rnn.cells):
            hx = (state.h[layer], state.c[layer]) if lstm else state[layer]
            out = fn(inp, hx, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
            if lstm:
                inp, c = out
                cs.append(c)
            else:
                inp = out
            hs.append(inp)
        h = torch.stack(hs)
        return inp.unsqueeze(1), (LSTMState(h, torch.stack(cs)) if lstm else h)

    @staticmethod
    def _state(cell, parts) -> State:
        return LSTMState(*parts) if isinstance(cell, LSTMCell) else parts[0]
