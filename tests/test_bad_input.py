"""Bad input gets an error that names the problem and the fix."""

from __future__ import annotations

import pytest
import torch

import rnnkit.nn as rnn
from rnnkit import LSTMState, Recurrent


@pytest.fixture
def lstm() -> Recurrent:
    return Recurrent("lstm", 64, 32, num_layers=2)


def test_wrong_feature_size_names_expected_and_actual(lstm) -> None:
    with pytest.raises(ValueError, match=r"63 features.*built for 64") as err:
        lstm(torch.randn(32, 100, 63))
    assert "[B, T, 64]" in str(err.value) and "[32, 100, 63]" in str(err.value)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 64)])
def test_wrong_rank(lstm, shape) -> None:
    with pytest.raises(ValueError, match="expected input of shape"):
        lstm(torch.randn(*shape))


def test_empty_sequence(lstm) -> None:
    with pytest.raises(ValueError, match="empty"):
        lstm(torch.randn(2, 0, 64))


@pytest.mark.parametrize("lengths,match", [
    ([5, 11], r"\[1, T=10\]"), ([0, 3], r"\[1, T=10\]"), ([-1, 3], r"\[1, T=10\]"),
    ([3], r"shape \[2\]"), ([[3, 3]], r"shape \[2\]"), ([2.5, 3.0], "integers"),
])
def test_bad_lengths(lstm, lengths, match) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        lstm(torch.randn(2, 10, 64), lengths=lengths)


def test_state_of_wrong_shape(lstm) -> None:
    x = torch.randn(3, 4, 64)
    with pytest.raises(ValueError, match=r"shape \[2, 3, 32\]"):
        lstm(x, LSTMState(torch.randn(2, 3, 31), torch.randn(2, 3, 32)))
    with pytest.raises(ValueError, match="tuple of 2"):
        lstm(x, torch.randn(2, 3, 32))
    with pytest.raises(ValueError, match=r"shape \[4, 3, 32\]"):
        Recurrent("gru", 64, 32, num_layers=2, bidirectional=True)(x, torch.randn(2, 3, 32))


def test_dtype_and_device_mismatch(lstm) -> None:
    with pytest.raises(TypeError, match=r"float64 does not match.*float32"):
        lstm(torch.randn(2, 3, 64, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating-point"):
        lstm(torch.ones(2, 3, 64, dtype=torch.long))
    state = LSTMState(torch.randn(2, 2, 32, dtype=torch.float64), torch.randn(2, 2, 32))
    with pytest.raises(TypeError, match="convert the state"):
        lstm(torch.randn(2, 3, 64), state)
    if torch.cuda.is_available():  # pragma: no cover - CI has no GPU
        with pytest.raises(ValueError, match="move one of them"):
            lstm(torch.randn(2, 3, 64, device="cuda"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_is_refused(lstm, bad) -> None:
    x = torch.randn(2, 3, 64)
    x[1, 2, 5] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        lstm(x)


def test_huge_finite_input_is_accepted(lstm) -> None:
    """The one-sum finiteness check overflows here; the element-wise check must then agree."""
    x = torch.randn(2, 3, 64)
    x[:, :, :8] = 3e38
    out, _ = lstm(x)
    assert torch.isfinite(out).all()


def test_bad_construction() -> None:
    with pytest.raises(ValueError, match="unknown cell 'lstn'"):
        Recurrent("lstn", 3, 4)
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        Recurrent("gru", 3, 0)
    with pytest.raises(ValueError, match="dropout"):
        Recurrent("gru", 3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="unknown backend 'cuda-magic'"):
        Recurrent("gru", 3, 4, backend="cuda-magic")
    with pytest.raises(ValueError, match="proj_size"):
        rnn.LSTM(3, 4, proj_size=4)


def test_explicit_backend_that_cannot_serve() -> None:
    from rnnkit.cells import LSTMCell

    class MyLSTM(LSTMCell):
        pass

    with pytest.raises(ValueError, match="backend 'fused' cannot run.*MyLSTM.*backend='auto'"):
        Recurrent(MyLSTM, 3, 4, backend="fused")
    layer = Recurrent(MyLSTM, 3, 4)
    assert layer.active_backend == "loop"


def test_step_refuses_bidirectional_and_bad_shape() -> None:
    with pytest.raises(ValueError, match="unidirectional"):
        Recurrent("gru", 3, 4, bidirectional=True).step(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"x_t of shape \[B, 3\]"):
        Recurrent("gru", 3, 4).step(torch.randn(2, 5, 3))


def test_cell_forward_bad_input() -> None:
    cell = rnn.GRUCell(4, 6)
    with pytest.raises(ValueError, match="built for 4 input features, got 5"):
        cell(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"state tensor of shape \[2, 6\]"):
        cell(torch.randn(2, 4), torch.randn(2, 5))


def test_cell_forward_state_of_the_wrong_kind() -> None:
    """A tuple for a one-tensor state, or a tuple of the wrong length for an LSTM state, is
    refused with the expected form (it used to reach the step math: a raw TypeError)."""
    from rnnkit.cells import MinGRUCell, PeepholeLSTMCell

    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="MinGRUCell expects the state as a tensor, got tuple"):
        MinGRUCell(3, 4)(x, (torch.randn(2, 4),))
    with pytest.raises(ValueError, match="expects the state as a tuple of 2, got tuple of 1"):
        PeepholeLSTMCell(3, 4)(x, (torch.randn(2, 4),))
    with pytest.raises(ValueError, match="expects the state as a tuple of 2, got Tensor"):
        PeepholeLSTMCell(3, 4)(x[0], torch.randn(4))


def test_unknown_cell_option_names_the_options_and_the_cells_that_take_them() -> None:
    with pytest.raises(TypeError, match=r"ElmanCell has no option 'zoneout'; its options are: "
                                        r"bias, nonlinearity \('zoneout' is taken by: gru, "):
        Recurrent("elman", 3, 4, zoneout=0.1)
    with pytest.raises(TypeError, match=r"'proj_size' is taken by: lstm\)"):
        Recurrent("peephole_lstm", 3, 4, proj_size=2)
    with pytest.raises(TypeError, match="no registered cell takes 'hiden_size'"):
        rnn.GRU(3, 4, hiden_size=5)
