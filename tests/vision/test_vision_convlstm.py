"""ConvLSTM: the cell run by ``Recurrent`` against a plain loop written from Shi et al.'s
equations with ``F.conv2d``, gradcheck, streaming, and bad inputs."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from rnnkit import Recurrent
from rnnkit.backends import available_backends
from rnnkit.cells import ConvLSTMCell, available_cells, get_cell


def _reference_cell(p: dict, x_t, h, c, k: int):
    """One step of eq. 3 of Shi et al. 2015 (peepholes per channel), from its parameters."""
    pad = k // 2
    z = F.conv2d(x_t, p["weight_ih"], p.get("bias_ih"), padding=pad) + \
        F.conv2d(h, p["weight_hh"], padding=pad)
    zi, zf, zg, zo = z.chunk(4, dim=1)
    if p.get("weight_ch") is not None:
        zi = zi + p["weight_ch"][0] * c
        zf = zf + p["weight_ch"][1] * c
    c_new = torch.sigmoid(zf) * c + torch.sigmoid(zi) * torch.tanh(zg)
    if p.get("weight_ch") is not None:
        zo = zo + p["weight_ch"][2] * c_new
    return torch.sigmoid(zo) * torch.tanh(c_new), c_new


def _reference(rnn: Recurrent, x, lengths, k: int):
    """Layers and directions by hand: each sequence cut to its length, reversed for d = 1."""
    B, T = x.shape[:2]
    L, D = rnn.num_layers, rnn.num_directions
    C_h = rnn.hidden_size
    out = torch.zeros(B, T, D * C_h, *x.shape[3:], dtype=x.dtype)
    hs = torch.zeros(L * D, B, C_h, *x.shape[3:], dtype=x.dtype)
    cs = torch.zeros_like(hs)
    for b in range(B):
        n = int(lengths[b])
        inp = x[b:b + 1, :n]
        for layer in range(L):
            outs = []
            for d in range(D):
                cell = rnn.cells[layer * D + d]
                p = dict(cell.named_parameters())
                p.setdefault("weight_ch", None)
                h = torch.zeros(1, C_h, *x.shape[3:], dtype=x.dtype)
                c = torch.zeros_like(h)
                steps = range(n) if d == 0 else range(n - 1, -1, -1)
                ys = [None] * n
                for t in steps:
                    h, c = _reference_cell(p, inp[:, t], h, c, k)
                    ys[t] = h
                outs.append(torch.stack(ys, dim=1))
                hs[layer * D + d, b], cs[layer * D + d, b] = h[0], c[0]
            inp = torch.cat(outs, dim=2)
        out[b, :n] = inp[0]
    return out, hs, cs


@pytest.mark.parametrize("peephole", [False, True])
def test_recurrent_convlstm_equals_plain_loop(peephole):
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(2)
    k = 3
    rnn = Recurrent("convlstm", 2, 3, num_layers=2, bidirectional=True, kernel_size=k,
                    peephole=peephole, dtype=torch.float64)
    if peephole:  # they start at zero: give them values so they are tested
        with torch.no_grad():
            for cell in rnn.cells:
                cell.weight_ch.normal_(generator=g)
    assert rnn.active_backend == "loop"
    x = torch.randn(3, 5, 2, 6, 7, generator=g, dtype=torch.float64)
    lengths = torch.tensor([5, 2, 4])
    out, (h, c) = rnn(x, lengths=lengths)
    ref_out, ref_h, ref_c = _reference(rnn, x, lengths, k)
    assert out.shape == (3, 5, 6, 6, 7) and h.shape == (4, 3, 3, 6, 7)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h, ref_h)
    torch.testing.assert_close(c, ref_c)
    assert out[1, 2:].abs().max() == 0  # padded steps output zeros


def test_convlstm_initial_state_and_time_major():
    g = torch.Generator().manual_seed(3)
    rnn = Recurrent("convlstm", 2, 4, kernel_size=5, dtype=torch.float64)
    x = torch.randn(2, 4, 2, 5, 5, generator=g, dtype=torch.float64)
    h0 = torch.randn(1, 2, 4, 5, 5, generator=g, dtype=torch.float64)
    c0 = torch.randn(1, 2, 4, 5, 5, generator=g, dtype=torch.float64)
    out, (h, c) = rnn(x, (h0, c0))
    cell = rnn.cells[0]
    p = dict(cell.named_parameters())
    hr, cr = h0[0], c0[0]
    for t in range(4):
        hr, cr = _reference_cell(p, x[:, t], hr, cr, 5)
        torch.testing.assert_close(out[:, t], hr)
    torch.testing.assert_close(c[0], cr)
    tm = Recurrent("convlstm", 2, 4, kernel_size=5, dtype=torch.float64, batch_first=False)
    tm.load_state_dict(rnn.state_dict())
    out_tm, _ = tm(x.transpose(0, 1), (h0, c0))
    torch.testing.assert_close(out_tm.transpose(0, 1), out)


def test_convlstm_gradcheck_float64():
    g = torch.Generator().manual_seed(4)
    torch.manual_seed(5)
    rnn = Recurrent("convlstm", 1, 2, bidirectional=True, kernel_size=3, peephole=True,
                    dtype=torch.float64)
    with torch.no_grad():
        for cell in rnn.cells:
            cell.weight_ch.normal_(generator=g)
    x = torch.randn(2, 3, 1, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, 2, 2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    params = [p for c in rnn.cells for p in c.parameters()]

    def fn(x, h0, c0, *ps):
        out, (h, c) = torch.func.functional_call(
            rnn, {n: p for (n, _), p in zip(rnn.named_parameters(), ps)},
            (x, (h0, c0)), {"lengths": [3, 2]})
        return out, h, c

    assert torch.autograd.gradcheck(fn, (x, h0, c0, *params))


def test_convlstm_step_streaming_equals_forward():
    g = torch.Generator().manual_seed(6)
    rnn = Recurrent("convlstm", 3, 4, num_layers=2, kernel_size=3)
    x = torch.randn(2, 6, 3, 8, 8, generator=g)
    out, (h, c) = rnn(x)
    state, steps = None, []
    for t in range(6):
        y, state = rnn.step(x[:, t], state)
        steps.append(y)
    torch.testing.assert_close(torch.stack(steps, dim=1), out, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(state.h, h, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(state.c, c, atol=1e-6, rtol=1e-5)


def test_convlstm_cell_api_and_registry():
    g = torch.Generator().manual_seed(7)
    cell = ConvLSTMCell(2, 3, kernel_size=3, dtype=torch.float64)
    x = torch.randn(4, 2, 5, 6, generator=g, dtype=torch.float64)
    h0 = torch.randn(4, 3, 5, 6, generator=g, dtype=torch.float64)
    c0 = torch.randn(4, 3, 5, 6, generator=g, dtype=torch.float64)
    h, c = cell(x, (h0, c0))
    hr, cr = _reference_cell(dict(cell.named_parameters()), x, h0, c0, 3)
    torch.testing.assert_close(h, hr)
    torch.testing.assert_close(c, cr)
    assert get_cell("convlstm") is ConvLSTMCell
    assert "convlstm" not in available_cells()  # sequence-cell lists stay as they were
    assert available_cells(3) == ["convlstm"] and "convlstm" in available_cells(None)


def test_convlstm_learns_to_track_a_moving_dot():
    """A task the model must learn: predict where a dot moving right one pixel per step is
    next; a 1x1 'kernel' cannot see the neighbour, a 3x3 one can."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)

    def batch(n):
        x = torch.zeros(n, 6, 1, 1, 10)
        start = torch.randint(0, 4, (n,), generator=g)
        for t in range(6):
            x[torch.arange(n), t, 0, 0, start + t] = 1.0
        return x

    rnn = Recurrent("convlstm", 1, 4, kernel_size=3)
    head = torch.nn.Conv2d(4, 1, 1)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=0.03)
    for _ in range(150):
        x = batch(16)
        out, _ = rnn(x[:, :-1])
        logits = head(out.flatten(0, 1)).view_as(x[:, 1:])
        loss = F.binary_cross_entropy_with_logits(logits, x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = batch(64)
    with torch.no_grad():
        out, _ = rnn(x[:, :-1])
        logits = head(out.flatten(0, 1)).view_as(x[:, 1:])
    hits = (logits[:, 1:].argmax(-1) == x[:, 2:].argmax(-1)).float().mean()
    assert hits > 0.95


def test_convlstm_bad_inputs_name_the_fix():
    rnn = Recurrent("convlstm", 3, 4, kernel_size=3)
    g = torch.Generator().manual_seed(8)
    with pytest.raises(ValueError, match="3 channels|2 channels"):
        rnn(torch.randn(2, 4, 2, 5, 5, generator=g))
    with pytest.raises(ValueError, match=r"\[B, T, C, H, W\].*unsqueeze"):
        rnn(torch.randn(4, 3, 5, 5, generator=g))
    with pytest.raises(ValueError, match="odd"):
        Recurrent("convlstm", 3, 4, kernel_size=4)
    with pytest.raises(ValueError, match="odd"):
        ConvLSTMCell(3, 4, kernel_size=0)
    with pytest.raises(ValueError, match="empty axis"):
        rnn(torch.randn(2, 0, 3, 5, 5))
    with pytest.raises(ValueError, match="NaN"):
        bad = torch.randn(1, 2, 3, 4, 4, generator=g)
        bad[0, 1, 0, 0, 0] = float("nan")
        rnn(bad)
    with pytest.raises(ValueError, match=r"state tensor 0 of shape \[1, 2, 4, 5, 5\]"):
        rnn(torch.randn(2, 4, 3, 5, 5, generator=g), (torch.zeros(1, 2, 4, 6, 5),) * 2)
    with pytest.raises(ValueError, match=r"step\(\) expects x_t of shape \[B, 3, H, W\]"):
        rnn.step(torch.randn(3, 5, 5, generator=g))
    with pytest.raises(ValueError, match="input channels"):
        ConvLSTMCell(3, 4)(torch.randn(2, 2, 5, 5, generator=g))
    with pytest.raises(TypeError, match="kernel_size' is taken by: convlstm"):
        Recurrent("lstm", 3, 4, kernel_size=3)


@pytest.mark.parametrize("backend", [b for b in available_backends() if b not in ("auto", "loop")])
def test_other_backends_refuse_convlstm(backend):
    with pytest.raises(ValueError, match=f"backend '{backend}' cannot run.*backends for "
                                         f"ConvLSTMCell: loop"):
        Recurrent("convlstm", 3, 4, backend=backend)
    assert Recurrent("convlstm", 3, 4).active_backend == "loop"
