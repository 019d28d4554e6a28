r"""Fully convolutional networks for series classification, alone or beside a recurrent branch.

FCN (Wang, Yan & Oates 2017, "Time Series Classification from Scratch with Deep Neural
Networks") and LSTM-FCN / GRU-FCN (Karim, Majumdar, Darabi & Chen 2017, "LSTM Fully
Convolutional Networks for Time Series Classification", section 3):

.. math::
    h^{(0)} = x, \qquad
    h^{(j)} = \mathrm{ReLU}(\mathrm{BN}(W_j * h^{(j-1)})), \quad j = 1, 2, 3, \qquad
    g = \frac{1}{T} \sum_{t=1}^{T} h^{(3)}_t

    r = \mathrm{dropout}(\mathrm{RNN}(\tilde x)_{\mathrm{last}}), \qquad
    p(y \mid x) = \mathrm{softmax}(W_o [g ; r] + b_o)

where :math:`*` is a 1-d convolution over time ("same" padding) with :math:`F_j` = 128, 256,
128 filters of widths 8, 5, 3, BN is batch normalization, :math:`g` global average pooling, and
:math:`\tilde x` the recurrent branch's input: the series itself (``T`` steps of ``C``
features) or, with the paper's **dimension shuffle** (section 3.1), the series transposed
(``C`` steps of ``T`` features: a univariate series is then one step). FCN alone has no
:math:`r`. Every recurrence is an rnnkit :class:`~rnnkit.recurrent.Recurrent`.

Lengths are respected, so a padded batch gives each series the output it would get alone:
padded steps are zeroed before every convolution (what zero "same" padding of the unpadded
series sees), batch-norm statistics in training mode are taken over valid steps only, the
pooling averages valid steps only, and the recurrent branch stops at each series' last step.
With the dimension shuffle the recurrent input has ``max_len`` features, fixed at
construction: shorter series are zero-padded, longer ones cut to their first ``max_len`` steps.

Shapes:
    * input ``x``: ``[B, T, C]`` (batch-first, zero-padded), ``lengths``: ``[B]`` in ``[1, T]``;
    * conv features ``h^{(j)}``: ``[B, F_j, T]``; pooled ``g``: ``[B, 128]``;
    * recurrent ``r``: ``[B, H]``; output logits: ``[B, K]``.

>>> import torch
>>> net = FCN(input_size=3, num_classes=4, rnn="lstm", shuffle=True, max_len=20).eval()
>>> net(torch.randn(2, 20, 3), lengths=torch.tensor([20, 11])).shape
torch.Size([2, 4])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..recurrent import Recurrent

__all__ = ["FCN", "MaskedBatchNorm1d", "length_mask"]

#: (filters, kernel width) of the three convolution blocks (Wang et al. 2017)
BLOCKS = ((128, 8), (256, 5), (128, 3))


def length_mask(lengths: Tensor, T: int) -> Tensor:
    """``[B, 1, T]`` float mask, 1 on the valid steps ``t < lengths[b]``."""
    return (torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]).float()[:, None]


class MaskedBatchNorm1d(nn.BatchNorm1d):
    r"""Batch norm over ``[B, F, T]`` whose training statistics use valid steps only:
    :math:`\mu_f = \sum_{b,t} m_{bt} x_{bft} / \sum m`, :math:`\sigma^2_f` likewise (biased for
    the normalization, unbiased for the running estimate, as ``nn.BatchNorm1d``). In eval mode
    it is ``nn.BatchNorm1d``'s per-channel affine map with the running statistics."""

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        if mask is None or not self.training:
            return super().forward(x)
        n = mask.sum().clamp_min(2.0)
        mean = (x * mask).sum((0, 2)) / n  # [F]
        var = (((x - mean[None, :, None]) ** 2) * mask).sum((0, 2)) / n
        with torch.no_grad():
            m = self.momentum if self.momentum is not None else 0.1
            self.running_mean.mul_(1 - m).add_(m * mean)
            self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))
            self.num_batches_tracked += 1
        y = (x - mean[None, :, None]) / torch.sqrt(var[None, :, None] + self.eps)
        return y * self.weight[None, :, None] + self.bias[None, :, None]


