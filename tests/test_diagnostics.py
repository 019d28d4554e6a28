"""Gradient flow through time: the measured ||dL/dh_t|| equal autograd's on an independent
step-by-step reference built from torch.nn cells with copied weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from rnnkit import Recurrent
from rnnkit.diagnostics import GradientFlow, gradient_flow, plot_gradient_flow
from rnnkit.train import LossOutput

TORCH_CELLS = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "elman": nn.RNNCell}


class Model(nn.Module):
    """Recurrent -> linear read-out of the last step, plus a small penalty on every h_t (so
    each step also gets a direct gradient)."""

    def __init__(self, cell: str, layers: int = 1) -> None:
        super().__init__()
        self.rnn = Recurrent(cell, 3, 6, num_layers=layers)
        self.head = nn.Linear(6, 2)

    def loss(self, batch, state=None):
        x, y = batch
        out, _ = self.rnn(x)
        loss = ((self.head(out[:, -1]) - y) ** 2).mean() + 0.1 * out.pow(2).mean()
        return LossOutput(loss)


def reference_grads(model: Model, cell: str, x, y) -> torch.Tensor:
    """dL/dh_t of the last layer by autograd, through torch.nn cells stepped by hand."""
    cells = []
    for k in range(model.rnn.num_layers):
        ref = TORCH_CELLS[cell](x.shape[-1] if k == 0 else 6, 6).double()
        ref.load_state_dict(model.rnn.cells[k].state_dict())
        cells.append(ref)
    states = [None] * len(cells)
    hs = []
    for t in range(x.shape[1]):
        inp = x[:, t]
        for k, ref in enumerate(cells):
            states[k] = ref(inp, states[k])
            inp = states[k][0] if cell == "lstm" else states[k]
        hs.append(inp)  # h_t of the last layer: [B, H]
    out = torch.stack(hs, 1)
    loss = ((model.head(out[:, -1]) - y) ** 2).mean() + 0.1 * out.pow(2).mean()
    return torch.stack(torch.autograd.grad(loss, hs), 1)  # [B, T, H]


@pytest.mark.parametrize("cell, layers", [("lstm", 1), ("gru", 1), ("elman", 1), ("lstm", 2)])
def test_measured_gradients_equal_autograd_on_a_reference(cell, layers):
    model = Model(cell, layers).double()
    x, y = torch.randn(4, 30, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    flow = gradient_flow(model, (x, y))
    g = reference_grads(model, cell, x, y)
    torch.testing.assert_close(flow.per_sequence, g.norm(dim=-1).float(), rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(flow.norms, g.pow(2).sum((0, 2)).sqrt().float(), rtol=1e-5,
                               atol=1e-12)
    assert all(p.grad is None for p in model.parameters())  # parameter grads untouched


def test_step_by_step_calls_are_joined_in_time_and_match_one_forward():
    model = Model("gru")
    x, y = torch.randn(3, 12, 3), torch.randn(3, 2)

    def stepwise(m, batch):
        xs, ys = batch
        state, outs = None, []
        for t in range(xs.shape[1]):
            o, state = m.rnn.step(xs[:, t], state)
            outs.append(o)
        out = torch.stack(outs, 1)
        return ((m.head(out[:, -1]) - ys) ** 2).mean() + 0.1 * out.pow(2).mean()

    a, b = gradient_flow(model, (x, y)), gradient_flow(model, (x, y), loss_fn=stepwise)
    torch.testing.assert_close(a.norms, b.norms, rtol=1e-4, atol=1e-9)


def test_elman_gradient_vanishes_faster_than_lstm_with_remembering_forget_gates():
    torch.manual_seed(0)
    x, y = torch.randn(8, 120, 3), torch.randn(8, 2)
    elman, lstm = Model("elman"), Model("lstm")
    with torch.no_grad():  # forget gates open (f ~ 0.99), as a trained LSTM learns to keep them
        lstm.rnn.cells[0].bias_ih[6:12].fill_(5.0)

    def last_step_only(m, batch):  # no direct gradient into earlier steps
        return ((m.head(m.rnn(batch[0])[0][:, -1]) - batch[1]) ** 2).mean()

    fe = gradient_flow(elman, (x, y), loss_fn=last_step_only)
    fl = gradient_flow(lstm, (x, y), loss_fn=last_step_only)
    assert fe.decay() < 1e-20 and fl.decay() > 1e-4  # 1e-34 vs 3e-3 at this seed
    assert (fe.norms[:-1] < fe.norms[1:]).float().mean() > 0.9  # shrinks going back in time


def test_plot_writes_a_png(tmp_path):
    flow = gradient_flow(Model("lstm"), (torch.randn(2, 10, 3), torch.randn(2, 2)))
    path = plot_gradient_flow({"lstm": flow, "zero": GradientFlow(
        torch.zeros(10), torch.zeros(1, 10), 0.0)}, tmp_path / "sub" / "flow.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_bad_input_errors_name_the_fix():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc, self.dec = Recurrent("gru", 3, 4), Recurrent("gru", 4, 4)

        def loss(self, batch, state=None):
            return LossOutput(self.dec(self.enc(batch)[0])[0].sum())

    batch = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match="choose one with layer=model.<name>"):
        gradient_flow(Two(), batch)
    two = Two()
    assert gradient_flow(two, batch, layer=two.enc).norms.shape == (5,)
    with pytest.raises(ValueError, match="holds no rnnkit.Recurrent"):
        gradient_flow(nn.Linear(2, 2), batch, loss_fn=lambda m, b: b.sum())
    with pytest.raises(ValueError, match="did not run"):
        gradient_flow(two, batch, layer=Recurrent("gru", 3, 4))
    frozen = Model("gru").requires_grad_(False)  # frozen weights: still measurable
    assert gradient_flow(frozen, (torch.randn(2, 5, 3), torch.randn(2, 2))).norms.min() > 0
    with pytest.raises(ValueError, match="without lengths"):
        gradient_flow(two, batch, layer=two.enc, loss_fn=lambda m, b: m.enc(b, lengths=[5, 2])[
            0].sum())
    with pytest.raises(ValueError, match="unidirectional"):
        gradient_flow(nn.Sequential(Recurrent("gru", 3, 4, bidirectional=True)), batch,
                      loss_fn=lambda m, b: m(b)[0].sum())
    packed = pack_padded_sequence(torch.randn(2, 5, 3), [5, 3], batch_first=True)
    with pytest.raises(ValueError, match="PackedSequence"):
        gradient_flow(two, packed, layer=two.enc, loss_fn=lambda m, b: m.enc(b)[1].sum())
    with pytest.raises(TypeError, match="loss_fn"):
        gradient_flow(nn.Sequential(Recurrent("gru", 3, 4)), batch)
