"""The runner owns the stack: backends run one direction of one layer (``direction``) unless
they claim the whole stack (``run_stack``, as ``fused`` does); cells declare their optional
hooks on :class:`~rnnkit.cells.Cell`, so a user cell that declares nothing still runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnkit.backends as backends
from rnnkit import Recurrent
from rnnkit.backends import Backend, FusedBackend, LoopBackend
from rnnkit.backends.compiled import CompiledBackend
from rnnkit.backends.loop import reverse_padded, run_direction
from rnnkit.backends.scan import ScanBackend
from rnnkit.cells import Cell, get_cell

F64 = torch.float64


class _Counting(Backend):
    """A backend that implements only ``direction`` (the loop's), counting its calls."""

    name = "counting"

    def __init__(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    def direction(self, cell, x, state, mask):
        self.calls.append(tuple(x.shape))
        return run_direction(cell, x, state, mask)


@pytest.fixture
def counting(monkeypatch):
    backend = _Counting()
    monkeypatch.setitem(backends._REGISTRY, backend.name, backend)
    return backend


@pytest.mark.parametrize("cell", ["lstm", "gru", "layernorm_lstm"])
def test_a_direction_only_backend_gets_the_whole_stack_from_the_runner(cell, counting):
    torch.manual_seed(0)
    ref = Recurrent(cell, 3, 4, num_layers=2, bidirectional=True, backend="loop", dtype=F64)
    ours = Recurrent(cell, 3, 4, num_layers=2, bidirectional=True, backend="counting",
                     dtype=F64)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 6, 3, dtype=F64)
    out_ref, final_ref = ref(x, lengths=[6, 2, 4])
    out, final = ours(x, lengths=[6, 2, 4])
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(final, final_ref)
    # one call per layer and direction; layer 1 reads both directions of layer 0
    assert counting.calls == [(3, 6, 3), (3, 6, 3), (3, 6, 8), (3, 6, 8)]


def test_inter_layer_dropout_is_the_runners(counting):
    layer = Recurrent("gru", 3, 4, num_layers=2, dropout=0.5, backend="counting")
    ref = Recurrent("gru", 3, 4, num_layers=2, dropout=0.5, backend="loop")
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(2, 5, 3)
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])
    layer.train()
    assert not torch.equal(layer(x)[0], layer(x)[0])
    torch.manual_seed(1)
    a = layer(x)[0]
    torch.manual_seed(1)
    torch.testing.assert_close(a, ref(x)[0])  # the same dropout draws as the loop backend


def test_backend_contract_defaults():
    base = Backend()
    assert base.run_stack(None, None, None, None) is None
    with pytest.raises(NotImplementedError, match="single directions"):
        base.direction(None, None, None, None)
    # the per-direction backends are plain Backends, not LoopBackend variants
    for cls in (LoopBackend, ScanBackend, CompiledBackend):
        assert cls.__bases__ == (Backend,)
        assert cls.run_stack is Backend.run_stack
    assert FusedBackend.run_stack is not Backend.run_stack


def test_fused_claims_the_whole_stack():
    layer = Recurrent("lstm", 3, 4, num_layers=2, bidirectional=True, backend="fused")
    x = torch.randn(2, 5, 3)
    state = layer._check_state(None, x, unbatched=False)
    out, final = layer._resolved.run_stack(layer, x, state, None)
    ref_out, ref_final = layer._run_stack(run_direction, x, state, None)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(tuple(final), tuple(ref_final))


def test_reverse_padded_is_its_own_inverse():
    x = torch.randn(3, 5, 2)
    lengths = torch.tensor([5, 1, 3])
    y = reverse_padded(x, lengths)
    torch.testing.assert_close(y[2, :3], x[2, :3].flip(0))
    torch.testing.assert_close(y[:, 3:][2], x[:, 3:][2])  # padding stays put
    torch.testing.assert_close(reverse_padded(y, lengths), x)
    torch.testing.assert_close(reverse_padded(x, None), x.flip(1))


