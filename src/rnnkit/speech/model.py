r"""The acoustic model: a DeepSpeech2-shaped network from log-mel frames to character
log-probabilities for CTC (Amodei et al. 2016, "Deep Speech 2", sections 3.1-3.5).

.. math::

    z &= \mathrm{Conv2D}_2(\mathrm{Conv2D}_1(\hat x))
        \quad \hat x_t = (x_t - \mu) / \sigma \text{ (or per-utterance)}\\
    h &= \mathrm{Recurrent}(z)\quad\text{(stacked, bi- or unidirectional, any cell)}\\
    \log p(k \mid t) &= \mathrm{log\_softmax}(W h_t + b)_k

Shapes: features ``[B, T, F]`` (``F`` mel bands) and their ``lengths [B]``; each convolution
(BatchNorm, hardtanh(0, 20) as in DS2) strides 2 over frequency and ``stride_t`` over time,
so the network emits ``T' = ceil(T / 2)`` frames of ``[V]`` log-probabilities (20 ms each at
a 10 ms hop), ``V = len(alphabet)`` with the CTC blank at index 0.

The unidirectional variant (``bidirectional=False``) pads its convolutions on the left only
(causal: output frame ``j`` sees input frames ``<= j * stride``), so :meth:`AcousticModel.stream`
emits, chunk by chunk, exactly the frames the offline pass emits (``eval`` mode; a test holds
it to that). Normalisation for streaming must be ``"global"`` (training-set mean and standard
deviation, stored in the model), since per-utterance statistics need the whole utterance.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..recurrent import Recurrent
from .normalization import normalize_utterance

__all__ = ["AcousticModel", "AcousticStream", "ConvFrontEnd"]

NORMALIZATIONS = ("global", "utterance")


class ConvFrontEnd(nn.Module):
    """Two 2-D convolutions over ``[B, 1, T, F]`` with kernel ``(k_t, k_f)``; the first strides
    ``(2, 2)``, the second ``(1, 2)``. ``causal``: time padding ``k_t - 1`` on the left only
    (output ``j`` of a layer with time stride ``s`` depends on inputs ``<= j * s``), else
    ``(k_t - 1) // 2`` on both sides. Output ``[B, ceil(T / 2), C * ceil(ceil(F / 2) / 2)]``."""

    STRIDES = ((2, 2), (1, 2))

    def __init__(self, n_features: int, channels: int = 32, kernel: tuple[int, int] = (5, 5),
                 causal: bool = False) -> None:
        super().__init__()
        self.kt, self.kf = kernel
        self.causal = causal
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        c_in, f = 1, n_features
        for st, sf in self.STRIDES:
            self.convs.append(nn.Conv2d(c_in, channels, kernel, stride=(st, sf),
                                        padding=(0, (self.kf - 1) // 2)))
            self.norms.append(nn.BatchNorm2d(channels))
            c_in = channels
            f = (f + 2 * ((self.kf - 1) // 2) - self.kf) // sf + 1
        self.out_features = channels * f

    def _time_pad(self) -> tuple[int, int]:
        k = self.kt - 1
        return (k, 0) if self.causal else (k // 2, k - k // 2)

    def layer(self, i: int, x: Tensor) -> Tensor:
        """Layer ``i`` on an already time-padded ``[B, C, T, F]``."""
        return F.hardtanh(self.norms[i](self.convs[i](x)), 0.0, 20.0)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        for st, _ in self.STRIDES:
            lengths = torch.div(lengths + st - 1, st, rounding_mode="floor")  # ceil(T / s)
        return lengths

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        h = x.unsqueeze(1)  # [B, 1, T, F]
        for i, (st, _) in enumerate(self.STRIDES):
            left, right = self._time_pad()
            h = self.layer(i, F.pad(h, (0, 0, left, right)))  # ceil(T / s) frames
            lengths = torch.div(lengths + st - 1, st, rounding_mode="floor")
            if not torch.jit.is_tracing():  # an exported graph keeps ceil(T / s) frames;
                h = h[:, :, : int(lengths.max())]  # past out_lengths they are padding
            keep = torch.arange(h.shape[2], device=h.device) < lengths.to(h.device)[:, None]
            h = h * keep[:, None, :, None]  # padded frames stay zero for the next layer
        B, C, T, Fr = h.shape
        return h.permute(0, 2, 1, 3).reshape(B, T, C * Fr), lengths  # [B, T', C * F']


class AcousticModel(nn.Module):
    """Conv front end + stacked :class:`~rnnkit.recurrent.Recurrent` + linear to ``n_classes``
    characters (blank = 0). ``forward(feats [B, T, F], lengths [B]) -> (log_probs [B, T', V],
    out_lengths [B])``.

    >>> m = AcousticModel(40, 29, channels=4, hidden_size=16, num_layers=1)
    >>> lp, n = m(torch.randn(2, 50, 40), torch.tensor([50, 31]))
    >>> tuple(lp.shape), n.tolist()
    ((2, 25, 29), [25, 16])
    """

    def __init__(self, n_features: int, n_classes: int, *, channels: int = 32,
                 hidden_size: int = 256, num_layers: int = 3, cell: str = "gru",
                 bidirectional: bool = True, dropout: float = 0.1,
                 normalize: str = "utterance", **cell_options: Any) -> None:
        super().__init__()
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        self.n_features, self.n_classes = n_features, n_classes
        self.normalize = normalize
        self.bidirectional = bool(bidirectional)
        self.register_buffer("feat_mean", torch.zeros(n_features))
        self.register_buffer("feat_std", torch.ones(n_features))
        self.front = ConvFrontEnd(n_features, channels, causal=not bidirectional)
        self.rnn = Recurrent(cell, self.front.out_features, hidden_size, num_layers,
                             bidirectional=bidirectional, dropout=dropout, **cell_options)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size * (2 if bidirectional else 1), n_classes)

    def set_stats(self, mean: Tensor, std: Tensor) -> None:
        """Store the training set's per-band feature mean and standard deviation."""
        self.feat_mean.copy_(mean)
        self.feat_std.copy_(std.clamp_min(1e-5))

    def normalized(self, feats: Tensor, lengths: Tensor) -> Tensor:
        """``feats [B, T, F]`` normalised (global stats, or each utterance's own over its
        valid frames); padded frames are zero."""
        if self.normalize == "utterance":
            return normalize_utterance(feats, lengths)
        keep = (torch.arange(feats.shape[1], device=feats.device)
                < lengths.to(feats.device)[:, None]).unsqueeze(-1)  # [B, T, 1]
        return ((feats - self.feat_mean) / self.feat_std) * keep

    def output_lengths(self, lengths: Tensor) -> Tensor:
        return self.front.output_lengths(lengths)

    def forward(self, feats: Tensor, lengths: Tensor, normalized: bool = False
                ) -> tuple[Tensor, Tensor]:
        x = feats if normalized else self.normalized(feats, lengths)
        z, out_lengths = self.front(x, lengths)  # [B, T', C * F']
        h, _ = self.rnn(z, lengths=out_lengths.cpu())
        return F.log_softmax(self.out(self.drop(h)), dim=-1), out_lengths

    def stream(self) -> AcousticStream:
        """A streaming session (unidirectional models with global normalisation only)."""
        return AcousticStream(self)


class AcousticStream:
    """Feed feature frames in chunks of any size, get the log-probability frames the offline
    pass would give for them, as soon as each is determined (``eval`` mode, no grad).

    >>> m = AcousticModel(40, 29, channels=4, hidden_size=16, num_layers=1,
    ...                   bidirectional=False, normalize="global").eval()
    >>> x = torch.randn(37, 40)
    >>> s = m.stream(); parts = [s.push(x[:5]), s.push(x[5:6]), s.push(x[6:])]
    >>> full, _ = m(x[None], torch.tensor([37]))
    >>> torch.allclose(torch.cat(parts), full[0], atol=1e-5)
    True
    """

    def __init__(self, model: AcousticModel) -> None:
        if model.bidirectional:
            raise ValueError("a bidirectional model needs the whole utterance; train with "
                             "bidirectional=False (--unidirectional) to stream")
        if model.normalize != "global":
            raise ValueError("streaming needs normalize='global' (per-utterance statistics "
                             "need the whole utterance); train with --normalize global")
        self.model = model
        front = model.front
        # per conv layer: buffered (time-padded) input [1, C, n, F] and its time stride
        self.buffers: list[Tensor | None] = [None] * len(front.convs)
        self.state = None

    @torch.no_grad()
    def push(self, feats: Tensor) -> Tensor:
        """``feats [T_new, F]`` -> log-probabilities ``[T'_new, V]`` (possibly zero rows)."""
        m = self.model
        if feats.ndim != 2 or feats.shape[1] != m.n_features:
            raise ValueError(f"expected feature frames [T, {m.n_features}], got "
                             f"{tuple(feats.shape)}")
        h = ((feats - m.feat_mean) / m.feat_std)[None, None]  # [1, 1, T, F]
        front = m.front
        for i, (st, _) in enumerate(front.STRIDES):
            if self.buffers[i] is None:  # the causal left padding, once
                pad = h.new_zeros(1, h.shape[1], front.kt - 1, h.shape[3])
                self.buffers[i] = pad
            buf = torch.cat([self.buffers[i], h], dim=2)
            n = buf.shape[2]
            count = (n - front.kt) // st + 1 if n >= front.kt else 0
            if count <= 0:
                self.buffers[i] = buf
                return feats.new_zeros(0, m.n_classes)
            h = front.layer(i, buf[:, :, : (count - 1) * st + front.kt])
            self.buffers[i] = buf[:, :, count * st:]
        B, C, T, Fr = h.shape
        z = h.permute(0, 2, 1, 3).reshape(1, T, C * Fr)
        out, self.state = m.rnn(z, self.state)
        return F.log_softmax(m.out(out), dim=-1)[0]
