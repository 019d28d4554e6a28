r"""Training data for the music models: pieces -> encoded arrays -> batches the Trainer reads.

One :class:`MusicEncoding` says how a model sees music (which encoding, its grid, pitch range
and options) and is saved in every checkpoint, so whatever uses a trained model rebuilds the
same encoding. From it:

* :func:`encode_pieces` turns pieces into :class:`Encoded` arrays, with the transposed copies
  of :func:`~rnnkit.music.encoding.transpositions` when augmenting (the training split only),
  leaving out, with the reason, the pieces the encoding cannot hold.
* :class:`MusicBatches`: padded batches for the frame model and the harmonizer, each piece cut
  into chunks of at most ``max_frames`` frames;
* :class:`EventStream`: a truncated-BPTT token stream for the event model, and
  :func:`event_batches` whole event sequences, padded (validation and evaluation).

The batches (all padded with zeros; ``lengths`` count the valid steps of each row):

=============  ================================================================================
model          batch
=============  ================================================================================
frames         ``{"frames": [B, T, P] float32 (0/1), "features": [B, T, 3] float32 (when
               the encoding has features), "lengths": [B] int64}``; ``P = high - low + 1``
events         ``{"tokens": [B, T] int64, "lengths": [B] int64}`` (whole pieces, ``BOS ..
               EOS``), or stream chunks ``(x [B, bptt], y [B, bptt])``
harmonizer     ``{"voices": [B, T, 4] int64, "features": [B, T, 3] float32, "lengths": [B]
               int64}``; ids ``REST = 0``, ``HOLD = 1``, ``2 + pitch - low``
=============  ================================================================================

Frames and their features (position in the bar, fermata) come from
:class:`~rnnkit.music.encoding.PianoRoll`; a piano roll gets one silent frame in front, so the
frame model predicts every real frame of a piece, the first one from silence (and generates
from silence). Event and voice encodings need every onset and end on the grid: pieces are
moved onto it with :func:`~rnnkit.music.encoding.quantize` first (the piano roll samples the
score as it is).

**Augmentation** (``augment=True``, the training split only): every epoch, each training
piece appears once, transposed by a shift drawn uniformly from those of
:func:`~rnnkit.music.encoding.transpositions` (-6..+5 semitones that keep it within
``low..high``; 0 among them). The shifted encodings are made once, up front, by shifting the
piece's encoding (exactly the encoding of the transposed piece: the features do not depend on
pitch). The draws, the piece order and the batch order come from the loader's own
``torch.Generator`` (``generator``), seeded with ``seed``: the same on every DDP rank (the
Trainer then shares each batch's rows between them), and saved and restored with every
checkpoint by the Trainer, so a resumed run sees the same batches as an uninterrupted one.

>>> enc = MusicEncoding("frames", grid=1.0, low=60, high=72)
>>> piece = Piece([Note(60, 0, 2), Note(64, 1, 1)], name="third")
>>> variants, names = encode_pieces([piece], enc, augment=True)
>>> len(variants[0])  # the shifts -6..+5 that keep 60..64 within 60..72: 0..+5
6
>>> batch = next(iter(music_batches(variants, enc, batch_size=1)))
>>> tuple(batch["frames"].shape), batch["lengths"].tolist()  # a silent frame, then 2 frames
((1, 3, 13), [3])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .encoding import EventVocab, PianoRoll, VoiceFrames, quantize, transpositions
from .score import Note, Piece

__all__ = [
    "DEFAULT_GRID",
    "MODELS",
    "Encoded",
    "EventStream",
    "MusicBatches",
    "MusicEncoding",
    "encode_pieces",
    "event_batches",
    "fit_shift",
    "frame_features",
    "music_batches",
]

#: the three music models, by their ``--model`` name
MODELS = ("frames", "events", "harmonizer")
#: grid (quarter notes per step) of each model unless told otherwise: the JSB Chorales
#: quarter-note frames, and 16ths for the events (Performance RNN) and the voices (DeepBach)
DEFAULT_GRID = {"frames": 1.0, "events": 0.25, "harmonizer": 0.25}
#: features per frame (sin and cos of the position in the bar, fermata)
N_FEATURES = 3


# -- the encoding --------------------------------------------------------------------------------
@dataclass(frozen=True)
class MusicEncoding:
    """How a music model sees pieces; saved in its checkpoints (``to_dict`` / ``from_dict``).

    Attributes:
        model: ``"frames"`` (:class:`~rnnkit.music.encoding.PianoRoll`), ``"events"``
            (:class:`~rnnkit.music.encoding.EventVocab`) or ``"harmonizer"``
            (:class:`~rnnkit.music.encoding.VoiceFrames`, four voices).
        grid: quarter notes per frame or time step (1.0 = quarter, 0.25 = 16th).
        low, high: the MIDI pitches a model reads and writes (``P = high - low + 1``).
        features: condition the frame model and the harmonizer on the position in the bar
            and the fermatas (``[T, 3]`` per piece; the event model takes none).
        steps: events: the longest ``TIME_SHIFT``, in grid units.
        velocity: events: also encode loudness (32 ``VELOCITY`` bins).
        voices: harmonizer: voices per frame (4: soprano, alto, tenor, bass).
    """

    model: str
    grid: float
    low: int = 36
    high: int = 81
    features: bool = True
    steps: int = 16
    velocity: bool = False
    voices: int = 4

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        object.__setattr__(self, "grid", float(self.grid))
        self.encoder  # noqa: B018 - the encoding's own checks (grid, range, steps, voices)
        if self.model == "harmonizer" and self.voices != 4:
            raise ValueError(f"the harmonizer writes alto, tenor and bass under a soprano: "
                             f"voices must be 4, got {self.voices}")

    # -- what it is ----------------------------------------------------------------------------
    @property
    def encoder(self) -> PianoRoll | EventVocab | VoiceFrames:
        """The encoding object: a ``PianoRoll``, an ``EventVocab`` or a ``VoiceFrames``."""
        if self.model == "frames":
            return PianoRoll(self.grid, self.low, self.high)
        if self.model == "events":
            return EventVocab(self.steps, self.grid, self.velocity)
        return VoiceFrames(self.grid, self.voices, self.low, self.high)

    @property
    def n_pitches(self) -> int:
        """``P = high - low + 1``."""
        return self.high - self.low + 1

    @property
    def n_features(self) -> int:
        """Features per frame the model reads: 3, or 0 (no features, or the event model)."""
        return N_FEATURES if self.features and self.model != "events" else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (what checkpoints store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MusicEncoding:
        """Rebuild from :meth:`to_dict`; unknown keys are an error naming the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown music encoding setting(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(known))}")
        return cls(**data)

    def describe(self) -> str:
        """One line for reports: ``frames on a 1-quarter grid, pitches 36..81 (C2..A5)``."""
        from .encoding import pitch_name

        what = {"frames": "piano-roll frames", "events": "performance events",
                "harmonizer": "voice frames"}[self.model]
        unit = "quarter note" if self.grid == 1 else "quarter notes"
        return (f"{what} on a grid of {self.grid:g} {unit}, pitches {self.low}.."
                f"{self.high} ({pitch_name(self.low)}..{pitch_name(self.high)})")

    # -- pieces in -----------------------------------------------------------------------------
    def prepare(self, piece: Piece) -> Piece:
        """``piece`` as this encoding reads it: on the grid (:func:`quantize`) for events and
        voices; the piano roll samples the piece as it is. The harmonizer needs exactly
        :attr:`voices` voices (``ValueError`` otherwise)."""
        if self.model == "harmonizer" and piece.num_voices() != self.voices:
            raise ValueError(f"{piece.name or 'the piece'} has {piece.num_voices()} voice(s); "
                             f"the harmonizer learns from {self.voices}-part scores (soprano, "
                             f"alto, tenor, bass as the first {self.voices} parts)")
        return piece if self.model == "frames" else quantize(piece, self.grid)

    def encode(self, piece: Piece) -> Encoded:
        """The :class:`Encoded` arrays of a prepared piece (``ValueError`` when the encoding
        cannot hold it: pitches out of range, a voice with two notes at once, ...)."""
        enc = self.encoder
        if self.model == "events":
            return Encoded(np.asarray(enc.encode(piece), dtype=np.int64), None)
        data = enc.encode(piece)
        feats = PianoRoll(self.grid, self.low, self.high).features(piece) \
            if self.n_features else None
        if len(data) == 0:
            raise ValueError(f"{piece.name or 'the piece'} has no notes")
        return Encoded(data, feats)

    def shift(self, encoded: Encoded, semitones: int) -> Encoded:
        """The encoding of the piece transposed by ``semitones``, from its own encoding
        (``semitones`` must keep every pitch within ``low..high``, as
        :func:`~rnnkit.music.encoding.transpositions` does). Features do not change."""
        s = int(semitones)
        if s == 0:
            return encoded
        x = encoded.data
        if self.model == "frames":  # [T, P]: pitch p - low moves to p + s - low
            out = np.zeros_like(x)
            if s > 0:
                out[:, s:] = x[:, :-s]
            else:
                out[:, :s] = x[:, -s:]
            return Encoded(out, encoded.features)
        if self.model == "harmonizer":  # onsets 2 + p - low
            return Encoded(np.where(x >= 2, x + s, x), encoded.features)
        notes = (x >= EventVocab.NOTE_ON) & (x < EventVocab.TIME_SHIFT)  # NOTE_ON, NOTE_OFF
        return Encoded(np.where(notes, x + s, x), None)


