"""rnnkit.music.data and rnnkit.music.training: pieces -> batches (chunks, seeded transposition
augmentation), training through the Trainer with best.pt that rebuilds everything, exact
resume, and using the trained models (generate, harmonize, evaluate) on real chorales."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("music21", reason="rnnkit[music] (music21, Python >= 3.11) not installed")

import rnnkit  # noqa: E402
from rnnkit.music import corpus  # noqa: E402
from rnnkit.music.data import (  # noqa: E402
    EventStream,
    MusicEncoding,
    _frame_chunks,
    encode_pieces,
    event_batches,
    fit_shift,
    music_batches,
)
from rnnkit.music.encoding import transpositions  # noqa: E402
from rnnkit.music.events import EventModel, EventModelConfig  # noqa: E402
from rnnkit.music.frames import FrameModel, FrameModelConfig  # noqa: E402
from rnnkit.music.harmonizer import Harmonizer, HarmonizerConfig  # noqa: E402
from rnnkit.music.score import Note, Piece  # noqa: E402
from rnnkit.music.training import (  # noqa: E402
    deal_voices,
    evaluate_music,
    generate_music,
    harmonize_melody,
    load_music,
    melody_of,
    train_music,
)
from rnnkit.train import TrainConfig, load_checkpoint, save_checkpoint  # noqa: E402

#: six chorales parsed directly (no corpus cache needed): four to train on, one to validate,
#: one to test
SIX = ["bach/bwv269", "bach/bwv347", "bach/bwv10.7", "bach/bwv145-a", "bach/bwv86.6",
       "bach/bwv281"]


@pytest.fixture(scope="module")
def six() -> list[Piece]:
    return [corpus.chorale(name) for name in SIX]


def quiet(**kw) -> TrainConfig:
    return TrainConfig(progress=False, plot=False, compute=False, card=False, **kw)


TINY = {"frames": FrameModelConfig(n_pitches=1, hidden_size=16, embed_size=8, num_layers=1),
        "events": EventModelConfig(vocab_size=4, hidden_size=16, embed_size=8, num_layers=1),
        "harmonizer": HarmonizerConfig(n_pitches=1, hidden_size=8, embed_size=4, enc_layers=1,
                                       dec_layers=1)}


def train_tiny(model: str, pieces: list[Piece], out_dir, steps: int = 3, **kw):
    return train_music(model, pieces[:4], pieces[4:5], TINY[model],
                       quiet(max_steps=steps, out_dir=str(out_dir), lr=1e-2),
                       batch_size=2, max_frames=24, bptt=24, **kw)


@pytest.fixture(scope="module")
def trained(six, tmp_path_factory):
    """A tiny model of each kind, trained for a few steps on four chorales."""
    out = {}
    for model in ("frames", "events", "harmonizer"):
        d = tmp_path_factory.mktemp(model)
        net, metrics = train_tiny(model, six, d)
        out[model] = (d / "best.pt", net, metrics)
    return out


def notes_of(piece: Piece, voice: int | None = None) -> list[tuple]:
    notes = piece.notes if voice is None else piece.voice(voice)
    return [(n.pitch, n.start, n.duration) for n in notes]


# -- the encoding and the batches ----------------------------------------------------------------
def test_encoding_settings_round_trip_and_are_checked():
    enc = MusicEncoding("events", 0.25, 40, 80, steps=8, velocity=True)
    assert MusicEncoding.from_dict(enc.to_dict()) == enc
    assert len(enc.encoder) == 3 + 256 + 8 + 32 and enc.n_features == 0
    assert MusicEncoding("frames", 1.0).n_features == 3
    assert MusicEncoding("frames", 1.0, features=False).n_features == 0
    with pytest.raises(ValueError, match="unknown music encoding setting"):
        MusicEncoding.from_dict({**enc.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="model must be one of"):
        MusicEncoding("drums", 1.0)
    with pytest.raises(ValueError, match="low <= high"):
        MusicEncoding("frames", 1.0, 80, 40)
    with pytest.raises(ValueError, match="voices must be 4"):
        MusicEncoding("harmonizer", 0.25, voices=3)


@pytest.mark.parametrize("model,grid", [("frames", 1.0), ("frames", 0.5), ("events", 0.25),
                                        ("harmonizer", 0.25)])
def test_shifted_encodings_are_the_encodings_of_the_transposed_pieces(six, model, grid):
    enc = MusicEncoding(model, grid, 36, 81)
    variants, names = encode_pieces(six[:3], enc, augment=True)
    assert names == SIX[:3]
    for piece, encs in zip(six[:3], variants):
        transposed = transpositions(enc.prepare(piece), 36, 81)
        assert len(encs) == len(transposed) >= 2
        for q, e in zip(transposed, encs):
            ref = enc.encode(q)
            np.testing.assert_array_equal(e.data, ref.data)
            if ref.features is not None:
                np.testing.assert_array_equal(e.features, ref.features)


def test_unaugmented_pieces_are_moved_into_range_or_left_out_with_the_reason(six):
    enc = MusicEncoding("harmonizer", 0.25, 36, 81)
    high = six[0].transpose(10)  # 52..84: above the range 36..81, fits 3 semitones lower
    one_voice = Piece([Note(60, 0, 1)], name="solo")
    wide = Piece([Note(30, 0, 1), Note(90, 0, 1, voice=1), Note(60, 0, 1, voice=2),
                  Note(60, 0, 1, voice=3)], name="wide")
    with pytest.warns(UserWarning, match=r"left out 2 of 3 pieces .*solo has 1 voice.*wide "
                                         r"spans pitches 30..90"):
        variants, names = encode_pieces([high, one_voice, wide], enc)
    assert names == [high.name] and len(variants[0]) == 1
    s = fit_shift(enc.prepare(high), 36, 81)
    assert s == -3
    np.testing.assert_array_equal(variants[0][0].data,
                                  enc.encode(enc.prepare(high).transpose(s)).data)
    assert fit_shift(Piece([Note(90, 0, 1)]), 36, 81, octaves=True) == -12


def test_frame_chunks_predict_every_frame_once(six):
    enc = MusicEncoding("frames", 0.5)
    e = enc.encode(enc.prepare(six[0]))
    T = len(e)
    chunks = _frame_chunks(e, 16)
    assert all(2 <= len(c) <= 16 for c in chunks)
    assert not chunks[0].data[0].any() and not chunks[0].features[0].any()  # silence first
    targets = np.concatenate([c.data[1:] for c in chunks])  # what the chunks predict
    np.testing.assert_array_equal(targets, e.data)  # every real frame, once, in order
    np.testing.assert_array_equal(np.concatenate([c.features[1:] for c in chunks]),
                                  e.features)
    for a, b in zip(chunks, chunks[1:]):  # chunk k + 1 reads the last frame of chunk k first
        np.testing.assert_array_equal(a.data[-1], b.data[0])
    assert sum(len(c) - 1 for c in chunks) == T


def batches_of(loader) -> list:
    return [{k: v.clone() for k, v in b.items()} if isinstance(b, dict) else
            tuple(x.clone() for x in b) for b in loader]


def same(a, b) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        xs = list(x.values()) if isinstance(x, dict) else list(x)
        ys = list(y.values()) if isinstance(y, dict) else list(y)
        if len(xs) != len(ys) or not all(torch.equal(p, q) for p, q in zip(xs, ys)):
            return False
    return True


@pytest.mark.parametrize("model", ["frames", "events", "harmonizer"])
def test_batches_are_seeded_the_same_on_every_rank_and_replay_after_a_restore(six, model):
    enc = MusicEncoding(model, 1.0 if model == "frames" else 0.25, 36, 81)
    variants, _ = encode_pieces(six[:4], enc, augment=True)

    def loader(seed):
        if model == "events":
            return EventStream(variants, 2, 32, seed=seed)
        return music_batches(variants, enc, 2, 24, shuffle=True, seed=seed)

    a, b = loader(3), loader(3)
    first = batches_of(a)
    assert len(first) == len(a) and same(first, batches_of(b))  # two ranks agree
    state = a.generator.get_state()
    second = batches_of(a)
    assert not same(first, second)  # a new order and new transpositions every epoch
    assert len(second) == len(a)
    a.generator.set_state(state)  # what the Trainer does when it resumes mid-epoch
    assert same(second, batches_of(a))
    assert not same(first, batches_of(loader(4)))
    if model == "events":
        x, y = first[0]
        assert x.shape == y.shape == (2, 32) and torch.equal(x[:, 1:], y[:, :-1])
    else:
        key = "frames" if model == "frames" else "voices"
        for batch in first:
            assert set(batch) == {key, "features", "lengths"}
            B, T = batch[key].shape[:2]
            assert batch["features"].shape == (B, T, 3) and int(batch["lengths"].max()) == T
            assert int(batch["lengths"].max()) <= 24
        assert first[0][key].dtype == (torch.float32 if model == "frames" else torch.long)


def test_validation_batches_are_whole_pieces_in_a_fixed_order(six):
    enc = MusicEncoding("events", 0.25)
    variants, _ = encode_pieces(six, enc)
    loader = event_batches(variants, 4)
    batches = batches_of(loader)
    assert same(batches, batches_of(loader)) and loader.generator is None
    lengths = sorted(int(n) for b in batches for n in b["lengths"])
    assert lengths == sorted(len(v[0]) for v in variants)
    b = batches[0]
    assert (b["tokens"][:, 0] == 1).all()  # BOS
    assert all(int(b["tokens"][i, n - 1]) == 2 for i, n in enumerate(b["lengths"].tolist()))


# -- training and the checkpoint -----------------------------------------------------------------
@pytest.mark.parametrize("model,cls", [("frames", FrameModel), ("events", EventModel),
                                       ("harmonizer", Harmonizer)])
def test_best_pt_rebuilds_the_model_and_its_encoding(trained, six, model, cls):
    path, net, metrics = trained[model]
    assert path.is_file() and (path.parent / "last.pt").is_file()
    assert metrics["step"] >= 1 and math.isfinite(metrics["loss"])
    assert isinstance(net, cls) and not net.training
    loaded = rnnkit.load(path)  # the TASKS entry: the trainer checkpoint -> the model
    assert isinstance(loaded, cls)
    for k, v in net.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    ckpt = load_music(path)
    assert ckpt.kind == model and ckpt.encoding == net.encoding
    span = [n.pitch for p in six[:5] for n in p.notes]
    assert (ckpt.encoding.low, ckpt.encoding.high) == (min(span), max(span))
    assert ckpt.info["time_signature"] == [4, 4] and ckpt.info["pieces"]["train"] == 4
    # validation reads whole pieces: its loss is the exact score of the valid piece
    result = evaluate_music(ckpt, six[4:5])
    key = {"frames": "nll_per_frame_all", "events": "nll_per_event",
           "harmonizer": "nll_per_token"}[model]
    assert result[key] == pytest.approx(metrics["loss"], rel=1e-4)


@pytest.mark.parametrize("model", ["frames", "events"])
def test_resume_continues_exactly(six, tmp_path, model):
    """Two steps, stop, two more with resume: the weights of four steps straight (the data's
    generator, its transpositions and order, restored with the checkpoint)."""
    straight, _ = train_tiny(model, six, tmp_path / "a", steps=4)
    train_tiny(model, six, tmp_path / "b", steps=2)
    resumed, _ = train_tiny(model, six, tmp_path / "b", steps=4, resume=True)
    last_a = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    last_b = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert load_checkpoint(tmp_path / "b" / "last.pt")["step"] == 4
    for k in last_a:
        assert torch.equal(last_a[k], last_b[k]), k


def test_training_refuses_what_it_cannot_use(six, tmp_path):
    with pytest.raises(ValueError, match="no validation pieces"):
        train_music("frames", six[:4], [], None, quiet(max_steps=1))
    with pytest.raises(ValueError, match="model must be one of"):
        train_music("piano", six[:4], six[4:5], None, quiet(max_steps=1))
    solo = [Piece([Note(60, 0, 1), Note(62, 1, 1)], name=f"solo{i}") for i in range(3)]
    with pytest.warns(UserWarning, match="left out") as caught, \
            pytest.raises(ValueError, match="none of the 2 training pieces fits"):
        train_music("harmonizer", solo[:2], solo[2:], None, quiet(max_steps=1))
    assert "left out 2 of 2 training pieces" in str(caught[0].message)
    with pytest.raises(TypeError, match="FrameModelConfig"):
        train_music("frames", six[:4], six[4:5], TINY["events"], quiet(max_steps=1))


# -- using the models ----------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["frames", "events"])
def test_generated_pieces_last_exactly_as_asked(trained, six, model):
    ckpt = load_music(trained[model][0])
    for length in (16.0, 21.0, 32.0):
        piece = generate_music(ckpt, length, seed=1, tempo=90, time_signature=(3, 4))
        assert piece.end() == length and piece.tempo == 90 and piece.time_signature == (3, 4)
        assert all(ckpt.encoding.low <= n.pitch <= ckpt.encoding.high for n in piece.notes)
        for v in range(piece.num_voices()):  # one note or chord at a time per voice
            notes = piece.voice(v)
            for a, b in zip(notes, notes[1:]):
                assert b.start >= a.end - 1e-9 or (a.start, a.duration) == (b.start, b.duration)
    a = generate_music(ckpt, 16.0, seed=5)
    assert notes_of(a) == notes_of(generate_music(ckpt, 16.0, seed=5))
    prime = six[5]
    cont = generate_music(ckpt, prime.end() + 8, prime, seed=0)
    assert cont.end() == prime.end() + 8 and cont.key == prime.key
    with pytest.raises(ValueError, match="as long as the piece"):
        generate_music(ckpt, prime.end(), prime)
    with pytest.raises(ValueError, match="length must be at least one grid step"):
        generate_music(ckpt, 0.0)


def test_deal_voices_gives_lines_and_keeps_chords():
    piece = Piece([Note(60, 0, 2), Note(64, 0, 2), Note(67, 0, 1), Note(65, 1, 1),
                   Note(48, 1, 3)])
    dealt = deal_voices(piece)
    assert sorted(notes_of(dealt)) == sorted(notes_of(piece))
    assert notes_of(dealt, 0) == [(67, 0.0, 1.0), (65, 1.0, 1.0)]
    assert notes_of(dealt, 1) == [(60, 0.0, 2.0), (64, 0.0, 2.0)]  # a chord stays together
    assert notes_of(dealt, 2) == [(48, 1.0, 3.0)]


def test_harmonize_keeps_the_melody_exactly(trained, six):
    ckpt = load_music(trained["harmonizer"][0])
    melody = melody_of(six[5])
    assert melody.num_voices() == 1 and notes_of(melody) == notes_of(six[5], 0)
    for kw in ({}, {"beam_size": 3}, {"temperature": 1.0, "seed": 0}):
        chorale, info = harmonize_melody(ckpt, melody, **kw)
        assert chorale.num_voices() == 4 and notes_of(chorale, 0) == notes_of(melody)
        assert info["moved"] == 0
    # two octaves up: harmonized inside the model's soprano range, moved back
    high = melody.transpose(24)
    chorale, info = harmonize_melody(ckpt, high)
    assert info["shift"] % 12 == 0 and info["shift"] <= -24
    assert notes_of(chorale, 0) == notes_of(high)
    # off the 16th grid: moved onto it, and counted
    swung = Piece([Note(67, 0, 0.3), Note(69, 0.3, 0.7), Note(71, 1, 1)])
    chorale, info = harmonize_melody(ckpt, swung)
    assert info["moved"] == 2 and chorale.voice(0)[0].start == 0.0
    with pytest.raises(ValueError, match=r"no octave puts it within the model's range"):
        harmonize_melody(ckpt, Piece([Note(20, 0, 1), Note(100, 1, 1)]))


def test_melody_of_takes_the_top_line():
    score = Piece([Note(60, 0, 2, voice=1), Note(64, 0, 1, voice=1), Note(67, 1, 1, voice=1),
                   Note(40, 0, 4, voice=2)], name="x", fermatas=[1.0])
    melody = melody_of(score)  # voice 0 is empty: the first voice with notes
    assert notes_of(melody) == [(64, 0.0, 1.0), (67, 1.0, 1.0)]
    assert melody.fermatas == [1.0] and melody.num_voices() == 1
    with pytest.raises(ValueError, match="has no notes"):
        melody_of(Piece([], name="empty"))


def test_evaluate_scores_are_finite_and_follow_the_protocol(trained, six):
    frames = evaluate_music(load_music(trained["frames"][0]), six[5:])
    assert frames["pieces"] == 1 and frames["left_out"] == 0
    assert frames["frames_all"] == frames["frames"] + 1  # the first frame: from silence
    assert all(math.isfinite(frames[k]) for k in ("nll_per_frame", "nll_per_frame_all"))
    assert 0 <= frames["frame_accuracy"] <= 1
    events = evaluate_music(load_music(trained["events"][0]), six[5:])
    seconds = six[5].end() * 60 / six[5].tempo
    assert events["seconds"] == pytest.approx(seconds)
    assert events["nll_per_second"] == pytest.approx(
        events["nll_per_event"] * events["events"] / seconds)
    harm = evaluate_music(load_music(trained["harmonizer"][0]), six[5:])
    assert harm["nll_per_token"] == pytest.approx(
        (harm["alto_nll"] + harm["tenor_nll"] + harm["bass_nll"]) / 3)
    assert all(0 <= harm[f"{v}_accuracy"] <= 1 for v in ("alto", "tenor", "bass"))


def test_load_music_says_what_a_wrong_file_is_and_where_it_goes(trained, tmp_path):
    frames = trained["frames"][0]
    with pytest.raises(ValueError, match=r"is a frames model .*use it with `rnnkit music "
                                         r"generate .*harmonize.* needs a harmonizer"):
        load_music(frames, ("harmonizer",), "`rnnkit music harmonize`")
    with pytest.raises(ValueError, match=r"harmonizer model .*`rnnkit music harmonize .* "
                                         r"MELODY.mid`"):
        load_music(trained["harmonizer"][0], ("frames", "events"))
    model_file = tmp_path / "model.pt"
    rnnkit.save(trained["frames"][1], model_file)
    with pytest.raises(ValueError, match="saved without its encoding .* best.pt"):
        load_music(model_file)
    other = tmp_path / "classify.pt"
    ckpt = load_checkpoint(frames)
    save_checkpoint({**ckpt, "extra_state": {"task": "classify", "config": {}}}, other)
    with pytest.raises(ValueError, match=r"a text classifier's checkpoint.*`rnnkit classify "
                                         r"predict"):
        load_music(other)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(ValueError, match="not a readable rnnkit checkpoint"):
        load_music(bad)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_music(tmp_path / "nope.pt")
    with pytest.raises(IsADirectoryError, match="best.pt"):
        load_music(frames.parent)


# -- learning ------------------------------------------------------------------------------------
#: measured on bwv269 (quarter-note frames, 46 pitches): 32 nats per frame untrained, 0.56 to
#: 1.11 after 400 steps over seeds 0..3 (frame accuracy 0.94 to 1.0), 6 to 10 s on one core
OVERFIT_NLL = 1.5


@pytest.mark.slow
def test_a_small_frames_model_overfits_one_chorale(six, tmp_path):
    """A GRU of 64 units, 400 AdamW steps (lr 0.01) on one chorale at quarter-note frames,
    validated on the same chorale: the NLL per frame falls from 32 nats (46 pitches x ln 2)
    below :data:`OVERFIT_NLL` (measured 0.56 to 1.11)."""
    one = six[:1]
    cfg = FrameModelConfig(n_pitches=1, hidden_size=64, embed_size=64, num_layers=1,
                           dropout=0.0)
    net, metrics = train_music("frames", one, one, cfg,
                               quiet(max_steps=400, lr=1e-2, clip_norm=5.0,
                                     out_dir=str(tmp_path), eval_every=100, seed=0),
                               augment=False, batch_size=1)
    assert metrics["loss"] < OVERFIT_NLL
    assert metrics["frame_accuracy"] > 0.85
