"""rnnkit.music.encoding: piano rolls, events and voice frames on made-up pieces (numpy only;
the chorales' round trips are in test_music_corpus.py)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from rnnkit.music.encoding import (
    EventVocab,
    PianoRoll,
    VoiceFrames,
    quantize,
    transpositions,
)
from rnnkit.music.score import Note, Piece, pitch_name


def random_piece(seed: int, voices: int = 4, grid: float = 0.25, low: int = 40,
                 high: int = 76, bars: int = 4, velocity: bool = False) -> Piece:
    """``voices`` monophonic voices of notes and rests on ``grid``, within ``low..high``."""
    rng = np.random.default_rng(seed)
    notes = []
    for v in range(voices):
        t, end = 0, int(bars * 4 / grid)
        while t < end:
            length = int(rng.integers(1, 9))
            if rng.random() < 0.8:
                notes.append(Note(int(rng.integers(low, high + 1)), t * grid, length * grid, v,
                                  int(rng.integers(1, 128)) if velocity else 80))
            t += length
    return Piece(notes, name=f"random{seed}")


def sounding(piece: Piece) -> set[tuple[int, float, float]]:
    """``(pitch, onset, offset)`` of each span in which a pitch sounds, notes of all voices
    merged where they touch or overlap."""
    spans = set()
    for pitch in {n.pitch for n in piece.notes}:
        start = end = None
        for n in sorted((n for n in piece.notes if n.pitch == pitch), key=lambda n: n.start):
            if end is not None and n.start <= end + 1e-9:
                end = max(end, n.end)
                continue
            if end is not None:
                spans.add((pitch, start, end))
            start, end = n.start, n.end
        spans.add((pitch, start, end))
    return spans


def plain(piece: Piece) -> Counter:
    return Counter((n.pitch, n.start, n.duration) for n in piece.notes)


# -- piano roll --------------------------------------------------------------------------------
def test_piano_roll_shape_and_round_trip():
    roll = PianoRoll(grid=0.25)
    assert roll.size == 46 and (roll.low, roll.high) == (36, 81)
    for seed in range(5):
        piece = random_piece(seed)
        x = roll.encode(piece)
        assert x.dtype == np.float32 and x.shape == (int(piece.end() / 0.25), 46)
        assert set(np.unique(x)) <= {0.0, 1.0}
        back = roll.decode(x)
        assert sounding(back) == sounding(piece) and back.num_voices() == 1
    assert PianoRoll().encode(Piece([])).shape == (0, 46)


def test_piano_roll_samples_frame_starts():
    piece = Piece([Note(60, 0, 0.5), Note(62, 0.5, 1), Note(64, 1.5, 2.5)])
    x = PianoRoll(grid=1.0, low=60, high=64).encode(piece)
    # the 8th note at 0.5 covers no frame start: it vanishes on a quarter-note grid
    assert x[:, [0, 2, 4]].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]]
    probs = x * 0.9 + 0.05
    assert PianoRoll(grid=1.0, low=60, high=64).decode(probs).notes == [
        Note(60, 0, 1), Note(62, 1, 1), Note(64, 2, 2)]


def test_piano_roll_range_error_suggests_transposition():
    roll = PianoRoll(low=60, high=72)
    with pytest.raises(ValueError, match=r"pitches 74..74 \(D5..D5\), outside .* 60..72 .*"
                                         r"transpose it \(piece.transpose\(s\), s in -12..-2"):
        roll.encode(Piece([Note(74, 0, 1)], name="x"))
    with pytest.raises(ValueError, match="widen"):
        roll.encode(Piece([Note(40, 0, 1), Note(90, 0, 1)]))
    with pytest.raises(ValueError, match=r"shape \[T, 13\]"):
        roll.decode(np.zeros((4, 12)))
    with pytest.raises(ValueError, match="low <= high"):
        PianoRoll(low=80, high=60)
    with pytest.raises(ValueError, match="grid"):
        PianoRoll(grid=0)


def test_features_beats_and_fermatas():
    # 3/4 with a one-beat pick-up: bar lines at 1, 4, 7; a fermata on the chord at 4
    piece = Piece([Note(60, 0, 1), Note(62, 1, 3), Note(64, 4, 2), Note(48, 4, 1, voice=1),
                   Note(65, 6, 1)], time_signature=(3, 4), pickup=1.0, fermatas=[4.0])
    f = PianoRoll(grid=1.0).features(piece)
    assert f.shape == (7, 3) and f.dtype == np.float32
    phase = np.arctan2(f[:, 0], f[:, 1]) / (2 * np.pi) % 1 * 3  # beat within the bar
    np.testing.assert_allclose(phase, [2, 0, 1, 2, 0, 1, 2], atol=1e-5)
    assert f[:, 2].tolist() == [0, 0, 0, 0, 1, 1, 0]  # the fermata holds to the longest note
    f = PianoRoll(grid=0.5).features(Piece([Note(60, 0, 2)], fermatas=[1.0]))
    assert f[:, 2].tolist() == [0, 0, 1, 0]  # no note starts there: one frame


# -- events ------------------------------------------------------------------------------------
def test_event_vocab_layout():
    vocab = EventVocab()
    assert len(vocab) == 3 + 256 + 16 and len(EventVocab(steps=8, velocity=True)) == 299
    assert (vocab.PAD, vocab.BOS, vocab.EOS) == (0, 1, 2)
    assert vocab.describe(3 + 60) == "NOTE_ON(60 C4)"
    assert vocab.describe(131 + 61) == "NOTE_OFF(61 C#4)"
    assert vocab.describe(259 + 3) == "TIME_SHIFT(4 = 1 quarter notes)"
    assert EventVocab(steps=8, velocity=True).describe(267 + 20) == "VELOCITY(20: 80)"
    with pytest.raises(ValueError, match="outside this vocabulary"):
        vocab.describe(len(vocab))
    with pytest.raises(ValueError, match="steps"):
        EventVocab(steps=0)


@pytest.mark.parametrize("velocity", [False, True])
def test_event_round_trip_exact(velocity):
    vocab = EventVocab(steps=16, grid=0.25, velocity=velocity)
    for seed in range(6):
        piece = random_piece(seed, voices=3, velocity=velocity)
        tokens = vocab.encode(piece)
        assert tokens[0] == vocab.BOS and tokens[-1] == vocab.EOS
        assert all(0 <= t < len(vocab) for t in tokens)
        back = vocab.decode(tokens)
        assert back.num_voices() <= 1
        if not any(a.pitch == b.pitch and a.start < b.start < a.end
                   for a in piece.notes for b in piece.notes):
            assert plain(back) == plain(piece)
        if velocity:
            want = Counter((n.pitch, n.start, max(1, n.velocity // 4 * 4)) for n in piece.notes)
            assert Counter((n.pitch, n.start, n.velocity) for n in back.notes) == want
        else:
            assert {n.velocity for n in back.notes} == {80}


def test_event_long_gaps_and_order_at_one_time():
    vocab = EventVocab(steps=4, grid=0.25)
    piece = Piece([Note(62, 0, 1), Note(60, 1, 1), Note(64, 1, 1), Note(67, 5.25, 1)])
    tokens = vocab.encode(piece)
    names = [vocab.describe(t) for t in tokens]
    i = names.index("NOTE_OFF(62 D4)")
    assert names[i:i + 3] == ["NOTE_OFF(62 D4)", "NOTE_ON(60 C4)", "NOTE_ON(64 E4)"]
    # 1 + 1 quarters of notes, a gap of 3.25 = 4 + 4 + 4 + 1 steps, then the last note's 1
    assert names.count("TIME_SHIFT(4 = 1 quarter notes)") == 6
    assert names.count("TIME_SHIFT(1 = 0.25 quarter notes)") == 1
    assert vocab.decode(tokens).notes == piece.notes


def test_event_unisons_keep_onsets_and_ends():
    # a nested unison (the alto's A holds while the soprano passes through A): events pair
    # first-in first-out, so the ends swap, but every onset and end of each pitch stays
    piece = Piece([Note(69, 0, 2, voice=1), Note(69, 1, 0.5, voice=0)])
    back = EventVocab().decode(EventVocab().encode(piece))
    assert sorted((n.start, n.end) for n in back.notes) == [(0, 1.5), (1, 2)]
    assert sorted(n.start for n in back.notes) == [0, 1] and sorted(n.end for n in back.notes)\
        == [1.5, 2]
    crossing = Piece([Note(69, 0, 2), Note(69, 1, 2, voice=1)])
    assert plain(EventVocab().decode(EventVocab().encode(crossing))) == plain(crossing)


def test_event_off_grid_names_the_fix():
    with pytest.raises(ValueError, match=r"not on the grid of 0.25 .*quantize\(piece, 0.25\)"):
        EventVocab().encode(Piece([Note(60, 0.125, 1)]))


def test_event_decode_is_forgiving():
    vocab = EventVocab(steps=4, grid=0.5)
    on, off, shift = vocab.NOTE_ON, vocab.NOTE_OFF, vocab.TIME_SHIFT
    tokens = [vocab.PAD, vocab.BOS, on + 60, off + 72, shift + 1, on + 64, off + 60, on + 67]
    piece = vocab.decode(np.array(tokens))  # no EOS; a stray NOTE_OFF; notes left sounding
    assert [(n.pitch, n.start, n.duration) for n in piece.notes] == [
        (60, 0, 1), (64, 1, 0.5), (67, 1, 0.5)]
    assert vocab.decode([vocab.BOS, on + 60, vocab.EOS, on + 62]).notes == [Note(60, 0, 0.5)]
    with pytest.raises(ValueError, match="outside this vocabulary"):
        vocab.decode([9999])


# -- voice frames ------------------------------------------------------------------------------
def test_voice_frames_round_trip_exact():
    vf = VoiceFrames(grid=0.25, voices=4, low=36, high=81)
    assert vf.vocab_size == 48
    for seed in range(6):
        piece = random_piece(seed)
        x = vf.encode(piece)
        assert x.dtype == np.int64 and x.shape == (int(piece.end() / 0.25), 4)
        assert x.min() >= 0 and x.max() < vf.vocab_size
        back = vf.decode(x)
        assert [(n.pitch, n.start, n.duration, n.voice) for n in back.notes] == \
            [(n.pitch, n.start, n.duration, n.voice) for n in piece.notes]


def test_voice_frames_tokens():
    vf = VoiceFrames(grid=0.5, voices=2, low=60, high=72)
    piece = Piece([Note(60, 0, 1), Note(60, 1, 0.5), Note(72, 0.5, 1, voice=1)])
    assert vf.encode(piece).tolist() == [[2, 0], [1, 14], [2, 1]]
    # a HOLD with nothing to hold is a rest
    assert vf.decode(np.array([[1, 0], [3, 1], [1, 1]])).notes == [Note(61, 0.5, 1)]


@pytest.mark.parametrize("piece, match", [
    (Piece([Note(60, 0, 1), Note(64, 0.5, 1)]), "plays two notes at once"),
    (Piece([Note(60, 0, 1), Note(64, 0, 1)]), "plays two notes at once"),
    (Piece([Note(60, 0, 1, voice=4)]), r"5 voices, this encoding 4: use VoiceFrames\(voices=5"),
    (Piece([Note(60, 0, 0.1)]), "not on the grid"),
    (Piece([Note(30, 0, 1)]), r"outside the encoding's range 36..81 .*transpose"),
])
def test_voice_frames_refuses(piece, match):
    with pytest.raises(ValueError, match=match):
        VoiceFrames().encode(piece)


def test_voice_frames_decode_checks():
    vf = VoiceFrames(voices=2)
    with pytest.raises(ValueError, match=r"shape \[T, 2\]"):
        vf.decode(np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="tokens must be in"):
        vf.decode(np.full((3, 2), vf.vocab_size))


# -- transforms --------------------------------------------------------------------------------
def test_transpositions_keep_intervals_and_range():
    piece = Piece([Note(50, 0, 1), Note(57, 0, 1, voice=1), Note(62, 1, 1)], key="D major")
    ups = transpositions(piece, 45, 66)
    shifts = [p.notes[0].pitch - 50 for p in ups]
    assert shifts == [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4]  # -6 and +5 leave 45..66
    for p, s in zip(ups, shifts):
        assert [n.pitch - s for n in p.notes] == [n.pitch for n in piece.notes]
        assert min(n.pitch for n in p.notes) >= 45 and max(n.pitch for n in p.notes) <= 66
    assert ups[5] == piece and ups[6].key == "Eb major"
    assert len(transpositions(piece, 0, 127)) == 12 and transpositions(piece, 55, 60) == []


def test_quantize():
    piece = Piece([Note(60, 0.1, 0.4), Note(64, 0.1, 0.4, voice=0), Note(67, 0.6, 0.05),
                   Note(48, 0, 1.02, voice=1)], fermatas=[1.9])
    q = quantize(piece, 0.5)
    assert [(n.pitch, n.start, n.duration, n.voice) for n in q.notes] == [
        (60, 0, 0.5, 0), (64, 0, 0.5, 0), (48, 0, 1, 1), (67, 0.5, 0.5, 0)]
    assert q.fermatas == [2.0]
    on_grid = random_piece(3)
    assert quantize(on_grid, 0.25) == on_grid
    for seed in range(20):  # a voice that played one note at a time still does
        fine = random_piece(seed, grid=1 / 8)
        coarse = quantize(fine, 0.25)
        assert VoiceFrames(grid=0.25).decode(VoiceFrames(grid=0.25).encode(coarse)).notes == [
            Note(n.pitch, n.start, n.duration, n.voice) for n in coarse.notes]
        assert quantize(coarse, 0.25) == coarse


def test_pitch_name():
    assert [pitch_name(p) for p in (21, 60, 61, 108)] == ["A0", "C4", "C#4", "C8"]