@dataclass
class Encoded:
    """One piece, encoded: ``data`` (frames ``[T, P]`` float32, events ``[N]`` int64 or voice
    ids ``[T, 4]`` int64) and ``features`` ``[T, 3]`` float32 (``None`` when none)."""

    data: np.ndarray
    features: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.data)


def fit_shift(piece: Piece, low: int, high: int, octaves: bool = False) -> int | None:
    """The transposition (semitones) closest to 0 that puts every note of ``piece`` within
    ``low..high`` (0 when it fits already): among -12..12, or among whole octaves -48..48
    with ``octaves=True``; on a tie the downward one. ``None`` when none fits."""
    if not piece.notes:
        return 0
    lo = min(n.pitch for n in piece.notes)
    hi = max(n.pitch for n in piece.notes)
    candidates = range(-48, 49, 12) if octaves else range(-12, 13)
    fits = [s for s in candidates if low <= lo + s and hi + s <= high]
    return min(fits, key=lambda s: (abs(s), s)) if fits else None


def _shifts(piece: Piece, low: int, high: int) -> list[int]:
    """The shifts of :func:`~rnnkit.music.encoding.transpositions` ``(piece, low, high)``."""
    if not piece.notes:
        return []
    first = piece.notes[0].pitch  # transposing keeps the notes' order
    return [p.notes[0].pitch - first for p in transpositions(piece, low, high)]