# -- cell hooks ----------------------------------------------------------------------------
class _Leaky(Cell):
    """A user cell declaring none of the optional hooks: ``h_t = tanh(W x_t + a h_{t-1})``."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.output_size = self.gate_size = hidden_size
        self.weight_ih = nn.Parameter(torch.randn(hidden_size, input_size, device=device,
                                                  dtype=dtype))
        self.a = nn.Parameter(torch.full((hidden_size,), 0.5, device=device, dtype=dtype))

    def project_input(self, x):
        return x @ self.weight_ih.T

    def step(self, xp_t, state):
        h = torch.tanh(xp_t + self.a * state)
        return h, h


class _LeakyLinear(_Leaky):
    """Gates from ``x_t`` only, with a parallel form: defining ``scan`` is enough."""

    def step(self, xp_t, state):
        h = xp_t + self.a * state
        return h, h

    def scan(self, xp, state, mask=None):
        outs, h = [], state
        for t in range(xp.shape[1]):
            new = xp[:, t] + self.a * h
            h = new if mask is None else torch.where(mask[:, t], new, h)
            outs.append(h)
        return torch.stack(outs, 1), h


def test_user_cell_without_hooks_runs_everywhere_it_can():
    cell = _Leaky(2, 3)
    assert (cell.has_scan, cell.zoneout, cell.recurrent_dropout, cell.proj_size) == \
        (False, 0.0, 0.0, 0)
    assert cell.begin_sequence() is None
    with pytest.raises(NotImplementedError, match="no parallel form"):
        cell.scan(torch.zeros(1, 1, 3), torch.zeros(1, 3))
    layer = Recurrent(_Leaky, 2, 3, bidirectional=True, dtype=F64)
    assert layer.active_backend == "loop"
    for name in ("fused", "scan", "compiled"):
        with pytest.raises(ValueError, match="cannot run this layer"):
            layer.backend = name
    x = torch.randn(2, 4, 2, dtype=F64)
    out, h = layer(x, lengths=[4, 2])
    fwd, bwd = layer.cells
    for b, n in enumerate([4, 2]):
        ref = _states(fwd, x[b, :n])
        torch.testing.assert_close(out[b, :n, :3], ref)
        torch.testing.assert_close(h[0, b], ref[-1])
        ref = _states(bwd, x[b, :n].flip(0))  # the reverse direction, within the length
        torch.testing.assert_close(out[b, :n, 3:], ref.flip(0))
        torch.testing.assert_close(h[1, b], ref[-1])
    assert out[1, 2:].eq(0).all()


def _states(c, x):
    """``x [T, I]`` -> every ``h_t`` ``[T, H]`` of the reference recurrence."""
    h, outs = torch.zeros(c.hidden_size, dtype=x.dtype), []
    for t in range(x.shape[0]):
        h = torch.tanh(c.weight_ih @ x[t] + c.a * h)
        outs.append(h)
    return torch.stack(outs)


def test_defining_scan_is_enough_for_the_scan_backend():
    assert _LeakyLinear.has_scan and get_cell("mingru").has_scan
    assert not get_cell("gru").has_scan
    ref = Recurrent(_LeakyLinear, 2, 3, num_layers=2, bidirectional=True, backend="loop",
                    dtype=F64)
    fast = Recurrent(_LeakyLinear, 2, 3, num_layers=2, bidirectional=True, backend="scan",
                     dtype=F64)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(3, 5, 2, dtype=F64)
    for a, b in zip(fast(x, lengths=[5, 3, 1]), ref(x, lengths=[5, 3, 1])):
        torch.testing.assert_close(a, b)


def test_begin_sequence_is_called_once_per_direction(monkeypatch):
    calls = []
    monkeypatch.setattr(_Leaky, "begin_sequence", lambda self: calls.append(self), raising=False)
    layer = Recurrent(_Leaky, 2, 3, num_layers=2, bidirectional=True)
    layer(torch.randn(1, 3, 2))
    assert calls == list(layer.cells)


def _backward_nodes(out: torch.Tensor) -> list[str]:
    """Names of every node of ``out``'s autograd graph."""
    seen, names, stack = set(), [], [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        stack.extend(f for f, _ in node.next_functions)
    return names


@pytest.mark.parametrize("cell,shape,opts", [("lstm", (3, 7, 4), {}), ("gru", (3, 7, 4), {}),
                                             ("convlstm", (2, 5, 3, 6, 6), {"kernel_size": 3})])
def test_the_loop_reads_each_step_of_the_projection_by_one_unbind(cell, shape, opts):
    """The steps of ``cell.project_input(x)`` come from one ``unbind``, not ``xp[:, t]``: the
    backward of T selects zero-fills and adds T tensors of the projection's full size, O(T^2)
    (measured 5x the whole backward of a 200-step LSTM on the loop). With lengths and both
    directions: one unbind per direction and layer, no select of a differentiable tensor."""
    torch.manual_seed(0)
    rnn = Recurrent(cell, shape[2], 5, num_layers=2, bidirectional=True, backend="loop", **opts)
    x = torch.randn(*shape, requires_grad=True)
    lengths = torch.tensor([shape[1]] + [shape[1] - 2] * (shape[0] - 1))
    out, _ = rnn(x, lengths=lengths)
    names = _backward_nodes(out)
    assert names.count("SelectBackward0") == 0, names
    assert names.count("UnbindBackward0") == 4  # 2 layers x 2 directions
