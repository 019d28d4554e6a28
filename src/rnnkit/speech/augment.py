r"""Waveform augmentation for speech recognition: speed perturbation, additive noise at a set
SNR, telephone-channel simulation and random gain, plus :class:`Augmenter`, which applies a
random combination of them reproducibly from a :class:`torch.Generator`.

All functions take float waveforms ``[N]`` (most also ``[B, N]``, acting on the last axis) in
``[-1, 1]`` and return ``float32``; none of them clip, so after noise or gain samples may exceed
full scale.

>>> import torch
>>> x = 0.5 * torch.sin(2 * torch.pi * 440 * torch.arange(16000) / 16000)
>>> speed_perturb(x, 1.1).shape                # 10 % faster: N / 1.1 samples
torch.Size([14546])
>>> y = add_noise(x, snr_db=10.0, generator=torch.Generator().manual_seed(0))
>>> round(float(10 * torch.log10(x.square().mean() / (y - x).square().mean())), 3)
10.0
>>> aug = Augmenter(rate=16000)
>>> a = aug(x, generator=torch.Generator().manual_seed(1))
>>> torch.equal(a, aug(x, generator=torch.Generator().manual_seed(1)))   # same seed, same result
True
>>> torch.equal(Augmenter(seed=3)(x, 16000), Augmenter(seed=3)(x, 16000))
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor

from .audio import _check_rate, _signal, resample

__all__ = [
    "Augmenter",
    "add_noise",
    "mu_law",
    "random_gain",
    "speed_perturb",
    "telephone",
]

#: the speed factor is rounded to a fraction p/q with q at most this (keeps the resampling
#: filter short); 0.9 and 1.1 are exact
MAX_SPEED_DENOMINATOR = 100


def _float(samples: Tensor, what: str) -> Tensor:
    x = torch.as_tensor(samples)
    if not x.is_floating_point():
        raise ValueError(f"{what} expects float samples in [-1, 1], got {x.dtype}; convert "
                         "integer PCM with rnnkit.speech.audio.check_audio")
    if x.numel() == 0:
        raise ValueError(f"{what} got empty audio (0 samples)")
    return x


def speed_perturb(samples: Tensor, factor: float) -> Tensor:
    r"""Speed perturbation (Ko et al., 2015; Kaldi's ``sox speed``): play the audio ``factor``
    times faster, changing tempo *and* pitch together.

    The waveform is resampled from rate :math:`r` to :math:`r / \text{factor}` and read back at
    :math:`r`: the length becomes :math:`\lceil N / \text{factor} \rceil` and every frequency
    :math:`f` becomes :math:`\text{factor} \cdot f`. ``factor`` is rounded to the nearest
    :math:`p/q` with :math:`q \le` :data:`MAX_SPEED_DENOMINATOR` (exact for 0.9, 1.1, ...) and
    must lie in ``[0.5, 2]``; ``factor = 1`` returns the input (as ``float32``).
    ``samples`` ``[N]`` or ``[B, N]``.
    """
    x = _float(samples, "speed_perturb")
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"speed factor must be in [0.5, 2], got {factor}; typical values are "
                         "0.9, 1.0 and 1.1")
    frac = Fraction(factor).limit_denominator(MAX_SPEED_DENOMINATOR)
    if frac == 1:
        return x.to(torch.float32)
    # resample from "rate" p to q: N -> N * q / p samples
    return resample(x, frac.numerator, frac.denominator)


def add_noise(samples: Tensor, snr_db: float, generator: torch.Generator | None = None,
              noise: Tensor | None = None) -> Tensor:
    r"""Add noise at signal-to-noise ratio ``snr_db``:

    .. math::
        y = x + g\,n, \qquad g = \sqrt{\frac{P_x}{P_n\, 10^{\text{snr}/10}}}, \quad
        P_x = \frac1N \sum_i x_i^2, \; P_n = \frac1N \sum_i n_i^2

    so that :math:`10 \log_{10}(P_x / P_{gn}) = \text{snr}` exactly (per row for ``[B, N]``).
    ``noise=None`` draws white Gaussian noise from ``generator``; a given ``noise`` ``[M]`` is
    looped (if :math:`M < N`) and cropped from a random offset drawn from ``generator``.
    """
    x = _float(samples, "add_noise")
    if not math.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, got {snr_db}")
    n_samples = x.shape[-1]
    dev = generator.device if generator is not None else torch.device("cpu")
    if noise is None:
        n = torch.randn(x.shape, generator=generator, dtype=torch.float64, device=dev)
    else:
        src = _float(noise, "add_noise's noise").detach().flatten().to(torch.float64).cpu()
        offset = int(torch.randint(src.numel(), (1,), generator=generator, device=dev))
        reps = math.ceil((offset + n_samples) / src.numel())
        n = src.repeat(reps)[offset:offset + n_samples].expand(x.shape)
    n = n.to(x.device)
    xd = x.detach().to(torch.float64)
    p_x = xd.square().mean(dim=-1, keepdim=True)
    p_n = n.square().mean(dim=-1, keepdim=True)
    if (p_x == 0).any():
        raise ValueError("cannot set an SNR for silent audio (signal power 0); drop the "
                         "utterance or check it with check_audio")
    if (p_n == 0).any():
        raise ValueError("the noise is silent (power 0) over this stretch; pass a noise "
                         "recording that is not digital silence")
    gain = torch.sqrt(p_x / (p_n * 10.0 ** (snr_db / 10.0)))
    return (xd + gain * n).to(torch.float32)


def mu_law(samples: Tensor, bits: int = 8, mu: float = 255.0) -> Tensor:
    r"""G.711-style :math:`\mu`-law companding and ``bits``-bit quantisation, decoded back to
    linear: :math:`c = \operatorname{sgn}(x) \ln(1 + \mu |x|) / \ln(1 + \mu)`, rounded to
    :math:`2^{\text{bits}}` levels in :math:`[-1, 1]`, then expanded by
    :math:`\operatorname{sgn}(c) ((1 + \mu)^{|c|} - 1) / \mu`. Input clamped to ``[-1, 1]``."""
    x = _float(samples, "mu_law").to(torch.float64).clamp(-1.0, 1.0)
    levels = 2**bits - 1
    c = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    c = torch.round((c + 1.0) / 2.0 * levels) / levels * 2.0 - 1.0
    return (torch.sign(c) * torch.expm1(c.abs() * math.log1p(mu)) / mu).to(torch.float32)


def telephone(samples: Tensor, rate: int, mu_law_8bit: bool = False, order: int = 4) -> Tensor:
    """Simulate a narrow-band telephone channel: band-pass 300-3400 Hz (Butterworth of
    ``order`` run forward and backward, :func:`scipy.signal.sosfiltfilt`, so zero phase and
    twice the attenuation), resample to 8 kHz, optionally 8-bit :func:`mu_law` (G.711) at
    8 kHz, and resample back to ``rate``. Energy above 4 kHz is gone; 3.4-4 kHz is strongly
    attenuated. ``rate`` must be at least 8000. ``samples`` ``[N]`` or ``[B, N]``; the output
    has the same shape up to a sample of rounding from the two resamplings (cropped/padded
    to ``N``)."""
    x = _float(samples, "telephone")
    rate = _check_rate(rate)
    if rate < 8000:
        raise ValueError(f"telephone needs audio sampled at 8 kHz or more, got {rate} Hz; "
                         "resample it up first (rnnkit.speech.audio.resample)")
    signal = _signal()
    sos = signal.butter(order, [300.0, 3400.0], btype="bandpass", fs=rate, output="sos")
    xd = x.detach().cpu().to(torch.float64).numpy()
    padlen = min(3 * (2 * len(sos) + 1), xd.shape[-1] - 1)
    y = torch.from_numpy(np.ascontiguousarray(signal.sosfiltfilt(sos, xd, axis=-1,
                                                                 padlen=padlen)))
    y = resample(y, rate, 8000)
    if mu_law_8bit:
        y = mu_law(y)
    y = resample(y, 8000, rate).to(torch.float64)
    n = x.shape[-1]
    y = y[..., :n] if y.shape[-1] >= n else torch.nn.functional.pad(y, (0, n - y.shape[-1]))
    return y.to(dtype=torch.float32, device=x.device)


def random_gain(samples: Tensor, min_db: float = -6.0, max_db: float = 6.0,
                generator: torch.Generator | None = None) -> Tensor:
    r"""Scale by :math:`10^{g/20}`, :math:`g \sim U[\text{min\_db}, \text{max\_db}]` (one gain
    per row of ``[B, N]``)."""
    x = _float(samples, "random_gain")
    if min_db > max_db:
        raise ValueError(f"need min_db <= max_db, got {min_db} > {max_db}")
    dev = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(x.shape[:-1] + (1,), generator=generator, dtype=torch.float64, device=dev)
    g = min_db + (max_db - min_db) * u.to(x.device)
    return (x.to(torch.float64) * 10.0 ** (g / 20.0)).to(torch.float32)


@dataclass
class Augmenter:
    """A random chain of waveform effects for one utterance ``[N]``, in this order: speed
    perturbation (a factor drawn from ``speeds``), telephone channel (with 8-bit mu-law with
    probability ``p_mu_law``), additive noise at an SNR uniform in ``snr_db`` (a random clip
    from ``noises``, or white noise if there are none), random gain.

    Each effect fires with its probability ``p_*``. Every random choice comes from the
    ``generator`` passed to ``__call__``, or else from the augmenter's own generator seeded
    with ``seed``, and the same number of draws is made whichever effects fire: a given seed
    gives the same outputs, and the effects chosen for one utterance do not shift the random
    stream of the next.

    Call it as ``aug(samples, generator=g)`` or, as a data-preparation hook,
    ``aug(samples, rate)`` (``rate`` overrides the field for that call; it matters only for
    the telephone effect). Forked data-loader workers copy the own generator, so there give
    each worker its own ``generator`` (or ``seed``) or they repeat each other's effects.
    """

    rate: int = 16000
    p_speed: float = 0.5
    speeds: Sequence[float] = (0.9, 1.0, 1.1)
    p_telephone: float = 0.1
    p_mu_law: float = 0.5
    p_noise: float = 0.5
    snr_db: tuple[float, float] = (5.0, 30.0)
    noises: Sequence[Tensor] = field(default_factory=tuple)
    p_gain: float = 0.5
    gain_db: tuple[float, float] = (-6.0, 6.0)
    seed: int = 0

    def __post_init__(self) -> None:
        _check_rate(self.rate)
        self._generator = torch.Generator().manual_seed(self.seed)
        for name in ("p_speed", "p_telephone", "p_mu_law", "p_noise", "p_gain"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} is a probability and must be in [0, 1], got {p}")
        if not self.speeds:
            raise ValueError("speeds must list at least one factor, e.g. (0.9, 1.0, 1.1)")
        for s in self.speeds:
            if not 0.5 <= s <= 2.0:
                raise ValueError(f"speed factors must be in [0.5, 2], got {s}")
        if self.snr_db[0] > self.snr_db[1] or self.gain_db[0] > self.gain_db[1]:
            raise ValueError("snr_db and gain_db are (low, high) ranges; put the low end first")

    def __call__(self, samples: Tensor, rate: int | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """Augment one utterance ``[N]`` at ``rate`` (default: the field) with ``generator``
        (default: the augmenter's own, seeded with ``seed``); returns ``float32`` ``[N']``
        (``N' != N`` after speed perturbation)."""
        x = _float(samples, "Augmenter")
        rate = self.rate if rate is None else _check_rate(rate)
        generator = self._generator if generator is None else generator
        if x.dim() != 1:
            raise ValueError(f"Augmenter works on one utterance [N], got shape "
                             f"{tuple(x.shape)}; call it per utterance (speed changes lengths)")
        dev = generator.device if generator is not None else torch.device("cpu")
        u = torch.rand(8, generator=generator, dtype=torch.float64, device=dev).tolist()
        seed = int(torch.randint(2**62, (1,), generator=generator, device=dev))
        sub = torch.Generator().manual_seed(seed)    # for the effects' own draws
        y = x.to(torch.float32)
        if u[0] < self.p_speed:
            y = speed_perturb(y, self.speeds[min(int(u[1] * len(self.speeds)),
                                                 len(self.speeds) - 1)])
        if u[2] < self.p_telephone:
            y = telephone(y, rate, mu_law_8bit=u[3] < self.p_mu_law)
        if u[4] < self.p_noise:
            snr = self.snr_db[0] + (self.snr_db[1] - self.snr_db[0]) * u[5]
            noise = None
            if self.noises:
                noise = self.noises[min(int(u[6] * len(self.noises)), len(self.noises) - 1)]
            y = add_noise(y, snr, generator=sub, noise=noise)
        if u[7] < self.p_gain:
            y = random_gain(y, *self.gain_db, generator=sub)
        return y
