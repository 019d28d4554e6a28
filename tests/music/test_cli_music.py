"""``rnnkit music train / generate / harmonize / evaluate`` end to end on six real chorales in a
folder (MusicXML, and one MIDI file), with tiny models trained for a few steps; and every bad
input ending with exit code 2 and a message that names the fix, before any work."""

from __future__ import annotations

import math
import os
import re
import shutil
import struct
import wave

import numpy as np
import pytest

pytest.importorskip("music21", reason="rnnkit[music] (music21, Python >= 3.11) not installed")

import rnnkit  # noqa: E402
from rnnkit.cli import main  # noqa: E402
from rnnkit.music import corpus  # noqa: E402
from rnnkit.music.score import Note, Piece, read_score, write_midi, write_musicxml  # noqa: E402
from rnnkit.music.training import load_music, melody_of  # noqa: E402
from rnnkit.train import load_checkpoint  # noqa: E402

#: file name -> the part of the split (by name) it falls in, with the default fractions
FILES = {"bwv269": "train", "bwv347": "train", "bwv153.1": "train", "bwv86.6": "train",
         "bwv302": "valid", "bwv281": "test"}
#: a tiny model, quiet, that trains in about a second
TINY = ["--hidden", "16", "--embed", "8", "--layers", "1", "--batch-size", "2",
        "--max-frames", "24", "--bptt", "24", "--no-progress", "--train.plot", "false",
        "--train.compute", "false", "--train.card", "false"]
