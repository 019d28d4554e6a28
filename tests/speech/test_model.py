"""The acoustic model: lengths never leak padding, the causal front end never looks ahead, and
streaming equals the offline pass exactly."""

import pytest
import torch

from rnnkit.speech.model import AcousticModel


def _model(bidirectional, normalize="utterance", cell="gru", seed=0):
    torch.manual_seed(seed)
    m = AcousticModel(24, 7, channels=3, hidden_size=8, num_layers=2, cell=cell,
                      bidirectional=bidirectional, normalize=normalize, dropout=0.0)
    m.set_stats(torch.randn(24), torch.rand(24) + 0.5)
    for bn in (mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)):
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    return m.eval()


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("normalize", ["global", "utterance"])
def test_batch_with_lengths_equals_one_by_one(bidirectional, normalize):
    m = _model(bidirectional, normalize)
    lengths = [41, 17, 30, 1]
    x = torch.randn(4, 41, 24)
    out, olens = m(x, torch.tensor(lengths))
    assert olens.tolist() == [(n + 1) // 2 for n in lengths]
    for b, n in enumerate(lengths):
        alone, _ = m(x[b:b + 1, :n], torch.tensor([n]))
        torch.testing.assert_close(out[b, : olens[b]], alone[0], atol=1e-5, rtol=1e-5)


def test_causal_front_end_never_sees_the_future():
    m = _model(False, "global")
    x = torch.randn(1, 40, 24)
    out, _ = m(x, torch.tensor([40]))
    y = x.clone()
    y[:, 21:] = torch.randn(1, 19, 24)  # output frame j sees input frames <= 2j
    out2, _ = m(y, torch.tensor([40]))
    torch.testing.assert_close(out[:, :11], out2[:, :11])
    assert not torch.allclose(out[:, 11:], out2[:, 11:])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_stream_equals_offline_for_any_chunking(cell):
    m = _model(False, "global", cell=cell, seed=3)
    g = torch.Generator().manual_seed(7)
    for _ in range(3):
        T = int(torch.randint(5, 80, (1,), generator=g))
        x = torch.randn(T, 24, generator=g)
        full, _ = m(x[None], torch.tensor([T]))
        s = m.stream()
        parts, i = [], 0
        while i < T:
            k = int(torch.randint(1, 9, (1,), generator=g))
            parts.append(s.push(x[i:i + k]))
            i += k
        torch.testing.assert_close(torch.cat(parts), full[0], atol=1e-5, rtol=1e-5)


def test_stream_refuses_bidirectional_and_per_utterance_models():
    with pytest.raises(ValueError, match="unidirectional"):
        _model(True, "global").stream()
    with pytest.raises(ValueError, match="normalize='global'"):
        _model(False, "utterance").stream()
    with pytest.raises(ValueError, match="expected feature frames"):
        _model(False, "global").stream().push(torch.randn(3, 5))


def test_log_probs_are_normalised_and_gradients_reach_every_parameter():
    m = _model(True).train()
    x = torch.randn(3, 33, 24)
    lp, olens = m(x, torch.tensor([33, 20, 9]))
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(3, 17))
    targets = torch.randint(1, 7, (3, 4))
    loss = torch.nn.functional.ctc_loss(lp.transpose(0, 1), targets, olens,
                                        torch.tensor([4, 3, 2]))
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
