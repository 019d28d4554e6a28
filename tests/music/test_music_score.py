"""rnnkit.music.score: notes and pieces, reading and writing score files."""

from __future__ import annotations

import os
import struct

import pytest

pytest.importorskip("music21", reason="rnnkit[music] (music21, Python >= 3.11) not installed")

from rnnkit.music.score import (  # noqa: E402
    FORMATS,
    Note,
    Piece,
    ScoreError,
    piece_from_music21,
    read_score,
    transpose_key,
    write_midi,
    write_musicxml,
)


def notes_of(piece: Piece) -> list[tuple]:
    return [(n.pitch, n.start, n.duration, n.voice) for n in piece.notes]


def chorale_like() -> Piece:
    """Two voices in 3/4 with a pick-up of one beat, a chord, a tie across a bar line, a
    triplet and fermatas."""
    top = [Note(67, 0, 1), Note(71, 1, 1.5), Note(69, 2.5, 0.5), Note(67, 3, 2),  # over bar 4
           Note(72, 5, 1 / 3), Note(74, 5 + 1 / 3, 1 / 3), Note(76, 5 + 2 / 3, 1 / 3),
           Note(74, 6, 1)]
    low = [Note(55, 0, 1), Note(59, 1, 2), Note(48, 3, 1), Note(52, 3, 1),  # a chord
           Note(50, 4, 3)]
    return Piece(top + [Note(n.pitch, n.start, n.duration, voice=1) for n in low],
                 name="tiny", tempo=72, time_signature=(3, 4), key="G major",
                 fermatas=[4.0, 6.0], pickup=1.0)


# -- data --------------------------------------------------------------------------------------
def test_note_checks_its_fields():
    assert Note(60, 1, 2).end == 3.0
    for bad, match in [(dict(pitch=128), "0..127"), (dict(start=-1), "start"),
                       (dict(duration=0), "duration"), (dict(voice=-1), "voice"),
                       (dict(velocity=200), "velocity"), (dict(start=float("nan")), "start")]:
        fields = dict(pitch=60, start=0.0, duration=1.0) | bad
        with pytest.raises(ValueError, match=match):
            Note(**fields)


def test_piece_sorts_notes_and_answers_questions():
    a, b, c = Note(60, 1, 1, voice=1), Note(64, 0, 2), Note(67, 0, 0.5, voice=2)
    piece = Piece([a, b, c], fermatas=[3, 1, 1])
    assert piece.notes == [b, c, a] and piece == Piece([c, a, b], fermatas=[1, 3])
    assert piece.fermatas == [1.0, 3.0]
    assert piece.end() == 2.0 and piece.num_voices() == 3
    assert piece.voice(1) == [a] and piece.voice(5) == []
    assert Piece([]).end() == 0.0 and Piece([]).num_voices() == 0
    assert Piece([], time_signature=(6, 8)).bar_length == 3.0
    with pytest.raises(ValueError, match="pickup"):
        Piece([], time_signature=(3, 4), pickup=3.0)
    with pytest.raises(ValueError, match="tempo"):
        Piece([], tempo=0)


def test_transpose_keeps_intervals_and_moves_the_key():
    piece = chorale_like()
    up = piece.transpose(5)
    assert [n.pitch - 5 for n in up.notes] == [n.pitch for n in piece.notes]
    assert [(n.start, n.duration, n.voice) for n in up.notes] == \
        [(n.start, n.duration, n.voice) for n in piece.notes]
    assert up.key == "C major" and piece.key == "G major"  # the original is untouched
    assert up.fermatas == piece.fermatas and up.pickup == piece.pickup
    assert up.transpose(-5) == piece
    with pytest.raises(ValueError, match="0..127"):
        piece.transpose(60)


@pytest.mark.parametrize("key, shift, expected", [
    ("G major", 1, "Ab major"), ("e minor", 1, "F minor"), ("B- major", 2, "C major"),
    ("F# minor", -6, "C minor"), ("C major", 13, "Db major"), ("A dorian", 2, "B dorian"),
    (None, 3, None), ("weird", 0, "weird"), ("weird", 1, None),
])
def test_transpose_key(key, shift, expected):
    assert transpose_key(key, shift) == expected


# -- files -------------------------------------------------------------------------------------
def test_midi_round_trip(tmp_path):
    piece = chorale_like()
    loud = Piece([Note(n.pitch, n.start, n.duration, n.voice, velocity=40 + n.pitch % 50)
                  for n in piece.notes], name="loud", tempo=72, time_signature=(3, 4),
                 key="G major")
    path = write_midi(loud, tmp_path / "out.mid")
    assert path == os.fspath(tmp_path / "out.mid")
    back = read_score(path)
    assert back.notes == loud.notes  # pitch, start, duration, voice and velocity
    assert back.name == "out" and back.tempo == pytest.approx(72)
    assert back.time_signature == (3, 4) and back.key == "G major"
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []


def test_midi_keeps_unisons_of_voices_apart(tmp_path):
    # voices 0 and 2 overlap on one pitch: separate tracks keep them apart; voice 1 has no
    # notes, so no track: voice 2 comes back as voice 1 (documented)
    piece = Piece([Note(60, 0, 3), Note(60, 1, 1, voice=2), Note(64, 2, 2, voice=2)])
    back = read_score(write_midi(piece, tmp_path / "gap.midi"))
    assert notes_of(back) == [(60, 0, 3, 0), (60, 1, 1, 1), (64, 2, 2, 1)]
    dense = Piece([Note(n.pitch, n.start, n.duration, min(n.voice, 1)) for n in piece.notes])
    assert read_score(write_midi(dense, tmp_path / "dense.mid")).notes == dense.notes