FEW = ["--max-steps", "3"]
HAS_FLUIDSYNTH = shutil.which("fluidsynth") is not None


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Six chorales as score files: MusicXML, the test piece as MIDI."""
    d = tmp_path_factory.mktemp("chorales")
    for stem, part in FILES.items():
        assert corpus.split_of(stem) == part
        piece = corpus.chorale(f"bach/{stem}")
        if part == "test":
            write_midi(piece, d / f"{stem}.mid")
        else:
            write_musicxml(piece, d / f"{stem}.xml")
    return d


@pytest.fixture(scope="module")
def runs(folder, tmp_path_factory):
    """A tiny model of each kind trained through the CLI; its run folder and stdout."""
    out = {}
    for model in ("frames", "events", "harmonizer"):
        run = tmp_path_factory.mktemp("runs") / model
        assert main(["music", "train", "--corpus", str(folder), "--model", model,
                     "--out-dir", str(run), *TINY, *FEW]) == 0
        out[model] = run
    return out


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["music", *map(str, argv)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+", text)]


def melody_file(tmp_path, piece: Piece, name: str = "melody.mid") -> str:
    path = tmp_path / name
    write_midi(melody_of(piece), path)
    return str(path)


# -- train -----------------------------------------------------------------------------------
def test_train_prints_the_split_and_the_validation_score(folder, tmp_path, capsys):
    rc, out, err = run_cli(capsys, "train", "--corpus", folder, "--model", "frames",
                           "--out-dir", tmp_path / "run", *TINY, *FEW)
    assert rc == 0, err
    assert f"{folder}: 6 pieces -> train 4, valid 1, test 1" in out
    m = re.search(r"validation \(best.pt, step (\d)\) loss (\d+\.\d+) nats per frame", out)
    assert m and math.isfinite(float(m.group(2)))
    assert {"best.pt", "last.pt", "log.jsonl"} <= set(os.listdir(tmp_path / "run"))


@pytest.mark.parametrize("model,cls", [("frames", "FrameModel"), ("events", "EventModel"),
                                       ("harmonizer", "Harmonizer")])
def test_each_model_trains_to_a_best_pt_that_loads(runs, model, cls):
    best = runs[model] / "best.pt"
    assert best.is_file()
    assert type(rnnkit.load(best)).__name__ == cls
    ckpt = load_music(best)
    assert ckpt.kind == model and ckpt.run["data_config"]["model"] == model
    assert ckpt.encoding.grid == (1.0 if model == "frames" else 0.25)


def test_resume_continues_and_refuses_a_changed_model(folder, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "--corpus", folder, "--out-dir", run, *TINY]
    assert run_cli(capsys, *base, *FEW)[0] == 0
    rc, out, err = run_cli(capsys, *base, "--max-steps", 5, "--resume")
    assert rc == 0, err
    assert "validation (best.pt, step" in out
    assert load_checkpoint(run / "last.pt")["step"] == 5
    rc, _, err = run_cli(capsys, *base, "--resume", "--model", "events")
    assert rc == 2 and "--model 'frames'" in err and "--overwrite" in err
    rc, _, err = run_cli(capsys, *base, "--resume", "--hidden", 32)
    assert rc == 2 and "--hidden 16" in err


# -- generate --------------------------------------------------------------------------------
def read_wav(path) -> tuple[int, np.ndarray]:
    with open(path, "rb") as f:
        head = f.read(12)
    assert head[:4] == b"RIFF" and head[8:12] == b"WAVE"
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


@pytest.mark.parametrize("model", ["frames", "events"])
def test_generate_writes_the_bars_asked_for_with_png_and_wav(runs, tmp_path, capsys, model):
    if not HAS_FLUIDSYNTH:
        pytest.skip("fluidsynth is not installed: make music-data")
    out, png, wav, xml = (tmp_path / f"song.{ext}" for ext in ("mid", "png", "wav", "xml"))
    rc, text, err = run_cli(capsys, "generate", runs[model] / "best.pt", "--bars", 4,
                            "--out", out, "--png", png, "--wav", wav, "--musicxml", xml,
                            "--seed", 1)
    assert rc == 0, err
    assert "generated 4 bars of 4/4" in text
    for path in (out, xml):
        piece = read_score(path)
        assert piece.end() == 16.0 and piece.time_signature == (4, 4)  # 4 bars of 4/4
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rate, samples = read_wav(wav)
    assert rate == 44100 and samples.size > rate  # 16 quarters at 100 bpm: 9.6 s, stereo
    assert np.abs(samples.astype(np.int32)).max() > 100  # not silent


def test_generate_for_seconds_and_from_a_prime(runs, folder, tmp_path, capsys):
    out = tmp_path / "a.mid"
    rc, text, err = run_cli(capsys, "generate", runs["events"] / "best.pt", "--seconds", 6,
                            "--tempo", 120, "--out", out, "--seed", 0, "--top-k", 40)
    assert rc == 0, err
    piece = read_score(out)
    assert piece.end() == 12.0 and piece.tempo == 120  # 6 s at 120 quarters a minute
    prime = folder / "bwv281.mid"
    for model in ("frames", "events"):
        out = tmp_path / f"{model}.mid"
        rc, text, err = run_cli(capsys, "generate", runs[model] / "best.pt", "--prime", prime,
                                "--bars", 12, "--out", out, "--key-shift", 2)
        assert rc == 0, err
        assert read_score(out).end() == 48.0


# -- harmonize -------------------------------------------------------------------------------
def test_harmonize_keeps_the_melody_in_the_soprano(runs, tmp_path, capsys):
    chorale = corpus.chorale("bach/bwv281")
    melody = melody_file(tmp_path, chorale)
    given = [(n.pitch, n.start, n.duration) for n in read_score(melody).notes]
    for extra in ([], ["--beam", "3"], ["--temperature", "0.8", "--seed", "2"],
                  ["--voice-leading-penalty", "0"]):
        out = tmp_path / "satb.mid"
        rc, text, err = run_cli(capsys, "harmonize", runs["harmonizer"] / "best.pt", melody,
                                "--out", out, "--overwrite", *extra)
        assert rc == 0, err
        back = read_score(out)
        assert back.num_voices() == 4
        assert [(n.pitch, n.start, n.duration) for n in back.voice(0)] == given
    # out of the model's range: harmonized two octaves down, and moved back
    high = tmp_path / "high.mid"
    write_midi(melody_of(chorale).transpose(24), high)
    rc, text, err = run_cli(capsys, "harmonize", runs["harmonizer"] / "best.pt", high,
                            "--out", tmp_path / "high_satb.mid", "--musicxml",
                            tmp_path / "high.xml")
    assert rc == 0, err
    assert "octave(s) down" in text
    soprano = [(n.pitch, n.start, n.duration) for n in read_score(tmp_path / "high_satb.mid")
               .voice(0)]
    assert soprano == [(p + 24, s, d) for p, s, d in given]


# -- evaluate --------------------------------------------------------------------------------
@pytest.mark.parametrize("model,lines", [
    ("frames", ["NLL per frame", "frame accuracy"]),
    ("events", ["NLL per event", "NLL per second"]),
    ("harmonizer", ["NLL per token", "alto   accuracy", "tenor  accuracy", "bass   accuracy"]),
])
def test_evaluate_prints_finite_scores(runs, capsys, model, lines):
    rc, out, err = run_cli(capsys, "evaluate", runs[model] / "best.pt")
    assert rc == 0, err
    assert "on the test split of" in out and ": 1 piece" in out
    for line in lines:
        assert line in out
    values = numbers(out)
    assert values and all(math.isfinite(v) for v in values)
    rc, out, _ = run_cli(capsys, "evaluate", runs[model] / "best.pt", "--split", "all")
    assert rc == 0 and ": 6 pieces" in out


# -- help ----------------------------------------------------------------------------------
def test_help(capsys):
    for argv in (["music", "--help"], ["music", "train", "--help"],
                 ["music", "generate", "--help"], ["music", "harmonize", "--help"],
                 ["music", "evaluate", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        assert "usage: rnnkit music" in capsys.readouterr().out
    assert main(["music"]) == 2
    assert "train" in capsys.readouterr().out


# -- bad input -------------------------------------------------------------------------------
def midi_bytes(*tracks: bytes) -> bytes:
    def track(events: bytes) -> bytes:
        body = events + b"\x00\xff\x2f\x00"  # end of track
        return b"MTrk" + struct.pack(">I", len(body)) + body

    return b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), 480) + b"".join(map(track, tracks))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage" + bytes(range(256)))
    (d / "empty.mid").write_bytes(midi_bytes(b"", b""))  # two empty tracks
    # a kick and a snare on channel 10, nothing else
    (d / "drums.mid").write_bytes(midi_bytes(b"\x00\x99\x24\x64\x83\x60\x89\x24\x00"
                                             b"\x00\x99\x26\x64\x83\x60\x89\x26\x00"))
    (d / "notes.txt").write_text("C D E F G\n")
    write_midi(Piece([Note(20, 0, 1), Note(100, 1, 1)]), d / "wide.mid")
    (d / "only_bad").mkdir()
    (d / "only_bad" / "x.mid").write_bytes(b"MThd junk")
    (d / "no_scores").mkdir()
    (d / "no_scores" / "readme.txt").write_text("nothing here")
    return d


def test_bad_inputs_exit_2_naming_the_fix(runs, folder, bad_files, tmp_path, capsys):
    frames, events, harm = (runs[m] / "best.pt" for m in ("frames", "events", "harmonizer"))
    existing = tmp_path / "exists.mid"
    existing.write_bytes(b"keep me")
    out = str(tmp_path / "out.mid")
    fake = tmp_path / "fake.pt"
    fake.write_bytes(os.urandom(300))
    cases = [
        # corrupt / unsupported / empty / drums-only scores
        (["harmonize", harm, bad_files / "corrupt.mid", "--out", out],
         ["could not parse", "give a score file"]),
        (["generate", frames, "--prime", bad_files / "corrupt.mid", "--out", out],
         ["--prime", "could not parse"]),
        (["harmonize", harm, bad_files / "notes.txt", "--out", out],
         ["not a score format", "supported: .mid"]),
        (["harmonize", harm, bad_files / "empty.mid", "--out", out],
         ["no pitched notes", "give a score file with pitched notes"]),
        (["generate", events, "--prime", bad_files / "drums.mid", "--out", out],
         ["percussion", "drums on channel 10"]),
        (["harmonize", harm, bad_files / "missing.mid", "--out", out],
         ["no such file", "check the path"]),
        (["harmonize", harm, bad_files / "wide.mid", "--out", out],
         ["no octave puts it within the model's range", "give a melody"]),
        # absurd lengths and values
        (["generate", frames, "--bars", 0, "--out", out], ["--bars must be from 1 to 1000"]),
        (["generate", frames, "--bars", 1001, "--out", out], ["--bars must be from 1 to 1000"]),
        (["generate", frames, "--seconds", -3, "--out", out], ["--seconds must be above 0"]),
        (["generate", frames, "--temperature", -1, "--out", out], ["--temperature must be"]),
        (["generate", frames, "--top-k", 5, "--out", out], ["--top-k", "--max-voices"]),
        (["generate", events, "--max-voices", 3, "--out", out], ["drop --max-voices"]),
        (["harmonize", harm, bad_files / "drums.mid", "--beam", 0, "--out", out],
         ["--beam must be from 1"]),
        (["harmonize", harm, bad_files / "drums.mid", "--beam", 2, "--temperature", 1,
          "--out", out], ["drop --temperature"]),
        (["harmonize", harm, bad_files / "drums.mid", "--voice-leading-penalty", -1,
          "--out", out], ["--voice-leading-penalty must be from 0"]),
        # outputs
        (["generate", frames, "--out", existing], ["exists", "--overwrite"]),
        (["generate", frames, "--out", tmp_path / "song.wav"], ["--out", ".mid"]),
        (["generate", frames, "--out", out, "--png", tmp_path / "a.jpg"], ["--png", ".png"]),
        (["generate", frames, "--out", out, "--soundfont", tmp_path / "x.sf2"],
         ["--soundfont", "add --wav"]),
        # checkpoints of another kind, or no checkpoint at all
        (["generate", harm, "--out", out],
         ["harmonizer model", "`rnnkit music harmonize", "needs a frames or events model"]),
        (["harmonize", frames, bad_files / "drums.mid", "--out", out],
         ["frames model", "`rnnkit music generate", "needs a harmonizer model"]),
        (["evaluate", fake], ["not a readable rnnkit checkpoint"]),
        (["evaluate", tmp_path / "none.pt"], ["no checkpoint at", "rnnkit music train"]),
        (["evaluate", runs["frames"]], ["is a folder", "best.pt"]),
        # corpora
        (["train", "--corpus", tmp_path / "nowhere", "--out-dir", tmp_path / "r1"],
         ["no such folder", "chorales, folk"]),
        (["train", "--corpus", bad_files / "no_scores", "--out-dir", tmp_path / "r2"],
         ["holds no score files", "give a folder"]),
        (["train", "--corpus", bad_files / "only_bad", "--out-dir", tmp_path / "r3"],
         ["none of its 1 score files could be read", "give files with pitched notes"]),
        (["train", "--corpus", bad_files / "drums.mid", "--out-dir", tmp_path / "r4"],
         ["is a file", "give a folder"]),
        (["train", "--corpus", "folk", "--model", "harmonizer", "--out-dir", tmp_path / "r5"],
         ["four-part", "--corpus chorales"]),
        (["train", "--corpus", folder, "--out-dir", runs["frames"], *TINY, *FEW],
         ["already holds a run", "--resume", "--overwrite"]),
        (["train", "--corpus", folder, "--fractions", "0.5,0.5", "--out-dir", tmp_path / "r6"],
         ["--fractions", "0.8,0.1,0.1"]),
        (["train", "--corpus", folder, "--fractions", "1,0,0", "--out-dir", tmp_path / "r7"],
         ["--fractions", "valid > 0"]),
        (["train", "--corpus", folder, "--model", "piano", "--out-dir", tmp_path / "r8"],
         ["--model", "frames"]),
        (["train", "--corpus", folder, "--tie-weights", "true", "--out-dir", tmp_path / "r9"],
         ["--tie-weights", "drop it for --model frames"]),
        (["train", "--corpus", folder, "--grid", "0", "--out-dir", tmp_path / "r10"],
         ["--grid must be", "0.25"]),
        (["evaluate", frames, "--corpus", tmp_path / "nowhere"], ["no such folder"]),
        (["evaluate", frames, "--split", "test", "--fractions", "0.9,0.1,0"],
         ["empty", "--split", "--fractions"]),
    ]
    before = existing.read_bytes()
    for argv, words in cases:
        rc, _, err = run_cli(capsys, *argv)
        assert rc == 2, (argv, err)
        assert err.startswith("rnnkit music: error: ") and "Traceback" not in err, (argv, err)
        for word in words:
            assert word in err, (argv, word, err)
    assert existing.read_bytes() == before
    assert not os.path.exists(out)
    assert not any((tmp_path / f"r{i}").exists() for i in range(1, 11))


def test_wav_without_fluidsynth_names_make_music_data(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no fluidsynth on it
    rc, _, err = run_cli(capsys, "generate", runs["frames"] / "best.pt", "--out",
                         tmp_path / "a.mid", "--wav", tmp_path / "a.wav")
    assert rc == 2 and "fluidsynth" in err and "make music-data" in err
    assert not (tmp_path / "a.mid").exists()  # checked before any work


# -- under torchrun ----------------------------------------------------------------------------
@pytest.mark.slow
def test_train_under_torchrun_matches_one_process_and_only_rank_0_reports(folder, tmp_path):
    """Two gloo processes share each batch's rows (2 + 2 of 4; the data, its transpositions
    and order drawn alike on both ranks): the weights of one process on the same batches, and
    one report."""
    import subprocess
    import sys

    import torch

    args = ["music", "train", "--corpus", str(folder), "--model", "frames", "--hidden", "8",
            "--embed", "8", "--layers", "1", "--dropout", "0", "--batch-size", "4",
            "--max-frames", "16", "--max-steps", "6", "--train.eval_every", "3", "--lr", "0.01",
            "--no-progress", "--train.plot", "false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    runs = {}
    for procs in (1, 2):
        out = tmp_path / f"p{procs}"
        launcher = [sys.executable, "-m", "rnnkit"] if procs == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={procs}", "-m", "rnnkit"]
        proc = subprocess.run([*launcher, *args, "--out-dir", str(out)], capture_output=True,
                              text=True, env=env, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count("6 pieces -> train 4") == 1  # rank 0 alone reports
        assert proc.stdout.count("trained the frames model") == 1
        runs[procs] = out
    assert set(os.listdir(runs[1])) == set(os.listdir(runs[2]))
    for name in ("last.pt", "best.pt"):
        a = torch.load(runs[1] / name, weights_only=True)
        b = torch.load(runs[2] / name, weights_only=True)
        assert a["step"] == b["step"] and b["world_size"] == 2
        for k in a["model"]:
            assert torch.allclose(a["model"][k], b["model"][k], rtol=0, atol=1e-5), (name, k)


@pytest.mark.slow
def test_the_chorale_corpus_by_name(tmp_path, capsys):
    """``--corpus chorales``: music21's chorales from the corpus cache ($RNNKIT_CACHE, else
    ~/.cache/rnnkit/music; built once, about 45 s, then loaded in under a second)."""
    run = tmp_path / "run"
    rc, out, err = run_cli(capsys, "train", "--corpus", "chorales", "--limit", 40,
                           "--model", "harmonizer", "--out-dir", run, *TINY, *FEW)
    assert rc == 0, err
    m = re.search(r"chorales: 40 pieces -> train (\d+), valid (\d+), test (\d+)", out)
    assert m and sum(map(int, m.groups())) == 40
    rc, out, err = run_cli(capsys, "evaluate", run / "best.pt")  # the run's own --limit
    assert rc == 0, err
    assert f"on the test split of chorales (its first 40 pieces): {m.group(3)} piece" in out
    assert all(math.isfinite(v) for v in numbers(out))
