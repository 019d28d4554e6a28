"""`rnnkit speech ...` on bad and odd input: every mistake is one line on stderr, exit code 2,
naming the flag and the fix, and caught before any training or decoding work."""

import math
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from rnnkit.cli import main

RATE = 16000
TINY = ["--steps", "3", "--hidden-size", "8", "--layers", "1", "--model.channels", "2",
        "--model.n_mels", "24", "--batch-size", "2", "--no-progress"]


def _clip(freqs, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.15 * RATE)) / RATE
    return np.concatenate([0.3 * np.sin(2 * math.pi * f * t) + 0.01 * rng.normal(size=len(t))
                           for f in freqs]).astype(np.float32)


def _manifest(folder, lines, prefix=""):
    folder.mkdir(exist_ok=True)
    for i, freqs in enumerate([[300, 900], [900, 300], [300, 0, 900]]):
        sf.write(folder / f"u{i}.wav", _clip(freqs, i), RATE)
    (folder / "manifest.tsv").write_bytes((prefix + "\n".join(lines) + "\n").encode("utf-8"))
    return folder


GOOD = ["u0.wav\tab", "u1.wav\tba", "u2.wav\ta b"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    data = _manifest(root / "data", GOOD)
    out = {}
    for name, extra in (("bi", []), ("uni", ["--unidirectional"])):
        out[name] = root / f"{name}.pt"
        assert main(["speech", "train", "--data", str(data), "--out", str(out[name]), *TINY,
                     *extra]) == 0
    return root, data, out


def _fails(capsys, argv, *words):
    """``argv`` exits 2 with one stderr line naming ``words``, before printing any result."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("rnnkit speech: error:"), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("flags, words", [
    (["--beam", "0"], ["--beam"]),
    (["--beam", "-3"], ["--beam"]),
    (["--beam", "100000"], ["--beam"]),
    (["--nbest", "0"], ["--nbest"]),
    (["--nbest", "3"], ["--nbest", "--beam"]),
    (["--beam", "4", "--lm-weight", "-1"], ["--lm-weight"]),
    (["--beam", "4", "--lm-weight", "nan"], ["--lm-weight", "finite"]),
    (["--beam", "4", "--word-bonus", "inf"], ["--word-bonus"]),
    (["--beam", "4", "--lm-weight", "0.5"], ["no language model", "--lm-order"]),
    (["--lexicon", "digits"], ["--lexicon", "--beam N"]),
    (["--lm-weight", "0.5"], ["--lm-weight", "--beam N"]),
    (["--beam", "4", "--lexicon", "MISSING"], ["--lexicon", "no such file"]),
    (["--beam", "4", "--lexicon", "EMPTY"], ["--lexicon", "no words"]),
    (["--beam", "4", "--lexicon", "BINARY"], ["--lexicon", "UTF-8"]),
    (["--beam", "4", "--lexicon", "UPPER"], ["--lexicon", "spelled"]),
    (["--chunk-ms", "50"], ["--chunk-ms", "--stream"]),
    (["--png", "DIR"], ["--png", "folder"]),
    (["--png", "UNDERFILE"], ["--png", "not a folder"]),
])
def test_transcribe_refuses_bad_flags(models, tmp_path, capsys, flags, words):
    root, data, out = models
    (tmp_path / "EMPTY").write_text("")
    (tmp_path / "BINARY").write_bytes(b"\xff\xfe\xaa\x00" * 50)
    (tmp_path / "UPPER").write_text("HELLO WORLD\n")
    (tmp_path / "DIR").mkdir()
    subs = {"MISSING": tmp_path / "nope.txt", "UNDERFILE": tmp_path / "EMPTY" / "x.png"}
    flags = [str(subs.get(f, tmp_path / f if f.isupper() else f)) for f in flags]
    _fails(capsys, ["speech", "transcribe", str(out["bi"]), str(data / "u0.wav"), *flags],
           *words)


@pytest.mark.parametrize("flags, words", [
    (["--beam", "8"], ["--stream", "--beam"]),
    (["--png", "x.png"], ["--stream", "--png"]),
    (["--chunk-ms", "0"], ["--chunk-ms"]),
    (["--chunk-ms", "-5"], ["--chunk-ms"]),
    (["--chunk-ms", "nan"], ["--chunk-ms"]),
])
def test_stream_refuses_what_it_cannot_do(models, capsys, flags, words):
    root, data, out = models
    _fails(capsys, ["speech", "transcribe", str(out["uni"]), str(data / "u0.wav"), "--stream",
                    *flags], *words)


def test_too_short_audio_names_the_file(models, tmp_path, capsys):
    root, data, out = models
    sf.write(tmp_path / "one.wav", np.array([0.5], np.float32), RATE)
    _fails(capsys, ["speech", "transcribe", str(out["bi"]), str(tmp_path / "one.wav")],
           "one.wav", "longer recording")


def test_malicious_checkpoint_is_refused(models, tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    root, data, _ = models
    _fails(capsys, ["speech", "transcribe", str(tmp_path / "evil.pt"), str(data / "u0.wav")],
           "not a readable rnnkit checkpoint")
    assert not (tmp_path / "pwned").exists()


def _train(data, out, *extra):
    return ["speech", "train", "--data", str(data), "--out", str(out), *TINY, *extra]


def test_train_checks_before_work(models, tmp_path, capsys):
    root, data, out = models
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    for argv, words in [
        (_train(data, tmp_path / "adir", "--overwrite"), ["--out", "folder"]),
        (_train(data, tmp_path / "afile" / "m.pt"), ["--out", "not a folder"]),
        (_train(data, ""), ["--out", "empty"]),
        (_train(data, tmp_path / "m.pt", "--lm-order", "-1"), ["--lm-order"]),
        (_train(data, tmp_path / "m.pt", "--lm-unit", "char"), ["--lm-unit", "--lm-order"]),
        (_train(data, tmp_path / "m.pt", "--hidden-size", "0"), ["--hidden-size"]),
        (_train(data, tmp_path / "m.pt", "--steps", "0"), ["--steps"]),
    ]:
        msg = _fails(capsys, argv, *words)
        assert "hidden_size" not in msg and "max_steps" not in msg
    assert not (tmp_path / "m.pt").exists()


def test_train_refuses_empty_and_unwritable_data(models, tmp_path, capsys):
    root, data, out = models
    empty = _manifest(tmp_path / "empty", [])
    upper = _manifest(tmp_path / "upper", ["u0.wav\tAB!"])
    latin = _manifest(tmp_path / "latin", [])
    (latin / "manifest.tsv").write_bytes("u0.wav\tcafé\n".encode("latin-1"))
    _fails(capsys, _train(empty, tmp_path / "m.pt"), "--data", "no clips")
    _fails(capsys, _train(data, tmp_path / "m.pt", "--valid", str(empty)), "--valid", "no clips")
    _fails(capsys, _train(data, tmp_path / "m.pt", "--valid", str(upper)), "--valid", "'!'")
    _fails(capsys, _train(latin, tmp_path / "m.pt"), "UTF-8")


def test_manifest_with_bom_and_header(tmp_path, capsys):
    bom = _manifest(tmp_path / "bom", GOOD, prefix="\ufeff")
    assert main(_train(bom, tmp_path / "m.pt")) == 0
    assert "train features" not in capsys.readouterr().err  # --no-progress: no bars at all
    header = _manifest(tmp_path / "header", ["path\ttext", *GOOD])
    _fails(capsys, _train(header, tmp_path / "h.pt"), "header line")


def test_evaluate_warns_about_unwritable_references(models, tmp_path, capsys):
    root, data, out = models
    upper = _manifest(tmp_path / "upper", ["u0.wav\tAB!", "u1.wav\tba"])
    assert main(["speech", "evaluate", str(out["bi"]), "--data", str(upper)]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "'!'" in err


def test_data_refuses_bad_input(tmp_path, capsys):
    texts = tmp_path / "t.txt"
    texts.write_text("one two\n")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\xaa" * 30)
    (tmp_path / "punct").write_text("!!!\n???\n")
    (tmp_path / "afile").write_text("x")
    out = str(tmp_path / "out")
    for argv, words in [
        (["--texts", str(texts), "--out", out, "--per-text", "0"], ["--per-text"]),
        (["--texts", str(tmp_path / "nope"), "--out", out], ["--texts", "no such file"]),
        (["--texts", str(tmp_path), "--out", out], ["--texts", "folder"]),
        (["--texts", str(tmp_path / "bin"), "--out", out], ["--texts", "UTF-8"]),
        (["--texts", str(texts), "--out", str(tmp_path / "afile")], ["--out", "is a file"]),
        (["--texts", str(tmp_path / "punct"), "--out", out, "--per-text", "1"], ["words"]),
    ]:
        _fails(capsys, ["speech", "data", *argv], *words)
    assert not os.path.exists(os.path.join(out, "manifest.tsv"))
