"""`rnnkit speech ...` end to end on a tiny manifest of generated audio."""

import math

import numpy as np
import pytest
import soundfile as sf

from rnnkit.cli import main

RATE = 16000


def _tone_word(freqs, seed):
    """A 'word': consecutive tones with noise (distinct per character)."""
    rng = np.random.default_rng(seed)
    parts = []
    for f in freqs:
        t = np.arange(int(0.15 * RATE)) / RATE
        parts.append(0.3 * np.sin(2 * math.pi * f * t) + 0.01 * rng.normal(size=len(t)))
    return np.concatenate(parts).astype(np.float32)


@pytest.fixture
def manifest(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    lines = []
    for i, (text, freqs) in enumerate([("ab", [300, 900]), ("ba", [900, 300]),
                                       ("a b", [300, 0, 900]), ("ab", [300, 900])]):
        name = f"u{i}.wav"
        sf.write(folder / name, _tone_word(freqs, i), RATE)
        lines.append(f"{name}\t{text}")
    (folder / "manifest.tsv").write_text("\n".join(lines) + "\n")
    return folder


def _train(manifest, out, *extra):
    return main(["speech", "train", "--data", str(manifest), "--out", str(out), "--steps", "3",
                 "--hidden-size", "8", "--layers", "1", "--model.channels", "2",
                 "--model.n_mels", "24", "--batch-size", "2", "--no-progress", *extra])


def test_train_transcribe_evaluate(manifest, tmp_path, capsys):
    out = tmp_path / "asr.pt"
    assert _train(manifest, out) == 0 and out.exists()
    assert "wrote" in capsys.readouterr().out
    assert main(["speech", "transcribe", str(out), str(manifest / "u0.wav"), "--beam", "4",
                 "--nbest", "2", "--png", str(tmp_path / "u0.png")]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed and all(line.startswith(str(manifest / "u0.wav")) for line in printed)
    assert (tmp_path / "u0.png").stat().st_size > 5000
    assert main(["speech", "evaluate", str(out), "--data", str(manifest),
                 "--per-utterance"]) == 0
    text = capsys.readouterr().out
    assert "WER" in text and "CER" in text and text.count("\n") >= 5


@pytest.mark.parametrize("unit", ["word", "char"])
def test_lm_is_saved_and_used_by_the_beam(manifest, tmp_path, capsys, unit):
    import rnnkit

    out = tmp_path / "asr.pt"
    assert _train(manifest, out, "--lm-order", "2", "--lm-unit", unit) == 0
    rec = rnnkit.load(out)
    assert rec.lm is not None and rec.lm_unit == unit
    assert ("ab" in rec.lm.vocab) == (unit == "word")
    capsys.readouterr()
    assert main(["speech", "transcribe", str(out), str(manifest / "u2.wav"), "--beam", "4",
                 "--lm-weight", "0.5", "--word-bonus", "0.5"]) == 0
    assert capsys.readouterr().out.startswith(str(manifest / "u2.wav"))


def test_streaming_needs_a_unidirectional_model(manifest, tmp_path, capsys):
    bi, uni = tmp_path / "bi.pt", tmp_path / "uni.pt"
    assert _train(manifest, bi) == 0 and _train(manifest, uni, "--unidirectional") == 0
    capsys.readouterr()
    assert main(["speech", "transcribe", str(uni), str(manifest / "u1.wav"), "--stream"]) == 0
    assert capsys.readouterr().out.startswith(str(manifest / "u1.wav"))
    assert main(["speech", "transcribe", str(bi), str(manifest / "u1.wav"), "--stream"]) == 2
    assert "--unidirectional" in capsys.readouterr().err


def test_refuses_to_overwrite_a_model_and_bad_inputs(manifest, tmp_path, capsys):
    out = tmp_path / "asr.pt"
    out.write_bytes(b"my precious model")
    assert _train(manifest, out) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"my precious model"
    assert _train(manifest, out, "--overwrite") == 0
    capsys.readouterr()
    assert main(["speech", "train", "--data", str(tmp_path / "nope"), "--out",
                 str(tmp_path / "x.pt")]) == 2
    assert "no such manifest" in capsys.readouterr().err
    assert main(["speech", "train", "--data", "klingon:train", "--out",
                 str(tmp_path / "x.pt")]) == 2
    assert "unknown corpus" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["speech", "transcribe", str(out), str(tmp_path / "notes.txt")]) == 2
    assert "audio" in capsys.readouterr().err
    assert main(["speech", "transcribe", str(tmp_path / "notes.txt"),
                 str(manifest / "u0.wav")]) == 2
    assert "error" in capsys.readouterr().err


def test_a_small_training_set_still_writes_every_letter(manifest, tmp_path):
    """The texts use only 'a' and 'b'; validation text with other letters is fine."""
    import rnnkit

    valid = tmp_path / "valid.tsv"
    valid.write_text(f"{manifest / 'u0.wav'}\tzebra\n")
    out = tmp_path / "asr.pt"
    assert _train(manifest, out, "--valid", str(valid)) == 0
    assert set("abcdefghijklmnopqrstuvwxyz' ") <= set(rnnkit.load(out).alphabet)