def encode_pieces(pieces: Sequence[Piece], encoding: MusicEncoding, augment: bool = False,
                  what: str = "pieces", warn: bool = True,
                  ) -> tuple[list[list[Encoded]], list[str]]:
    """Encode ``pieces``: ``(variants, names)``, one list of encodings per kept piece.

    With ``augment`` a piece's list holds its encoding shifted by every transposition of
    :func:`~rnnkit.music.encoding.transpositions` (0 among them when it fits as it is), from
    the lowest shift up; without, one encoding: the piece as it is, or moved by the nearest
    transposition that fits the range (:func:`fit_shift`). A piece the encoding cannot hold
    (no fitting transposition, not on the grid even after :func:`quantize`, the wrong number
    of voices, no notes) is left out; with ``warn`` one warning says how many and why (the
    first few by name). ``names`` are the kept pieces' names.
    """
    variants: list[list[Encoded]] = []
    names: list[str] = []
    dropped: list[str] = []
    for piece in pieces:
        try:
            prepared = encoding.prepare(piece)
            if not prepared.notes:
                raise ValueError(f"{piece.name or 'a piece'} has no notes")
            if augment:
                shifts = _shifts(prepared, encoding.low, encoding.high)
                if not shifts:
                    raise ValueError(_range_message(prepared, encoding))
                base = shifts[0]
                first = encoding.encode(prepared.transpose(base))
                encs = [encoding.shift(first, s - base) for s in shifts]
            else:
                s = fit_shift(prepared, encoding.low, encoding.high)
                if s is None:
                    raise ValueError(_range_message(prepared, encoding))
                encs = [encoding.encode(prepared.transpose(s) if s else prepared)]
        except ValueError as err:
            dropped.append(str(err))
            continue
        variants.append(encs)
        names.append(piece.name)
    if dropped and warn:
        shown = "; ".join(dropped[:3]) + ("; ..." if len(dropped) > 3 else "")
        warnings.warn(f"left out {len(dropped)} of {len(pieces)} {what} that the {encoding.model} "
                      f"encoding cannot hold: {shown}", stacklevel=2)
    return variants, names


