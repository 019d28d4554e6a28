"""FLOP formulas against PyTorch's own counter, where the counter sees the products."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import rnnkit
from rnnkit.audit.flops import FlopMeter, count_flops, recurrent_flops, register_flops
from rnnkit.cells import available_cells

CELLS = sorted(available_cells())


def counted(fn) -> int:
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_forward_formula_equals_counter_on_the_loop_backend(cell, layers, bidirectional):
    g = torch.Generator().manual_seed(hash((cell, layers)) % 1000)
    B, T, I, H = (int(v) for v in torch.randint(2, 7, (4,), generator=g))
    rnn = rnnkit.Recurrent(cell, I, H, num_layers=layers, bidirectional=bidirectional,
                           backend="loop")
    x = torch.randn(B, T, I, generator=g)
    with torch.no_grad():
        expected = counted(lambda: rnn(x))
    assert expected > 0
    assert recurrent_flops(rnn, B, T) == expected


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("x_grad,state_grad", [(True, False), (False, False), (True, True)])
def test_backward_formula_equals_counter_on_the_loop_backend(cell, x_grad, state_grad):
    B, T, I, H = 3, 4, 5, 6
    rnn = rnnkit.Recurrent(cell, I, H, num_layers=2, backend="loop")
    x = torch.randn(B, T, I, requires_grad=x_grad)
    state = None
    if state_grad:
        template = rnn.cells[0].initial_state(B)
        state = rnnkit.cells.state_map(
            lambda t: torch.randn(2, *t.shape, requires_grad=True), template)
    out, _ = rnn(x, state)
    expected = counted(lambda: out.sum().backward())
    got = recurrent_flops(rnn, B, T, backward=True, input_grad=x_grad, state_grad=state_grad)
    assert got == expected


def test_lstm_projection_counts_weight_hr():
    rnn = rnnkit.nn.LSTM(5, 8, proj_size=3, batch_first=True, backend="loop")
    x = torch.randn(2, 6, 5, requires_grad=True)
    with torch.no_grad():
        assert recurrent_flops(rnn, 2, 6) == counted(lambda: rnn(x))


@pytest.mark.parametrize("kind", ["RNN", "GRU"])
def test_torch_modules_the_counter_sees(kind):
    rnn = getattr(torch.nn, kind)(4, 7, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(3, 5, 4, requires_grad=True)
    fwd = counted(lambda: rnn(x))
    assert recurrent_flops(rnn, 3, 5) == fwd
    out, _ = rnn(x)
    assert recurrent_flops(rnn, 3, 5, backward=True) == counted(lambda: out.sum().backward())


def test_torch_lstm_counts_zero_and_the_meter_counts_the_loop_equivalent():
    torch_lstm = torch.nn.LSTM(4, 7, batch_first=True)
    ours = rnnkit.nn.LSTM(4, 7, batch_first=True, backend="loop")
    x = torch.randn(3, 5, 4)
    assert counted(lambda: torch_lstm(x)) == 0  # the fact this module exists for
    with torch.no_grad():
        loop = counted(lambda: ours(x))
    assert count_flops(torch_lstm, x).total == loop


class Tagger(torch.nn.Module):
    def __init__(self, cell: str, backend: str) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(11, 6)
        self.rnn = rnnkit.Recurrent(cell, 6, 8, num_layers=2, backend=backend)
        self.out = torch.nn.Linear(8, 11)

    def forward(self, x):
        return self.out(self.rnn(self.embed(x))[0])


@pytest.mark.parametrize("cell,backend", [("lstm", "fused"), ("gru", "fused"),
                                          ("elman", "fused"), ("mingru", "scan"),
                                          ("minlstm", "scan"), ("indrnn", "compiled")])
def test_meter_gives_every_backend_the_loop_count(cell, backend):
    torch.manual_seed(0)
    x = torch.randint(0, 11, (3, 7))
    loop = Tagger(cell, "loop")
    other = Tagger(cell, backend)
    other.load_state_dict(loop.state_dict())
    expected = counted(lambda: loop(x).sum().backward())
    got = count_flops(other, x, backward=True)
    assert got.total == expected
    assert got.other == 2 * 3 * 7 * 8 * 11 * 3  # the output layer, forward + two grads
    assert all(p.grad is None for p in other.parameters())


def test_backward_only_counted_when_it_runs():
    model = Tagger("gru", "fused")
    x = torch.randint(0, 11, (2, 4))
    with FlopMeter(model) as meter:
        model(x)
    forward_only = meter.count.total
    with FlopMeter(model) as meter:
        model(x).sum().backward()
    assert meter.count.total == 3 * forward_only - 2 * 2 * 2 * (24 * 8)  # no grad into h0


def test_custom_cell_without_formula_is_measured():
    class Twice(rnnkit.Cell):
        def __init__(self, input_size, hidden_size, **kw):
            super().__init__()
            self.input_size, self.hidden_size = input_size, hidden_size
            self.output_size = self.gate_size = hidden_size
            self.weight_ih = torch.nn.Parameter(torch.randn(hidden_size, input_size))
            self.b = torch.nn.Parameter(torch.randn(hidden_size, hidden_size))
            self.bias_ih = None

        def step(self, xp_t, h):
            h = torch.tanh(xp_t + h @ self.b.T @ self.b.T)  # two recurrent products
            return h, h

    rnn = rnnkit.Recurrent(Twice, 3, 5, backend="loop")
    x = torch.randn(2, 4, 3)
    with torch.no_grad():
        assert recurrent_flops(rnn, 2, 4) == counted(lambda: rnn(x))

    @register_flops(Twice)
    def _(cell):
        return cell.weight_ih.numel(), 2 * cell.b.numel(), 0

    assert recurrent_flops(rnn, 2, 4) == 2 * 2 * 4 * (15 + 50)


def test_bad_module_named():
    with pytest.raises(TypeError, match="not a recurrent module"):
        recurrent_flops(torch.nn.Linear(2, 3), 1, 1)
