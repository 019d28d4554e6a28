"""Tier (b): the runner. Every registered cell x backend equals the loop backend; gradcheck on
the loop; lengths, reversal, streaming and state semantics; property tests on random shapes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence

from rnnkit import Recurrent, available_cells
from rnnkit.backends import available_backends, get_backend
from rnnkit.cells import state_map, state_tensors


def _pairs() -> list[tuple[str, str]]:
    """Every (cell, backend) pair where the backend can run a small stack of that cell."""
    pairs = []
    for cell in available_cells():
        probe = Recurrent(cell, 3, 4, num_layers=2, bidirectional=True, backend="loop")
        for backend in available_backends():
            if backend not in ("auto", "loop") and get_backend(backend).unsupported(probe) is None:
                pairs.append((cell, backend))
    return pairs


def _loss(out, state, g: torch.Generator):
    total = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum()
    for s in state_tensors(state):
        total = total + (s * torch.randn(s.shape, generator=g, dtype=s.dtype)).sum()
    return total


@pytest.mark.parametrize("cell,backend", _pairs())
def test_every_backend_equals_loop(cell: str, backend: str) -> None:
    layer = Recurrent(cell, 3, 5, num_layers=2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(4, 7, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([7, 2, 5, 1])
    results = []
    for name in ("loop", backend):
        layer.backend = name
        out, state = layer(x, lengths=lengths)
        grads = torch.autograd.grad(_loss(out, state, torch.Generator().manual_seed(3)),
                                    [x, *layer.parameters()])
        results.append((out, state_tensors(state), grads))
    (o1, s1, g1), (o2, s2, g2) = results
    torch.testing.assert_close(o1, o2, rtol=1e-10, atol=1e-10)
    for a, b in zip(s1 + g1, s2 + g2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("cell", available_cells())
def test_gradcheck_loop(cell: str) -> None:
    layer = Recurrent(cell, 2, 3, num_layers=2, bidirectional=True, backend="loop",
                      dtype=torch.float64)
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    s0 = state_map(lambda s: torch.randn_like(s).requires_grad_(True),
                   layer._check_state(None, x, unbatched=False))
    parts = state_tensors(s0)

    def f(x, *p):
        st0 = p[0] if len(p) == 1 else type(s0)(*p)
        out, s = layer(x, st0, lengths=[4, 3])
        return (out, *state_tensors(s))

    assert torch.autograd.gradcheck(f, (x, *parts))


@pytest.mark.parametrize("cell", available_cells())
@pytest.mark.parametrize("backend", ["loop", "auto"])
def test_lengths_equal_running_each_sequence_alone(cell: str, backend: str) -> None:
    layer = Recurrent(cell, 3, 4, num_layers=2, bidirectional=True, backend=backend,
                      dtype=torch.float64)
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    lengths = [6, 4, 1]
    out, state = layer(x, lengths=lengths)
    for b, n in enumerate(lengths):
        alone_out, alone_state = layer(x[b : b + 1, :n])
        torch.testing.assert_close(out[b, :n], alone_out[0])
        assert torch.count_nonzero(out[b, n:]) == 0, "padded steps must output zeros"
        for s, a in zip(state_tensors(state), state_tensors(alone_state)):
            torch.testing.assert_close(s[:, b], a[:, 0])


def test_reverse_direction_is_forward_on_reversed_input() -> None:
    bi = Recurrent("gru", 3, 4, bidirectional=True, dtype=torch.float64)
    fwd = Recurrent("gru", 3, 4, dtype=torch.float64)
    fwd.cells[0].load_state_dict(bi.cells[1].state_dict())
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    out, h = bi(x)
    rev_out, rev_h = fwd(x.flip(1))
    torch.testing.assert_close(out[..., 4:], rev_out.flip(1))
    torch.testing.assert_close(h[1], rev_h[0])


@pytest.mark.parametrize("cell", available_cells())
@pytest.mark.parametrize("backend", ["loop", "auto"])
def test_streaming_step_equals_full_run(cell: str, backend: str) -> None:
    layer = Recurrent(cell, 3, 5, num_layers=3, backend=backend, dtype=torch.float64)
    x = torch.randn(2, 8, 3, dtype=torch.float64)
    s0 = state_map(torch.randn_like, layer._check_state(None, x, unbatched=False))
    full, final = layer(x, s0)
    state, outs = s0, []
    for t in range(x.shape[1]):
        o, state = layer.step(x[:, t], state)
        outs.append(o)
    torch.testing.assert_close(torch.stack(outs, 1), full)
    for a, b in zip(state_tensors(state), state_tensors(final)):
        torch.testing.assert_close(a, b)
    o, _ = layer.step(x[0, 0])  # unbatched step
    assert o.shape == (layer.cells[-1].output_size,)


def test_time_major_layout_and_backend_switch() -> None:
    layer = Recurrent("lstm", 3, 4, batch_first=False, dtype=torch.float64)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    out, (h, c) = layer(x)
    assert out.shape == (6, 2, 4)
    torch.testing.assert_close(out[-1], h[0])
    layer.backend = "loop"
    torch.testing.assert_close(layer(x)[0], out)
    assert layer.active_backend == "loop"
    layer.backend = "auto"
    assert layer.active_backend == "fused"


@settings(max_examples=25, deadline=None)
@given(
    cell=st.sampled_from(["elman", "lstm", "gru"]),
    B=st.integers(1, 4), T=st.integers(1, 7), I=st.integers(1, 5), H=st.integers(1, 6),
    L=st.integers(1, 3), bidirectional=st.booleans(), seed=st.integers(0, 2**16),
)
def test_property_fused_equals_loop_on_random_shapes(cell, B, T, I, H, L, bidirectional, seed):
    torch.manual_seed(seed)
    layer = Recurrent(cell, I, H, num_layers=L, bidirectional=bidirectional,
                      dtype=torch.float64)
    x = torch.randn(B, T, I, dtype=torch.float64)
    lengths = torch.randint(1, T + 1, (B,))
    layer.backend = "fused"
    o1, s1 = layer(x, lengths=lengths)
    layer.backend = "loop"
    o2, s2 = layer(x, lengths=lengths)
    assert o1.shape == (B, T, (2 if bidirectional else 1) * H)
    torch.testing.assert_close(o1, o2)
    for a, b in zip(state_tensors(s1), state_tensors(s2)):
        assert a.shape == (L * (2 if bidirectional else 1), B, H)
        torch.testing.assert_close(a, b)


def test_state_from_autocast_is_accepted_back() -> None:
    layer = Recurrent("lstm", 3, 4)
    x = torch.randn(2, 5, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, state = layer(x[:, :3])
        assert state.h.dtype == torch.bfloat16
        out2, _ = layer(x[:, 3:], state)  # carried state, as under truncated BPTT
    assert out2.shape == (2, 2, 4)


@pytest.mark.parametrize("cell", ["lstm", "gru", "layernorm_lstm", "mingru"])
def test_autocast_input_is_accepted_like_torch(cell: str) -> None:
    """An input in the autocast dtype (e.g. from an autocast Linear) is accepted inside the
    region, as torch.nn.LSTM does, and equals feeding its float32 value; outside a region the
    dtype mismatch is still refused."""
    layer = Recurrent(cell, 3, 4)
    x = torch.randn(2, 5, 3).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = layer(x)
        want, _ = layer(x.float())
        packed = pack_padded_sequence(x, [5, 2], batch_first=True)
        layer(packed)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    with pytest.raises(TypeError, match="does not match the layer's parameters"):
        layer(x)


@pytest.mark.parametrize("cell", available_cells())
def test_cell_forward_equals_one_runner_step(cell: str) -> None:
    """The torch-style ``cell(x, hx)`` every cell inherits == one step of the runner, and a
    plain tuple state is accepted where the cell keeps a named tuple."""
    layer = Recurrent(cell, 3, 5, dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64)
    s0 = state_map(lambda s: torch.randn_like(s[0]), layer._check_state(None, x[:, None],
                                                                        unbatched=False))
    _, want = layer.step(x, state_map(lambda s: s.unsqueeze(0), s0))
    plain = s0 if isinstance(s0, torch.Tensor) else tuple(s0)
    got = layer.cells[0](x, plain)
    assert type(got) is type(s0)
    for a, b in zip(state_tensors(got), state_tensors(want)):
        torch.testing.assert_close(a, b[0])
    assert repr(layer.cells[0]).startswith(f"{type(layer.cells[0]).__name__}(3, 5")


def test_cell_repr_shows_options_that_differ_from_the_cells_own_defaults() -> None:
    """IndRNN defaults to relu (Elman to tanh): a tanh IndRNN must say so, a relu one need not."""
    from rnnkit.cells import ElmanCell, IndRNNCell

    assert repr(IndRNNCell(3, 5)) == "IndRNNCell(3, 5)"
    assert repr(IndRNNCell(3, 5, nonlinearity="tanh")) == "IndRNNCell(3, 5, nonlinearity='tanh')"
    assert repr(ElmanCell(3, 5, nonlinearity="relu")) == "ElmanCell(3, 5, nonlinearity='relu')"
