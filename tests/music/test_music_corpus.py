"""rnnkit.music.corpus: the chorales and folk songs of music21's corpus, their cache, the
split; and every encoding's round trip on real chorales (5 here, all of them with -m slow)."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("music21", reason="rnnkit[music] (music21, Python >= 3.11) not installed")

from rnnkit.music import corpus  # noqa: E402
from rnnkit.music.encoding import EventVocab, PianoRoll, VoiceFrames, quantize  # noqa: E402
from rnnkit.music.score import Note, Piece  # noqa: E402

FIVE = ["bach/bwv269", "bach/bwv347", "bach/bwv36.4-2", "bach/bwv10.7", "bach/bwv145-a"]
#: chorales with 32nd notes, off a 16th grid
OFF_GRID = {"bach/bwv36.4-2", "bach/bwv432"}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    return tmp_path / "music"


@pytest.fixture(scope="module")
def five() -> list[Piece]:
    return [corpus.chorale(name) for name in FIVE]


# -- round trips on real chorales --------------------------------------------------------------
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


def nested_unison(piece: Piece) -> bool:
    """A note lying strictly inside a longer one of the same pitch (two voices)."""
    by_pitch: dict[int, list[Note]] = {}
    for n in piece.notes:
        by_pitch.setdefault(n.pitch, []).append(n)
    return any(a.start < b.start and b.end < a.end
               for ns in by_pitch.values() for a in ns for b in ns)


def check_round_trips(pieces: list[Piece]) -> dict[str, int]:
    """PianoRoll (16ths): the same sounding spans; VoiceFrames: exact per voice; EventVocab:
    exact notes, or for a nested unison exact onsets and ends per pitch. Chorales off the 16th
    grid must be refused, and round-trip once quantised."""
    roll, frames, events = PianoRoll(grid=0.25), VoiceFrames(grid=0.25), EventVocab()
    counts = Counter()
    for piece in pieces:
        if piece.name in OFF_GRID:
            with pytest.raises(ValueError, match="not on the grid"):
                frames.encode(piece)
            with pytest.raises(ValueError, match="not on the grid"):
                events.encode(piece)
            piece = quantize(piece, 0.25)
            counts["quantised"] += 1
        assert sounding(roll.decode(roll.encode(piece))) == sounding(piece), piece.name

        voiced = [(n.pitch, n.start, n.duration, n.voice) for n in piece.notes]
        back = frames.decode(frames.encode(piece))
        assert [(n.pitch, n.start, n.duration, n.voice) for n in back.notes] == voiced, \
            piece.name

        back = events.decode(events.encode(piece))
        if nested_unison(piece):
            counts["nested unison"] += 1
            assert Counter((n.pitch, n.start) for n in back.notes) == \
                Counter((n.pitch, n.start) for n in piece.notes), piece.name
            assert Counter((n.pitch, n.end) for n in back.notes) == \
                Counter((n.pitch, n.end) for n in piece.notes), piece.name
        else:
            assert Counter((n.pitch, n.start, n.duration) for n in back.notes) == \
                Counter((n.pitch, n.start, n.duration) for n in piece.notes), piece.name
        counts["checked"] += 1
    return counts


def test_five_chorales(five):
    for piece, name in zip(five, FIVE):
        assert piece.name == name and piece.num_voices() == 4
        assert piece.key is not None and piece.fermatas and piece.time_signature[1] == 4
        means = [np.mean([n.pitch for n in piece.voice(v)]) for v in range(4)]
        assert means == sorted(means, reverse=True)  # soprano, alto, tenor, bass
        lo, hi = min(n.pitch for n in piece.notes), max(n.pitch for n in piece.notes)
        assert 36 <= lo and hi <= 81
    assert five[0].pickup == 1.0 and five[0].key == "G major"


def test_five_chorales_round_trip(five):
    counts = check_round_trips(five)
    assert counts == {"checked": 5, "quantised": 1, "nested unison": 2}


def test_chorale_with_instruments_is_left_out():
    assert corpus.chorale("bach/bwv8.6") is None  # soprano, alto, tenor, bass, continuo


@pytest.mark.slow
def test_all_chorales_round_trip(all_chorales):
    pieces, _ = all_chorales
    t = time.perf_counter()
    counts = check_round_trips(pieces)
    print(f"round trips of {len(pieces)} chorales: {time.perf_counter() - t:.1f} s, {counts}")
    assert counts["checked"] == len(pieces) and counts["quantised"] == len(OFF_GRID)


# -- the chorales and their cache --------------------------------------------------------------
@pytest.fixture(scope="session")
def all_chorales(tmp_path_factory):
    """Every chorale, parsed into a fresh cache once a session (about 45 s)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RNNKIT_CACHE", str(tmp_path_factory.mktemp("rnnkit-cache")))
        t = time.perf_counter()
        pieces = corpus.chorales()
        print(f"chorale cache built in {time.perf_counter() - t:.1f} s")
        yield pieces, corpus.cache_dir()


