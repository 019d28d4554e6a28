"""Pieces as arrays and token sequences a recurrent model reads and writes (numpy only).

Three encodings, each with ``encode(piece)`` and ``decode(...) -> Piece``:

* :class:`PianoRoll`: multi-hot frames ``[T, P]`` on a time grid, the JSB Chorales protocol
  (Boulanger-Lewandowski et al. 2012: a quarter-note grid, one output per pitch), with
  :meth:`PianoRoll.features` ``[T, 3]`` (where in the bar each frame is, fermatas) to
  condition on. Keeps which pitches sound when; not voices, and not where a repeated note is
  struck again.
* :class:`EventVocab`: Performance-RNN-style events (Oore et al. 2018): ``NOTE_ON``,
  ``NOTE_OFF``, ``TIME_SHIFT`` (and ``VELOCITY``) tokens for one sequence model. Keeps every
  note (not voices).
* :class:`VoiceFrames`: one token per voice per frame (rest, hold, or a new pitch), as in
  DeepBach (Hadjeres et al. 2017). Keeps every note of every voice.

Times are quarter notes (see :mod:`rnnkit.music.score`); ``grid`` is the length of a frame or
of one time step in quarter notes (1.0 = quarter, 0.25 = 16th). :func:`quantize` moves a
piece onto a grid; :func:`transpositions` gives the transposed copies that fit a range
(augmentation).

>>> from rnnkit.music.score import Note, Piece
>>> piece = Piece([Note(60, 0, 1), Note(64, 0, 0.5, voice=1), Note(67, 1, 1)])
>>> PianoRoll(grid=0.5, low=60, high=67).encode(piece).astype(int)
array([[1, 0, 0, 0, 1, 0, 0, 0],
       [1, 0, 0, 0, 0, 0, 0, 0],
       [0, 0, 0, 0, 0, 0, 0, 1],
       [0, 0, 0, 0, 0, 0, 0, 1]])
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .score import Note, Piece, pitch_name

__all__ = ["EventVocab", "PianoRoll", "VoiceFrames", "pitch_name", "quantize", "transpositions"]

_EPS = 1e-6


def _check_grid(grid: float) -> float:
    grid = float(grid)
    if not (math.isfinite(grid) and grid > 0):
        raise ValueError(f"grid must be > 0 quarter notes (1.0 = quarter, 0.25 = 16th), got "
                         f"{grid}")
    return grid


def _check_range(low: int, high: int) -> tuple[int, int]:
    low, high = int(low), int(high)
    if not 0 <= low <= high <= 127:
        raise ValueError(f"need 0 <= low <= high <= 127 (MIDI pitches), got low={low}, "
                         f"high={high}")
    return low, high


def _steps(x: float, grid: float, what: str, piece: Piece, note: Note | None = None) -> int:
    """``x`` in grid units, which must be whole."""
    k = round(x / grid)
    if abs(x / grid - k) > _EPS:
        where = f" (pitch {note.pitch}, voice {note.voice}, start {note.start}, duration " \
                f"{note.duration})" if note is not None else ""
        raise ValueError(f"{piece.name or 'the piece'}: {what} {x} is not on the grid of "
                         f"{grid} quarter notes{where}; use a finer grid, or "
                         f"rnnkit.music.encoding.quantize(piece, {grid}) first")
    return int(k)


def _check_pitches(piece: Piece, low: int, high: int) -> None:
    if not piece.notes:
        return
    lo = min(n.pitch for n in piece.notes)
    hi = max(n.pitch for n in piece.notes)
    if lo < low or hi > high:
        fits = [s for s in range(-12, 13) if low <= lo + s and hi + s <= high]
        hint = (f"transpose it (piece.transpose(s), s in {fits[0]}..{fits[-1]} fits)" if fits
                else "its span does not fit even transposed: widen the range")
        raise ValueError(f"{piece.name or 'the piece'} has pitches {lo}..{hi} "
                         f"({pitch_name(lo)}..{pitch_name(hi)}), outside the encoding's range "
                         f"{low}..{high} ({pitch_name(low)}..{pitch_name(high)}): {hint}, or "
                         f"widen low/high")


def _frames(piece: Piece, grid: float) -> int:
    """Frames covering the piece: ``ceil(end / grid)``."""
    return int(math.ceil(piece.end() / grid - _EPS)) if piece.notes else 0


# -- piano roll ----------------------------------------------------------------------------------
class PianoRoll:
    """Multi-hot frames: ``roll[t, p - low] = 1`` when pitch ``p`` sounds at ``t * grid``.

    ``grid``: frame length in quarter notes (1.0 = quarter notes as in the JSB Chorales
    protocol; 0.25 = 16ths). ``low``..``high``: the MIDI pitches kept (default C2..A5, the
    chorales' range; :attr:`size` = ``high - low + 1``).

    A note sounds in frame ``t`` when it covers the frame's start (``start <= t * grid <
    end``), so on a coarse grid a note shorter than a frame may vanish: this samples the
    score, it does not round it. Voices and re-strikes are lost: two notes of one pitch that
    touch or overlap (a repeated note, two voices in unison) become one span, so ``decode``
    gives back exactly the sounding pitches, not the notes (see :class:`VoiceFrames` and
    :class:`EventVocab` for encodings that keep notes).
    """

    def __init__(self, grid: float = 1.0, low: int = 36, high: int = 81) -> None:
        self.grid = _check_grid(grid)
        self.low, self.high = _check_range(low, high)

    def __repr__(self) -> str:
        return f"PianoRoll(grid={self.grid}, low={self.low}, high={self.high})"

    @property
    def size(self) -> int:
        """Pitches per frame, ``P = high - low + 1``."""
        return self.high - self.low + 1

    def encode(self, piece: Piece) -> np.ndarray:
        """``[T, P]`` float32 of 0/1, ``T = ceil(piece.end() / grid)``; raises ``ValueError``
        for a note outside ``low..high`` (the message says which transpositions fit)."""
        _check_pitches(piece, self.low, self.high)
        roll = np.zeros((_frames(piece, self.grid), self.size), dtype=np.float32)
        for n in piece.notes:
            first = math.ceil(n.start / self.grid - _EPS)
            stop = math.ceil(n.end / self.grid - _EPS)
            roll[first:stop, n.pitch - self.low] = 1.0
        return roll

    def decode(self, roll: np.ndarray, threshold: float = 0.5) -> Piece:
        """A piece (voice 0) from ``roll`` ``[T, P]``: each run of consecutive frames with a
        pitch above ``threshold`` becomes one note. Probabilities can be passed as they are."""
        roll = np.asarray(roll)
        if roll.ndim != 2 or roll.shape[1] != self.size:
            raise ValueError(f"a piano roll must have shape [T, {self.size}] (pitches "
                             f"{self.low}..{self.high}), got {list(roll.shape)}")
        on = np.zeros((roll.shape[0] + 2, self.size), dtype=np.int8)
        on[1:-1] = roll > threshold
        notes = []
        for p in range(self.size):
            change = np.flatnonzero(np.diff(on[:, p]))
            for s, e in zip(change[0::2], change[1::2]):
                notes.append(Note(self.low + p, s * self.grid, (e - s) * self.grid))
        return Piece(notes)

    def features(self, piece: Piece) -> np.ndarray:
        """``[T, 3]`` float32 per frame (``T`` as :meth:`encode`): ``sin`` and ``cos`` of
        ``2 pi x`` where ``x`` in [0, 1) is the frame's position within its bar (bar lines at
        ``piece.pickup + k * bar``; the first time signature throughout), and 1.0 where a
        fermata holds: from a fermata's onset to the end of the longest note starting there
        (one frame if none does), else 0.0."""
        t = np.arange(_frames(piece, self.grid)) * self.grid
        phase = np.mod(t - piece.pickup, piece.bar_length) / piece.bar_length
        fermata = np.zeros(len(t), dtype=np.float32)
        ends: dict[float, float] = {}
        for n in piece.notes:
            ends[n.start] = max(ends.get(n.start, 0.0), n.end)
        for f in piece.fermatas:
            end = ends.get(f, f + self.grid)
            fermata[(t >= f - _EPS) & (t < end - _EPS)] = 1.0
        return np.stack([np.sin(2 * np.pi * phase), np.cos(2 * np.pi * phase), fermata],
                        axis=1).astype(np.float32)


# -- events --------------------------------------------------------------------------------------
class EventVocab:
    """Performance-RNN events: one token sequence per piece.

    Tokens: ``PAD = 0``, ``BOS = 1``, ``EOS = 2``; ``NOTE_ON(p)`` = ``3 + p`` and
    ``NOTE_OFF(p)`` = ``131 + p`` for MIDI pitches ``p`` 0..127; ``TIME_SHIFT(k)`` =
    ``259 + k - 1`` for ``k`` = 1..``steps`` grid units (a longer gap is several shifts); with
    ``velocity=True``, ``VELOCITY(b)`` = ``259 + steps + b`` for 32 bins ``b = velocity // 4``
    (decoded as ``max(1, 4 b)``: exact for multiples of 4, such as the default 80), emitted
    before a ``NOTE_ON`` whose bin differs from the last one. ``len(vocab)`` is 259 +
    ``steps`` (+ 32).

    At one time the ``NOTE_OFF`` events come first, then the ``NOTE_ON`` events, each by pitch.
    Every onset and end must be on the grid (else ``ValueError``; :func:`quantize` first).
    Voices are not encoded (decoded notes are voice 0), and neither, without ``velocity``, is
    loudness (decoded as 80). ``decode(encode(piece))`` gives back every note (pitch, start,
    duration) of a piece on the grid, with one exception that no voice-less event stream (nor
    MIDI on one channel) can tell apart: when two notes of one pitch overlap (a unison of two
    voices), a ``NOTE_OFF`` ends the earliest-started of them (first in, first out), so a note
    lying strictly inside a longer one of its pitch comes back with the two ends swapped. The
    onsets and the ends of each pitch, and so what sounds when, are always exact (31 of the
    331 chorales have such a nested unison somewhere).

    >>> vocab = EventVocab(steps=4, grid=0.5)
    >>> from rnnkit.music.score import Note, Piece
    >>> tokens = vocab.encode(Piece([Note(60, 0, 1), Note(64, 1, 2.5)]))
    >>> [vocab.describe(t) for t in tokens]  # doctest: +NORMALIZE_WHITESPACE
    ['BOS', 'NOTE_ON(60 C4)', 'TIME_SHIFT(2 = 1 quarter notes)', 'NOTE_OFF(60 C4)',
     'NOTE_ON(64 E4)', 'TIME_SHIFT(4 = 2 quarter notes)', 'TIME_SHIFT(1 = 0.5 quarter notes)',
     'NOTE_OFF(64 E4)', 'EOS']
    >>> vocab.decode(tokens).notes == Piece([Note(60, 0, 1), Note(64, 1, 2.5)]).notes
    True
    """

    PAD, BOS, EOS = 0, 1, 2
    NOTE_ON = 3
    NOTE_OFF = 3 + 128
    TIME_SHIFT = 3 + 256
    VELOCITY_BINS = 32

    def __init__(self, steps: int = 16, grid: float = 0.25, velocity: bool = False) -> None:
        if int(steps) < 1:
            raise ValueError(f"steps must be >= 1 (the longest TIME_SHIFT, in grid units), "
                             f"got {steps}")
        self.steps = int(steps)
        self.grid = _check_grid(grid)
        self.velocity = bool(velocity)
        self.VELOCITY = self.TIME_SHIFT + self.steps

    def __repr__(self) -> str:
        return f"EventVocab(steps={self.steps}, grid={self.grid}, velocity={self.velocity})"

    def __len__(self) -> int:
        return self.VELOCITY + (self.VELOCITY_BINS if self.velocity else 0)

    def encode(self, piece: Piece) -> list[int]:
        """``[BOS, ..., EOS]`` for ``piece``; ``ValueError`` for a note off the grid."""
        events: list[tuple[int, int, int, int]] = []  # (step, 0 = off / 1 = on, pitch, vel)
        for n in piece.notes:
            s = _steps(n.start, self.grid, "onset", piece, n)
            e = _steps(n.end, self.grid, "end", piece, n)
            events.append((s, 1, n.pitch, n.velocity))
            events.append((e, 0, n.pitch, n.velocity))
        events.sort()
        tokens, now, bin_ = [self.BOS], 0, None
        for step, kind, pitch, vel in events:
            gap = step - now
            while gap > 0:
                k = min(gap, self.steps)
                tokens.append(self.TIME_SHIFT + k - 1)
                gap -= k
            now = step
            if kind == 0:
                tokens.append(self.NOTE_OFF + pitch)
                continue
            if self.velocity and vel // 4 != bin_:
                bin_ = vel // 4
                tokens.append(self.VELOCITY + bin_)
            tokens.append(self.NOTE_ON + pitch)
        tokens.append(self.EOS)
        return tokens

    def decode(self, tokens: Sequence[int] | np.ndarray) -> Piece:
        """A piece (voice 0) from tokens (a list, or an array of any shape read in order;
        ``ValueError`` for a token outside the vocabulary). Forgiving, for sampled sequences:
        ``PAD`` and ``BOS`` are skipped, ``EOS`` ends it, a ``NOTE_OFF`` of a silent pitch is
        ignored, and notes still sounding at the end stop there (or after one grid unit, if
        that is where they started)."""
        open_: dict[int, deque[tuple[int, int]]] = {}
        notes: list[Note] = []
        now, vel = 0, 80
        for t in (int(x) for x in np.asarray(tokens).reshape(-1)):
            if not 0 <= t < len(self):
                raise ValueError(f"token {t} is outside this vocabulary (0..{len(self) - 1})")
            if t == self.EOS:
                break
            if t < self.NOTE_ON:
                continue
            if t < self.NOTE_OFF:
                open_.setdefault(t - self.NOTE_ON, deque()).append((now, vel))
            elif t < self.TIME_SHIFT:
                pitch = t - self.NOTE_OFF
                if open_.get(pitch):
                    start, v = open_[pitch].popleft()
                    if now > start:  # (on and off at the same time: nothing sounded)
                        notes.append(Note(pitch, start * self.grid, (now - start) * self.grid,
                                          velocity=v))
            elif t < self.VELOCITY:
                now += t - self.TIME_SHIFT + 1
            else:
                vel = max(1, 4 * (t - self.VELOCITY))
        for pitch, queue in open_.items():
            for start, v in queue:
                notes.append(Note(pitch, start * self.grid,
                                  max(now - start, 1) * self.grid, velocity=v))
        return Piece(notes)

    def describe(self, token: int) -> str:
        """A readable name: ``'NOTE_ON(60 C4)'``, ``'TIME_SHIFT(4 = 1.0 quarter notes)'``."""
        t = int(token)
        if not 0 <= t < len(self):
            raise ValueError(f"token {t} is outside this vocabulary (0..{len(self) - 1})")
        if t < self.NOTE_ON:
            return ("PAD", "BOS", "EOS")[t]
        if t < self.NOTE_OFF:
            return f"NOTE_ON({t - self.NOTE_ON} {pitch_name(t - self.NOTE_ON)})"
        if t < self.TIME_SHIFT:
            return f"NOTE_OFF({t - self.NOTE_OFF} {pitch_name(t - self.NOTE_OFF)})"
        if t < self.VELOCITY:
            k = t - self.TIME_SHIFT + 1
            return f"TIME_SHIFT({k} = {k * self.grid:g} quarter notes)"
        b = t - self.VELOCITY
        return f"VELOCITY({b}: {max(1, 4 * b)})"


# -- voice frames --------------------------------------------------------------------------------
class VoiceFrames:
    """One token per voice per frame of ``grid`` quarter notes: ``[T, voices]`` int64.

    ``REST = 0`` (the voice is silent), ``HOLD = 1`` (the voice's note from an earlier frame
    goes on), ``2 + (p - low)`` (the voice strikes pitch ``p`` in this frame);
    :attr:`vocab_size` = ``2 + high - low + 1``. ``T = ceil(piece.end() / grid)``.

    Exact, not rounded: every onset and end must lie on the grid, each voice must play one
    note at a time, and pitches must lie in ``low..high``; otherwise ``encode`` raises a
    ``ValueError`` that names the note and the fix (a finer grid, :func:`quantize`,
    transposing). So ``decode(encode(piece))`` gives back every note (pitch, start, duration,
    voice) of such a piece: on a 16th grid that is every Bach chorale of music21's corpus
    except two with 32nd-note ornaments (bwv36.4-2 and bwv432), which need :func:`quantize`
    first. Velocity is not kept (decoded as 80).
    """

    REST, HOLD = 0, 1

    def __init__(self, grid: float = 0.25, voices: int = 4, low: int = 36,
                 high: int = 81) -> None:
        self.grid = _check_grid(grid)
        if int(voices) < 1:
            raise ValueError(f"voices must be >= 1, got {voices}")
        self.voices = int(voices)
        self.low, self.high = _check_range(low, high)

    def __repr__(self) -> str:
        return (f"VoiceFrames(grid={self.grid}, voices={self.voices}, low={self.low}, "
                f"high={self.high})")

    @property
    def vocab_size(self) -> int:
        """Tokens per voice: REST, HOLD and one per pitch, ``2 + high - low + 1``."""
        return 2 + self.high - self.low + 1

    def encode(self, piece: Piece) -> np.ndarray:
        """``[T, voices]`` int64 tokens of ``piece`` (see the class for what raises)."""
        if piece.num_voices() > self.voices:
            raise ValueError(f"{piece.name or 'the piece'} has {piece.num_voices()} voices, "
                             f"this encoding {self.voices}: use VoiceFrames(voices="
                             f"{piece.num_voices()})")
        _check_pitches(piece, self.low, self.high)
        tokens = np.zeros((_frames(piece, self.grid), self.voices), dtype=np.int64)
        for v in range(self.voices):
            busy_until, last = 0, None
            for n in piece.voice(v):
                s = _steps(n.start, self.grid, "onset", piece, n)
                e = _steps(n.end, self.grid, "end", piece, n)
                if s < busy_until:
                    raise ValueError(f"{piece.name or 'the piece'}: voice {v} plays two notes "
                                     f"at once ({last} and {n}); VoiceFrames needs one note "
                                     f"per voice at a time: split chords into voices")
                tokens[s, v] = 2 + n.pitch - self.low
                tokens[s + 1:e, v] = self.HOLD
                busy_until, last = e, n
        return tokens

    def decode(self, tokens: np.ndarray) -> Piece:
        """A piece from ``[T, voices]`` tokens: a pitch token starts a note, which lasts
        through the ``HOLD`` tokens after it. A ``HOLD`` with no note to continue (after a
        rest, or in the first frame) is read as a rest."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[1] != self.voices:
            raise ValueError(f"voice frames must have shape [T, {self.voices}], got "
                             f"{list(tokens.shape)}")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(f"tokens must be in 0..{self.vocab_size - 1}, got "
                             f"{tokens.min()}..{tokens.max()}")
        notes = []
        for v in range(self.voices):
            start, pitch = None, None
            for t, tok in enumerate(tokens[:, v].tolist() + [self.REST]):
                if tok == self.HOLD and pitch is not None:
                    continue
                if pitch is not None:
                    notes.append(Note(pitch, start * self.grid, (t - start) * self.grid, v))
                    pitch = None
                if tok >= 2:
                    start, pitch = t, self.low + tok - 2
        return Piece(notes)


