"""minGRU / minLSTM: the parallel scan against the sequential form (tier b), the hand-written
scan backward against finite differences (tier c), long sequences and saturated gates."""

from __future__ import annotations

import pytest
import torch

from rnnkit import Recurrent
from rnnkit.cells.minimal import gated_scan, linear_scan, log_space_scan

F64 = torch.float64
MIN_CELLS = ["mingru", "minlstm"]


def _sequential(a, b, h0):
    h, out = h0, []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, 1)


@pytest.mark.parametrize("T", [1, 2, 5, 17, 64])
def test_linear_scan_gradcheck_float64(T):
    a = torch.rand(2, T, 3, dtype=F64, requires_grad=True)
    b = torch.randn(2, T, 3, dtype=F64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=F64, requires_grad=True)
    torch.testing.assert_close(linear_scan(a, b, h0), _sequential(a, b, h0))
    assert torch.autograd.gradcheck(linear_scan, (a, b, h0))


@pytest.mark.parametrize("gates", [2, 3])  # minGRU [k; v], minLSTM [k_f; k_i; v]
@pytest.mark.parametrize("masked", [False, True])
def test_gated_scan_gradcheck_float64(masked, gates):
    kv = (3 * torch.randn(2, 9, 4 * gates, dtype=F64)).requires_grad_()
    h0 = torch.randn(2, 4, dtype=F64, requires_grad=True)
    keep = torch.rand(2, 9, 1) > 0.3 if masked else None
    assert torch.autograd.gradcheck(lambda kv, h0: gated_scan(kv, h0, keep), (kv, h0))


def _g_ref(v):
    """The paper's g, written here independently of the module under test."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


@pytest.mark.parametrize("gates", [2, 3])
def test_gated_scan_equals_autograd_through_the_coefficients(gates):
    """The hand-written backward == autograd through the paper's gate formulas + the sequential
    recurrence, with saturated gates (|k| up to ~40) and frozen (masked) steps; minGRU
    (``[k; v]``) and minLSTM (``[k_f; k_i; v]``, normalised gates)."""
    scale = torch.tensor([15.0] * 5 * (gates - 1) + [2.0] * 5, dtype=F64)
    kv = torch.randn(3, 30, 5 * gates, dtype=F64) * scale
    h0 = torch.randn(3, 5, dtype=F64)
    keep = torch.rand(3, 30, 1) > 0.2
    up = torch.randn(3, 30, 5, dtype=F64)
    results = []
    for hand_written in (True, False):
        kv_, h0_ = kv.clone().requires_grad_(), h0.clone().requires_grad_()
        if hand_written:
            h = gated_scan(kv_, h0_, keep)
        else:
            if gates == 2:
                k, v = kv_.chunk(2, dim=-1)
                a, z = torch.sigmoid(-k), torch.sigmoid(k)
            else:  # f' = f / (f + i), i' = i / (f + i)
                k_f, k_i, v = kv_.chunk(3, dim=-1)
                f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
                a, z = f / (f + i), i / (f + i)
            a = a.masked_fill(~keep, 1.0)
            b = (z * _g_ref(v)).masked_fill(~keep, 0.0)
            h = _sequential(a, b, h0_)
        (h * up).sum().backward()
        results.append([h, kv_.grad, h0_.grad])
    for x, y in zip(*results):
        torch.testing.assert_close(x, y)


def test_log_space_scan_equals_sequential_with_negative_initial_state():
    a = torch.rand(3, 40, 4, dtype=F64) * 0.98 + 0.01
    b = torch.rand(3, 40, 4, dtype=F64) + 0.1
    h0 = -torch.rand(3, 4, dtype=F64) - 0.5  # negative: must not need a log
    torch.testing.assert_close(log_space_scan(a.log(), b.log(), h0), _sequential(a, b, h0))


@pytest.mark.parametrize("name", MIN_CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_scan_backend_equals_loop_float64(name, bidirectional):
    """Outputs, final state and all gradients, with a non-zero initial state and lengths."""
    torch.manual_seed(3)
    ref = Recurrent(name, 3, 5, num_layers=2, bidirectional=bidirectional, backend="loop",
                    dtype=F64)
    fast = Recurrent(name, 3, 5, num_layers=2, bidirectional=bidirectional, backend="scan",
                     dtype=F64)
    fast.load_state_dict(ref.state_dict())
    D = 2 if bidirectional else 1
    x = torch.randn(4, 11, 3, dtype=F64)
    s0 = torch.randn(2 * D, 4, 5, dtype=F64)
    lengths = [11, 3, 7, 1]
    results = []
    for layer in (ref, fast):
        xi, si = x.clone().requires_grad_(), s0.clone().requires_grad_()
        out, h = layer(xi, si, lengths=lengths)
        (out.sin().sum() + h.cos().sum()).backward()
        results.append([out, h, xi.grad, si.grad, *(p.grad for p in layer.parameters())])
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("name", MIN_CELLS)
def test_scan_backend_gradcheck_float64(name):
    layer = Recurrent(name, 2, 3, bidirectional=True, backend="scan", dtype=F64)
    x = torch.randn(2, 6, 2, dtype=F64, requires_grad=True)
    s0 = torch.randn(2, 2, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, s: layer(x, s, lengths=[6, 4]), (x, s0))


@pytest.mark.parametrize("name", MIN_CELLS)
def test_long_sequence_with_saturated_gates_float32(name):
    """T = 4000 with gate pre-activations up to |k| ~ 80 (sigmoid saturates in float32): the
    float32 scan stays within float32 rounding of a float64 sequential reference."""
    torch.manual_seed(0)
    layer = Recurrent(name, 4, 8, backend="scan")
    with torch.no_grad():
        layer.cells[0].weight_ih.mul_(40.0)
    x = torch.randn(2, 4000, 4)
    s0 = torch.randn(1, 2, 8)
    out, h = layer(x, s0)
    ref = Recurrent(name, 4, 8, backend="loop", dtype=F64)
    ref.load_state_dict({k: v.double() for k, v in layer.state_dict().items()})
    with torch.no_grad():
        want, _ = ref(x.double(), s0.double())
    assert bool(torch.isfinite(out).all())
    torch.testing.assert_close(out.double(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", MIN_CELLS)
def test_streaming_step_equals_parallel_forward(name):
    layer = Recurrent(name, 3, 6, num_layers=2)
    assert layer.active_backend == "scan"
    x = torch.randn(2, 9, 3)
    s0 = torch.randn(2, 2, 6)
    out, final = layer(x, s0)
    state = s0
    for t in range(9):
        y, state = layer.step(x[:, t], state)
        torch.testing.assert_close(y, out[:, t])
    torch.testing.assert_close(state, final)
