r"""CRNN: a convolutional recurrent network for text-line recognition with CTC (Shi, Bai and Yao
2015, "An End-to-End Trainable Neural Network for Image-based Sequence Recognition and Its
Application to Scene Text Recognition", sections 2.1-2.3).

.. math::

    z &= \mathrm{CNN}(x) \in \mathbb{R}^{B \times F \times 1 \times T}
        \quad\text{(VGG-style: conv 3x3 - BatchNorm - ReLU, max-pools)}\\
    h &= \mathrm{Recurrent}(z^\top)\quad\text{(bidirectional LSTM, 2 layers)}\\
    \log p(k \mid t) &= \mathrm{log\_softmax}(W h_t + b)_k

**Shapes.** Images ``x [B, 1, H, W]`` (``H`` = ``height``, a multiple of 16; ink 1, paper 0,
padding 0) with their ``widths [B]``. The CNN has five blocks (channels ``c1..c4``):
``conv c1, pool 2x2 | conv c2, pool 2x2 | conv c3, conv c3, pool (2, 1) | conv c4, conv c4,
pool (2, 1) | conv c4 with kernel (H / 16, 3)``: the first two pools halve height and width,
the next two halve only the height (so a narrow letter keeps its own columns), and the last
convolution, as tall as what is left, collapses the height to 1. Every column of the result is
one time step: ``T = output_lengths(W) = floor(floor(W / 2) / 2)`` frames of ``F = c4``
features, each seeing a receptive field a few letters wide. The recurrent stack reads them
with the per-image lengths (padding never reaches a valid frame's state) and a linear layer
maps each frame to ``V`` classes (``V = n_classes``, the CTC blank at index 0).

>>> net = CRNN(n_classes=10, channels=(4, 8, 8, 8), hidden_size=8)
>>> lp, n = net(torch.rand(2, 1, 32, 45), torch.tensor([45, 30]))
>>> tuple(lp.shape), n.tolist(), net.output_lengths(torch.tensor([45, 30])).tolist()
((2, 11, 10), [11, 7], [11, 7])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..recurrent import Recurrent

__all__ = ["CRNN"]


def _block(c_in: int, c_out: int, kernel: tuple[int, int] = (3, 3),
           padding: tuple[int, int] = (1, 1)) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, padding=padding, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class CRNN(nn.Module):
    """CNN -> bidirectional :class:`~rnnkit.recurrent.Recurrent` -> linear -> log-softmax; see
    the module docstring. ``forward(images [B, 1, H, W], widths [B]) -> (log_probs [B, T, V],
    out_lengths [B])``.

    Args:
        n_classes: output classes ``V`` (the alphabet plus the CTC blank at 0).
        height: input image height ``H`` (a multiple of 16, at least 16).
        channels: ``(c1, c2, c3, c4)`` of the CNN (Shi et al. use 64, 128, 256, 512).
        hidden_size: recurrent state size per direction.
        num_layers: stacked recurrent layers.
        cell: any registered cell (``"lstm"`` as in the paper, ``"gru"``, ...).
        dropout: on the recurrent stack's inputs between layers and before the output layer.
    """

    def __init__(self, n_classes: int, height: int = 32,
                 channels: Sequence[int] = (32, 64, 128, 192), hidden_size: int = 128,
                 num_layers: int = 2, cell: str = "lstm", dropout: float = 0.1) -> None:
        super().__init__()
        if height < 16 or height % 16:
            raise ValueError(f"height must be a multiple of 16 (16, 32, 48, ...), got {height}")
        if len(channels) != 4 or any(int(c) < 1 for c in channels):
            raise ValueError(f"channels must be four positive widths (c1, c2, c3, c4), got "
                             f"{tuple(channels)}")
        if n_classes < 2:
            raise ValueError(f"n_classes must count the blank and at least one character, got "
                             f"{n_classes}")
        c1, c2, c3, c4 = (int(c) for c in channels)
        self.height, self.n_classes = height, n_classes
        self.cnn = nn.Sequential(
            *_block(1, c1), nn.MaxPool2d(2, 2),                    # [B, c1, H/2, W/2]
            *_block(c1, c2), nn.MaxPool2d(2, 2),                   # [B, c2, H/4, W/4]
            *_block(c2, c3), *_block(c3, c3), nn.MaxPool2d((2, 1), (2, 1)),  # H/8
            *_block(c3, c4), *_block(c4, c4), nn.MaxPool2d((2, 1), (2, 1)),  # H/16
            *_block(c4, c4, (height // 16, 3), (0, 1)),            # [B, c4, 1, W/4]
        )
        self.rnn = Recurrent(cell, c4, hidden_size, num_layers, bidirectional=True,
                             dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden_size, n_classes)

    @staticmethod
    def output_lengths(widths: Tensor) -> Tensor:
        """Frames per image: ``floor(floor(W / 2) / 2)`` (the two width-halving pools)."""
        return torch.div(torch.div(widths, 2, rounding_mode="floor"), 2, rounding_mode="floor")

    def features(self, images: Tensor) -> Tensor:
        """``[B, 1, H, W]`` -> column features ``[B, T, F]``."""
        z = self.cnn(images)  # [B, F, 1, T]
        return z.squeeze(2).transpose(1, 2)  # [B, T, F]

    def forward(self, images: Tensor, widths: Tensor) -> tuple[Tensor, Tensor]:
        if images.ndim != 4 or images.shape[1] != 1 or images.shape[2] != self.height:
            raise ValueError(f"expected images [B, 1, {self.height}, W], got "
                             f"{tuple(images.shape)}")
        lengths = self.output_lengths(widths.to("cpu")).clamp_min(1)
        z = self.features(images)  # [B, T, F]
        h, _ = self.rnn(z, lengths=lengths)  # [B, T, 2 * hidden]
        return F.log_softmax(self.out(self.drop(h)), dim=-1), lengths
