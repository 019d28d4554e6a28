"""FCN / LSTM-FCN / GRU-FCN: lengths respected (padded batch == each series alone), masked
batch-norm statistics, the dimension shuffle's shapes."""

import pytest
import torch

from rnnkit.series.fcn import FCN, MaskedBatchNorm1d


def _randomize_norms(net):
    """Running statistics and affine maps away from identity, so eval mode is a real test."""
    with torch.no_grad():
        for bn in net.norms:
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.normal_()
            bn.bias.normal_()


@pytest.mark.parametrize("rnn, shuffle", [(None, False), ("lstm", False), ("gru", False),
                                          ("lstm", True), ("gru", True)])
def test_padded_batch_equals_series_one_at_a_time(rnn, shuffle):
    lengths = [9, 4, 1, 7]
    C, T = 3, max(lengths)
    net = FCN(C, 5, rnn=rnn, hidden_size=6, shuffle=shuffle, max_len=T, width=0.125).eval()
    _randomize_norms(net)
    series = [torch.randn(n, C) for n in lengths]
    x = torch.randn(len(lengths), T, C)  # garbage in the padding: it must not matter
    for i, s in enumerate(series):
        x[i, : len(s)] = s
    batched = net(x, torch.tensor(lengths))
    alone = torch.cat([net(s[None]) for s in series])
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-5)


def test_masked_pooling_against_a_plain_loop():
    """The pooled conv features equal a loop over each series' valid steps."""
    net = FCN(2, 3, width=0.125).eval()
    _randomize_norms(net)
    lengths = [6, 3]
    x = torch.randn(2, 6, 2)
    feats = {}
    net.head.register_forward_hook(lambda m, inp, out: feats.update(g=inp[0]))
    net(x, torch.tensor(lengths))
    for b, n in enumerate(lengths):
        h = x[b, :n].T[None]  # [1, C, n]
        for conv, bn in zip(net.convs, net.norms):
            k = conv.kernel_size[0]
            h = torch.relu(bn(conv(torch.nn.functional.pad(h, ((k - 1) // 2, k // 2)))))
        torch.testing.assert_close(feats["g"][b], h[0].mean(-1), rtol=1e-5, atol=1e-5)


def test_masked_batch_norm_statistics_use_valid_steps_only():
    bn = MaskedBatchNorm1d(4, momentum=1.0)
    x = torch.randn(3, 4, 5) * 3 + 1
    lengths = torch.tensor([5, 2, 3])
    mask = (torch.arange(5)[None] < lengths[:, None]).float()[:, None]
    y = bn(x, mask)
    valid = torch.cat([x[b, :, :n] for b, n in enumerate(lengths.tolist())], 1)  # [F, N]
    ref = (x - valid.mean(1)[None, :, None]) / torch.sqrt(
        valid.var(1, unbiased=False)[None, :, None] + bn.eps)
    torch.testing.assert_close(y * mask, ref * mask, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_var, valid.var(1, unbiased=True))


@pytest.mark.parametrize("T, max_len", [(10, 10), (7, 10), (12, 10)])
def test_dimension_shuffle_reads_channels_as_steps(T, max_len):
    C = 4
    net = FCN(C, 2, rnn="gru", hidden_size=5, shuffle=True, max_len=max_len, width=0.125)
    seen = {}
    net.rnn.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    x = torch.randn(3, T, C)
    assert net(x).shape == (3, 2)
    assert seen["x"].shape == (3, C, max_len)  # C steps of max_len features
    n = min(T, max_len)
    torch.testing.assert_close(seen["x"][:, :, :n], x[:, :n].transpose(1, 2))
    assert (seen["x"][:, :, n:] == 0).all()
    assert net.rnn.input_size == max_len
    with pytest.raises(ValueError, match="needs max_len"):
        FCN(C, 2, rnn="lstm", shuffle=True)


def test_time_steps_branch_reads_series_and_every_parameter_learns():
    net = FCN(3, 4, rnn="lstm", hidden_size=5, width=0.125)
    assert net.rnn.input_size == 3
    out = net(torch.randn(5, 8, 3), torch.tensor([8, 3, 5, 1, 2]))
    out.logsumexp(-1).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
