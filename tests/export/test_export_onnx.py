"""ONNX export of recurrent layers with state in/out, against the torch layer."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.cells import available_cells, state_tensors
from rnnkit.export import FUSED_CELLS, export_recurrent, run_onnx

CELLS = sorted(available_cells())


def random_state(rnn, batch):
    template = state_tensors(rnn.cells[0].initial_state(batch))
    layers = rnn.num_layers * rnn.num_directions
    return [torch.randn(layers, *t.shape) for t in template]


def as_state(tensors):
    return tensors[0] if len(tensors) == 1 else rnnkit.LSTMState(*tensors)


@pytest.mark.parametrize("cell", CELLS)
def test_streaming_step_of_every_cell_equals_the_full_pass(cell, tmp_path):
    rnn = rnnkit.Recurrent(cell, 5, 6, num_layers=2).eval()
    # float32 differences compound over streamed steps: about 1e-7 per step, up to ~2e-5
    # after 23 steps of a LayerNorm cell at random weights; one step stays within 1e-5
    report = export_recurrent(rnn, tmp_path / "step.onnx", stream=True)
    noise = max(c["float32_noise"] for c in report.checks)  # torch float32 vs float64
    assert report.graph == "step" and report.max_error <= max(1e-4, 10 * noise)
    x1, s1 = torch.randn(4, 5), random_state(rnn, 4)
    with torch.no_grad():
        ref1, ref1_state = rnn.step(x1, as_state(s1))
    y1, got1 = run_onnx(str(tmp_path / "step.onnx"), x1.numpy(), [t.numpy() for t in s1])
    for got, ref in zip([y1, *got1], [ref1, *state_tensors(ref1_state)]):
        np.testing.assert_allclose(got, ref.numpy(), atol=1e-5, rtol=0)
    B, T = int(torch.randint(2, 6, ())), int(torch.randint(8, 20, ()))
    x, s0 = torch.randn(B, T, 5), random_state(rnn, B)
    with torch.no_grad():
        ref_y, ref_s = rnn(x, as_state(s0))
    s = [t.numpy() for t in s0]
    ys = []
    for t in range(T):
        y, s = run_onnx(str(tmp_path / "step.onnx"), x[:, t].numpy(), s)
        ys.append(y)
    rnn64 = copy.deepcopy(rnn).double()  # exact-ish reference: both float32 runs err vs it
    with torch.no_grad():
        y64, s64 = rnn64(x.double(), as_state([t.double() for t in s0]))
    exact = [y64, *state_tensors(s64)]
    floor = max(float((a.double() - b).abs().max()) for a, b in
                zip([ref_y, *state_tensors(ref_s)], exact))
    for got, ref in zip([np.stack(ys, 1), *s], exact):
        assert np.abs(got - ref.numpy()).max() <= max(1e-5, 10 * floor)


@pytest.mark.parametrize("cell", FUSED_CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_sequence_graph_has_dynamic_batch_and_length(cell, bidirectional, tmp_path):
    rnn = rnnkit.Recurrent(cell, 4, 7, num_layers=2, bidirectional=bidirectional).eval()
    path = str(tmp_path / "seq.onnx")
    report = export_recurrent(rnn, path)
    assert report.graph == "sequence" and report.max_error < 1e-5
    for B, T in ((1, 2), (int(torch.randint(3, 9, ())), int(torch.randint(30, 60, ())))):
        x, s0 = torch.randn(B, T, 4), random_state(rnn, B)
        with torch.no_grad():
            ref_y, ref_s = rnn(x, as_state(s0))
        y, s = run_onnx(path, x.numpy(), [t.numpy() for t in s0])
        np.testing.assert_allclose(y, ref_y.numpy(), atol=1e-5, rtol=1e-4)
        for got, ref in zip(s, state_tensors(ref_s)):
            np.testing.assert_allclose(got, ref.numpy(), atol=1e-5, rtol=1e-4)


def test_zero_state_default_and_training_mode_restored(tmp_path):
    rnn = rnnkit.Recurrent("lstm", 3, 4)  # training mode, backend auto
    export_recurrent(rnn, tmp_path / "l.onnx")
    assert rnn.training and rnn.backend == "auto"
    x = torch.randn(2, 5, 3)
    y, _ = run_onnx(str(tmp_path / "l.onnx"), x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(y, rnn.eval()(x)[0].numpy(), atol=1e-5)


def test_refusals_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="stream=True"):
        export_recurrent(rnnkit.Recurrent("mingru", 3, 4), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="cannot stream"):
        export_recurrent(rnnkit.Recurrent("gru", 3, 4, bidirectional=True), tmp_path / "b.onnx",
                         stream=True)
    with pytest.raises(ValueError, match="batch_first=True"):
        export_recurrent(rnnkit.Recurrent("gru", 3, 4, batch_first=False), tmp_path / "t.onnx")
    with pytest.raises(TypeError, match="rnnkit.Recurrent"):
        export_recurrent(torch.nn.GRU(3, 4), tmp_path / "g.onnx")
    with pytest.raises(FileNotFoundError, match="create it"):
        export_recurrent(rnnkit.Recurrent("gru", 3, 4), tmp_path / "no" / "g.onnx")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_the_check_allows_float32_rounding_and_refuses_a_wrong_graph():
    from rnnkit.export import checked_report

    ok = checked_report("g.onnx", "step", [], [], [{"max_error": 3e-4, "float32_noise": 5e-5}],
                        0.1, 1e-4)
    assert ok.max_error == 3e-4
    with pytest.raises(ValueError, match="was not kept"):
        checked_report("g.onnx", "step", [], [], [{"max_error": 1e-2, "float32_noise": 1e-7}],
                       0.1, 1e-4)
    with pytest.raises(ValueError, match="differs from torch"):
        checked_report("g.onnx", "sequence", [], [], [{"max_error": 2e-4}], 0.1, 1e-4)
