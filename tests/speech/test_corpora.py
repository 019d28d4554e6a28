"""Speech corpora, splits, connected digits and the TTS dataset builder (rnnkit.speech)."""

from __future__ import annotations

import gzip
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.speech.corpora import (
    Utterance,
    asterisk_corpus,
    asterisk_digit_clips,
    asterisk_report,
    asterisk_split,
    connected_digits,
    trim_silence,
)
from rnnkit.speech.fillets import (
    fillets_corpus,
    fillets_report,
    fillets_split,
    parse_fillets_dialogs,
)
from rnnkit.speech.text import ENGLISH_ALPHABET
from rnnkit.speech.tts import build_tts_dataset, read_manifest, synthesize, tts_voices

sf = pytest.importorskip("soundfile")
pytest.importorskip("num2words")

RATE = 8000
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ASTERISK = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
FILLETS = Path("/usr/share/games/fillets-ng/sound")


def _tone(freq: float, seconds: float = 0.3, lead: float = 0.2, tail: float = 0.25) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    voiced = 0.6 * np.sin(2 * np.pi * freq * t) * np.hanning(len(t)) ** 0.1
    return np.concatenate([np.zeros(int(lead * RATE)), voiced, np.zeros(int(tail * RATE))])


def _freq(d: int) -> float:
    return 400.0 + 250.0 * d


def _write_wav(path: Path, x: np.ndarray, rate: int = RATE) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x.astype(np.float32), rate, subtype="PCM_16")
    return str(path)