def test_musicxml_round_trip(tmp_path):
    piece = chorale_like()
    back = read_score(write_musicxml(piece, tmp_path / "out.musicxml"))
    assert notes_of(back) == notes_of(piece)
    assert back.fermatas == piece.fermatas and back.pickup == piece.pickup
    assert back.key == "G major" and back.time_signature == (3, 4)
    assert back.tempo == pytest.approx(72)
    assert {n.velocity for n in back.notes} == {80}
    # .xml is read the same way; overwriting is atomic and leaves no temporary file
    write_musicxml(piece.transpose(2), tmp_path / "out.musicxml")
    assert read_score(tmp_path / "out.musicxml").key == "A major"
    assert sorted(os.listdir(tmp_path)) == ["out.musicxml"]


def test_musicxml_writes_overlapping_notes_of_one_voice(tmp_path):
    piece = Piece([Note(60, 0, 4), Note(64, 1, 1), Note(67, 2, 0.5)], time_signature=(4, 4))
    back = read_score(write_musicxml(piece, tmp_path / "poly.xml"))
    assert notes_of(back) == notes_of(piece)


def test_writing_nothing_fails_before_touching_the_file(tmp_path):
    for write in (write_midi, write_musicxml):
        with pytest.raises(ValueError, match="no notes"):
            write(Piece([], name="void"), tmp_path / "void.mid")
    assert os.listdir(tmp_path) == []


def test_abc_ties_and_chords(tmp_path):
    (tmp_path / "tune.abc").write_text(
        "X:1\nT:Test\nM:3/4\nL:1/4\nK:D\nA | d2 e- | e [DF] A | d3 |]\n")
    piece = read_score(tmp_path / "tune.abc")
    assert [(n.pitch, n.start, n.duration) for n in piece.notes] == [
        (69, 0, 1), (74, 1, 2), (76, 3, 2), (62, 5, 1), (66, 5, 1), (69, 6, 1), (74, 7, 3)]
    assert piece.key == "D major" and piece.time_signature == (3, 4) and piece.pickup == 1.0


def test_humdrum_spines_become_voices(tmp_path):
    (tmp_path / "two.krn").write_text(
        "**kern\t**kern\n*M2/4\t*M2/4\n=1-\t=1-\n4C\t4c\n4D\t4d\n=2\t=2\n2E\t2e\n==\t==\n"
        "*-\t*-\n")
    piece = read_score(tmp_path / "two.krn")
    assert piece.num_voices() == 2 and piece.time_signature == (2, 4)
    assert sorted((n.pitch, n.start, n.duration) for n in piece.notes) == [
        (48, 0, 1), (50, 1, 1), (52, 2, 2), (60, 0, 1), (62, 1, 1), (64, 2, 2)]


def test_piece_from_music21_chorale():
    from music21 import corpus

    piece = piece_from_music21(corpus.parse("bach/bwv269"))
    assert piece.name == "bach/bwv269" and piece.num_voices() == 4
    assert piece.key == "G major" and piece.time_signature == (3, 4) and piece.pickup == 1.0
    assert piece.fermatas[:3] == [10.0, 19.0, 28.0]
    assert [(n.pitch, n.start, n.duration) for n in piece.voice(0)[:3]] == [
        (67, 0, 1), (67, 1, 2), (74, 3, 1)]


# -- bad input ---------------------------------------------------------------------------------
def _smf(events: list[tuple[int, bytes]]) -> bytes:
    """A one-track standard MIDI file (480 ticks a quarter) from ``(delta, event bytes)``."""

    def vlq(n: int) -> bytes:
        out = [n & 0x7F]
        while n := n >> 7:
            out.append((n & 0x7F) | 0x80)
        return bytes(reversed(out))

    track = b"".join(vlq(d) + e for d, e in events) + b"\x00\xff\x2f\x00"
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk"
            + struct.pack(">I", len(track)) + track)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no score file"):
        read_score(tmp_path / "nope.mid")
    with pytest.raises(FileNotFoundError, match="folder"):
        read_score(tmp_path)


def test_unsupported_extension_names_the_supported_ones(tmp_path):
    (tmp_path / "song.mp3").write_bytes(b"ID3")
    with pytest.raises(ScoreError, match=r"\.mp3 is not a score format") as e:
        read_score(tmp_path / "song.mp3")
    assert all(ext in str(e.value) for ext in FORMATS)
    (tmp_path / "noext").write_text("x")
    with pytest.raises(ScoreError, match="no extension"):
        read_score(tmp_path / "noext")


@pytest.mark.parametrize("name, data", [
    ("bad.mid", b"MThd\x00\x00garbage" * 3),
    ("bad.musicxml", b'<score-partwise><part id="P1"><measure'),
    ("bad.mxl", b"PK\x03\x04 not a zip"),
    ("bad.abc", b"this is not abc at all {{{"),
])
def test_corrupt_file_is_named(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ScoreError, match=f"could not parse .*{name} as"):
        read_score(tmp_path / name)
    assert isinstance(ScoreError("x"), ValueError)


@pytest.mark.parametrize("events", [
    [],  # an empty track
    [(0, b"\x99\x24\x64"), (480, b"\x89\x24\x00")],  # a bass drum on channel 10
], ids=["empty", "drums"])
def test_midi_without_pitched_notes(tmp_path, events):
    (tmp_path / "x.mid").write_bytes(_smf(events))
    with pytest.raises(ScoreError, match="no pitched notes: the MIDI file is empty or holds "
                                         "only unpitched percussion"):
        read_score(tmp_path / "x.mid")


def test_hand_made_midi_reads(tmp_path):
    (tmp_path / "c.mid").write_bytes(_smf([(0, b"\x90\x3c\x64"), (480, b"\x80\x3c\x00")]))
    assert read_score(tmp_path / "c.mid").notes == [Note(60, 0, 1, velocity=100)]