@pytest.mark.slow
def test_all_chorales_cached(all_chorales, monkeypatch):
    pieces, folder = all_chorales
    assert len(pieces) == 331 and all(p.num_voices() == 4 for p in pieces)
    assert len({p.name for p in pieces}) == len(pieces)
    assert all(p.key and p.fermatas for p in pieces)
    monkeypatch.setenv("RNNKIT_CACHE", str(folder.parent))
    monkeypatch.setattr(corpus, "chorale", _no_parsing)
    t = time.perf_counter()
    again = corpus.chorales()
    took = time.perf_counter() - t
    print(f"chorale cache loaded in {took:.2f} s")
    assert again == pieces and took < 2.0  # 0.3 s on a quiet machine: slack for a busy one
    parts = corpus.split(pieces)
    assert [len(parts[k]) for k in corpus.SPLITS] == [262, 32, 37]  # pinned: names' hashes


def _no_parsing(name):
    raise AssertionError(f"parsed {name} although the cache holds it")


def test_cache_builds_once_then_loads(cache, monkeypatch):
    monkeypatch.setattr(corpus, "chorale_names", lambda: FIVE[:3] + ["bach/bwv8.6"])
    first = corpus.chorales()
    assert [p.name for p in first] == FIVE[:3] and (cache / "chorales.npz").is_file()
    monkeypatch.setattr(corpus, "chorale", _no_parsing)
    assert corpus.chorales() == first


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other music21", "other format"])
def test_cache_is_rebuilt_when_damaged_or_stale(cache, monkeypatch, damage):
    one = Piece([Note(60, 0, 1)], name="fake/one")
    built = []
    monkeypatch.setattr(corpus, "chorale_names", lambda: ["fake/one"])
    monkeypatch.setattr(corpus, "chorale", lambda name: built.append(name) or one)
    assert corpus.chorales() == [one] and built == ["fake/one"]
    path = cache / "chorales.npz"
    if damage == "garbage":
        path.write_bytes(b"not a zip file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "other music21":
        monkeypatch.setattr(corpus, "_music21_version", lambda: "0.0.1")
    else:
        monkeypatch.setattr(corpus, "CACHE_FORMAT", "rnnkit.music.pieces/0")
    assert corpus.chorales() == [one] and built == ["fake/one"] * 2
    assert corpus.chorales() == [one] and built == ["fake/one"] * 2  # rewritten: loads now


def test_save_and_load_pieces(tmp_path):
    pieces = [Piece([Note(60, 0, 1 / 3, 0, 90), Note(48, 1 / 3, 2, 3, 1)], name="a",
                    tempo=66.5, time_signature=(6, 8), key="F# minor", fermatas=[1.0, 2.5],
                    pickup=1.5),
              Piece([], name="empty"), Piece([Note(127, 1000.25, 0.125)], name="b")]
    corpus.save_pieces(pieces, tmp_path / "p.npz", note="x")
    back, header = corpus.load_pieces(tmp_path / "p.npz")
    assert back == pieces and header["note"] == "x" and header["format"] == corpus.CACHE_FORMAT
    (tmp_path / "bad.npz").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="bad.npz"):
        corpus.load_pieces(tmp_path / "bad.npz")
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="foreign.npz is not a readable"):
        corpus.load_pieces(tmp_path / "foreign.npz")
    with pytest.raises(FileNotFoundError):
        corpus.load_pieces(tmp_path / "missing.npz")


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    assert corpus.cache_dir() == tmp_path / "music"
    monkeypatch.delenv("RNNKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert corpus.cache_dir() == tmp_path / "xdg" / "rnnkit" / "music"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert corpus.cache_dir() == Path.home() / ".cache" / "rnnkit" / "music"


# -- folk songs --------------------------------------------------------------------------------
def test_folk_melodies_limit_parses_only_what_it_needs(cache):
    songs = corpus.folk_melodies(limit=5)
    assert len(songs) == 5 and all(p.num_voices() == 1 for p in songs)
    assert [p.name for p in songs] == [f"essen/altdeu10/{i}" for i in range(1, 6)]
    assert all(p.key and p.time_signature for p in songs)
    assert not cache.exists()  # a part of a file is not cached
    assert corpus.folk_melodies(limit=0) == []
    with pytest.raises(ValueError, match="limit"):
        corpus.folk_melodies(limit=-1)


def test_folk_melodies_cached_by_file(cache, monkeypatch):
    small = next(p for p in corpus.folk_files() if p.name == "erk5.abc")  # 27 tunes
    monkeypatch.setattr(corpus, "folk_files", lambda: [small])
    songs = corpus.folk_melodies()
    assert len(songs) == 27 and (cache / "essen-erk5.npz").is_file()
    assert len({p.name for p in songs}) == 27
    monkeypatch.setattr(corpus, "_folk_tune", _no_parsing)
    assert corpus.folk_melodies() == songs and corpus.folk_melodies(limit=3) == songs[:3]


def test_folk_files():
    names = [p.name for p in corpus.folk_files()]
    assert len(names) == 27 and "han1.abc" in names and not any(n.startswith("test")
                                                                  for n in names)


# -- split -------------------------------------------------------------------------------------
def _named(n: int) -> list[Piece]:
    return [Piece([Note(60, 0, 1)], name=f"piece/{i}") for i in range(n)]


def test_split_is_a_function_of_the_name():
    pieces = _named(1000)
    parts = corpus.split(pieces)
    assert sum(len(v) for v in parts.values()) == 1000 and list(parts) == ["train", "valid",
                                                                           "test"]
    assert 740 < len(parts["train"]) < 860 and 60 < len(parts["valid"]) < 140
    where = {p.name: k for k, v in parts.items() for p in v}
    shuffled = pieces[:]
    random.Random(0).shuffle(shuffled)
    for subset in (shuffled, shuffled[:37], pieces[500:]):
        for k, v in corpus.split(subset).items():
            assert all(where[p.name] == k for p in v)
    assert [p.name for p in corpus.split(shuffled)["test"]] == \
        [p.name for p in shuffled if where[p.name] == "test"]  # the given order within a part
    assert corpus.split_of("piece/0") == where["piece/0"]
    assert [corpus.split_of(f"piece/{i}") for i in range(6)] == [
        where[f"piece/{i}"] for i in range(6)]


def test_split_pinned_across_machines():
    # SHA-256 of the name: the same on every machine, Python and run (whatever PYTHONHASHSEED)
    got = {f"piece/{i}": corpus.split_of(f"piece/{i}") for i in range(17)}
    assert {k: v for k, v in got.items() if v != "train"} == {
        "piece/8": "valid", "piece/12": "test", "piece/15": "test", "piece/16": "test"}
    assert corpus.split_of("bach/bwv269") == "train"  # u = 0.362...
    assert corpus.split_of("bach/bwv269", (0.3, 0.1, 0.6)) == "valid"
    assert corpus.split_of("bach/bwv269", (0.3, 0.05, 0.65)) == "test"


def test_split_checks():
    with pytest.raises(ValueError, match="summing to 1"):
        corpus.split(_named(3), (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="three numbers"):
        corpus.split(_named(3), (0.5, 0.5))
    with pytest.raises(ValueError, match="name"):
        corpus.split([Piece([])])
    assert corpus.split(_named(50), (1, 0, 0))["train"] == _named(50)
    assert corpus.split([]) == {"train": [], "valid": [], "test": []}


def test_music_wing_is_lazy():
    import subprocess
    import sys

    code = ("import sys, rnnkit.music as m; m.Piece; m.PianoRoll; "
            "print(sorted(k for k in ('music21', 'torch') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(
                             Path(corpus.__file__).parents[2])}).stdout
    assert out.strip() == "[]"