# -- transforms ----------------------------------------------------------------------------------
def transpositions(piece: Piece, low: int, high: int) -> list[Piece]:
    """Every transposition of ``piece`` by -6..+5 semitones (one octave, each pitch class
    once) that keeps all its notes within ``low..high``, from the lowest shift up; the piece
    itself (shift 0) is among them when it fits. Augmentation for key-independent models.

    >>> from rnnkit.music.score import Note, Piece
    >>> [p.notes[0].pitch for p in transpositions(Piece([Note(60, 0, 1)]), 58, 62)]
    [58, 59, 60, 61, 62]
    """
    low, high = _check_range(low, high)
    if not piece.notes:
        return [piece.transpose(s) for s in range(-6, 6)]
    lo = min(n.pitch for n in piece.notes)
    hi = max(n.pitch for n in piece.notes)
    return [piece.transpose(s) for s in range(-6, 6) if low <= lo + s and hi + s <= high]


def quantize(piece: Piece, grid: float) -> Piece:
    """``piece`` with every onset and end moved to the nearest multiple of ``grid`` (halves
    up), and the fermatas and pick-up likewise.

    A note that would shrink to nothing lasts one grid unit. When several notes of one voice
    land on the same onset although they started at different times (a run of 32nd notes on a
    16th grid), only the one that started nearest the grid point stays (the earlier on a tie;
    all the notes of a chord). A note that did not overlap the next onset of its voice is cut
    to end there, so a voice that played one note at a time still does.

    >>> from rnnkit.music.score import Note, Piece
    >>> run = Piece([Note(60, 0.75, 0.125), Note(62, 0.875, 0.125), Note(64, 1.0, 1.0)])
    >>> [(n.pitch, n.start, n.duration) for n in quantize(run, 0.25).notes]
    [(60, 0.75, 0.25), (64, 1.0, 1.0)]
    """
    grid = _check_grid(grid)
    def snap(x: float) -> int:  # to the nearest grid point, halves up
        return math.floor(x / grid + 0.5 + _EPS)

    snapped: list[tuple[Note, int, int]] = []
    for n in piece.notes:
        s = snap(n.start)
        e = max(snap(n.end), s + 1)
        snapped.append((n, s, e))
    out: list[Note] = []
    for v in sorted({n.voice for n in piece.notes}):
        by_onset: dict[int, list[tuple[Note, int, int]]] = {}
        for item in (x for x in snapped if x[0].voice == v):
            by_onset.setdefault(item[1], []).append(item)
        kept: list[tuple[Note, int, int]] = []
        for s, group in sorted(by_onset.items()):
            # the notes that started nearest the grid point (the earliest start on a tie)
            best = min(group, key=lambda x: (abs(x[0].start - s * grid), x[0].start))[0].start
            seen = set()
            for n, s_, e in group:
                if abs(n.start - best) <= _EPS and n.pitch not in seen:
                    seen.add(n.pitch)
                    kept.append((n, s_, e))
        onsets = sorted({s for _, s, _ in kept})
        following = dict(zip(onsets, onsets[1:]))  # onset -> the voice's next onset
        first_at: dict[int, float] = {}  # onset -> the earliest original start landing there
        for n, s, _ in kept:
            first_at[s] = min(first_at.get(s, math.inf), n.start)
        for n, s, e in kept:
            nxt = following.get(s)
            if nxt is not None and e > nxt and n.end <= first_at[nxt] + _EPS:
                e = nxt
            out.append(replace(n, start=s * grid, duration=(e - s) * grid))
    return replace(piece, notes=out, fermatas=[snap(f) * grid for f in piece.fermatas],
                   pickup=snap(piece.pickup) * grid % piece.bar_length)
