"""The custom cells of issue 4 (layernorm_lstm, layernorm_gru, peephole_lstm, indrnn, mingru,
minlstm): each against a plain reference written here from the paper's equations, float64
gradchecks through the runner, zoneout and recurrent dropout, and bad-input errors."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from rnnkit import Recurrent
from rnnkit.cells import LSTMState, get_cell

NEW_CELLS = ["layernorm_lstm", "layernorm_gru", "peephole_lstm", "indrnn", "mingru", "minlstm"]
REGULARIZED = ["layernorm_lstm", "layernorm_gru", "peephole_lstm", "indrnn"]
F64 = torch.float64


# -- plain references, written independently of the cells ---------------------------------------
def _ln(v, gain, shift=None, eps=1e-5):
    mu = v.mean(-1, keepdim=True)
    var = ((v - mu) ** 2).mean(-1, keepdim=True)
    out = (v - mu) / torch.sqrt(var + eps) * gain
    return out if shift is None else out + shift


def ref_layernorm_lstm(c, x, h, cs):
    a = _ln(x @ c.weight_ih.T, c.ln_ih_weight) + c.bias_ih + \
        _ln(h @ c.weight_hh.T, c.ln_hh_weight) + c.bias_hh
    H = c.hidden_size
    i, f, g, o = (a[:, k * H:(k + 1) * H] for k in range(4))
    cs = torch.sigmoid(f) * cs + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(_ln(cs, c.ln_cell_weight, c.ln_cell_bias)), cs


def ref_layernorm_gru(c, x, h, _):
    xa = _ln(x @ c.weight_ih.T, c.ln_ih_weight) + c.bias_ih
    ha = _ln(h @ c.weight_hh.T, c.ln_hh_weight) + c.bias_hh
    H = c.hidden_size
    r = torch.sigmoid(xa[:, :H] + ha[:, :H])
    z = torch.sigmoid(xa[:, H:2 * H] + ha[:, H:2 * H])
    n = torch.tanh(xa[:, 2 * H:] + r * ha[:, 2 * H:])
    return (1 - z) * n + z * h, None


def ref_peephole_lstm(c, x, h, cs):
    a = x @ c.weight_ih.T + c.bias_ih + h @ c.weight_hh.T + c.bias_hh
    H = c.hidden_size
    ai, af, ag, ao = (a[:, k * H:(k + 1) * H] for k in range(4))
    pi, pf, po = c.weight_ch
    i, f = torch.sigmoid(ai + pi * cs), torch.sigmoid(af + pf * cs)
    cs = f * cs + i * torch.tanh(ag)
    return torch.sigmoid(ao + po * cs) * torch.tanh(cs), cs


def ref_indrnn(c, x, h, _):
    return torch.relu(x @ c.weight_ih.T + c.bias_ih + c.weight_hh * h), None


def _gplus(v):
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def ref_mingru(c, x, h, _):
    H = c.hidden_size
    p = x @ c.weight_ih.T + c.bias_ih
    z = torch.sigmoid(p[:, :H])
    return (1 - z) * h + z * _gplus(p[:, H:]), None


def ref_minlstm(c, x, h, _):
    H = c.hidden_size
    p = x @ c.weight_ih.T + c.bias_ih
    f, i = torch.sigmoid(p[:, :H]), torch.sigmoid(p[:, H:2 * H])
    return f / (f + i) * h + i / (f + i) * _gplus(p[:, 2 * H:]), None


REFERENCES = {"layernorm_lstm": ref_layernorm_lstm, "layernorm_gru": ref_layernorm_gru,
              "peephole_lstm": ref_peephole_lstm, "indrnn": ref_indrnn, "mingru": ref_mingru,
              "minlstm": ref_minlstm}


def _randomize(module):
    """Non-trivial values for every parameter (gains and shifts too, not just ones/zeros)."""
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.8, 0.8)
    return module


def _state_of(layer, B, dtype=F64):
    template = layer.cells[0].initial_state(B, dtype=dtype)
    LD = layer.num_layers * layer.num_directions
    if isinstance(template, LSTMState):
        return LSTMState(torch.randn(LD, B, layer.hidden_size, dtype=dtype),
                         torch.randn(LD, B, layer.hidden_size, dtype=dtype))
    return torch.randn(LD, B, layer.hidden_size, dtype=dtype)


# -- tier (a): each cell equals its reference -----------------------------------------------------
@pytest.mark.parametrize("name", NEW_CELLS)
def test_layer_equals_reference_loop(name):
    B, T, I, H = 3, 7, 4, 5
    layer = _randomize(Recurrent(name, I, H, backend="loop", dtype=F64))
    x = torch.randn(B, T, I, dtype=F64)
    s0 = _state_of(layer, B)
    out, final = layer(x, s0)
    cell, ref = layer.cells[0], REFERENCES[name]
    is_lstm = isinstance(s0, LSTMState)
    h = (s0.h if is_lstm else s0)[0]
    cs = s0.c[0] if is_lstm else None
    for t in range(T):
        h, cs = ref(cell, x[:, t], h, cs)
        torch.testing.assert_close(out[:, t], h)
    torch.testing.assert_close(final.h[0] if is_lstm else final[0], h)
    if is_lstm:
        torch.testing.assert_close(final.c[0], cs)


@pytest.mark.parametrize("name", NEW_CELLS)
def test_registered_contract(name):
    """Forward and backward through a deep bidirectional layer with padding: every parameter
    gets a finite gradient; padded outputs are zero; the cell API works unbatched."""
    layer = Recurrent(name, 3, 6, num_layers=2, bidirectional=True, backend="loop")
    x = torch.randn(4, 9, 3, requires_grad=True)
    out, final = layer(x, lengths=[9, 4, 1, 6])
    assert out.shape == (4, 9, 12)
    assert bool(out[2, 1:].eq(0).all()) and bool(out[1, 4:].eq(0).all())
    (out.square().sum() + sum(s.sum() for s in (final if isinstance(final, tuple)
                                                 else (final,)))).backward()
    for pname, p in layer.named_parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), pname
        assert p.grad.abs().sum() > 0, f"{pname} got no gradient"
    cell = get_cell(name)(3, 6)
    single = cell(torch.randn(3))
    assert (single.h if isinstance(single, LSTMState) else single).shape == (6,)


@pytest.mark.parametrize("name", NEW_CELLS)
def test_float64_gradcheck_through_runner(name):
    """Gradients w.r.t. input, initial state and every parameter, with lengths and both
    directions, against finite differences."""
    layer = _randomize(Recurrent(name, 2, 3, bidirectional=True, backend="loop", dtype=F64))
    x = torch.randn(2, 4, 2, dtype=F64, requires_grad=True)
    s0 = _state_of(layer, 2)
    s0 = tuple(s.requires_grad_() for s in (s0 if isinstance(s0, tuple) else (s0,)))
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    lstm = isinstance(layer.cells[0].initial_state(1), LSTMState)

    def fn(x, *rest):
        states, ps = rest[:len(s0)], rest[len(s0):]
        state = LSTMState(*states) if lstm else states[0]
        out, final = functional_call(layer, dict(zip(names, ps)), (x, state),
                                     {"lengths": [4, 2]})
        return out, *(final if lstm else (final,))

    assert torch.autograd.gradcheck(fn, (x, *s0, *params))


# -- zoneout and recurrent dropout ---------------------------------------------------------------
def _pair(name, **options):
    """A regularized cell and the plain cell with the same weights."""
    torch.manual_seed(1)
    plain = _randomize(get_cell(name)(4, 64, dtype=F64))
    reg = get_cell(name)(4, 64, dtype=F64, **options)
    reg.load_state_dict(plain.state_dict())
    return reg, plain


@pytest.mark.parametrize("name", REGULARIZED)
def test_zoneout_keeps_old_state_with_probability_p(name):
    reg, plain = _pair(name, zoneout=0.3)
    B = 256
    xp = reg.project_input(torch.randn(B, 4, dtype=F64))
    state = plain.initial_state(B, dtype=F64)
    state = type(state)(*(torch.randn_like(s) for s in state)) if isinstance(state, tuple) \
        else torch.randn_like(state)
    _, new_plain = plain.step(xp, state)
    _, new_reg = reg.train().step(xp, state)
    pairs = zip(*(s if isinstance(s, tuple) else (s,) for s in (new_reg, new_plain, state)))
    for got, fresh, old in pairs:
        is_old, is_new = got == old, got == fresh
        assert bool((is_old | is_new).all()), "zoneout must pick the old or the new value"
        assert abs(is_old.double().mean().item() - 0.3) < 0.02
    _, new_eval = reg.eval().step(xp, state)  # expectation: p * old + (1 - p) * new
    for got, fresh, old in zip(*(s if isinstance(s, tuple) else (s,)
                                 for s in (new_eval, new_plain, state))):
        torch.testing.assert_close(got, 0.3 * old + 0.7 * fresh)


@pytest.mark.parametrize("name", REGULARIZED)
def test_recurrent_dropout_one_mask_per_sequence(name):
    reg, plain = _pair(name, recurrent_dropout=0.4)
    layer = Recurrent(name, 4, 64, recurrent_dropout=0.4, dtype=F64, backend="loop")
    layer.cells[0].load_state_dict(plain.state_dict())
    x = torch.randn(8, 5, 4, dtype=F64)
    layer.train()
    out, _ = layer(x)
    mask = layer.cells[0]._recurrent_mask  # [B, H], the one mask of this sequence
    assert set(mask.unique().tolist()) <= {0.0, 1 / 0.6}
    assert abs((mask == 0).double().mean().item() - 0.4) < 0.06
    # the same mask at every step: a plain cell fed masked h_{t-1} reproduces the outputs
    cell = layer.cells[0]
    state = cell.initial_state(8, dtype=F64)
    xp = cell.project_input(x)
    for t in range(5):
        cell._recurrent_mask = mask
        _, state = cell.step(xp[:, t], state)
        assert torch.allclose(state.h if isinstance(state, tuple) else state, out[:, t])
    layer(x)
    assert not torch.equal(layer.cells[0]._recurrent_mask, mask), "a new sequence, a new mask"
    layer.eval()
    plain_layer = Recurrent(name, 4, 64, dtype=F64, backend="loop")
    plain_layer.cells[0].load_state_dict(plain.state_dict())
    torch.testing.assert_close(layer(x)[0], plain_layer(x)[0])  # identity at evaluation


# -- bad input -----------------------------------------------------------------------------------
def test_bad_options_name_the_fix():
    with pytest.raises(ValueError, match=r"zoneout must be a probability in \[0, 1\)"):
        Recurrent("layernorm_lstm", 3, 4, zoneout=1.5)
    with pytest.raises(ValueError, match="recurrent_dropout"):
        Recurrent("peephole_lstm", 3, 4, recurrent_dropout=-0.1)
    with pytest.raises(ValueError, match="nonlinearity must be 'relu' or 'tanh'"):
        Recurrent("indrnn", 3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="no parallel form"):
        Recurrent("layernorm_gru", 3, 4, backend="scan")
    with pytest.raises(ValueError, match="expected input of shape"):
        Recurrent("mingru", 3, 4)(torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match="NaN"):
        Recurrent("indrnn", 3, 4)(torch.full((2, 5, 3), float("nan")))


def test_indrnn_recurrent_max_clips_u():
    layer = Recurrent("indrnn", 2, 3, recurrent_max=0.5, dtype=F64)
    with torch.no_grad():
        layer.cells[0].weight_hh.copy_(torch.tensor([2.0, -3.0, 0.1]))
    assert layer.cells[0].recurrent_weight().tolist() == pytest.approx([0.5, -0.5, 0.1])
