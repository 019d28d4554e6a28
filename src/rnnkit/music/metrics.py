r"""How good is a piece of music, or a model of it: likelihood, statistics, voice leading (numpy).

Four questions, one section each:

* **How well does a model predict frames?** :func:`frame_scores` and the corpus-level
  :class:`FrameScores` (the JSB Chorales protocol of Boulanger-Lewandowski et al., 2012:
  quarter-note piano-roll frames, the negative log-likelihood per time step averaged over all
  test steps, and Bay et al.'s frame-level accuracy). With :math:`p_{t,i}` the predicted
  probability that pitch :math:`i` sounds in frame :math:`t` and :math:`v_{t,i} \in \{0, 1\}`
  what does:

  .. math::
      \mathrm{NLL} = \frac{1}{T} \sum_{t=1}^{T} \sum_{i=1}^{P}
          -\bigl[v_{t,i} \ln p_{t,i} + (1 - v_{t,i}) \ln (1 - p_{t,i})\bigr]
          \quad \text{(nats per frame)}, \qquad
      \mathrm{Acc} = \frac{TP}{TP + FP + FN}

  where :math:`\hat v_{t,i} = [p_{t,i} > 0.5]` and the counts are summed over every frame
  (of every piece, for a corpus) before dividing.

* **Does generated music sound like the corpus?** :func:`musical_statistics` (pitch-class
  histogram, in-key ratio, range, polyphony, empty beats, note density, repetition) and
  :func:`statistics_distance`, which puts every statistic in units of the reference's own
  spread so that "closer to Bach than the baseline" is one number.

* **Is it good four-part writing?** :func:`voice_leading`: parallel fifths and octaves,
  voice crossings, notes outside the SATB ranges (:data:`SATB_RANGES`).

* **Did a harmoniser find Bach's voices?** :func:`voice_accuracy`, per voice and frame.

:func:`estimate_key` (Krumhansl-Schmuckler with the Krumhansl-Kessler profiles) supplies a
key to pieces that have none. Times are quarter notes (see :mod:`rnnkit.music.score`).

>>> import numpy as np
>>> prob = np.array([[0.9, 0.2], [0.4, 0.6]])
>>> target = np.array([[1, 0], [1, 1]])
>>> s = frame_scores(prob, target)
>>> round(s["nll"], 4), s["accuracy"], (s["tp"], s["fp"], s["fn"])
(0.8778, 0.6666666666666666, (2, 0, 1))
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .encoding import PianoRoll
from .score import Piece

__all__ = [
    "KK_MAJOR",
    "KK_MINOR",
    "SATB_RANGES",
    "SCALES",
    "STATISTICS",
    "FrameScores",
    "estimate_key",
    "frame_scores",
    "in_key_ratio",
    "jensen_shannon",
    "musical_statistics",
    "pitch_class_histogram",
    "statistics_distance",
    "voice_accuracy",
    "voice_leading",
]


# -- frame-level likelihood and accuracy ---------------------------------------------------------
def _as_rolls(prob: Any, target: Any, logits: bool) -> tuple[np.ndarray, np.ndarray]:
    prob = np.asarray(prob, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if prob.ndim != 2 or prob.shape != target.shape:
        raise ValueError(f"prob and target must both be [T, P] arrays of one shape, got "
                         f"{list(prob.shape)} and {list(target.shape)}")
    if not np.all((target == 0) | (target == 1)):
        raise ValueError("target must hold only 0 and 1 (multi-hot frames); binarise it, e.g. "
                         "(roll > 0)")
    if np.isnan(prob).any():
        raise ValueError("prob contains NaN")
    if not logits and (prob.min(initial=0.0) < 0 or prob.max(initial=0.0) > 1):
        raise ValueError(f"prob must be probabilities in [0, 1], got {prob.min()}.."
                         f"{prob.max()}; pass logits=True for logits")
    return prob, target


def _frame_sums(prob: Any, target: Any, logits: bool) -> tuple[float, int, int, int, int]:
    """``(nats, frames, TP, FP, FN)`` of one ``[T, P]`` pair, the nats summed in float64."""
    p, v = _as_rolls(prob, target, logits)
    on = v > 0.5
    if logits:  # -log sigmoid(z) = softplus(-z), -log(1 - sigmoid(z)) = softplus(z)
        nats = np.logaddexp(0.0, np.where(on, -p, p))
        pred = p > 0
    else:
        with np.errstate(divide="ignore"):  # a certain, wrong prediction costs +inf: honest
            nats = np.where(on, -np.log(p), -np.log1p(-p))
        pred = p > 0.5
    tp = int(np.sum(pred & on))
    fp = int(np.sum(pred & ~on))
    fn = int(np.sum(~pred & on))
    return float(nats.sum()), int(p.shape[0]), tp, fp, fn


def _accuracy(tp: int, fp: int, fn: int) -> float:
    total = tp + fp + fn
    return 1.0 if total == 0 else tp / total


class FrameScores:
    """Corpus-level frame scores: sums over pieces, divided at the end.

    :meth:`add` one piece at a time (its predicted ``[T, P]`` probabilities, or logits, and
    the ``[T, P]`` frames that did sound); :meth:`result` gives ``nll`` (total nats / total
    frames: a long piece weighs more than a short one, as in the JSB protocol's "average over
    all test time steps") and ``accuracy`` (TP / (TP + FP + FN) of counts summed over all
    frames; 1.0 when all three are 0), with the sums themselves (``nats``, ``frames``,
    ``tp``, ``fp``, ``fn``). A model's own ``evaluate`` output can be added with
    :meth:`add_counts`.

    >>> acc = FrameScores()
    >>> acc.add([[0.9]], [[1]]).add([[0.2], [0.7]], [[0], [0]]).result()["accuracy"]
    0.5
    """

    def __init__(self) -> None:
        self.nats, self.frames, self.tp, self.fp, self.fn = 0.0, 0, 0, 0, 0

    def add(self, prob: Any, target: Any, logits: bool = False) -> FrameScores:
        """Add one piece's ``prob [T, P]`` (logits with ``logits=True``) against ``target
        [T, P]`` of 0/1; returns ``self``."""
        nats, frames, tp, fp, fn = _frame_sums(prob, target, logits)
        return self.add_counts(nats, frames, tp, fp, fn)

    def add_counts(self, nats: float, frames: int, tp: int = 0, fp: int = 0,
                   fn: int = 0) -> FrameScores:
        """Add sums computed elsewhere (e.g. ``FrameModel.evaluate``'s ``nats``, ``frames``,
        ``tp``, ``fp``, ``fn``); returns ``self``."""
        self.nats += float(nats)
        self.frames += int(frames)
        self.tp, self.fp, self.fn = self.tp + int(tp), self.fp + int(fp), self.fn + int(fn)
        return self

    def result(self) -> dict[str, Any]:
        """``{"nll", "accuracy", "nats", "frames", "tp", "fp", "fn"}`` (``nll`` in nats per
        frame; ``ValueError`` if nothing was added)."""
        if self.frames == 0:
            raise ValueError("no frames were added: call add(prob, target) for each piece")
        return {"nll": self.nats / self.frames,
                "accuracy": _accuracy(self.tp, self.fp, self.fn),
                "nats": self.nats, "frames": self.frames,
                "tp": self.tp, "fp": self.fp, "fn": self.fn}


def frame_scores(prob: Any, target: Any, logits: bool = False) -> dict[str, Any]:
    r"""Scores of one ``[T, P]`` prediction against the frames that sounded (``[T, P]`` of 0/1).

    ``nll``: :math:`\frac1T \sum_t \sum_i -[v \ln p + (1 - v) \ln(1 - p)]`, nats per frame
    (``+inf`` if a pitch given probability 0 sounds, or 1 does not); ``accuracy``: Bay et
    al.'s :math:`TP / (TP + FP + FN)` with :math:`\hat v = [p > 0.5]`, counts summed over the
    frames (1.0 when there is nothing to find and nothing predicted). With ``logits=True``
    ``prob`` holds logits :math:`z` (:math:`p = \sigma(z)`, NLL computed stably as
    :math:`\mathrm{softplus}(z) - v z`). Also returns the sums (``nats``, ``frames``, ``tp``,
    ``fp``, ``fn``); for a corpus, use :class:`FrameScores`.
    """
    return FrameScores().add(prob, target, logits).result()


# -- keys and scales -----------------------------------------------------------------------------
#: Krumhansl-Kessler (1982) key profiles, tonic first (C major / C minor)
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

#: pitch classes above the tonic that are "in the key": major is the major scale; minor is
#: the natural minor with the raised 6th and 7th of the melodic and harmonic minor (Bach's
#: minor uses the leading tone throughout), 9 of the 12 pitch classes
SCALES: dict[str, frozenset[int]] = {
    "major": frozenset({0, 2, 4, 5, 7, 9, 11}),
    "minor": frozenset({0, 2, 3, 5, 7, 8, 9, 10, 11}),
}

_TONIC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY = re.compile(r"^\s*([A-Ga-g])([#b-]*)\s+(\w+)\s*$")
_SPELLING = {"major": ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"],
             "minor": ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]}


def _parse_key(key: str | None) -> tuple[int, str] | None:
    """``"F# minor" -> (6, "minor")``; ``None`` for no key or a mode without a scale here."""
    m = _KEY.match(key) if key else None
    if m is None or m.group(3).lower() not in SCALES:
        return None
    letter, accidentals, mode = m.groups()
    pc = _TONIC[letter.upper()] + accidentals.count("#") - accidentals.count("b") \
        - accidentals.count("-")
    return pc % 12, mode.lower()


def pitch_class_histogram(piece: Piece) -> np.ndarray:
    """``[12]`` float64, the share of sounding time (duration in quarter notes) of each pitch
    class C, C#, ..., B; sums to 1. Weighted by duration, not by note count, so that a held
    pitch counts the same whether it is one note or two tied ones (a piano roll cannot tell
    them apart). ``ValueError`` for a piece without notes.

    >>> from rnnkit.music.score import Note
    >>> pitch_class_histogram(Piece([Note(60, 0, 3), Note(67, 3, 1)]))[[0, 7]].tolist()
    [0.75, 0.25]
    """
    h = _pitch_class_durations(piece)
    return h / h.sum()


def _pitch_class_durations(piece: Piece) -> np.ndarray:
    """``[12]``: quarter notes sounded per pitch class (summed over notes)."""
    if not piece.notes:
        raise ValueError(f"{piece.name or 'the piece'} has no notes: its statistics are "
                         f"undefined (leave it out)")
    h = np.zeros(12)
    np.add.at(h, [n.pitch % 12 for n in piece.notes], [n.duration for n in piece.notes])
    return h


def estimate_key(piece_or_histogram: Piece | Any) -> str:
    r"""The key of a piece (or of a ``[12]`` pitch-class histogram) by the Krumhansl-Schmuckler
    algorithm: the Pearson correlation of the duration-weighted pitch-class histogram with
    each of the 24 rotations of :data:`KK_MAJOR` and :data:`KK_MINOR`, the highest wins (ties:
    major before minor, then the lowest tonic). Returns ``"<tonic> <mode>"`` (``"G major"``,
    ``"F# minor"``), the form :attr:`Piece.key` uses.

    >>> hist = np.zeros(12); hist[[7, 9, 11, 0, 2, 4, 6]] = 1; hist[[7, 2]] += 1
    >>> estimate_key(hist)
    'G major'
    """
    if isinstance(piece_or_histogram, Piece):
        h = pitch_class_histogram(piece_or_histogram)
    else:
        h = np.asarray(piece_or_histogram, dtype=np.float64)
        if h.shape != (12,) or not np.isfinite(h).all() or h.min() < 0 or h.sum() <= 0:
            raise ValueError(f"a pitch-class histogram is 12 non-negative numbers, not all "
                             f"zero; got {h!r:.80}")
    best, name = -math.inf, ""
    for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for tonic in range(12):
            r = np.corrcoef(h, np.roll(profile, tonic))[0, 1]
            r = -math.inf if not np.isfinite(r) else r  # a flat histogram correlates nowhere
            if r > best + 1e-12:
                best, name = r, f"{_SPELLING[mode][tonic]} {mode}"
    return name or "C major"


def in_key_ratio(piece: Piece, key: str | None = None) -> float:
    """Share of sounding time (duration-weighted, as :func:`pitch_class_histogram`) on pitch
    classes of the scale (:data:`SCALES`) of ``key``; ``key`` defaults to ``piece.key``, and
    when that is ``None`` or a mode without a scale here (``"dorian"``), to
    :func:`estimate_key`.

    >>> from rnnkit.music.score import Note
    >>> scale = Piece([Note(p, i, 1) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])])
    >>> in_key_ratio(scale, "C major"), in_key_ratio(scale, "Db major")
    (1.0, 0.375)
    """
    h = _pitch_class_durations(piece)
    parsed = _parse_key(key if key is not None else piece.key)
    if parsed is None:
        parsed = _parse_key(estimate_key(h))
    tonic, mode = parsed  # type: ignore[misc]
    out = np.ones(12, bool)
    out[[(tonic + d) % 12 for d in SCALES[mode]]] = False
    return 1.0 - float(h[out].sum() / h.sum())  # exactly 1.0 when nothing is out of the key


# -- statistics of pieces ------------------------------------------------------------------------
#: the scalar statistics of :func:`musical_statistics`, in order (the histogram is apart)
STATISTICS = ("in_key", "pitch_range", "polyphony", "empty_beats", "note_density",
              "repetition")


def _piece_statistics(piece: Piece, grid: float, window: int) -> dict[str, Any]:
    h = pitch_class_histogram(piece)
    roll = PianoRoll(grid, 0, 127).encode(piece) > 0  # [T, 128]
    sounding = roll.sum(1)
    busy = sounding[sounding > 0]
    pitches = [n.pitch for n in piece.notes]
    repetition = 0.0
    n_windows = roll.shape[0] - window + 1
    if n_windows >= 2:
        flat = np.packbits(roll, axis=1)  # [T, 16] bytes: one frame as a short string
        keys = [flat[t: t + window].tobytes() for t in range(n_windows)]
        seen: dict[bytes, int] = {}
        for k in keys:
            seen[k] = seen.get(k, 0) + 1
        repetition = sum(seen[k] > 1 for k in keys) / n_windows
    return {
        "pitch_class_histogram": h,
        "in_key": in_key_ratio(piece),
        "pitch_range": float(max(pitches) - min(pitches)),
        "polyphony": float(busy.mean()) if busy.size else 0.0,
        "empty_beats": float(np.mean(sounding == 0)) if sounding.size else 0.0,
        "note_density": len(piece.notes) / piece.end(),
        "repetition": repetition,
    }


def musical_statistics(pieces: Sequence[Piece], grid: float = 1.0,
                       window: int = 4) -> dict[str, Any]:
    """Statistics of each piece and their mean and spread over ``pieces``.

    Per piece (frames are the piece sampled every ``grid`` quarter notes, a pitch sounding in
    frame ``t`` if a note covers ``t * grid``, as :class:`~rnnkit.music.encoding.PianoRoll`;
    ``grid=1.0`` is one frame a beat in 4/4):

    * ``pitch_class_histogram`` ``[12]``: share of sounding time per pitch class
      (:func:`pitch_class_histogram`);
    * ``in_key``: share of sounding time in the scale of the piece's key
      (:func:`in_key_ratio`: ``Piece.key``, else :func:`estimate_key`);
    * ``pitch_range``: highest minus lowest pitch, semitones;
    * ``polyphony``: mean number of distinct sounding pitches over the frames where any
      sounds;
    * ``empty_beats``: share of frames in which nothing sounds;
    * ``note_density``: notes (onsets) per quarter note, ``len(notes) / piece.end()``;
    * ``repetition``: share of the ``T - window + 1`` windows of ``window`` consecutive
      frames whose exact content occurs at another position of the same piece too (0.0 for
      a piece with fewer than two windows): 1.0 for a piece that only repeats itself, near 0
      for one that never does.

    ``note_density`` counts notes, so it depends on how a piece was made: a piano roll merges
    a repeated note with the one before. To compare a model's decoded samples with a corpus,
    pass the corpus through the same encoding first (``roll.decode(roll.encode(piece))``).

    Returns ``{"pieces": n, "grid", "window", "names": [...], "mean": {name: value},
    "std": {name: value}, "per_piece": {name: [n] array}}`` over the keys above, the
    histogram's mean being ``[12]`` (the mean of the pieces' histograms, which sums to 1)
    and its per-piece value ``[n, 12]``; ``std`` is the population standard deviation over
    pieces (of each histogram bin for the histogram). ``ValueError`` for no pieces or a
    piece without notes.
    """
    pieces = list(pieces)
    if not pieces:
        raise ValueError("musical_statistics needs at least one piece")
    if int(window) < 1:
        raise ValueError(f"window must be >= 1 frame, got {window}")
    rows = [_piece_statistics(p, float(grid), int(window)) for p in pieces]
    per_piece = {k: np.array([r[k] for r in rows], dtype=np.float64) for k in rows[0]}
    return {
        "pieces": len(pieces), "grid": float(grid), "window": int(window),
        "names": [p.name for p in pieces],
        "mean": {k: (v.mean(0) if v.ndim > 1 else float(v.mean())) for k, v in per_piece.items()},
        "std": {k: (v.std(0) if v.ndim > 1 else float(v.std())) for k, v in per_piece.items()},
        "per_piece": per_piece,
    }


def jensen_shannon(p: Any, q: Any) -> float:
    r"""Jensen-Shannon divergence of two distributions in bits, in [0, 1]:
    :math:`\frac12 \mathrm{KL}(p \| m) + \frac12 \mathrm{KL}(q \| m)`, :math:`m = (p + q)/2`,
    with :math:`0 \log 0 = 0` (each is normalised to sum to 1 first).

    >>> jensen_shannon([1, 0], [0, 1]), jensen_shannon([0.5, 0.5], [0.5, 0.5])
    (1.0, 0.0)
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def statistics_distance(stats: Mapping[str, Any] | Sequence[Piece],
                        reference: Mapping[str, Any] | Sequence[Piece]) -> dict[str, Any]:
    r"""How far ``stats`` is from ``reference`` (both :func:`musical_statistics` results, or
    lists of pieces, whose statistics are computed with the defaults), per statistic and
    overall, each in units of the **reference's own spread over its pieces**:

    * a scalar statistic :math:`s`: :math:`|\bar s - \bar s_{ref}| / \sigma_{ref}` (the
      population standard deviation of :math:`s` over the reference pieces);
    * the pitch-class histogram: :math:`JS(\bar h, \bar h_{ref}) / \overline{JS}_{ref}`, the
      Jensen-Shannon divergence (bits) of the mean histograms over the mean divergence of the
      reference's own pieces from their mean,
      :math:`\overline{JS}_{ref} = \frac1n \sum_k JS(h_k, \bar h_{ref})`.

    So 1.0 means "as far off as a typical reference piece is from the reference average",
    and ``overall``, the mean of the seven numbers, says which of two models is closer to the
    reference: ``statistics_distance(model, bach)["overall"] <
    statistics_distance(baseline, bach)["overall"]``. A reference without spread in a
    statistic (one piece, or all equal) gives that statistic its raw difference instead, and
    names it in ``"unscaled"``.

    Returns ``{"overall", "pitch_class_histogram", <each of STATISTICS>, "raw": {the
    differences before scaling: JS bits, absolute differences}, "spread": {the reference's
    spreads}, "unscaled": [names]}``.
    """
    a = musical_statistics(stats) if not isinstance(stats, Mapping) else stats
    ref = musical_statistics(reference) if not isinstance(reference, Mapping) else reference
    h_ref = np.asarray(ref["mean"]["pitch_class_histogram"])
    raw = {"pitch_class_histogram": jensen_shannon(a["mean"]["pitch_class_histogram"], h_ref)}
    spread = {"pitch_class_histogram": float(np.mean([
        jensen_shannon(h, h_ref) for h in ref["per_piece"]["pitch_class_histogram"]]))}
    for k in STATISTICS:
        raw[k] = abs(float(a["mean"][k]) - float(ref["mean"][k]))
        spread[k] = float(ref["std"][k])
    out: dict[str, Any] = {}
    unscaled = []
    for k, d in raw.items():
        if spread[k] > 1e-12:
            out[k] = d / spread[k]
        else:
            out[k] = d
            unscaled.append(k)
    overall = float(np.mean(list(out.values())))
    return {"overall": overall, **out, "raw": raw, "spread": spread, "unscaled": unscaled}