@pytest.fixture
def fake_asterisk(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "sounds"
    for d in range(10):
        _write_wav(root / "digits" / f"{d}.wav", _tone(_freq(d)))
    lines = ["; Core Asterisk Sounds in English", ""]
    lines += [f"digits/{d}: {w}" for d, w in enumerate(WORDS)]
    for i in range(40):
        _write_wav(root / f"prompt-{i}.wav", _tone(300 + i, 0.2))
        lines.append(f"prompt-{i}: Prompt number {i % 30}.")  # ten texts twice
    _write_wav(root / "beep.wav", _tone(1000, 0.1))
    lines.append("beep: [this is a simple beep tone]")
    _write_wav(root / "orphan.wav", _tone(500, 0.1))  # no transcript
    lines.append("ghost: I have no clip.")
    lines.append("dir-instr: press 1 now, otherwise please press * or #.")
    _write_wav(root / "dir-instr.wav", _tone(600, 0.1))
    transcripts = tmp_path / "core-sounds-en.txt.gz"
    with gzip.open(transcripts, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return root, transcripts


def test_asterisk_join_counts_and_fields(fake_asterisk):
    root, transcripts = fake_asterisk
    report = asterisk_report(root, transcripts)
    assert (report.clips, report.matched, report.utterances) == (53, 52, 51)
    assert report.clips_without_transcript == ["orphan"]
    assert report.transcripts_without_clip == ["ghost"]
    assert report.non_speech == ["beep"]
    assert report.minutes == pytest.approx(
        (10 * 0.75 + 40 * 0.65 + 3 * 0.55) / 60, rel=1e-3
    )
    utts = {u.id: u for u in asterisk_corpus(root, transcripts)}
    u = utts["dir-instr"]
    assert u.text == "press one now otherwise please press star or pound"
    assert u.raw_text == "press 1 now, otherwise please press * or #."
    assert u.speaker == "allison" and u.duration == pytest.approx(0.55, abs=1e-3)
    assert Path(u.path).is_file() and utts["digits/7"].text == "seven"


def test_asterisk_split_is_fixed_disjoint_and_keeps_digits_out(fake_asterisk):
    utts = asterisk_corpus(*fake_asterisk)
    split = asterisk_split(utts)
    shuffled = list(utts)
    random.Random(1).shuffle(shuffled)
    assert asterisk_split(shuffled) == split  # a function of the ids, not of order or state
    assert [u.id for u in split["digits"]] == [f"digits/{d}" for d in range(10)]
    train_ids = {u.id for u in split["train"]}
    test_ids = {u.id for u in split["test"]}
    assert not train_ids & test_ids
    assert not (train_ids | test_ids) & {f"digits/{d}" for d in range(10)}
    assert not {u.text for u in split["train"]} & {u.text for u in split["test"]}
    assert split["train"] and split["test"]
    other = asterisk_split(utts, seed=1)
    assert {u.id for u in other["test"]} != test_ids  # the seed salts the hash


def test_connected_digits_match_their_clips(fake_asterisk):
    utts = asterisk_corpus(*fake_asterisk)
    clips = asterisk_digit_clips(asterisk_split(utts)["digits"])
    assert sorted(clips) == [str(d) for d in range(10)]
    rate = 16000
    made = connected_digits(clips, n=12, min_len=3, max_len=10, seed=3, rate=rate,
                            pause=(0.1, 0.3))
    assert len(made) == 12
    again = connected_digits(clips, n=12, min_len=3, max_len=10, seed=3, rate=rate,
                             pause=(0.1, 0.3))
    voiced = 0.3 + 0.04  # each trimmed clip: the tone plus 20 ms margins
    for (x, text), (y, text2) in zip(made, again):
        assert text == text2 and np.array_equal(x.numpy(), y.numpy())  # deterministic
        words = text.split()
        assert 3 <= len(words) <= 10 and set(words) <= set(WORDS)
        seconds = len(x) / rate
        n = len(words)
        assert n * voiced + (n + 1) * 0.1 - 0.02 <= seconds <= n * voiced + (n + 1) * 0.3 + 0.02
        # find the tones by energy and name each by its frequency
        a = x.numpy()
        hop = rate // 100
        energy = (a[: len(a) // hop * hop].reshape(-1, hop) ** 2).mean(axis=1)
        loud = energy > 1e-3
        starts = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
        ends = np.flatnonzero(~loud[1:] & loud[:-1]) + 1
        assert len(starts) == len(ends) == n
        heard = []
        for s, e in zip(starts, ends):
            seg = a[s * hop: e * hop]
            f = np.argmax(np.abs(np.fft.rfft(seg))) * rate / len(seg)
            heard.append(WORDS[int(np.argmin([abs(f - _freq(d)) for d in range(10)]))])
        assert heard == words
        quiet = a[: int(0.05 * rate)]
        assert 0 < np.abs(quiet).max() < 0.01  # low-level noise in the pauses, not zeros


def test_trim_silence():
    x = _tone(440, 0.5, lead=0.4, tail=0.6)
    y = trim_silence(x, RATE, margin_ms=20)
    assert 0.5 <= len(y) / RATE <= 0.5 + 0.04 + 0.02
    assert trim_silence(np.zeros(800), RATE).shape == (800,)


LUA = r"""
-- a comment: dialogId("commented", "font_big", "no")
dialogId("lvl-m-hello", "font_small", "Hello, \"big\" one.")
dialogStr("Hallo, \"grote\".")

dialogId('lvl-v-pad', 'font_big', "Path")
dialogStr("Naar \/etc " .. 'en 2 keer terug')
dialogId("laser", "", "")
dialogId("lvl-x-statue", "font_statue", "Welcome.")
dialogStr([[Welkom in de stad.]])
dialogId("bad", "font_big", somevar)
dialogStr("must not attach to bad or laser")
"""


def test_parse_fillets_dialogs():
    d = parse_fillets_dialogs(LUA)
    assert d == {
        "lvl-m-hello": ("font_small", 'Hello, "big" one.', 'Hallo, "grote".'),
        "lvl-v-pad": ("font_big", "Path", "Naar /etc en 2 keer terug"),
        "lvl-x-statue": ("font_statue", "Welcome.", "Welkom in de stad."),
    }


@pytest.fixture
def fake_fillets(tmp_path: Path) -> Path:
    root = tmp_path / "fillets-ng"
    (root / "script" / "lvl").mkdir(parents=True)
    (root / "script" / "lvl" / "dialogs_nl.lua").write_text(LUA, encoding="utf-8")
    (root / "script" / "share").mkdir(parents=True)
    (root / "script" / "share" / "bore_dialogs_nl.lua").write_text(
        'dialogId("bore-m-0", "font_small", "Boring.")\ndialogStr("Saai, 3e keer.")\n',
        encoding="utf-8",
    )
    for rel in ["lvl/nl/lvl-m-hello", "lvl/nl/lvl-v-pad", "lvl/nl/lvl-x-statue",
                "lvl/nl/lvl-m-unknown", "share/bore/nl/bore-m-0", "lvl/en/lvl-v-pad"]:
        path = root / "sound" / f"{rel}.ogg"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), _tone(440, 0.5), RATE, format="OGG", subtype="VORBIS")
    return root


def test_fillets_join_speakers_and_split(fake_fillets):
    report = fillets_report(fake_fillets)
    assert (report.clips, report.matched) == (5, 4)
    assert report.clips_without_transcript == ["lvl/lvl-m-unknown"]
    utts = {u.id: u for u in fillets_corpus(fake_fillets)}
    assert sorted(utts) == ["lvl/lvl-m-hello", "lvl/lvl-v-pad", "lvl/lvl-x-statue",
                            "share/bore/bore-m-0"]
    assert utts["lvl/lvl-v-pad"].text == "naar etc en twee keer terug"
    assert utts["share/bore/bore-m-0"].text == "saai derde keer"
    assert {k: u.speaker for k, u in utts.items()} == {
        "lvl/lvl-m-hello": "m", "lvl/lvl-v-pad": "v", "lvl/lvl-x-statue": "statue",
        "share/bore/bore-m-0": "m",
    }
    assert utts["lvl/lvl-m-hello"].duration == pytest.approx(0.95, abs=0.01)
    split = fillets_split(list(utts.values()))
    assert [u.id for u in split["train"]] == ["lvl/lvl-v-pad"]
    assert [u.id for u in split["test"]] == ["lvl/lvl-m-hello", "share/bore/bore-m-0"]


def test_fillets_skips_empty_clips(fake_fillets):
    # a clip with a header and no samples (two real ones: gems/zav-v-sto, elevator1/zd1-m-cesta)
    sf.write(str(fake_fillets / "sound" / "lvl" / "nl" / "lvl-v-pad.ogg"),
             np.zeros(0, np.float32), RATE, format="OGG", subtype="VORBIS")
    report = fillets_report(fake_fillets)
    assert report.empty == ["lvl/lvl-v-pad"] and "1 empty" in report.summary()
    assert "lvl/lvl-v-pad" not in {u.id for u in fillets_corpus(fake_fillets)}


def test_missing_corpora_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="make speech-data") as err:
        asterisk_corpus(root=tmp_path)
    assert "asterisk-core-sounds-en-wav asterisk-core-sounds-en" in str(err.value)
    _write_wav(tmp_path / "x.wav", _tone(440))
    with pytest.raises(FileNotFoundError, match="asterisk-core-sounds-en"):
        asterisk_corpus(root=tmp_path, transcripts=tmp_path / "none.txt")
    with pytest.raises(FileNotFoundError, match="make speech-data") as err:
        fillets_corpus(root=tmp_path)
    assert "fillets-ng-data fillets-ng-data-nl" in str(err.value)


@pytest.mark.skipif(not ASTERISK.is_dir(), reason="asterisk-core-sounds-en-wav not installed")
def test_real_asterisk_corpus():
    report = asterisk_report()
    assert report.clips >= 560 and report.matched >= report.clips - 5
    assert 24 < report.minutes < 27  # 568 clips, 25.5 min in Debian's 1.6
    utts = asterisk_corpus()
    assert all(set(u.text) <= set(ENGLISH_ALPHABET) and u.text for u in utts)
    split = asterisk_split(utts)
    assert [u.text for u in split["digits"]] == WORDS
    assert not {u.text for u in split["train"]} & {u.text for u in split["test"]}
    assert min(len(split["train"]), len(split["test"])) > 200


@pytest.mark.skipif(not FILLETS.is_dir(), reason="fillets-ng-data-nl not installed")
def test_real_fillets_corpus():
    utts = fillets_corpus()
    assert len(utts) > 1500  # 1616 clips, 95.8 min, all with a transcript
    fish = sum(u.speaker in ("m", "v") for u in utts)
    assert fish >= 0.95 * len(utts)  # the Dutch dub voices the two fish (all 1616 clips)
    split = fillets_split(utts)
    assert len(split["train"]) > 700 and len(split["test"]) > 700
    assert all("-m-" not in u.id for u in split["train"])
    assert all("-v-" not in u.id for u in split["test"])


def test_read_manifest_round_trip_and_errors(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.flac").write_bytes(b"")
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text(f"a.wav\tpress one\tflite:slt@175/50\n\n{tmp_path}/sub/b.flac\thi\n",
                        "utf-8")
    utts = read_manifest(manifest)
    assert utts[0] == Utterance(str(tmp_path / "a.wav"), "press one", "flite:slt@175/50",
                                "press one", None, "a")
    assert utts[1].path == f"{tmp_path}/sub/b.flac" and utts[1].speaker == ""
    manifest.write_text("only-one-column\n", "utf-8")
    with pytest.raises(ValueError, match=":1: expected path<TAB>text"):
        read_manifest(manifest)
    manifest.write_text("a.wav\tok\nmissing.wav\tgone\n", "utf-8")
    with pytest.raises(FileNotFoundError, match=":2: audio file .*missing.wav does not exist"):
        read_manifest(manifest)


def test_tts_without_synthesisers_names_the_fix(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="make speech-data.*apt-get install espeak-ng flite"):
        tts_voices()


ESPEAK = shutil.which("espeak-ng")


def _quieter(x, rate, generator):
    """An augmentation that checks it got the Augmenter's arguments (rate, seeded generator)."""
    assert rate == 16000 and isinstance(generator, torch.Generator)
    return x.clamp(-0.1, 0.1)


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng not installed")
def test_synthesize_one_word():
    x = synthesize("seven", "en-us", rate_wpm=175, pitch=50, sample_rate=16000)
    assert x.dtype.is_floating_point and x.dim() == 1
    assert 0.2 < len(x) / 16000 < 2.0
    assert float(x.abs().max()) > 0.05 and float(x.pow(2).mean().sqrt()) > 0.01
    voices = tts_voices()
    ids = {v.id for v in voices}
    assert {"espeak-ng:en-us", "espeak-ng:en-gb-x-rp"} <= ids
    assert any("+f" in v.name for v in voices)


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng not installed")
def test_build_tts_dataset_writes_resumable_manifest(tmp_path):
    voices = ["en-us", "en-gb+f3"]
    manifest = build_tts_dataset(["Press 1.", "[beep]", "Goodbye"], tmp_path, voices=voices,
                                 rates=(160,), pitches=(40, 60), per_text=2, workers=2,
                                 augment=_quieter, progress=False)
    utts = read_manifest(manifest)
    assert len(utts) == 4 and [u.text for u in utts] == ["press one"] * 2 + ["goodbye"] * 2
    assert all(Path(u.path).is_file() and u.speaker.startswith("espeak-ng:") for u in utts)
    info = sf.info(utts[0].path)
    assert info.samplerate == 16000 and info.frames > 1600
    audio, _ = sf.read(utts[0].path)
    assert 0.05 < np.abs(audio).max() <= 0.101  # augmented before writing
    stamp = {u.path: Path(u.path).stat().st_mtime_ns for u in utts}
    again = build_tts_dataset(["Press 1.", "[beep]", "Goodbye"], tmp_path, voices=voices,
                              rates=(160,), pitches=(40, 60), per_text=2, progress=False)
    assert read_manifest(again) == utts  # same picks, files not written again
    assert all(Path(p).stat().st_mtime_ns == t for p, t in stamp.items())
