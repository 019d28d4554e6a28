"""``examples/gradient_flow.py`` end to end: on the adding problem with T = 200 the Elman RNN's
gradient vanishes and it stays at the baseline, the LSTM's gradient carries and it solves."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gradient_flow.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("gradient_flow_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_adding_problem_data_is_what_the_example_says():
    import torch

    ex = _load_example()
    x, y = ex.adding_problem(500, 20, torch.Generator().manual_seed(0))
    assert x.shape == (500, 20, 2) and y.shape == (500, 1)
    markers = x[..., 1]
    assert (markers.sum(1) == 2).all()
    assert (markers[:, :10].sum(1) == 1).all()  # one marker in each half
    torch.testing.assert_close(y[:, 0], (x[..., 0] * markers).sum(1))
    assert abs(float(((y - 1.0) ** 2).mean()) - ex.BASELINE_MSE) < 0.03


@pytest.mark.slow
def test_elman_vanishes_and_fails_while_lstm_carries_and_solves(tmp_path):
    ex = _load_example()
    results = ex.run(ex.parse_args(["--out-dir", str(tmp_path)]))
    elman, lstm = results["elman"], results["lstm"]
    assert lstm["solved"] and not elman["solved"]
    assert elman["mse"] > 0.8 * ex.BASELINE_MSE  # no better than answering the mean
    # ||dL/dh_1|| / ||dL/dh_T|| over 200 steps: vanished for Elman, carried for LSTM.
    assert elman["before"].decay() < 1e-10 and elman["after"].decay() < 1e-10
    assert lstm["before"].decay() > 1e-6 and lstm["after"].decay() > 1e-6
    assert (tmp_path / "gradient_flow.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "lstm" / "curves.png").exists()