# -- voice leading -------------------------------------------------------------------------------
#: the usual range of each chorale voice, MIDI pitches inclusive: soprano C4-A5, alto F3-D5,
#: tenor C3-A4, bass E2-D4 (voices 0..3)
SATB_RANGES: tuple[tuple[int, int], ...] = ((60, 81), (53, 74), (48, 69), (40, 62))


def _sounding(piece: Piece, voices: int, times: Sequence[float]) -> np.ndarray:
    """``[len(times), voices]`` int: the pitch each voice sounds at each time (a note covers
    ``start <= time < end``; the highest if a voice sounds several), -1 for a rest."""
    out = np.full((len(times), voices), -1, dtype=np.int64)
    ts = np.asarray(times, dtype=np.float64)
    eps = 1e-9
    for n in piece.notes:
        if n.voice >= voices:
            continue
        lo = np.searchsorted(ts, n.start - eps, side="left")
        hi = np.searchsorted(ts, n.end - eps, side="left")
        col = out[lo:hi, n.voice]
        np.maximum(col, n.pitch, out=col)
    return out


def voice_leading(piece: Piece, ranges: Sequence[tuple[int, int]] = SATB_RANGES,
                  across_fermatas: bool = True) -> dict[str, Any]:
    """Voice-leading faults of a piece in parts (voice 0 the highest: soprano, alto, tenor,
    bass in a chorale).

    The piece is read as its **verticalities**: at every time a note starts in any voice, the
    pitch each voice sounds (a voice sounding several notes counts as its highest; a rest as
    none). Between consecutive verticalities ``k`` and ``k + 1``, for every pair of voices
    that both sound in both:

    * ``parallel_fifths``: both voices move in the same direction and the interval between
      them is a perfect fifth before and after (``|p_i - p_j| mod 12 == 7``, compound fifths
      included);
    * ``parallel_octaves``: likewise with ``|p_i - p_j| mod 12 == 0``: octaves, compound
      octaves and unisons.

    Contrary-motion fifths or octaves, a fifth reached from another interval ("hidden"), and
    a diminished fifth (6 semitones) are not counted. With ``across_fermatas=False``, neither
    are those leaving a verticality whose onset carries a fermata (``piece.fermatas``): the
    end of a phrase, where a chorale's voice leading starts afresh (in music21's 331
    chorales, 9 of the 41 parallel fifths and 5 of the 17 octaves are of this kind).
    Further:

    * ``voice_crossings``: at each verticality, each pair of adjacent voices ``v, v + 1``
      both sounding where the lower voice ``v + 1`` is strictly above ``v`` (a crossing held
      over three verticalities counts three times);
    * ``out_of_range``: notes of voice ``v`` outside ``ranges[v]`` (inclusive MIDI pitches,
      default :data:`SATB_RANGES`: S C4-A5, A F3-D5, T C3-A4, B E2-D4), with the count per
      voice in ``out_of_range_by_voice``.

    Also ``verticalities`` and ``transitions`` (consecutive pairs examined) to turn counts
    into rates, and ``where``: ``{"parallel_fifths": [(time, i, j), ...], ...}``, the time
    (quarter notes) of the verticality that completes each fault and its voices.
    ``ValueError`` if the piece has more voices than ``ranges``.
    """
    voices = piece.num_voices()
    if voices > len(ranges):
        raise ValueError(f"{piece.name or 'the piece'} has {voices} voices but ranges gives "
                         f"{len(ranges)}; pass one (low, high) per voice")
    times = sorted({n.start for n in piece.notes})
    sound = _sounding(piece, voices, times)
    fermatas = set(piece.fermatas)
    transitions = 0
    where: dict[str, list[tuple[float, int, int]]] = {
        "parallel_fifths": [], "parallel_octaves": [], "voice_crossings": []}
    for k in range(len(times)):
        now = sound[k]
        for v in range(voices - 1):
            if now[v] >= 0 and now[v + 1] >= 0 and now[v + 1] > now[v]:
                where["voice_crossings"].append((times[k], v, v + 1))
        if k == 0 or (not across_fermatas and times[k - 1] in fermatas):
            continue
        transitions += 1
        before = sound[k - 1]
        for i in range(voices):
            for j in range(i + 1, voices):
                if min(before[i], before[j], now[i], now[j]) < 0:
                    continue
                mi, mj = np.sign(now[i] - before[i]), np.sign(now[j] - before[j])
                if mi == 0 or mi != mj:
                    continue
                a, b = abs(before[i] - before[j]) % 12, abs(now[i] - now[j]) % 12
                if a == b == 7:
                    where["parallel_fifths"].append((times[k], i, j))
                elif a == b == 0:
                    where["parallel_octaves"].append((times[k], i, j))
    by_voice = [sum(1 for n in piece.voice(v) if not ranges[v][0] <= n.pitch <= ranges[v][1])
                for v in range(voices)]
    return {
        "parallel_fifths": len(where["parallel_fifths"]),
        "parallel_octaves": len(where["parallel_octaves"]),
        "voice_crossings": len(where["voice_crossings"]),
        "out_of_range": sum(by_voice),
        "out_of_range_by_voice": by_voice,
        "notes": len(piece.notes),
        "verticalities": len(times),
        "transitions": transitions,
        "where": where,
    }