def _range_message(piece: Piece, encoding: MusicEncoding) -> str:
    lo = min(n.pitch for n in piece.notes)
    hi = max(n.pitch for n in piece.notes)
    return (f"{piece.name or 'a piece'} spans pitches {lo}..{hi}, which no transposition "
            f"fits into the model's range {encoding.low}..{encoding.high}")


def frame_features(frames: int, grid: float, time_signature: tuple[int, int] = (4, 4),
                   pickup: float = 0.0, fermatas: Sequence[float] = ()) -> np.ndarray:
    """``[frames, 3]`` float32: the :meth:`~rnnkit.music.encoding.PianoRoll.features` of
    ``frames`` frames of ``grid`` quarter notes in ``time_signature`` (bar lines at
    ``pickup + k * bar``), with a fermata of one frame at each onset in ``fermatas``: the
    features of music still to be written (generation)."""
    if frames <= 0:
        return np.zeros((0, N_FEATURES), dtype=np.float32)
    span = Piece([Note(0, 0.0, frames * grid)], time_signature=time_signature, pickup=pickup,
                 fermatas=list(fermatas))
    return PianoRoll(grid, 0, 127).features(span)


# -- batches -------------------------------------------------------------------------------------
def _frame_chunks(enc: Encoded, max_frames: int | None) -> list[Encoded]:
    """A piano roll with one silent frame in front, cut into chunks of at most ``max_frames``
    frames that overlap by one: chunk ``k + 1`` starts with the last frame of chunk ``k``, so
    every real frame is predicted exactly once."""
    P = enc.data.shape[1]
    data = np.concatenate([np.zeros((1, P), dtype=np.float32), enc.data.astype(np.float32)])
    feats = None
    if enc.features is not None:
        feats = np.concatenate([np.zeros((1, enc.features.shape[1]), dtype=np.float32),
                                enc.features])
    T = len(data)
    if max_frames is None or T <= max_frames:
        return [Encoded(data, feats)]
    out, start = [], 0
    while start < T - 1:
        stop = min(start + max_frames, T)
        out.append(Encoded(data[start:stop], None if feats is None else feats[start:stop]))
        start = stop - 1
    return out


def _voice_chunks(enc: Encoded, max_frames: int | None) -> list[Encoded]:
    """Voice frames cut into consecutive chunks of at most ``max_frames`` frames. A chunk
    after the first starts as it is (a ``HOLD`` there continues a note the model cannot see,
    which it learns to read as the note's continuation)."""
    T = len(enc.data)
    if max_frames is None or T <= max_frames:
        return [enc]
    return [Encoded(enc.data[s:s + max_frames],
                    None if enc.features is None else enc.features[s:s + max_frames])
            for s in range(0, T, max_frames)]


