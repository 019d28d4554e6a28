r"""Audio input for speech recognition: load a file, validate a waveform, resample, and cut hours
of audio into chunks.

Every waveform that leaves this module is a 1-D ``float32`` tensor ``[N]`` of samples in
``[-1, 1]`` at a known rate (16 kHz unless asked otherwise), mono. Validation happens here, once
(:func:`check_audio`): empty and non-finite audio raise :class:`ValueError`, digital silence
raises :class:`SilentAudioError`, and clipped audio warns with :class:`ClippedAudioWarning`;
every message names the fix.

Files are read with `soundfile <https://python-soundfile.readthedocs.io>`_ (libsndfile: WAV,
FLAC, Ogg/Vorbis and more) and resampled with :func:`scipy.signal.resample_poly`, a polyphase
FIR (Kaiser window) resampler by the exact rational factor
:math:`\text{new} / \text{orig} = (\text{new}/g) / (\text{orig}/g)`, :math:`g = \gcd`.

>>> import torch
>>> x = torch.sin(2 * torch.pi * 440 * torch.arange(8000) / 8000)
>>> y = resample(x, 8000, 16000)
>>> y.shape, y.dtype
(torch.Size([16000]), torch.float32)
>>> [(start, len(c)) for start, c in iter_chunks(y, 16000, seconds=0.4, overlap=0.1)]
[(0, 6400), (4800, 6400), (9600, 6400)]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "CLIP_FRACTION",
    "CLIP_LEVEL",
    "MAX_CHANNELS",
    "MAX_FILE_RATE",
    "MIN_FILE_RATE",
    "SILENCE_PEAK",
    "ClippedAudioWarning",
    "SilentAudioError",
    "check_audio",
    "iter_chunks",
    "load_audio",
    "resample",
]

#: a waveform whose peak ``max |x|`` is below this is treated as digital silence (-80 dBFS)
SILENCE_PEAK = 1e-4
#: a sample at or above this magnitude counts as clipped (full scale is 1.0)
CLIP_LEVEL = 0.999
#: warn when more than this fraction of the samples are clipped
CLIP_FRACTION = 0.01
#: a 2-D waveform's channel axis is the one no longer than this
MAX_CHANNELS = 8
#: the sample rates (Hz) :func:`load_audio` accepts in a file's header: real recordings lie
#: between telephone-band 4 kHz and studio 192 kHz; a rate outside is a corrupt or crafted
#: header, and resampling from it would cost gigabytes (the resampling filter grows with it)
MIN_FILE_RATE, MAX_FILE_RATE = 4_000, 192_000

#: integer PCM types and the divisor that maps them to [-1, 1) (``uint8`` is offset by 128)
_INT_SCALE = {torch.int8: 2.0**7, torch.uint8: 2.0**7, torch.int16: 2.0**15, torch.int32: 2.0**31}


class SilentAudioError(ValueError):
    """The waveform is digital silence (peak below :data:`SILENCE_PEAK`): there is nothing to
    recognise, and normalising it would only amplify numerical noise."""


class ClippedAudioWarning(UserWarning):
    """More than :data:`CLIP_FRACTION` of the samples sit at full scale (``|x| >= CLIP_LEVEL``):
    the recording was overdriven, which distorts the spectrum and hurts recognition."""


def _soundfile():
    try:
        import soundfile
    except ModuleNotFoundError as err:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "reading audio files needs soundfile; install it with `pip install soundfile`",
            name="soundfile") from err
    return soundfile


def _signal():
    try:
        from scipy import signal
    except ModuleNotFoundError as err:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "resampling needs scipy; install it with `pip install scipy`", name="scipy") from err
    return signal


def _check_rate(rate, name: str = "rate") -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise ValueError(f"{name} must be a positive whole number of samples per second "
                         f"(e.g. 16000), got {rate!r}")
    return int(rate)


def _to_mono(x: Tensor) -> Tensor:
    if x.dim() == 1:
        return x
    if x.dim() != 2:
        raise ValueError(f"audio must be [N] (mono) or [channels, N] / [N, channels], got shape "
                         f"{tuple(x.shape)}; squeeze extra dimensions first")
    rows, cols = x.shape
    if rows <= MAX_CHANNELS < cols or (rows <= MAX_CHANNELS and cols == 0):
        return x.mean(dim=0)
    if cols <= MAX_CHANNELS < rows or (cols <= MAX_CHANNELS and rows == 0):
        return x.mean(dim=1)
    raise ValueError(
        f"cannot tell the channel axis of audio with shape {tuple(x.shape)}: exactly one "
        f"dimension must have at most {MAX_CHANNELS} channels; mix it to mono yourself "
        "(x.mean(dim=channel_axis)) and pass a 1-D tensor")


def check_audio(samples: Tensor | np.ndarray, rate: int) -> Tensor:
    r"""Validate an in-memory waveform and return it as mono ``float32`` ``[N]``.

    Args:
        samples: ``[N]`` mono, or 2-D multi-channel audio. For 2-D input the channel axis is the
            one with at most :data:`MAX_CHANNELS` entries (``[C, N]`` as torchaudio returns or
            ``[N, C]`` as soundfile returns) and channels are averaged to mono; if both or neither
            axis is that short the call fails. A numpy array is accepted too.
            Floating point samples are expected in ``[-1, 1]``. Integer PCM is converted:
            ``int16`` as :math:`x / 32768`, ``int32`` as :math:`x / 2^{31}`, ``int8`` as
            :math:`x / 128`, and unsigned 8-bit (WAV's 8-bit format) as :math:`(x - 128) / 128`.
        rate: the sample rate in Hz (validated; the samples are not resampled here, see
            :func:`resample`).

    Returns:
        ``[N]`` ``float32``.

    Raises:
        ValueError: empty audio, NaN / infinite samples, an unsupported dtype or shape.
        SilentAudioError: peak :math:`\max_n |x_n|` below :data:`SILENCE_PEAK` (digital silence).

    Warns:
        ClippedAudioWarning: more than :data:`CLIP_FRACTION` of the samples have
        :math:`|x_n| \ge` :data:`CLIP_LEVEL`, or float samples beyond full scale (peak > 1).

    >>> import torch
    >>> stereo = torch.stack([torch.linspace(-0.5, 0.5, 100), torch.full((100,), 0.5)])
    >>> check_audio(stereo, 16000)[[0, -1]]             # [2, N]: channels averaged
    tensor([0.0000, 0.5000])
    >>> check_audio(stereo.T, 16000).shape              # [N, 2] likewise
    torch.Size([100])
    >>> check_audio(torch.tensor([16384, -8192], dtype=torch.int16), 16000)
    tensor([ 0.5000, -0.2500])
    """
    _check_rate(rate)
    x = torch.as_tensor(samples)
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"audio samples must be real floats in [-1, 1], got dtype {x.dtype}")
    if not x.is_floating_point():
        if x.dtype not in _INT_SCALE:
            raise ValueError(
                f"cannot tell the full scale of {x.dtype} audio; convert it to float in [-1, 1] "
                "yourself (e.g. x / 32768.0 for 16-bit PCM), or pass int16/int32/int8/uint8 PCM")
        offset = 128.0 if x.dtype == torch.uint8 else 0.0
        x = (x.to(torch.float64) - offset) / _INT_SCALE[x.dtype]
    x = _to_mono(x).to(torch.float32)
    if x.numel() == 0:
        raise ValueError("the audio is empty (0 samples); check that the file or buffer holds a "
                         "recording (a header-only WAV has no samples)")
    bad = ~torch.isfinite(x)
    if bad.any():
        first = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"the audio has {int(bad.sum())} NaN/inf samples (first at sample {first}, "
            f"{first / rate:.3f} s); the recording or an upstream step is corrupt, replace the "
            "non-finite samples (e.g. torch.nan_to_num) or drop the utterance")
    mag = x.abs()
    peak = float(mag.max())
    if peak < SILENCE_PEAK:
        raise SilentAudioError(
            f"the audio is silent: peak {peak:.2e} is below {SILENCE_PEAK:g} (-80 dBFS) over "
            f"{x.numel()} samples ({x.numel() / rate:.2f} s); check the microphone/input channel, "
            "or drop the utterance from the data set")
    if peak > 1.0 + 1e-6:
        warnings.warn(
            f"the audio exceeds full scale [-1, 1] (peak {peak:.4g}); if these are integer PCM "
            "values stored as floats, divide by 32768, otherwise scale it down by the peak",
            ClippedAudioWarning, stacklevel=2)
    clipped = float((mag >= CLIP_LEVEL).float().mean())
    if clipped > CLIP_FRACTION:
        warnings.warn(
            f"the audio is clipped: {100 * clipped:.1f}% of the samples are at full scale "
            f"(|x| >= {CLIP_LEVEL}); the recording was overdriven - re-record at a lower gain or "
            "drop the utterance (recognition accuracy suffers on clipped speech)",
            ClippedAudioWarning, stacklevel=2)
    return x


def resample(samples: Tensor, orig_rate: int, new_rate: int) -> Tensor:
    r"""Resample along the last axis from ``orig_rate`` to ``new_rate`` Hz.

    Uses :func:`scipy.signal.resample_poly` with ``up = new_rate / g`` and
    ``down = orig_rate / g``, :math:`g = \gcd(\text{orig}, \text{new})`: upsample by ``up``,
    low-pass below the smaller Nyquist frequency (Kaiser-windowed FIR), keep every ``down``-th
    sample. The output length is :math:`\lceil N \cdot \text{up} / \text{down} \rceil`.
    Computed in float64, returned as ``float32`` ``[..., N']``; equal rates return the input as
    ``float32`` unchanged.
    """
    orig_rate = _check_rate(orig_rate, "orig_rate")
    new_rate = _check_rate(new_rate, "new_rate")
    x = torch.as_tensor(samples)
    if not x.is_floating_point():
        raise ValueError(f"resample expects float samples, got {x.dtype}; run check_audio first "
                         "to convert integer PCM")
    if orig_rate == new_rate:
        return x.to(torch.float32)
    g = math.gcd(orig_rate, new_rate)
    y = _signal().resample_poly(x.detach().cpu().to(torch.float64).numpy(), new_rate // g,
                                orig_rate // g, axis=-1)
    return torch.from_numpy(np.ascontiguousarray(y)).to(dtype=torch.float32, device=x.device)


def load_audio(path: str | Path, rate: int = 16000, max_seconds: float | None = None) -> Tensor:
    """Read an audio file as mono ``float32`` ``[N]`` at ``rate`` Hz, samples in ``[-1, 1]``.

    The file's header is read first: a sample rate outside :data:`MIN_FILE_RATE` to
    :data:`MAX_FILE_RATE` (4-192 kHz), or a duration over ``max_seconds`` (``None``: no limit;
    long recordings are cut with :func:`iter_chunks` after loading), is refused before any
    sample is decoded or resampled. The file is then read with soundfile (WAV, FLAC,
    Ogg/Vorbis, and whatever else the installed
    libsndfile supports; not MP3 on older builds), validated by :func:`check_audio` at the file's
    own rate (so clipping is judged on the recorded samples), channels averaged to mono, then
    resampled with :func:`resample`. Resampling a full-scale signal can overshoot by a fraction
    of a percent (Gibbs ringing); the result is clamped to ``[-1, 1]``.

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a directory.
        ValueError: not an audio file soundfile can read, an empty file, NaN/inf samples, a
            sample rate outside 4-192 kHz, longer than ``max_seconds``.
        SilentAudioError: the file is digital silence.

    Warns:
        ClippedAudioWarning: the recording is clipped.
    """
    rate = _check_rate(rate)
    if max_seconds is not None and not (isinstance(max_seconds, (int, float))
                                        and not isinstance(max_seconds, bool)
                                        and 0 < max_seconds < math.inf):
        raise ValueError(f"max_seconds must be a positive number of seconds or None (no "
                         f"limit), got {max_seconds!r}")
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{p} is a directory, not an audio file; pass one of the files in "
                                "it (e.g. sorted(Path(dir).glob('*.wav')))")
    if not p.exists():
        raise FileNotFoundError(f"audio file {p} not found; check the path (relative paths are "
                                f"resolved from {Path.cwd()})")
    if p.stat().st_size == 0:
        raise ValueError(f"{p} is empty (0 bytes), not audio; the download or recording failed, "
                         "fetch or record it again")
    sf = _soundfile()
    try:
        info = sf.info(str(p))  # the header only: rate and length before any decoding
        _check_header(p, info.samplerate, info.frames, rate, max_seconds)
        data, file_rate = sf.read(str(p), dtype="float32", always_2d=True)  # [N, C]
    except (sf.SoundFileError, RuntimeError) as err:
        raise ValueError(f"{p} is not an audio file soundfile can read (WAV/FLAC/Ogg); convert "
                         f"it with sox or ffmpeg (e.g. `ffmpeg -i {p.name} -ar {rate} -ac 1 "
                         f"out.wav`) [soundfile: {err}]") from err
    _check_header(p, file_rate, len(data), rate, max_seconds)  # what was decoded, to be sure
    if data.size == 0:
        raise ValueError(f"{p} is empty: the file has a header but 0 samples; the recording "
                         "failed, record or export it again")
    x = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            x = check_audio(x, file_rate)
    except ValueError as err:  # SilentAudioError included: keep its type, add the file name
        raise type(err)(f"{p}: {err}") from err
    for w in caught:
        warnings.warn(f"{p}: {w.message}", w.category, stacklevel=2)
    return resample(x, file_rate, rate).clamp_(-1.0, 1.0)


def _check_header(p: Path, file_rate: int, frames: int, rate: int,
                  max_seconds: float | None) -> None:
    """Refuse a file whose sample rate is not a real recording's, or that is longer than
    ``max_seconds`` (:func:`load_audio`)."""
    if not MIN_FILE_RATE <= file_rate <= MAX_FILE_RATE:
        raise ValueError(f"{p} declares a sample rate of {file_rate:,} Hz, outside the "
                         f"{MIN_FILE_RATE:,}-{MAX_FILE_RATE:,} Hz of real recordings (a corrupt "
                         f"or hand-made header?); re-export it at a normal rate, e.g. `ffmpeg "
                         f"-i {p.name} -ar {rate} -ac 1 out.wav`")
    seconds = frames / file_rate
    if max_seconds is not None and seconds > max_seconds:
        raise ValueError(f"{p} is {seconds:,.1f} s of audio, longer than max_seconds="
                         f"{max_seconds:g}; cut it into shorter files (e.g. `ffmpeg -i {p.name} "
                         f"-f segment -segment_time {max_seconds:g} part%03d.wav`), or load it "
                         f"without max_seconds and recognise it in pieces (iter_chunks)")


def iter_chunks(samples: Tensor, rate: int, seconds: float = 30.0,
                overlap: float = 0.0) -> Iterator[tuple[int, Tensor]]:
    """Cut long audio (hours) into chunks of ``seconds``, consecutive chunks sharing ``overlap``
    seconds, for recognising in pieces that fit in memory.

    Yields ``(start_sample, chunk)`` with ``chunk = samples[..., start : start + L]``,
    ``L = round(seconds * rate)``, starts at multiples of ``L - round(overlap * rate)``; chunks
    are views (no copies). The last chunk is shorter when the audio does not divide evenly, and
    no chunk lies wholly inside the previous one. Empty audio yields nothing.
    """
    rate = _check_rate(rate)
    length = round(seconds * rate)
    hop = length - round(overlap * rate)
    if length <= 0:
        raise ValueError(f"seconds must give at least one sample per chunk, got seconds={seconds} "
                         f"at {rate} Hz; use e.g. seconds=30")
    if overlap < 0 or hop <= 0:
        raise ValueError(f"overlap must be in [0, seconds), got overlap={overlap}, "
                         f"seconds={seconds}; use a smaller overlap (e.g. 1 s for 30 s chunks)")
    n = samples.shape[-1]
    start = 0
    while start < n:
        yield start, samples[..., start:start + length]
        if start + length >= n:
            return
        start += hop
