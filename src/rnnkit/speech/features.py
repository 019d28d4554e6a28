r"""Speech features: mel filterbanks and log-mel spectrograms (offline and streaming). Pure
torch. Normalisation and SpecAugment of the frames: :mod:`rnnkit.speech.normalization`.

Log-mel features (:class:`LogMel`), for a waveform :math:`x` at rate :math:`r`:

.. math::
    y_n = x_n - \alpha x_{n-1} \quad (x_{-1} = 0), \qquad
    Y_t(k) = \sum_{m=0}^{W-1} w_m\, y_{tH + m}\, e^{-2\pi i k m / K}, \qquad
    F_t(j) = \log\Big(\sum_k |Y_t(k)|^2 M_{kj} + \varepsilon\Big)

with pre-emphasis :math:`\alpha` (0.97), a periodic Hann window :math:`w` of :math:`W` samples
(25 ms), hop :math:`H` (10 ms), FFT size :math:`K \ge W` (frame zero-padded at the end),
and a mel filterbank :math:`M` ``[K/2 + 1, n_mels]`` (:func:`mel_filterbank`). Frame :math:`t`
covers samples :math:`[tH, tH + W)`; there are :math:`T = 1 + \lfloor (N - W) / H \rfloor`
frames (none when :math:`N < W`), no padding at either end, so a streaming front end
(:meth:`LogMel.stream`) produces exactly the offline features.

>>> import torch
>>> logmel = LogMel()                          # 16 kHz, 25 ms / 10 ms, 80 mels
>>> logmel(torch.randn(2, 16000)).shape        # one second -> 98 frames
torch.Size([2, 98, 80])
>>> logmel.num_frames(16000), logmel.num_frames(399)
(98, 0)
>>> x, s = torch.randn(5000), logmel.stream()
>>> torch.allclose(torch.cat([s.push(x[:1234]), s.push(x[1234:])]), logmel(x), atol=1e-5)
True
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn

__all__ = [
    "LogMel",
    "StreamingLogMel",
    "hz_to_mel",
    "mel_filterbank",
    "mel_to_hz",
]

_SCALES = ("htk", "slaney")

# Slaney's Auditory Toolbox mel scale (librosa's default): linear below 1 kHz, log above
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def _check_scale(scale: str) -> None:
    if scale not in _SCALES:
        raise ValueError(f"unknown mel scale {scale!r}; use 'htk' or 'slaney'")


def hz_to_mel(f: Tensor, scale: str = "htk") -> Tensor:
    r"""Hz to mel. ``"htk"``: :math:`m = 2595 \log_{10}(1 + f / 700)`. ``"slaney"``:
    :math:`m = 3f/200` below 1 kHz and :math:`15 + 27 \ln(f / 1000) / \ln 6.4` above."""
    _check_scale(scale)
    f = torch.as_tensor(f, dtype=torch.float64)
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    log_part = _MIN_LOG_MEL + torch.log(f.clamp_min(_MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return torch.where(f >= _MIN_LOG_HZ, log_part, f / _F_SP)


def mel_to_hz(m: Tensor, scale: str = "htk") -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    _check_scale(scale)
    m = torch.as_tensor(m, dtype=torch.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    log_part = _MIN_LOG_HZ * torch.exp(_LOGSTEP * (m.clamp_min(_MIN_LOG_MEL) - _MIN_LOG_MEL))
    return torch.where(m >= _MIN_LOG_MEL, log_part, _F_SP * m)


def mel_filterbank(n_fft: int, n_mels: int, rate: int, f_min: float = 0.0,
                   f_max: float | None = None, scale: str = "htk") -> Tensor:
    r"""Triangular mel filterbank ``[n_fft // 2 + 1, n_mels]`` (``float32``), applied as
    ``power_spectrum @ fb``.

    Band :math:`j` has edges :math:`f_{j} < f_{j+1} < f_{j+2}` (Hz), where
    :math:`f_0 .. f_{n+1}` are equally spaced on the mel scale from ``f_min`` to ``f_max``
    (default ``rate / 2``). FFT bin :math:`k` sits at :math:`\nu_k = k \cdot \text{rate} /
    \text{n\_fft}` and gets weight

    .. math::
        M_{kj} = \max\Big(0, \min\Big(\frac{\nu_k - f_j}{f_{j+1} - f_j},
                                     \frac{f_{j+2} - \nu_k}{f_{j+2} - f_{j+1}}\Big)\Big).

    ``scale="htk"``: HTK/Kaldi mel scale :math:`2595 \log_{10}(1 + f/700)`, peak weight 1
    (as torchaudio's ``melscale_fbanks(norm=None, mel_scale="htk")``). ``scale="slaney"``:
    Slaney's mel scale and area normalisation, each band scaled by
    :math:`2 / (f_{j+2} - f_j)` (as librosa's ``filters.mel(htk=False, norm="slaney")``).

    Warns when a band catches no FFT bin (``n_mels`` too large for ``n_fft``).
    """
    _check_scale(scale)
    if n_fft < 2 or n_mels < 1 or rate <= 0:
        raise ValueError(f"need n_fft >= 2, n_mels >= 1 and rate > 0, got n_fft={n_fft}, "
                         f"n_mels={n_mels}, rate={rate}")
    f_max = rate / 2.0 if f_max is None else float(f_max)
    if not 0.0 <= f_min < f_max <= rate / 2.0:
        raise ValueError(f"need 0 <= f_min < f_max <= rate / 2 = {rate / 2:g} Hz, got "
                         f"f_min={f_min}, f_max={f_max}; lower f_max or raise the sample rate")
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * rate / n_fft
    mels = torch.linspace(float(hz_to_mel(torch.tensor(f_min), scale)),
                          float(hz_to_mel(torch.tensor(f_max), scale)), n_mels + 2,
                          dtype=torch.float64)
    edges = mel_to_hz(mels, scale)                                   # [n_mels + 2]
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    rise = (freqs[:, None] - lo) / (mid - lo)
    fall = (hi - freqs[:, None]) / (hi - mid)
    fb = torch.minimum(rise, fall).clamp_min(0.0)                    # [F, n_mels]
    if scale == "slaney":
        fb = fb * (2.0 / (hi - lo))
    empty = (fb.amax(dim=0) == 0).nonzero().flatten().tolist()
    if empty:
        warnings.warn(f"mel bands {empty} contain no FFT bin (n_mels={n_mels} is too many for "
                      f"n_fft={n_fft} at {rate} Hz); use fewer mels or a larger n_fft",
                      stacklevel=2)
    return fb.to(torch.float32)


class LogMel(nn.Module):
    r"""Log-mel spectrogram (module docstring has the equations).

    Args:
        rate: sample rate (Hz) the input waveforms have.
        n_fft: FFT size :math:`K \ge` ``win_length``; a frame is zero-padded at the end to it.
        win_length: window :math:`W` in samples (400 = 25 ms at 16 kHz), periodic Hann.
        hop_length: hop :math:`H` in samples (160 = 10 ms).
        n_mels: mel bands.
        f_min, f_max: filterbank range in Hz (``f_max`` defaults to ``rate / 2``).
        eps: floor inside the log, :math:`\log(\text{mel power} + \varepsilon)`.
        preemphasis: :math:`\alpha` in :math:`y_n = x_n - \alpha x_{n-1}` over the whole
            signal (:math:`x_{-1} = 0`); 0 disables it.
        scale: ``"htk"`` or ``"slaney"`` (:func:`mel_filterbank`).

    ``forward(samples)``: ``[B, N]`` → ``[B, T, n_mels]``, ``[N]`` → ``[T, n_mels]``,
    :math:`T` = :meth:`num_frames` ``(N)``. Float inputs keep their dtype (float64 in, float64
    out, though the window and filterbank are stored in float32, so accurate to ~1e-6
    relative); the window and filterbank are non-persistent buffers, derived from the
    arguments, so they follow ``.to(device)`` but are not in the ``state_dict``. For padded
    batches the valid frames of utterance :math:`b` are the first ``num_frames(lengths[b])``;
    later frames overlap padding.
    """

    def __init__(self, rate: int = 16000, n_fft: int = 400, win_length: int = 400,
                 hop_length: int = 160, n_mels: int = 80, f_min: float = 20.0,
                 f_max: float | None = None, eps: float = 1e-6, preemphasis: float = 0.97,
                 scale: str = "htk") -> None:
        super().__init__()
        if not 0 < win_length <= n_fft:
            raise ValueError(f"need 0 < win_length <= n_fft, got win_length={win_length}, "
                             f"n_fft={n_fft}; raise n_fft to at least the window length")
        if hop_length <= 0:
            raise ValueError(f"hop_length must be positive, got {hop_length} (160 = 10 ms at "
                             "16 kHz)")
        if eps <= 0:
            raise ValueError(f"eps must be > 0 to keep log finite on silence, got {eps}")
        if not 0.0 <= preemphasis < 1.0:
            raise ValueError(f"preemphasis must be in [0, 1), got {preemphasis} (0.97 is usual, "
                             "0 disables it)")
        self.rate, self.n_fft, self.win_length, self.hop_length = rate, n_fft, win_length, \
            hop_length
        self.n_mels, self.f_min, self.f_max, self.eps = n_mels, f_min, f_max, eps
        self.preemphasis, self.scale = preemphasis, scale
        window = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
        # zero-padded at the end, so frame t covers [t*H, t*H + W) as documented (torch.stft
        # would centre a shorter window inside the n_fft frame)
        window = torch.cat([window, window.new_zeros(n_fft - win_length)]).to(torch.float32)
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("fb", mel_filterbank(n_fft, n_mels, rate, f_min, f_max, scale),
                             persistent=False)

    def extra_repr(self) -> str:
        return (f"rate={self.rate}, n_fft={self.n_fft}, win_length={self.win_length}, "
                f"hop_length={self.hop_length}, n_mels={self.n_mels}, f_min={self.f_min}, "
                f"f_max={self.f_max}, preemphasis={self.preemphasis}, scale={self.scale!r}")

    def num_frames(self, n_samples: int | Tensor) -> int | Tensor:
        r""":math:`T = 1 + \lfloor (N - W) / H \rfloor` for :math:`N \ge W`, else 0. Works on an
        int or on a tensor of lengths (e.g. to turn sample lengths into frame lengths)."""
        if isinstance(n_samples, Tensor):
            frames = torch.div(n_samples - self.win_length, self.hop_length,
                               rounding_mode="floor") + 1
            return frames.clamp_min(0)
        return max(0, 1 + (int(n_samples) - self.win_length) // self.hop_length)

    def _emphasise(self, x: Tensor, prev: Tensor | None = None) -> Tensor:
        if self.preemphasis == 0.0:
            return x
        before = x.new_zeros(x.shape[:-1] + (1,)) if prev is None else prev
        shifted = torch.cat([before, x[..., :-1]], dim=-1)
        return x - self.preemphasis * shifted

    def _frames(self, y: Tensor) -> Tensor:
        """Log-mel of already pre-emphasised ``y [B, N]`` → ``[B, T, n_mels]``."""
        n_frames = self.num_frames(y.shape[-1])
        if n_frames == 0:
            return y.new_zeros(y.shape[0], 0, self.n_mels)
        # the last frame reads n_fft samples; those past its window are multiplied by 0
        need = (n_frames - 1) * self.hop_length + self.n_fft
        y = y[..., :need]
        if y.shape[-1] < need:
            y = nn.functional.pad(y, (0, need - y.shape[-1]))
        spec = torch.stft(y, self.n_fft, hop_length=self.hop_length, win_length=self.n_fft,
                          window=self.window.to(y.dtype), center=False, return_complex=True)
        power = spec.real.square() + spec.imag.square()               # [B, F, T]
        mel = power.transpose(1, 2) @ self.fb.to(y.dtype)             # [B, T, n_mels]
        return torch.log(mel + self.eps)

    def forward(self, samples: Tensor) -> Tensor:
        if samples.dim() not in (1, 2):
            raise ValueError(f"LogMel expects samples [B, N] or [N], got shape "
                             f"{tuple(samples.shape)}")
        if not samples.is_floating_point():
            raise ValueError(f"LogMel expects float samples in [-1, 1], got {samples.dtype}; "
                             "convert integer PCM with rnnkit.speech.audio.check_audio")
        x = samples if samples.dim() == 2 else samples[None]
        feats = self._frames(self._emphasise(x))
        return feats if samples.dim() == 2 else feats[0]

    def stream(self) -> StreamingLogMel:
        """A :class:`StreamingLogMel` that turns pushed chunks into the same frames as
        :meth:`forward` on the whole signal."""
        return StreamingLogMel(self)


class StreamingLogMel:
    r"""Incremental :class:`LogMel`: :meth:`push` chunks of any size (1 sample upwards), get the
    frames they complete.

    It keeps the pre-emphasised samples not yet consumed by a frame (fewer than
    :math:`W + H`) and the last raw sample for the pre-emphasis filter, so
    ``torch.cat([s.push(c) for c in chunks])`` equals ``logmel(torch.cat(chunks))``. Latency:
    a frame is returned once its last sample has arrived. Samples at the end that do not fill
    a whole window never become a frame, exactly as offline.
    """

    def __init__(self, logmel: LogMel) -> None:
        self.logmel = logmel
        self.reset()

    def reset(self) -> None:
        """Start a new utterance."""
        self._pending: Tensor | None = None      # pre-emphasised, not yet fully consumed
        self._prev: Tensor | None = None         # last raw sample, [..., 1]

    @property
    def pending(self) -> int:
        """Samples held back, waiting for the rest of their frame."""
        return 0 if self._pending is None else self._pending.shape[-1]

    def push(self, chunk: Tensor) -> Tensor:
        """Feed ``chunk`` ``[N]`` (or ``[B, N]`` for B parallel streams); returns the new frames
        ``[T_new, n_mels]`` (``[B, T_new, n_mels]``), possibly ``T_new = 0``."""
        m = self.logmel
        if chunk.dim() not in (1, 2) or not chunk.is_floating_point():
            raise ValueError(f"push expects float samples [N] or [B, N], got shape "
                             f"{tuple(chunk.shape)} of {chunk.dtype}")
        x = chunk if chunk.dim() == 2 else chunk[None]
        if self._pending is not None and self._pending.shape[:-1] != x.shape[:-1]:
            raise ValueError(f"chunk batch shape {tuple(x.shape[:-1])} differs from earlier "
                             f"chunks' {tuple(self._pending.shape[:-1])}; call reset() first")
        if x.shape[-1] > 0:
            y = m._emphasise(x, self._prev)
            self._prev = x[..., -1:]
            self._pending = y if self._pending is None else torch.cat([self._pending, y], -1)
        buf = self._pending if self._pending is not None else x.new_zeros(x.shape[0], 0)
        n_frames = m.num_frames(buf.shape[-1])
        feats = m._frames(buf)
        if n_frames:
            self._pending = buf[..., n_frames * m.hop_length:]
        return feats if chunk.dim() == 2 else feats[0]