def _pad(arrays: list[np.ndarray], dtype: torch.dtype) -> Tensor:
    """``[B, max T, ...]`` zero-padded (:func:`rnnkit.data.batching.pad_sequences`)."""
    from ..data.batching import pad_sequences

    return pad_sequences([np.ascontiguousarray(a) for a in arrays], dtype=dtype)[0]


def _epoch_draw(variants: Sequence[Sequence[Encoded]], generator: torch.Generator | None,
                ) -> tuple[list[int], list[int]]:
    """One epoch's ``(picks, order)``: which transposition of each piece (drawn uniformly)
    and the order of the pieces, from ``generator``; without one, each piece as it is, in
    order."""
    n = len(variants)
    if generator is None:
        return [0] * n, list(range(n))
    picks = [int(torch.randint(len(v), (1,), generator=generator)) if len(v) > 1 else 0
             for v in variants]
    return picks, torch.randperm(n, generator=generator).tolist()


def _collate(model: str, items: list[Encoded]) -> dict[str, Tensor]:
    lengths = torch.tensor([len(e) for e in items], dtype=torch.long)
    if model == "events":
        return {"tokens": _pad([e.data for e in items], torch.long), "lengths": lengths}
    key, dtype = ("frames", torch.float32) if model == "frames" else ("voices", torch.long)
    batch = {key: _pad([e.data for e in items], dtype), "lengths": lengths}
    if items[0].features is not None:
        batch["features"] = _pad([e.features for e in items], torch.float32)
    return batch


class MusicBatches:
    """Padded batches of encoded pieces for the Trainer (re-iterable; see the module
    docstring for the batch of each model).

    Each epoch (each ``iter``): with ``shuffle``, every piece takes one of its variants (its
    transpositions, drawn uniformly) and the pieces a random order; then each is cut into
    chunks (:func:`_frame_chunks`: a silent frame in front and chunks of at most
    ``max_frames`` frames overlapping by one, for frames; consecutive chunks of at most
    ``max_frames`` for voices; whole sequences for events, ``max_frames=None``: no cut), the
    chunks are grouped in pools of ``batch_size * pool``, sorted by length within a pool (so a
    batch pads little) and cut into batches, and the batches are shuffled. Without
    ``shuffle``: variant 0, every chunk in length order, the same batches every time.

    ``generator`` is the ``torch.Generator`` all draws come from (``None`` without
    ``shuffle``); the Trainer saves and restores it with each checkpoint. ``len()`` is the
    number of batches an epoch yields (the same every epoch: transposing never changes a
    piece's length)."""

    def __init__(self, variants: Sequence[Sequence[Encoded]], model: str, batch_size: int,
                 max_frames: int | None = None, shuffle: bool = False, seed: int = 0,
                 pool: int = 50) -> None:
        if model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        minimum = 2 if model == "frames" else 1
        if max_frames is not None and (isinstance(max_frames, bool) or
                                       not isinstance(max_frames, int) or
                                       max_frames < minimum):
            raise ValueError(f"max_frames must be an integer >= {minimum} (frames per chunk), "
                             f"got {max_frames!r}")
        if not variants or any(not v for v in variants):
            raise ValueError("no pieces to batch: every piece was left out, or none was given")
        self.variants = [list(v) for v in variants]
        self.model, self.batch_size, self.max_frames = model, batch_size, max_frames
        self.shuffle, self.pool = shuffle, max(1, int(pool))
        self.generator = torch.Generator().manual_seed(int(seed)) if shuffle else None
        self._chunk: Callable[[Encoded, int | None], list[Encoded]] = {
            "frames": _frame_chunks, "harmonizer": _voice_chunks,
            "events": lambda e, m: [e]}[model]
        sizes = [len(self._chunk(v[0], max_frames)) for v in self.variants]
        self.num_chunks = sum(sizes)
        size = self.batch_size * self.pool
        self._len = sum(math.ceil(min(size, self.num_chunks - s) / self.batch_size)
                        for s in range(0, self.num_chunks, size))

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        picks, order = _epoch_draw(self.variants, self.generator if self.shuffle else None)
        chunks = [c for i in order for c in self._chunk(self.variants[i][picks[i]],
                                                        self.max_frames)]
        size = self.batch_size * self.pool
        batches: list[list[int]] = []
        for start in range(0, len(chunks), size):
            idx = sorted(range(start, min(start + size, len(chunks))),
                         key=lambda i: len(chunks[i]))
            batches += [idx[b:b + self.batch_size] for b in range(0, len(idx), self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches),
                                                          generator=self.generator).tolist()]
        for b in batches:
            yield _collate(self.model, [chunks[i] for i in b])

    def __repr__(self) -> str:
        return (f"MusicBatches({self.model}, pieces={len(self.variants)}, "
                f"chunks={self.num_chunks}, batches={len(self)}, shuffle={self.shuffle})")


