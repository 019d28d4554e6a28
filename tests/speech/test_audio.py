"""Audio loading, validation, resampling, chunking and waveform augmentation, measured on real
files written with soundfile and on spectra computed with numpy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

sf = pytest.importorskip("soundfile")
pytest.importorskip("scipy")

from rnnkit.speech.audio import (  # noqa: E402
    ClippedAudioWarning,
    SilentAudioError,
    check_audio,
    iter_chunks,
    load_audio,
    resample,
)
from rnnkit.speech.augment import (  # noqa: E402
    Augmenter,
    add_noise,
    mu_law,
    random_gain,
    speed_perturb,
    telephone,
)


def _rng() -> np.random.Generator:
    return np.random.default_rng(int(torch.randint(2**31, (1,))))


def _sine(freq, rate, seconds=1.0, amp=0.5, phase=0.0):
    return amp * np.sin(2 * np.pi * freq * np.arange(round(seconds * rate)) / rate + phase)


def _peak_hz(x, rate):
    x = np.asarray(x, dtype=np.float64)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=8 * len(x)))   # zero-padded: fine grid
    return float(np.argmax(spec)) * rate / (8 * len(x))


def _band_energy(x, rate, lo, hi):
    spec = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spec[(f >= lo) & (f < hi)].sum())


# --- load_audio ---------------------------------------------------------------------------------


def test_load_stereo_44k_wav_at_16k(tmp_path):
    phase = _rng().uniform(0, 2 * np.pi)
    stereo = np.stack([_sine(440, 44100, amp=0.6, phase=phase),
                       _sine(440, 44100, amp=0.2, phase=phase)], axis=1)      # [N, 2]
    path = tmp_path / "a440.wav"
    sf.write(path, stereo, 44100)                                           # 16-bit PCM
    x = load_audio(path, rate=16000)
    assert x.dim() == 1 and x.dtype == torch.float32
    assert abs(len(x) - 16000) <= 1
    assert abs(_peak_hz(x, 16000) - 440) <= 2
    # mono = channel mean: amplitude (0.6 + 0.2) / 2 away from the resampler's edges
    assert float(x[1000:-1000].abs().max()) == pytest.approx(0.4, abs=5e-3)
    assert float(x.abs().max()) <= 1.0


def test_load_8k_flac_upsampled(tmp_path):
    path = tmp_path / "a440.flac"
    sf.write(path, _sine(440, 8000, seconds=0.5), 8000)
    x = load_audio(path)
    assert abs(len(x) - 8000) <= 1
    assert abs(_peak_hz(x, 16000) - 440) <= 2
    assert _band_energy(x, 16000, 4100, 8000) < 1e-6 * _band_energy(x, 16000, 0, 4000)


def test_int16_pcm_file_and_tensor(tmp_path):
    pcm = (_sine(300, 16000, seconds=0.2, amp=0.8) * 32767).astype(np.int16)
    path = tmp_path / "pcm.wav"
    sf.write(path, pcm, 16000, subtype="PCM_16")
    x = load_audio(path, rate=16000)                    # same rate: no resampling
    expected = torch.from_numpy(pcm.astype(np.float32) / 32768)
    torch.testing.assert_close(x, expected, atol=0, rtol=0)
    torch.testing.assert_close(check_audio(torch.from_numpy(pcm), 16000), expected)
    u8 = torch.tensor([128, 192, 64], dtype=torch.uint8)
    torch.testing.assert_close(check_audio(u8, 8000), torch.tensor([0.0, 0.5, -0.5]))


def test_bad_files_name_the_fix(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("this is not audio\n" * 10)
    with pytest.raises(ValueError, match="notes.txt is not an audio file soundfile can read "
                                         r"\(WAV/FLAC/Ogg\); convert it with sox or ffmpeg"):
        load_audio(text)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.*fetch or record it again"):
        load_audio(empty)
    header_only = tmp_path / "header.wav"
    sf.write(header_only, np.zeros(0), 16000)
    with pytest.raises(ValueError, match="empty.*0 samples.*record or export"):
        load_audio(header_only)
    with pytest.raises(IsADirectoryError, match="directory.*pass one of the files"):
        load_audio(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found; check the path"):
        load_audio(tmp_path / "missing.wav")


def test_silent_and_clipped_files(tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(8000), 16000)
    with pytest.raises(SilentAudioError, match="silent.*check the microphone"):
        load_audio(silent)
    assert issubclass(SilentAudioError, ValueError)
    clipped = tmp_path / "clipped.wav"
    sf.write(clipped, np.clip(_sine(200, 16000, amp=3.0), -1, 1), 16000)
    with pytest.warns(ClippedAudioWarning, match=r"clipped.wav.*clipped: \d+\.\d% .*lower gain"):
        x = load_audio(clipped)
    assert len(x) == 16000


# --- check_audio --------------------------------------------------------------------------------


def test_check_audio_layouts_and_errors():
    x = torch.rand(2, 500) - 0.5
    torch.testing.assert_close(check_audio(x, 16000), x.mean(0))
    torch.testing.assert_close(check_audio(x.T.contiguous(), 16000), x.mean(0))
    assert check_audio(x.double().numpy()[0], 16000).dtype == torch.float32
    with pytest.raises(ValueError, match="channel axis.*mix it to mono"):
        check_audio(torch.rand(4, 4), 16000)
    with pytest.raises(ValueError, match=r"\[N\] \(mono\)"):
        check_audio(torch.rand(1, 2, 100), 16000)
    bad = torch.rand(1000) - 0.5
    bad[[10, 700]] = float("nan")
    with pytest.raises(ValueError, match="2 NaN/inf samples.*first at sample 10.*nan_to_num"):
        check_audio(bad, 16000)
    with pytest.raises(ValueError, match="empty"):
        check_audio(torch.zeros(0), 16000)
    with pytest.raises(ValueError, match="x / 32768.0"):
        check_audio(torch.zeros(10, dtype=torch.int64), 16000)
    with pytest.raises(SilentAudioError, match="drop the utterance"):
        check_audio(torch.full((100,), 5e-5), 16000)
    with pytest.raises(ValueError, match="positive whole number"):
        check_audio(torch.rand(10), 0)


def test_check_audio_clipping_warnings():
    x = torch.from_numpy(np.clip(_sine(100, 16000, amp=1.2), -1, 1)).float()
    with pytest.warns(ClippedAudioWarning, match="clipped"):
        check_audio(x, 16000)
    with pytest.warns(ClippedAudioWarning) as caught:
        check_audio(x * 30000, 16000)                 # int16 values stored as floats
    assert any("divide by 32768" in str(w.message) for w in caught)
    ok = torch.from_numpy(_sine(100, 16000, amp=0.99)).float()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_audio(ok, 16000)


# --- resample, chunks ---------------------------------------------------------------------------


def test_resample_rational_rates():
    f = _rng().uniform(200, 3000)
    x = torch.from_numpy(_sine(f, 22050))
    for new in (8000, 16000, 48000):
        y = resample(x, 22050, new)
        assert y.dtype == torch.float32 and len(y) == math.ceil(22050 * new / 22050)
        assert abs(_peak_hz(y, new) - f) <= 2
    assert torch.equal(resample(x.float(), 16000, 16000), x.float())


def test_iter_chunks_cover_with_overlap():
    x = torch.arange(10_001)
    chunks = list(iter_chunks(x, 1000, seconds=3.0, overlap=0.5))
    assert [s for s, _ in chunks] == [0, 2500, 5000, 7500]
    assert all(torch.equal(c, x[s:s + 3000]) for s, c in chunks)
    assert chunks[-1][1][-1] == 10_000
    assert [len(c) for _, c in iter_chunks(x[:6000], 1000, seconds=3.0)] == [3000, 3000]
    assert list(iter_chunks(x[:0], 1000)) == []
    with pytest.raises(ValueError, match="smaller overlap"):
        list(iter_chunks(x, 1000, seconds=1.0, overlap=1.0))


# --- augmentation -------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [0.9, 1.1, 0.75, 1.5])
def test_speed_perturb_length_and_pitch(factor):
    f = _rng().uniform(300, 1000)
    x = torch.from_numpy(_sine(f, 16000)).float()
    y = speed_perturb(x, factor)
    assert abs(len(y) - 16000 / factor) <= 1
    assert abs(_peak_hz(y, 16000) - f * factor) <= 2


def test_speed_perturb_range():
    with pytest.raises(ValueError, match=r"\[0.5, 2\].*0.9, 1.0 and 1.1"):
        speed_perturb(torch.rand(100), 2.5)
    x = torch.rand(100)
    assert torch.equal(speed_perturb(x, 1.0), x)


def test_add_noise_hits_snr():
    rng = _rng()
    x = torch.from_numpy(_sine(500, 16000, amp=0.3)).float()
    noise_clip = torch.from_numpy(rng.standard_normal(3000)).float()     # shorter: looped
    for snr in rng.uniform(-5, 30, size=3):
        for noise in (None, noise_clip):
            y = add_noise(x, float(snr), generator=torch.Generator().manual_seed(1), noise=noise)
            n = (y.double() - x.double())
            got = 10 * math.log10(float(x.double().square().mean() / n.square().mean()))
            assert abs(got - snr) < 0.1
    batch = torch.stack([x, 0.1 * x])
    y = add_noise(batch, 10.0)
    for b in range(2):
        got = 10 * torch.log10(batch[b].double().square().mean()
                               / (y[b] - batch[b]).double().square().mean())
        assert abs(float(got) - 10.0) < 0.1
    with pytest.raises(ValueError, match="silent"):
        add_noise(torch.zeros(100), 10.0)


def test_telephone_band_limits():
    x = torch.from_numpy(_rng().standard_normal(16000)).float() * 0.1
    for mu in (False, True):
        y = telephone(x, 16000, mu_law_8bit=mu)
        assert y.shape == x.shape

        def ratio(lo, hi, y=y):
            return _band_energy(y, 16000, lo, hi) / _band_energy(x, 16000, lo, hi)

        assert ratio(4100, 8000) < 1e-3          # gone with the 8 kHz resampling
        assert ratio(3400, 8000) < 0.05          # above the 3.4 kHz band edge
        # below the 300 Hz band edge (no high-pass: ~1); over 60 noise draws the filter's
        # skirt left at most 0.0204 of the 0-200 Hz energy, so 0.02 failed now and then
        assert ratio(0, 200) < 0.04
        assert ratio(500, 3000) > (0.7 if mu else 0.9)
    with pytest.raises(ValueError, match="8 kHz or more"):
        telephone(x, 6000)


def test_mu_law_is_8bit():
    x = torch.linspace(-1, 1, 10001)
    y = mu_law(x)
    assert len(torch.unique(y)) <= 256
    assert float((y - x).abs().max()) < 0.04


def test_random_gain_range_and_augmenter_determinism():
    x = torch.from_numpy(_sine(440, 16000, amp=0.1)).float()
    for _ in range(5):
        g = float(random_gain(x, -6, 6).abs().max() / x.abs().max())
        assert 10 ** (-6 / 20) - 1e-6 <= g <= 10 ** (6 / 20) + 1e-6
    aug = Augmenter(p_speed=0.7, p_telephone=0.3, p_noise=0.7, p_gain=0.7,
                    noises=[torch.randn(5000)])
    outs = [aug(x, generator=torch.Generator().manual_seed(s)) for s in range(12)]
    again = [aug(x, generator=torch.Generator().manual_seed(s)) for s in range(12)]
    assert all(torch.equal(a, b) for a, b in zip(outs, again))
    assert len({len(o) for o in outs}) > 1                          # speeds were drawn
    assert any(not torch.equal(o, x) for o in outs)
    everything = Augmenter(p_speed=1, speeds=(1.1,), p_telephone=1, p_noise=1, p_gain=1)
    y = everything(x, generator=torch.Generator().manual_seed(0))
    assert abs(len(y) - 16000 / 1.1) <= 1
    # as a data-preparation hook, aug(samples, rate): own generator, reproducible per seed
    first = [Augmenter(seed=5, p_speed=1)(x, 16000) for _ in range(2)]
    assert torch.equal(first[0], first[1])
    hook = Augmenter(seed=5, p_speed=1)
    assert not all(torch.equal(hook(x, 16000), hook(x, 16000)) for _ in range(3))
    with pytest.raises(ValueError, match="probability"):
        Augmenter(p_noise=1.5)
    with pytest.raises(ValueError, match="per utterance"):
        aug(torch.rand(2, 100))


def _wav_header(rate: int, samples: np.ndarray) -> bytes:
    """A 16-bit mono PCM WAV whose header declares ``rate`` (any value, even absurd ones)."""
    import struct

    data = np.asarray(samples, dtype="<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2 & 0xFFFFFFFF, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt "
            + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data)


@pytest.mark.parametrize("rate", [1, 3_999, 192_001, 10_000_019])
def test_absurd_declared_rates_are_refused_before_resampling(tmp_path, rate):
    """A 444-byte WAV declaring 10 MHz would need gigabytes to resample; 1 Hz turns 4 KB into
    2000 s of audio. Both are refused from the header, naming the rate and the fix."""
    path = tmp_path / "odd.wav"
    path.write_bytes(_wav_header(rate, _rng().normal(0, 3000, 200).astype(int)))
    with pytest.raises(ValueError, match=rf"odd.wav declares a sample rate of {rate:,} Hz, "
                                         r"outside the 4,000-192,000 Hz.*ffmpeg -i odd.wav "
                                         r"-ar 16000"):
        load_audio(path)


def test_max_seconds_refuses_long_audio_before_decoding(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, _sine(440, 8000, seconds=3.0), 8000)
    assert len(load_audio(path, max_seconds=3.0)) == 48000
    with pytest.raises(ValueError, match=r"long.wav is 3.0 s of audio, longer than "
                                         r"max_seconds=2.5; cut it.*iter_chunks"):
        load_audio(path, max_seconds=2.5)
    for bad in (0, -1, float("nan"), float("inf"), True, "10"):
        with pytest.raises(ValueError, match="max_seconds must be a positive number"):
            load_audio(path, max_seconds=bad)
