"""Speech features against independent float64 numpy references: mel filterbanks (htk and
slaney), log-mel spectrograms, streaming == offline, normalisation and SpecAugment."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rnnkit.speech.features import LogMel, hz_to_mel, mel_filterbank, mel_to_hz
from rnnkit.speech.normalization import FeatureStats, normalize_utterance, spec_augment


def _rng() -> np.random.Generator:
    """numpy generator drawn from torch's per-test seed (fresh each session, replayable)."""
    return np.random.default_rng(int(torch.randint(2**31, (1,))))


# --- references, written as loops over bands from the Hz edges --------------------------------


def _htk_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0)


def _htk_hz(m):
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def _slaney_mel(f):
    return 3.0 * f / 200.0 if f < 1000.0 else 15.0 + 27.0 * math.log(f / 1000.0) / math.log(6.4)


def _slaney_hz(m):
    return 200.0 * m / 3.0 if m < 15.0 else 1000.0 * math.exp((m - 15.0) * math.log(6.4) / 27.0)


def ref_filterbank(n_fft, n_mels, rate, f_min=0.0, f_max=None, scale="htk"):
    to_mel, to_hz = (_htk_mel, _htk_hz) if scale == "htk" else (_slaney_mel, _slaney_hz)
    f_max = rate / 2 if f_max is None else f_max
    lo_mel, hi_mel = to_mel(f_min), to_mel(f_max)
    step = (hi_mel - lo_mel) / (n_mels + 1)
    fb = np.zeros((n_fft // 2 + 1, n_mels))
    for j in range(n_mels):
        left, centre, right = (to_hz(lo_mel + (j + i) * step) for i in range(3))
        for k in range(n_fft // 2 + 1):
            f = k * rate / n_fft
            if left < f <= centre:
                fb[k, j] = (f - left) / (centre - left)
            elif centre < f < right:
                fb[k, j] = (right - f) / (right - centre)
        if scale == "slaney":
            fb[:, j] *= 2.0 / (right - left)
    return fb


def ref_logmel(x, rate=16000, n_fft=400, win=400, hop=160, n_mels=80, f_min=20.0, eps=1e-6,
               alpha=0.97):
    x = np.asarray(x, dtype=np.float64)
    y = x - alpha * np.concatenate([[0.0], x[:-1]])
    n_frames = 1 + (len(x) - win) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)    # periodic Hann
    fb = ref_filterbank(n_fft, n_mels, rate, f_min)
    out = np.empty((n_frames, n_mels))
    for t in range(n_frames):
        spec = np.fft.rfft(y[t * hop:t * hop + win] * window, n=n_fft)
        out[t] = np.log((spec.real**2 + spec.imag**2) @ fb + eps)
    return out


def _rel_err(a, ref):
    return float(np.max(np.abs(a - ref) / np.maximum(np.abs(ref), 1.0)))


# --- mel filterbank ----------------------------------------------------------------------------


def test_mel_scales_known_points():
    assert float(hz_to_mel(torch.tensor(700.0))) == pytest.approx(2595 * math.log10(2))
    assert float(hz_to_mel(torch.tensor(1000.0), "slaney")) == pytest.approx(15.0)
    assert float(hz_to_mel(torch.tensor(6400.0), "slaney")) == pytest.approx(42.0)
    f = torch.tensor([0.0, 123.0, 999.0, 1000.0, 4321.0, 8000.0], dtype=torch.float64)
    for scale in ("htk", "slaney"):
        torch.testing.assert_close(mel_to_hz(hz_to_mel(f, scale), scale), f)


@pytest.mark.parametrize("n_fft,n_mels,rate,f_min,f_max", [
    (400, 80, 16000, 20.0, None), (512, 40, 16000, 0.0, 7600.0), (256, 23, 8000, 64.0, 3800.0)])
def test_htk_filterbank_matches_reference(n_fft, n_mels, rate, f_min, f_max):
    fb = mel_filterbank(n_fft, n_mels, rate, f_min, f_max)
    assert fb.shape == (n_fft // 2 + 1, n_mels) and fb.dtype == torch.float32
    np.testing.assert_allclose(fb.double().numpy(),
                               ref_filterbank(n_fft, n_mels, rate, f_min, f_max), atol=1e-6)
    assert float(fb.max()) <= 1.0 + 1e-6


@pytest.mark.parametrize("n_fft,n_mels,rate", [(2048, 128, 22050), (400, 80, 16000)])
def test_slaney_filterbank_matches_reference(n_fft, n_mels, rate):
    fb = mel_filterbank(n_fft, n_mels, rate, scale="slaney").double().numpy()
    ref = ref_filterbank(n_fft, n_mels, rate, scale="slaney")
    np.testing.assert_allclose(fb, ref, rtol=1e-5, atol=1e-9)
    # Slaney normalisation: each triangle has unit area in Hz (checked on the wide top bands,
    # where the bin sum approximates the integral well)
    area = fb.sum(axis=0) * rate / n_fft
    np.testing.assert_allclose(area[-10:], 1.0, rtol=0.02)


def test_filterbank_errors_and_empty_band_warning():
    with pytest.raises(ValueError, match="f_max"):
        mel_filterbank(400, 80, 16000, f_max=9000.0)
    with pytest.raises(ValueError, match="'htk' or 'slaney'"):
        mel_filterbank(400, 80, 16000, scale="kaldi")
    with pytest.warns(UserWarning, match="fewer mels or a larger n_fft"):
        mel_filterbank(64, 80, 16000)


# --- log-mel -----------------------------------------------------------------------------------


def _chirp(n, rate=16000, f0=100.0, f1=7000.0):
    t = np.arange(n) / rate
    dur = n / rate
    return 0.5 * np.sin(2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / dur * t**2))


@pytest.mark.parametrize("n_fft,win", [(400, 400), (512, 400)])
def test_logmel_matches_numpy_reference(n_fft, win):
    rng = _rng()
    n = int(rng.integers(8000, 12000))
    logmel = LogMel(n_fft=n_fft, win_length=win)
    for x in (_chirp(n), 0.1 * rng.standard_normal(n)):
        ref = ref_logmel(x, n_fft=n_fft, win=win)
        out32 = logmel(torch.tensor(x, dtype=torch.float32))
        assert out32.shape == ref.shape == (logmel.num_frames(n), 80)
        assert out32.dtype == torch.float32
        # float32 STFT: within 1e-4 on bands with mel power above 1e-3 ...
        loud = ref > math.log(1e-3)
        assert _rel_err(out32.double().numpy()[loud], ref[loud]) < 1e-4
        # ... and a few 1e-4 in bands ~100 dB below the peak, whose power is at eps = 1e-6
        assert _rel_err(out32.double().numpy(), ref) < 5e-4
        out64 = logmel(torch.tensor(x, dtype=torch.float64))
        assert out64.dtype == torch.float64          # (window and filterbank are float32)
        assert _rel_err(out64.numpy(), ref) < 2e-5


def test_logmel_batch_frames_and_buffers():
    logmel = LogMel()
    assert list(logmel.parameters()) == []
    assert {"window", "fb"} <= dict(logmel.named_buffers()).keys()
    assert logmel.state_dict() == {}
    x = torch.randn(3, 4321)
    out = logmel(x)
    assert out.shape == (3, logmel.num_frames(4321), 80)
    torch.testing.assert_close(out[1], logmel(x[1]))
    for n in (0, 399, 400, 401, 559, 560, 16000):
        assert logmel(torch.randn(n)).shape == (logmel.num_frames(n), 80)
        assert logmel.num_frames(n) == (0 if n < 400 else 1 + (n - 400) // 160)
    lengths = torch.tensor([0, 399, 400, 16000])
    assert logmel.num_frames(lengths).tolist() == [0, 0, 1, 98]


def test_logmel_bad_input():
    with pytest.raises(ValueError, match="check_audio"):
        LogMel()(torch.zeros(1000, dtype=torch.int16))
    with pytest.raises(ValueError, match=r"\[B, N\] or \[N\]"):
        LogMel()(torch.zeros(1, 2, 1000))
    with pytest.raises(ValueError, match="raise n_fft"):
        LogMel(n_fft=256, win_length=400)


# --- streaming ---------------------------------------------------------------------------------


@pytest.mark.parametrize("preemphasis", [0.97, 0.0])
def test_streaming_equals_offline_for_random_chunks(preemphasis):
    logmel = LogMel(preemphasis=preemphasis)
    x = torch.randn(9000) * 0.3
    offline = logmel(x)
    rng = _rng()
    for _ in range(3):
        s = logmel.stream()
        pieces, pos = [], 0
        while pos < len(x):
            # 1 sample, less than a hop, or up to several windows at once
            kind = int(rng.integers(3))
            size = (1, int(rng.integers(2, 160)), int(rng.integers(160, 3000)))[kind]
            pieces.append(s.push(x[pos:pos + size]))
            pos += size
        streamed = torch.cat(pieces)
        assert streamed.shape == offline.shape
        torch.testing.assert_close(streamed, offline, atol=1e-5, rtol=0)
        assert s.pending < logmel.win_length + logmel.hop_length


def test_streaming_one_sample_at_a_time_and_batched():
    logmel = LogMel()
    x = torch.randn(2, 1200)
    s = logmel.stream()
    out = torch.cat([s.push(x[:, i:i + 1]) for i in range(x.shape[1])], dim=1)
    torch.testing.assert_close(out, logmel(x), atol=1e-5, rtol=0)
    s.reset()
    assert s.pending == 0 and s.push(torch.randn(2, 10)).shape == (2, 0, 80)
    with pytest.raises(ValueError, match="reset"):
        s.push(torch.randn(3, 10))


# --- normalisation -----------------------------------------------------------------------------


def test_normalize_utterance_over_valid_frames():
    feats = torch.randn(3, 50, 8) * 4 + 7
    lengths = torch.tensor([50, 17, 2])
    out = normalize_utterance(feats, lengths)
    assert out.shape == feats.shape
    for b, n in enumerate(lengths.tolist()):
        valid = out[b, :n]
        torch.testing.assert_close(valid.mean(0), torch.zeros(8), atol=1e-5, rtol=0)
        torch.testing.assert_close(valid.std(0, correction=0), torch.ones(8), atol=1e-4, rtol=0)
        assert (out[b, n:] == 0).all()
    torch.testing.assert_close(normalize_utterance(feats[0]), out[0])
    with pytest.raises(ValueError, match="frame counts"):
        normalize_utterance(feats, torch.tensor([51, 1, 1]))


def test_feature_stats_equal_torch_over_valid_frames():
    stats = FeatureStats()
    valid = []
    for _ in range(4):
        feats = torch.randn(3, 20, 5) * torch.rand(5) * 3 + torch.randn(5) * 10
        lengths = torch.randint(0, 21, (3,))
        stats.update(feats, lengths)
        valid += [feats[b, :n] for b, n in enumerate(lengths.tolist())]
    cat = torch.cat(valid).double()
    assert stats.count == cat.shape[0]
    torch.testing.assert_close(stats.mean, cat.mean(0).float(), atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(stats.std, cat.std(0, correction=0).float(), atol=1e-5,
                               rtol=1e-6)
    again = FeatureStats.from_state(json.loads(json.dumps(stats.state())))
    torch.testing.assert_close(again.std, stats.std)
    # merging two halves == one pass; normalising a frame never needs the others
    a, b = FeatureStats().update(cat[:10]), FeatureStats().update(cat[10:])
    torch.testing.assert_close(a.merge(b).mean, stats.mean)
    frames = torch.randn(6, 5)
    torch.testing.assert_close(stats.normalize(frames)[2:3], stats.normalize(frames[2:3]))
    with pytest.raises(RuntimeError, match="update"):
        FeatureStats().mean  # noqa: B018


# --- SpecAugment -------------------------------------------------------------------------------


def _masked(feats, out):
    return (out == 0) & (feats != 0)


def test_spec_augment_within_lengths_shape_and_seeded():
    feats = torch.rand(4, 120, 40) + 1.0                  # no zeros, so masks are visible
    lengths = torch.tensor([120, 80, 33, 0])
    out = spec_augment(feats, lengths, generator=torch.Generator().manual_seed(3))
    assert out.shape == feats.shape and not _masked(feats, feats.clone()).any()
    masked = _masked(feats, out)
    for b, n in enumerate(lengths.tolist()):
        assert not masked[b, n:].any()
        torch.testing.assert_close(out[b, n:], feats[b, n:])
    assert masked.any()
    again = spec_augment(feats, lengths, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out, again)
    others = [spec_augment(feats, lengths, generator=torch.Generator().manual_seed(s))
              for s in range(4, 8)]
    assert any(not torch.equal(out, o) for o in others)
    assert (feats >= 1).all()                              # input untouched


def test_spec_augment_mask_widths():
    feats = torch.rand(16, 200, 80) + 1.0
    lengths = torch.randint(1, 201, (16,))
    gen = torch.Generator().manual_seed(int(torch.randint(2**31, (1,))))
    only_freq = _masked(feats, spec_augment(feats, lengths, time_masks=0, generator=gen))
    for b, n in enumerate(lengths.tolist()):
        cols = only_freq[b, :n].any(0)
        assert (only_freq[b, :n] == cols).all()           # whole channels over valid frames
        assert int(cols.sum()) <= 2 * 15
    only_time = _masked(feats, spec_augment(feats, lengths, freq_masks=0, generator=gen))
    for b, n in enumerate(lengths.tolist()):
        rows = only_time[b].any(1)
        assert (only_time[b] == rows[:, None]).all()      # whole frames
        assert int(rows.sum()) <= 2 * math.floor(0.05 * n)
        assert not rows[n:].any()
    frames = _masked(feats, spec_augment(feats, lengths, freq_masks=0, time_width=30,
                                         generator=gen))
    assert frames.any(2).sum(1).max() <= 60