class FCN(nn.Module):
    """FCN, or LSTM-FCN / GRU-FCN with ``rnn="lstm"`` / ``"gru"``; see the module docstring.

    Args:
        input_size: channels ``C``.
        num_classes: classes ``K``.
        rnn: ``None`` (FCN), or the recurrent branch's cell (``"lstm"``, ``"gru"``, any
            registered cell).
        hidden_size: the recurrent branch's state size ``H`` (the paper uses 8 to 128).
        shuffle: dimension shuffle: the recurrent branch reads ``C`` steps of ``max_len``
            features instead of ``T`` steps of ``C``.
        max_len: the feature size of the shuffled branch (the longest training series).
        dropout: dropout on the recurrent branch's output (the paper uses 0.8).
        width: scale of the filter counts (1.0: 128, 256, 128).

    Parameters: ``conv{j}.weight: [F_j, F_{j-1}, k_j]`` (``F_0 = C``), batch norms ``[F_j]``,
    ``rnn`` (a :class:`~rnnkit.recurrent.Recurrent` of input ``C`` or ``max_len``),
    ``head.weight: [K, F_3 + H]``. Convolutions use PyTorch's default (Kaiming-uniform) init.
    """

    def __init__(self, input_size: int, num_classes: int, rnn: str | None = None,
                 hidden_size: int = 8, shuffle: bool = False, max_len: int = 0,
                 dropout: float = 0.8, width: float = 1.0) -> None:
        super().__init__()
        if rnn is not None and shuffle and max_len < 1:
            raise ValueError("shuffle=True needs max_len (the longest training series), the "
                             "feature size of the shuffled recurrent branch")
        self.shuffle, self.max_len = bool(shuffle and rnn is not None), int(max_len)
        chans = [input_size] + [max(1, round(f * width)) for f, _ in BLOCKS]
        self.convs = nn.ModuleList(nn.Conv1d(chans[j], chans[j + 1], k)
                                   for j, (_, k) in enumerate(BLOCKS))
        self.norms = nn.ModuleList(MaskedBatchNorm1d(c) for c in chans[1:])
        self.rnn = None if rnn is None else Recurrent(
            rnn, self.max_len if self.shuffle else input_size, hidden_size)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(chans[-1] + (hidden_size if rnn is not None else 0), num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``x [B, T, C]``, ``lengths [B]`` (default: all ``T``) -> logits ``[B, K]``."""
        B, T, _ = x.shape
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long)
        lengths = torch.as_tensor(lengths, dtype=torch.long).cpu()
        mask = length_mask(lengths, T).to(x.device)  # [B, 1, T]
        h = x.transpose(1, 2)  # [B, C, T]
        for conv, norm in zip(self.convs, self.norms):
            k = conv.kernel_size[0]  # "same": (k - 1) // 2 zeros before, the rest after
            h = F.pad(h * mask, ((k - 1) // 2, k // 2))  # [B, F_{j-1}, T + k - 1]
            h = F.relu(norm(conv(h), mask))  # [B, F_j, T]
        g = (h * mask).sum(-1) / lengths.to(x.device, h.dtype)[:, None]  # [B, F_3]
        if self.rnn is None:
            return self.head(g)
        return self.head(torch.cat([g, self.drop(self._recurrent(x, mask, lengths))], 1))

    def _recurrent(self, x: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
        """The recurrent branch's last hidden state ``[B, H]``."""
        if self.shuffle:  # section 3.1: [B, T, C] -> [B, C, T]: C steps of T features
            xt = (x * mask.transpose(1, 2)).transpose(1, 2)  # [B, C, T], padding zeroed
            T = xt.shape[2]
            xt = F.pad(xt, (0, self.max_len - T)) if T < self.max_len else xt[..., :self.max_len]
            _, state = self.rnn(xt)  # [B, C, max_len] -> state [1, B, H]
        else:
            _, state = self.rnn(x, lengths=lengths)  # [B, T, C]
        h = state[0] if isinstance(state, tuple) else state  # LSTMState(h, c) or h
        return h[-1]  # [B, H]