def music_batches(variants: Sequence[Sequence[Encoded]], encoding: MusicEncoding,
                  batch_size: int, max_frames: int | None = None, shuffle: bool = False,
                  seed: int = 0) -> MusicBatches:
    """:class:`MusicBatches` of ``encoding.model``'s kind (``max_frames``: the chunk length of
    frames and voices; ``None``: whole pieces)."""
    return MusicBatches(variants, encoding.model, batch_size,
                        None if encoding.model == "events" else max_frames, shuffle, seed)


def event_batches(variants: Sequence[Sequence[Encoded]], batch_size: int) -> MusicBatches:
    """Whole event sequences ``{"tokens": [B, T], "lengths": [B]}`` (``BOS .. EOS``, padded
    with ``PAD = 0``), in length order, variant 0 of each piece: validation and evaluation
    data, each target scored once."""
    return MusicBatches(variants, "events", batch_size)


class EventStream:
    """A truncated-BPTT stream of event tokens for the Trainer, with augmentation.

    Each epoch (each ``iter``) the pieces' token sequences (``BOS .. EOS`` each), with
    ``shuffle`` each a randomly drawn variant in a random order (from :attr:`generator`),
    are joined into one stream and cut as :class:`~rnnkit.train.BPTTStream` cuts it: into
    ``batch_size`` contiguous rows, read ``bptt`` tokens at a time, ``(x [B, T], y [B, T])``
    with ``y`` the next tokens; the Trainer carries the recurrent state from chunk to chunk
    (``carry_state``) and resets it every epoch. ``len()`` is the chunks per epoch (the same
    every epoch: transposing keeps a sequence's length)."""

    carry_state = True

    def __init__(self, variants: Sequence[Sequence[Encoded]], batch_size: int, bptt: int,
                 shuffle: bool = True, seed: int = 0) -> None:
        from ..train.stream import BPTTStream

        if not variants or any(not v for v in variants):
            raise ValueError("no pieces to stream: every piece was left out, or none was given")
        self.variants = [list(v) for v in variants]
        self.batch_size, self.bptt, self.shuffle = batch_size, bptt, shuffle
        self.generator = torch.Generator().manual_seed(int(seed)) if shuffle else None
        total = sum(len(v[0]) for v in self.variants)
        self._len = len(BPTTStream(torch.zeros(total, dtype=torch.long), batch_size, bptt))
        self.num_tokens = total

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        from ..train.stream import BPTTStream

        picks, order = _epoch_draw(self.variants, self.generator if self.shuffle else None)
        tokens = torch.from_numpy(np.concatenate([self.variants[i][picks[i]].data
                                                  for i in order]))
        yield from BPTTStream(tokens, self.batch_size, self.bptt)

    def __repr__(self) -> str:
        return (f"EventStream(pieces={len(self.variants)}, tokens={self.num_tokens}, "
                f"rows={self.batch_size}, bptt={self.bptt}, chunks={len(self)})")