def voice_accuracy(reference: Piece, generated: Piece, grid: float = 0.25,
                   voices: int | None = None) -> dict[str, Any]:
    """Per-voice agreement of two pieces in parts of the same length: each voice is sampled
    every ``grid`` quarter notes (16ths by default, the grid of
    :class:`~rnnkit.music.encoding.VoiceFrames`) as the pitch it sounds there (the highest,
    if several) or a rest, and the share of frames on which ``generated`` agrees with
    ``reference`` is that voice's accuracy (a rest matches a rest; a repeated note and a held
    one are not told apart). ``voices`` defaults to the reference's.

    Returns ``{"per_voice": [accuracy of voice 0, 1, ...], "mean": mean over voices,
    "frames": T}``; with a harmoniser given the soprano, voice 0 is 1.0 by construction, so
    read ``per_voice[1:]``. ``ValueError`` when the two pieces do not span the same number of
    frames (``ceil(end / grid)``).
    """
    grid = float(grid)
    if not grid > 0:
        raise ValueError(f"grid must be > 0 quarter notes, got {grid}")
    voices = reference.num_voices() if voices is None else int(voices)
    frames = [math.ceil(p.end() / grid - 1e-6) for p in (reference, generated)]
    if frames[0] != frames[1]:
        raise ValueError(f"the pieces differ in length: {frames[0]} and {frames[1]} frames of "
                         f"{grid} quarter notes ({reference.end()} and {generated.end()} "
                         f"quarter notes)")
    if voices < 1 or frames[0] == 0:
        raise ValueError("voice_accuracy needs pieces with notes and at least one voice")
    times = [t * grid for t in range(frames[0])]
    ref, gen = _sounding(reference, voices, times), _sounding(generated, voices, times)
    per_voice = [float(np.mean(ref[:, v] == gen[:, v])) for v in range(voices)]
    return {"per_voice": per_voice, "mean": float(np.mean(per_voice)), "frames": frames[0]}
