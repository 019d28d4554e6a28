"""Zoneout and recurrent dropout on the standard LSTM and GRU cells."""

from __future__ import annotations

import pytest
import torch

from rnnkit import Recurrent
from rnnkit.cells import GRUCell, LSTMCell, LSTMState


def test_eval_zoneout_is_the_expectation_of_the_plain_step() -> None:
    p = 0.3
    plain = LSTMCell(3, 5, dtype=torch.float64)
    zoned = LSTMCell(3, 5, zoneout=p, dtype=torch.float64).eval()
    zoned.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, dtype=torch.float64)
    s = LSTMState(torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64))
    h, c = plain(x, s)
    hz, cz = zoned(x, s)
    torch.testing.assert_close(hz, p * s.h + (1 - p) * h)
    torch.testing.assert_close(cz, p * s.c + (1 - p) * c)


def test_training_zoneout_keeps_about_p_of_the_units() -> None:
    cell = GRUCell(3, 400, zoneout=0.25).train()
    x, h0 = torch.randn(50, 3), torch.randn(50, 400)
    h1 = cell(x, h0)
    kept = (h1 == h0).float().mean().item()
    assert 0.22 < kept < 0.28


def test_recurrent_dropout_one_mask_per_sequence() -> None:
    torch.manual_seed(0)
    layer = Recurrent("gru", 2, 64, recurrent_dropout=0.5).train()
    ref = Recurrent("gru", 2, 64)
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(3, 6, 2)
    torch.manual_seed(1)
    out, _ = layer(x)
    # Rebuild the same mask: the first step draws it from the same generator state.
    torch.manual_seed(1)
    mask = torch.empty(3, 64).bernoulli_(0.5).div_(0.5)
    cell = ref.cells[0]
    h, outs = torch.zeros(3, 64), []
    xp = cell.project_input(x)
    for t in range(6):
        hp = torch.nn.functional.linear(h * mask, cell.weight_hh, cell.bias_hh)
        x_r, x_z, x_n = xp[:, t].chunk(3, dim=-1)
        h_r, h_z, h_n = hp.chunk(3, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        outs.append(h)
    torch.testing.assert_close(out, torch.stack(outs, 1))
    layer.eval()
    torch.testing.assert_close(layer(x)[0], ref(x)[0])  # identity at evaluation


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_regularized_standard_cells_leave_the_fused_path(cell: str) -> None:
    # the plain GRU runs natively where a C++ toolchain exists (tests/test_custom_backends.py)
    assert Recurrent(cell, 3, 4, backend="fused").active_backend == "fused"
    assert Recurrent(cell, 3, 4, zoneout=0.1).active_backend != "fused"
    assert Recurrent(cell, 3, 4, recurrent_dropout=0.1).active_backend == "loop"
    with pytest.raises(ValueError, match="cannot run this layer.*zoneout"):
        Recurrent(cell, 3, 4, zoneout=0.1, backend="fused")
    with pytest.raises(ValueError, match="zoneout must be a probability"):
        Recurrent(cell, 3, 4, zoneout=1.5)
