"""Scores as plain data: :class:`Note` and :class:`Piece`, read from and written to files.

A :class:`Piece` is a list of notes with the little a model needs besides them (tempo, metre,
key, fermatas, the pick-up). All times are in **quarter notes** (a quarter = 1.0, a 16th =
0.25) measured from the start of the piece, never in seconds: the tempo turns them into
seconds only when a MIDI file is played. No torch here, and music21 is imported only by the
functions that read or write files.

* :func:`read_score` reads MIDI (``.mid``, ``.midi``), MusicXML (``.xml``, ``.musicxml``,
  ``.mxl``), ABC (``.abc``) and Humdrum (``.krn``) through music21: parts become voices in
  order, tied notes become one note, a chord in a part becomes several notes of that voice.
* :func:`write_midi` and :func:`write_musicxml` write a piece back (atomically: a temporary
  file in the same folder, then ``os.replace``).
* :func:`piece_from_music21` and :func:`piece_to_music21` convert from and to music21 streams.

>>> piece = Piece([Note(60, 0.0, 1.0), Note(64, 1.0, 1.0), Note(67, 2.0, 2.0)], name="C")
>>> piece.end(), piece.num_voices(), [n.pitch for n in piece.transpose(2).notes]
(4.0, 1, [62, 66, 69])
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes

__all__ = [
    "FORMATS",
    "Note",
    "Piece",
    "ScoreError",
    "piece_from_music21",
    "piece_to_music21",
    "pitch_name",
    "read_score",
    "transpose_key",
    "write_midi",
    "write_musicxml",
]

#: file extension -> the format :func:`read_score` reads it as
FORMATS: dict[str, str] = {
    ".mid": "MIDI", ".midi": "MIDI",
    ".xml": "MusicXML", ".musicxml": "MusicXML", ".mxl": "MusicXML",
    ".abc": "ABC",
    ".krn": "Humdrum",
}

_INSTALL = 'pip install "rnnkit[music]" (music21 needs Python >= 3.11)'


class ScoreError(ValueError):
    """A score file that cannot be used: unsupported extension, unreadable, or without notes."""


# -- data --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Note:
    """One note.

    ``pitch`` is the MIDI number (0..127, middle C = 60); ``start`` and ``duration`` are in
    quarter notes (``start >= 0``, ``duration > 0``); ``voice`` is the part it belongs to
    (0 = the top part of a score, soprano in a chorale); ``velocity`` is MIDI loudness
    (0..127; files without one, such as MusicXML, read as 80).

    >>> Note(60, 0.5, 1)
    Note(pitch=60, start=0.5, duration=1.0, voice=0, velocity=80)
    >>> Note(60, 0, 0)
    Traceback (most recent call last):
    ...
    ValueError: a note's duration must be > 0 quarter notes, got 0.0 (pitch 60 at 0.0)
    """

    pitch: int
    start: float
    duration: float
    voice: int = 0
    velocity: int = 80

    def __post_init__(self) -> None:
        # hot: a cache load builds ~10^5 notes, so one check on the usual path
        p, start, duration, voice, velocity = (self.pitch, self.start, self.duration,
                                               self.voice, self.velocity)
        if not (type(start) is float and type(duration) is float and type(p) is int
                and type(voice) is int and type(velocity) is int):
            p, start, duration = int(p), float(start), float(duration)
            voice, velocity = int(voice), int(velocity)
            for name, value in (("pitch", p), ("start", start), ("duration", duration),
                                ("voice", voice), ("velocity", velocity)):
                object.__setattr__(self, name, value)
        if not (0 <= p <= 127 and 0.0 <= start < math.inf and 0.0 < duration < math.inf
                and voice >= 0 and 0 <= velocity <= 127):
            self._complain()

    def _complain(self) -> None:
        if not 0 <= self.pitch <= 127:
            raise ValueError(f"a note's pitch must be a MIDI number in 0..127, got {self.pitch}")
        if not (math.isfinite(self.start) and self.start >= 0):
            raise ValueError(f"a note's start must be >= 0 quarter notes, got {self.start} "
                             f"(pitch {self.pitch})")
        if not (math.isfinite(self.duration) and self.duration > 0):
            raise ValueError(f"a note's duration must be > 0 quarter notes, got "
                             f"{self.duration} (pitch {self.pitch} at {self.start})")
        if self.voice < 0:
            raise ValueError(f"a note's voice must be >= 0, got {self.voice}")
        raise ValueError(f"a note's velocity must be in 0..127, got {self.velocity}")

    @property
    def end(self) -> float:
        """When the note stops, in quarter notes (``start + duration``)."""
        return self.start + self.duration


@dataclass
class Piece:
    """A piece of music: notes plus what a model needs to know about them.

    * ``notes``: kept sorted by ``(start, voice, pitch, duration)``, so two pieces with the same
      notes compare equal whatever order they were given in.
    * ``name``: an identifier (``"bach/bwv269"``, a file's stem); :func:`~rnnkit.music.corpus.
      split` hashes it, so it should be unique within a collection.
    * ``tempo``: quarter notes per minute (only MIDI playback uses it).
    * ``time_signature``: ``(numerator, denominator)``, the first one if the piece changes
      metre; a bar lasts ``4 * numerator / denominator`` quarter notes.
    * ``key``: ``"G major"``, ``"F# minor"``, ``"Bb major"`` (tonic, then mode) or ``None``.
    * ``fermatas``: onsets (quarter notes) of the beats that carry a fermata, sorted.
    * ``pickup``: length in quarter notes of an incomplete first bar (an anacrusis), 0 if the
      piece starts on a downbeat: bar lines fall at ``pickup + k * bar`` (``k = 0, 1, ...``).
    """

    notes: list[Note]
    name: str = ""
    tempo: float = 100.0
    time_signature: tuple[int, int] = (4, 4)
    key: str | None = None
    fermatas: list[float] = field(default_factory=list)
    pickup: float = 0.0

    def __post_init__(self) -> None:
        self.notes = sorted(self.notes, key=_note_order)
        self.fermatas = sorted({float(f) for f in self.fermatas})
        self.time_signature = (int(self.time_signature[0]), int(self.time_signature[1]))
        self.tempo = float(self.tempo)
        self.pickup = float(self.pickup)
        if self.tempo <= 0:
            raise ValueError(f"tempo must be > 0 quarter notes per minute, got {self.tempo}")
        if self.time_signature[0] <= 0 or self.time_signature[1] <= 0:
            raise ValueError(f"time_signature must be two positive ints, got "
                             f"{self.time_signature}")
        if not 0 <= self.pickup < self.bar_length:
            raise ValueError(f"pickup must be in [0, {self.bar_length}) quarter notes (one bar "
                             f"of {self.time_signature[0]}/{self.time_signature[1]}), got "
                             f"{self.pickup}")

    @property
    def bar_length(self) -> float:
        """Quarter notes in one bar of :attr:`time_signature` (4/4: 4.0, 3/4: 3.0, 6/8: 3.0)."""
        num, den = self.time_signature
        return 4.0 * num / den

    def end(self) -> float:
        """When the last note stops, in quarter notes (0.0 for a piece without notes)."""
        return max((n.end for n in self.notes), default=0.0)

    def num_voices(self) -> int:
        """``1 +`` the highest voice number (0 for a piece without notes)."""
        return max((n.voice for n in self.notes), default=-1) + 1

    def voice(self, v: int) -> list[Note]:
        """The notes of voice ``v``, in time order."""
        return [n for n in self.notes if n.voice == v]

    def transpose(self, semitones: int) -> Piece:
        """A copy shifted by ``semitones`` (the key too); raises ``ValueError`` if a note would
        leave MIDI's 0..127.

        >>> Piece([Note(60, 0, 1)], key="Bb major").transpose(-3).key
        'G major'
        """
        semitones = int(semitones)
        pitches = [n.pitch + semitones for n in self.notes]
        if pitches and not (0 <= min(pitches) and max(pitches) <= 127):
            raise ValueError(f"transposing {self.name or 'the piece'} by {semitones} semitones "
                             f"puts notes at {min(pitches)}..{max(pitches)}, outside MIDI's "
                             f"0..127")
        return replace(self, notes=[replace(n, pitch=p) for n, p in zip(self.notes, pitches)],
                       key=transpose_key(self.key, semitones), fermatas=list(self.fermatas))


def _note_order(n: Note) -> tuple:
    return (n.start, n.voice, n.pitch, n.duration, n.velocity)


# -- names -------------------------------------------------------------------------------------
_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]


def pitch_name(pitch: int) -> str:
    """``60 -> "C4"`` (scientific pitch notation: middle C = C4, A4 = 69).

    >>> pitch_name(60), pitch_name(70), pitch_name(21)
    ('C4', 'Bb4', 'A0')
    """
    return f"{_NAMES[pitch % 12]}{pitch // 12 - 1}"


_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
#: the usual spelling of each tonic (pitch class 0..11) for major and minor keys
_MAJOR = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_MINOR = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]
_KEY = re.compile(r"^\s*([A-Ga-g])([#b-]*)\s+(\w+)\s*$")


def transpose_key(key: str | None, semitones: int) -> str | None:
    """The name of ``key`` (``"<tonic> <mode>"``) moved by ``semitones``, spelled the usual way
    (``"Db major"``, ``"C# minor"``); ``None`` if ``key`` is ``None`` or not of that form.

    >>> transpose_key("G major", 1), transpose_key("a minor", 3), transpose_key("E- major", 0)
    ('Ab major', 'C minor', 'Eb major')
    """
    if key is None:
        return None
    m = _KEY.match(key)
    if m is None:
        return key if semitones == 0 else None
    letter, accidentals, mode = m.groups()
    pc = _PC[letter.upper()] + accidentals.count("#") - accidentals.count("b") \
        - accidentals.count("-")
    pc = (pc + semitones) % 12
    mode = mode.lower()
    return f"{(_MINOR if mode == 'minor' else _MAJOR)[pc]} {mode}"


# -- music21 -----------------------------------------------------------------------------------
def _music21() -> Any:
    try:
        import music21
    except ImportError as e:
        raise ImportError(f"reading and writing scores needs music21: {_INSTALL}") from e
    return music21


def _key_name(k: Any) -> str:
    return f"{k.tonic.name.replace('-', 'b')} {k.mode}"


def piece_from_music21(score: Any, name: str | None = None) -> Piece:
    """A :class:`Piece` from a music21 ``Score`` (or ``Part``, or an ``Opus``, whose first
    score is taken).

    Parts become voices 0, 1, ... in the score's order (a part without notes keeps its number);
    tied notes are merged into one; each pitch of a chord becomes a note of the chord's voice;
    grace notes (no duration) and unpitched percussion are left out. ``key`` is the first
    ``Key`` of the score; when the score has only a key signature, music21's key analysis
    picks its mode (the signature's major key if the analysis disagrees with the signature).
    ``name`` defaults to the corpus path (``"bach/bwv269"``), else the title, else ``""``.
    """
    _music21()
    from music21 import chord, expressions, key, meter, note, percussion, stream, tempo

    if isinstance(score, stream.Opus):
        scores = list(score.scores)
        if not scores:
            raise ScoreError("the music21 Opus holds no scores")
        score = scores[0]
    parts = list(score.parts) if isinstance(score, stream.Score) else [score]
    if not parts:
        parts = [score]

    notes: list[Note] = []
    fermatas: set[float] = set()
    for v, part in enumerate(parts):
        flat = part.stripTies(inPlace=False).flatten()
        for el in flat.notes:
            if el.duration.isGrace or el.quarterLength <= 0:
                continue
            if isinstance(el, note.Unpitched | percussion.PercussionChord):
                continue
            start, duration = float(el.offset), float(el.quarterLength)
            velocity = el.volume.velocity if el.hasVolumeInformation() else None
            for n in el.notes if isinstance(el, chord.Chord) else (el,):
                own = n.volume.velocity if n.hasVolumeInformation() else None
                vel = own if own is not None else velocity
                notes.append(Note(int(n.pitch.midi), start, duration, v,
                                  80 if vel is None else int(vel)))
            if any(isinstance(e, expressions.Fermata) for e in el.expressions):
                fermatas.add(start)

    time_signature = (4, 4)
    ts = next(iter(score.recurse().getElementsByClass(meter.TimeSignature)), None)
    if ts is not None:
        time_signature = (int(ts.numerator), int(ts.denominator))
    bar = 4.0 * time_signature[0] / time_signature[1]

    key_name = None
    first_key = next(iter(score.recurse().getElementsByClass(key.KeySignature)), None)
    if isinstance(first_key, key.Key):
        key_name = _key_name(first_key)
    elif first_key is not None and notes:
        guess = score.analyze("key")
        if guess.sharps != first_key.sharps:
            guess = first_key.asKey("major")
        key_name = _key_name(guess)

    bpm = 100.0
    mark = next(iter(score.recurse().getElementsByClass(tempo.MetronomeMark)), None)
    if mark is not None and mark.getQuarterBPM():
        bpm = float(mark.getQuarterBPM())

    pickup = 0.0
    measures = list(parts[0].getElementsByClass(stream.Measure))
    if measures and measures[0].paddingLeft:
        pickup = float(measures[0].barDuration.quarterLength - measures[0].paddingLeft)
        if not 0 < pickup < bar:
            pickup = 0.0

    if name is None:
        md = score.metadata
        path = getattr(md, "corpusFilePath", None) if md is not None else None
        if path:
            name = re.sub(r"\.(mxl|xml|musicxml|krn|abc|midi?)$", "", str(path))
        else:
            name = (md.title if md is not None and md.title else "") or ""
    return Piece(notes, name=name, tempo=bpm, time_signature=time_signature, key=key_name,
                 fermatas=sorted(fermatas), pickup=pickup)


def read_score(path: str | os.PathLike) -> Piece:
    """Read a score file into a :class:`Piece` named after the file's stem.

    Formats by extension (:data:`FORMATS`): MIDI ``.mid``/``.midi`` (music21 quantises onsets
    and durations to 16ths and triplet 8ths, as scores are written), MusicXML
    ``.xml``/``.musicxml``/``.mxl``, ABC ``.abc`` (a file with several tunes gives its first),
    Humdrum ``.krn``. See :func:`piece_from_music21` for how parts, ties and chords map.

    Raises ``FileNotFoundError`` for a missing file and :class:`ScoreError` (a ``ValueError``)
    for an unsupported extension, a file music21 cannot parse, or a score without pitched
    notes (an empty or drums-only MIDI file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no score file at {path}" + (
            " (it is a folder)" if path.is_dir() else ""))
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ScoreError(f"cannot read {path.name}: {path.suffix or 'no extension'} is not a "
                         f"score format; supported: {', '.join(FORMATS)}")
    _music21()
    from music21 import converter

    try:
        score = converter.parse(str(path), forceSource=True)
    except Exception as e:  # music21 raises many kinds (its own, struct, XML, index errors)
        raise ScoreError(f"could not parse {path} as {fmt}: {type(e).__name__}: {e}") from e
    try:
        piece = piece_from_music21(score, name=path.stem)
    except ScoreError:
        raise
    except Exception as e:
        raise ScoreError(f"could not parse {path} as {fmt}: {type(e).__name__}: {e}") from e
    if not piece.notes:
        what = (": the MIDI file is empty or holds only unpitched percussion (channel 10)"
                if fmt == "MIDI" else "")
        raise ScoreError(f"{path} has no pitched notes{what}")
    return piece


def piece_to_music21(piece: Piece, notation: bool = False) -> Any:
    """A music21 ``Score`` with one ``Part`` per voice (``0 .. num_voices() - 1``).

    Notes of a voice with the same start and duration become a chord. With ``notation=True``
    the parts are also split into bars (with the pick-up as an incomplete first bar), ties and
    beams, and overlapping notes of one part into music21 voices, as MusicXML needs; fermatas
    are put on the notes that start at a fermata's onset.
    """
    _music21()
    from music21 import chord, expressions, key, meter, note, stream, tempo
    from music21 import volume as m21volume

    shift = 0.0
    if notation and piece.pickup:
        shift = piece.bar_length - piece.pickup  # first bar = a full one, its head rests
    fermatas = set(piece.fermatas)
    score = stream.Score()
    for v in range(piece.num_voices()):
        part = stream.Part()
        part.partName = f"Voice {v}"
        part.insert(0, meter.TimeSignature(f"{piece.time_signature[0]}/"
                                           f"{piece.time_signature[1]}"))
        if piece.key is not None:
            m = _KEY.match(piece.key)
            if m is not None:
                tonic = m.group(1) + m.group(2).replace("b", "-")
                try:
                    part.insert(0, key.Key(tonic, m.group(3).lower()))
                except Exception:  # an unknown mode: leave the key out
                    pass
        if v == 0:
            part.insert(0, tempo.MetronomeMark(number=piece.tempo))
        groups: dict[tuple[float, float], list[Note]] = {}
        for n in piece.voice(v):
            groups.setdefault((n.start, n.duration), []).append(n)
        for (start, duration), ns in groups.items():
            members = []
            for n in ns:
                member = note.Note(n.pitch)
                member.volume = m21volume.Volume(velocity=n.velocity)
                members.append(member)
            el = members[0] if len(members) == 1 else chord.Chord(members)
            el.quarterLength = _ql(duration)
            if notation and start in fermatas:
                el.expressions.append(expressions.Fermata())
            part.insert(_ql(start + shift), el)
        if notation:
            if _overlaps(part):
                part = part.makeVoices(fillGaps=True)
            part.makeNotation(inPlace=True)
            if shift:
                _make_pickup(part, shift)
        score.insert(0, part)
    return score


def _ql(x: float) -> Any:
    """A quarter length music21 keeps exact: a fraction when ``x`` is one with a small
    denominator (triplets), else the float."""
    from fractions import Fraction

    f = Fraction(x).limit_denominator(10080)
    return f if abs(float(f) - x) < 1e-9 else x


def _overlaps(part: Any) -> bool:
    end = -math.inf
    for el in part.notes:
        if el.offset < end - 1e-9:
            return True
        end = max(end, el.offset + el.quarterLength)
    return False


def _make_pickup(part: Any, shift: float) -> None:
    """Turn the first bar of ``part``, which starts with ``shift`` quarter notes of rest, into
    an incomplete bar (an anacrusis) of ``bar - shift``."""
    from music21 import note, stream

    measures = list(part.getElementsByClass(stream.Measure))
    if not measures:
        return
    first = measures[0]
    holders = [first, *first.voices] if first.voices else [first]
    for holder in holders:
        for el in list(holder.notesAndRests):
            if isinstance(el, note.Rest) and el.offset + el.quarterLength <= shift + 1e-9:
                holder.remove(el)
        for el in list(holder.elements):
            if el.offset >= shift - 1e-9:
                holder.coreSetElementOffset(el, _ql(float(el.offset) - shift))
        holder.coreElementsChanged()
    first.paddingLeft = _ql(shift)
    first.number = 0
    for m in measures[1:]:
        part.coreSetElementOffset(m, _ql(float(m.offset) - shift))
        m.number = m.number - 1
    part.coreElementsChanged()


# -- writing -----------------------------------------------------------------------------------
def write_midi(piece: Piece, path: str | os.PathLike) -> str:
    """Write ``piece`` as a standard MIDI file (one track per voice, its tempo, metre and key;
    10080 ticks per quarter note, so onsets on 16ths and triplets are exact). Reading it back
    with :func:`read_score` gives the same notes (pitch, start, duration, voice, velocity) for
    notes on 16ths and triplet 8ths, with two losses MIDI imposes: fermatas and the pick-up
    are not kept, and a voice without notes leaves no track, so the voices above it move down
    one. Atomic; returns ``path`` as a string."""
    _check_writable(piece, path)
    from music21.midi import translate

    mf = translate.streamToMidiFile(piece_to_music21(piece))
    atomic_write_bytes(mf.writestr(), path)
    return os.fspath(path)


def write_musicxml(piece: Piece, path: str | os.PathLike) -> str:
    """Write ``piece`` as uncompressed MusicXML (one part per voice, in bars, with its key,
    metre, tempo, pick-up and fermatas). Reading it back with :func:`read_score` gives the
    same notes and fermatas; MusicXML keeps no per-note velocity, so velocities read as 80.
    Atomic; returns ``path`` as a string."""
    _check_writable(piece, path)
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    data = GeneralObjectExporter(piece_to_music21(piece, notation=True)).parse()
    atomic_write_bytes(data, path)
    return os.fspath(path)


def _check_writable(piece: Piece, path: str | os.PathLike) -> None:
    if not piece.notes:
        raise ValueError(f"{piece.name or 'the piece'} has no notes: nothing to write to "
                         f"{os.fspath(path)}")
    _music21()
