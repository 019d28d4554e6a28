r"""Count-based baselines for the music models, scored in the models' own units (numpy).

A recurrent model's likelihood means little without a floor to compare it with. Each
baseline here is a proper probability model, fitted by counting (:meth:`fit`), scored on
held-out pieces exactly as the recurrent model it stands beside, and sampled for
:func:`~rnnkit.music.metrics.musical_statistics` comparisons.

Frame models, the floor for :class:`~rnnkit.music.frames.FrameModel` (piano-roll frames
:math:`v_t \in \{0, 1\}^P`, rolls ``[T, P]`` as :class:`~rnnkit.music.encoding.PianoRoll`
makes them). Like ``FrameModel.frame_nll``, they score every frame **after the first** of
each piece, :math:`-\ln p(v_t \mid v_{<t})` for :math:`t = 1 .. T - 1`, in nats per frame:

* :class:`BernoulliFrames`: one independent Bernoulli per pitch, no memory:
  :math:`p(v_t) = \prod_i \pi_i^{v_{t,i}} (1 - \pi_i)^{1 - v_{t,i}}`,
  :math:`\pi_i = (n_i + 1) / (N + 2)` (add-one smoothed frequency of pitch :math:`i` over
  the :math:`N` training frames).
* :class:`RepeatFrames`: "the next frame repeats this one", made probabilistic: each pitch
  keeps its state with probability :math:`q` (fitted, add-one smoothed) and flips otherwise;
  ``tied=False`` fits one probability of staying on and another of staying off.
* :class:`NGramFrames`: a Kneser-Ney n-gram (:class:`~rnnkit.ngram.NGramLM`) over whole
  frames as symbols, backing off to :class:`BernoulliFrames` for frames never seen in
  training (which get Good-Turing's estimate of the probability of a new frame).

Event model, the floor for :class:`~rnnkit.music.events.EventModel`:

* :class:`NGramEvents`: the same n-gram over Performance-RNN event ids
  (:class:`~rnnkit.music.encoding.EventVocab`), scored per event as
  ``EventModel.log_likelihood`` scores it (every id after ``BOS``, ``EOS`` included).

Every model gives a distribution that sums to exactly 1 over the outcomes it predicts (all
:math:`2^P` frames; all event ids), so the numbers compare honestly with the recurrent
models'. Each has ``evaluate`` (the keys of the recurrent model's own ``evaluate``) and
``sample``.

For scale, fitted on the train part of :func:`~rnnkit.music.corpus.split` of music21's
chorales (262 of the 331 with music21 10.5) and scored on its test part (37 chorales: 1,874
quarter-note frames over C2..A5 after the first of each piece; 19,485 events of
``EventVocab(steps=16, grid=0.25)`` after quantising to 16ths): uniform 31.88 (``46 ln 2``),
:class:`BernoulliFrames` 11.22, :class:`RepeatFrames` 16.02 (``tied=False``: 12.09),
:class:`NGramFrames` (order 3) 6.17 nats per frame; :class:`NGramEvents` 4.01 (order 1),
2.12 (order 3), 1.57 (order 5) nats per event.

>>> import numpy as np
>>> rolls = [np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0]])]
>>> model = RepeatFrames().fit(rolls)
>>> model.q  # 7 of the 9 (pitch, frame pair) cases keep their state: (7 + 1) / (9 + 2)
0.7272727272727273
>>> round(model.evaluate(rolls)["nll_per_frame"], 4)  # -(7 ln q + 2 ln(1 - q)) / 3 frames
1.6092
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ngram import BOS as LM_BOS
from ..ngram import EOS as LM_EOS
from ..ngram import UNK as LM_UNK
from ..ngram import NGramLM
from .metrics import FrameScores

__all__ = ["BernoulliFrames", "FrameBaseline", "NGramEvents", "NGramFrames", "RepeatFrames"]

#: the event ids that :class:`~rnnkit.music.encoding.EventVocab` reserves
PAD, BOS, EOS = 0, 1, 2


# -- input checks --------------------------------------------------------------------------------
def _as_roll(roll: Any, n_pitches: int | None, what: str = "a roll") -> np.ndarray:
    a = np.asarray(roll)
    if a.ndim != 2 or (n_pitches is not None and a.shape[1] != n_pitches):
        want = "P" if n_pitches is None else str(n_pitches)
        raise ValueError(f"{what} must be piano-roll frames [T, {want}], got shape "
                         f"{list(a.shape)}")
    if a.size and not np.all((a == 0) | (a == 1)):
        raise ValueError(f"{what} must hold only 0 and 1 (multi-hot frames); binarise it, e.g. "
                         f"(roll > 0)")
    return a.astype(bool)


def _as_rolls(rolls: Any, n_pitches: int | None) -> list[np.ndarray]:
    """A list of ``[T, P]`` bool arrays from one roll or a sequence of them."""
    if isinstance(rolls, np.ndarray) and rolls.ndim == 2:
        rolls = [rolls]
    out = [_as_roll(r, n_pitches, f"roll {i}") for i, r in enumerate(rolls)]
    if not out:
        raise ValueError("no rolls given: pass a list of [T, P] piano rolls, one per piece")
    if n_pitches is None and len({r.shape[1] for r in out}) > 1:
        raise ValueError(f"rolls differ in width: {sorted({r.shape[1] for r in out})} pitches")
    return out


def _bernoulli_log(frames: np.ndarray, log_p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """``sum_i v_i log p_i + (1 - v_i) log(1 - p_i)`` per row of ``frames [..., P]`` (bool),
    given ``log p`` and ``log(1 - p)`` broadcastable to it."""
    return np.where(frames, log_p, log_q).sum(-1)


# -- frame models --------------------------------------------------------------------------------
class FrameBaseline:
    """What the frame baselines share: scoring whole pieces and sampling.

    A subclass defines :meth:`fit`, :meth:`log_prob_next` (one frame given the frames before
    it), ``_score(roll)`` (the log-probabilities and the per-pitch marginals of frames
    ``1 .. T - 1`` of a piece, vectorised) and ``_draw(history, rng)`` (one frame).
    """

    n_pitches: int | None = None

    # -- the model (subclasses) ------------------------------------------------------------
    def fit(self, rolls: Any) -> FrameBaseline:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_prob_next(self, history: Any, frame: Any) -> float:  # pragma: no cover
        """``ln p(v_t = frame | v_{<t} = history)``: ``history [t, P]`` (``t >= 0``),
        ``frame [P]`` of 0/1."""
        raise NotImplementedError

    def _score(self, roll: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _draw(self, history: np.ndarray, rng: np.random.Generator
              ) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------
    def _fitted(self) -> int:
        if self.n_pitches is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(rolls) first")
        return self.n_pitches

    def _check_next(self, history: Any, frame: Any) -> tuple[np.ndarray, np.ndarray]:
        P = self._fitted()
        h = np.asarray(history)
        h = _as_roll(h.reshape(0, P) if h.size == 0 else h, P, "history")
        f = _as_roll(np.asarray(frame).reshape(1, -1), P, "frame")[0]
        return h, f

    def frame_log_probs(self, roll: Any) -> np.ndarray:
        """``[T - 1]`` float64: :math:`\\ln p(v_t \\mid v_{<t})` of frames ``1 .. T - 1`` of
        one piece ``roll [T, P]`` (empty for ``T < 2``)."""
        roll = _as_roll(roll, self._fitted())
        if len(roll) < 2:
            return np.zeros(0)
        return self._score(roll)[0]

    def frame_probs(self, roll: Any) -> np.ndarray:
        """``[T - 1, P]`` float64: the predictive probability that each pitch sounds in
        frames ``1 .. T - 1`` of ``roll [T, P]`` (the model's marginal
        :math:`p(v_{t,i} = 1 \\mid v_{<t})`, what ``FrameModel`` gives as
        :math:`\\sigma(z_{t,i})`)."""
        roll = _as_roll(roll, self._fitted())
        if len(roll) < 2:
            return np.zeros((0, roll.shape[1]))
        return self._score(roll)[1]

    def frame_nll(self, rolls: Any) -> tuple[float, int]:
        """``(total negative log-likelihood in nats, frames scored)`` over ``rolls`` (a list of
        ``[T, P]``, or one): every frame after the first of each piece, as
        ``FrameModel.frame_nll``; ``total / frames`` is nats per frame."""
        out = self.evaluate(rolls)
        return out["nats"], out["frames"]

    def evaluate(self, rolls: Any) -> dict[str, Any]:
        """Scores of whole pieces with the keys of ``FrameModel.evaluate``: ``nats`` (total),
        ``frames`` (scored: every frame after the first of each piece), ``nll_per_frame``,
        ``frame_accuracy`` (Bay et al., a pitch predicted when its marginal probability
        :meth:`frame_probs` exceeds 0.5, counts summed over all scored frames) and the counts
        ``tp``, ``fp``, ``fn``."""
        acc = FrameScores()
        for roll in _as_rolls(rolls, self._fitted()):
            if len(roll) < 2:
                continue
            logp, probs = self._score(roll)
            pred, gold = probs > 0.5, roll[1:]
            acc.add_counts(-float(logp.sum()), len(logp), int(np.sum(pred & gold)),
                           int(np.sum(pred & ~gold)), int(np.sum(~pred & gold)))
        if acc.frames == 0:
            raise ValueError("no frame to score: every roll has fewer than 2 frames (the first "
                             "frame of a piece is given, not predicted)")
        r = acc.result()
        return {"nats": r["nats"], "frames": r["frames"], "nll_per_frame": r["nll"],
                "frame_accuracy": r["accuracy"], "tp": r["tp"], "fp": r["fp"], "fn": r["fn"]}

    def sample(self, steps: int, prime: Any = None, seed: int | None = None) -> np.ndarray:
        """``[T0 + steps, P]`` float32 of 0/1: ``prime [T0, P]`` (default none, ``T0 = 0``)
        followed by ``steps`` frames drawn one at a time from :math:`p(v_t \\mid v_{<t})`
        (as ``FrameModel.sample``, prime included). ``seed`` makes it reproducible (a private
        generator)."""
        P = self._fitted()
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
        roll = np.zeros((0, P), bool) if prime is None else _as_roll(prime, P, "prime")
        rng = np.random.default_rng(seed)
        out = np.zeros((len(roll) + steps, P), bool)
        out[: len(roll)] = roll
        for t in range(len(roll), len(out)):
            out[t] = self._draw(out[:t], rng)
        return out.astype(np.float32)


class BernoulliFrames(FrameBaseline):
    r"""Independent pitches, no memory: :math:`p(v_t \mid v_{<t}) = \prod_{i=1}^{P}
    \pi_i^{v_{t,i}} (1 - \pi_i)^{1 - v_{t,i}}`, :math:`\pi_i = (n_i + 1) / (N + 2)`, where
    :math:`n_i` counts the training frames in which pitch :math:`i` sounds, of :math:`N`
    (every frame of every roll). The NLL per frame is
    :math:`-\sum_i [v_{t,i} \ln \pi_i + (1 - v_{t,i}) \ln(1 - \pi_i)]` nats.

    >>> import numpy as np
    >>> BernoulliFrames().fit([np.array([[1, 0], [1, 0], [1, 1]])]).probs.tolist()
    [0.8, 0.4]
    """

    def __init__(self) -> None:
        self.probs: np.ndarray | None = None

    def fit(self, rolls: Any) -> BernoulliFrames:
        """Count the frames of ``rolls`` (a list of ``[T, P]`` of 0/1, or one); returns
        ``self``."""
        rolls = _as_rolls(rolls, None)
        on = sum(r.sum(0, dtype=np.int64) for r in rolls)
        n = sum(len(r) for r in rolls)
        self.n_pitches = rolls[0].shape[1]
        self.probs = (on + 1.0) / (n + 2.0)
        self._log_p, self._log_q = np.log(self.probs), np.log1p(-self.probs)
        return self

    def log_prob(self, frames: Any) -> np.ndarray:
        """``ln p(frame)`` of each row of ``frames [..., P]`` (no history needed)."""
        f = np.asarray(frames)
        if f.shape[-1:] != (self._fitted(),) or not np.all((f == 0) | (f == 1)):
            raise ValueError(f"frames must be [..., {self.n_pitches}] of 0/1, got shape "
                             f"{list(f.shape)}")
        return _bernoulli_log(f.astype(bool), self._log_p, self._log_q)

    def log_prob_next(self, history: Any, frame: Any) -> float:
        """``ln p(frame)``: ``history`` is ignored (checked only)."""
        _, f = self._check_next(history, frame)
        return float(_bernoulli_log(f, self._log_p, self._log_q))

    def _score(self, roll: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        target = roll[1:]
        return (_bernoulli_log(target, self._log_p, self._log_q),
                np.broadcast_to(self.probs, target.shape).copy())

    def _draw(self, history: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.random(self.n_pitches) < self.probs


class RepeatFrames(FrameBaseline):
    r"""Each pitch keeps its state from the frame before, or flips:

    .. math::
        p(v_{t,i} = 1 \mid v_{t-1}) = \begin{cases} q_{on} & v_{t-1,i} = 1 \\
                                                   1 - q_{off} & v_{t-1,i} = 0 \end{cases}

    pitches independent given :math:`v_{t-1}`. With ``tied=True`` (the default) one
    probability of keeping the state, :math:`q_{on} = q_{off} = q = (k + 1) / (n + 2)`, where
    :math:`k` of the :math:`n` (pitch, consecutive frame pair) cases of the training rolls
    keep their state; with ``tied=False``, :math:`q_{on} = (k_{on} + 1) / (n_{on} + 2)` over
    the cases whose pitch sounded in the first frame of the pair, likewise :math:`q_{off}`
    (a two-state Markov chain per pitch, the better model when most pitches are silent most
    of the time). With :math:`q > 0.5` the most probable next frame is the current one.

    The first frame of a piece is never scored (as for ``FrameModel``); :meth:`sample`
    without a prime draws it from :class:`BernoulliFrames` fitted on the same rolls.
    """

    def __init__(self, tied: bool = True) -> None:
        self.tied = bool(tied)
        self.q_on: float | None = None
        self.q_off: float | None = None
        self.start: BernoulliFrames | None = None

    @property
    def q(self) -> float:
        """The probability of keeping a state (``tied=True``; ``ValueError`` otherwise)."""
        if not self.tied:
            raise ValueError("an untied RepeatFrames has q_on and q_off, not one q")
        self._fitted()
        return self.q_on  # type: ignore[return-value]

    def fit(self, rolls: Any) -> RepeatFrames:
        """Count the state changes between consecutive frames of ``rolls`` (a list of
        ``[T, P]`` of 0/1, or one); returns ``self``."""
        rolls = _as_rolls(rolls, None)
        stay_on = stay_off = on = off = 0
        for r in rolls:
            prev, nxt = r[:-1], r[1:]
            on += int(prev.sum())
            off += int((~prev).sum())
            stay_on += int((prev & nxt).sum())
            stay_off += int((~prev & ~nxt).sum())
        if self.tied:
            self.q_on = self.q_off = (stay_on + stay_off + 1.0) / (on + off + 2.0)
        else:
            self.q_on, self.q_off = (stay_on + 1.0) / (on + 2.0), (stay_off + 1.0) / (off + 2.0)
        self.start = BernoulliFrames().fit(rolls)
        self.n_pitches = rolls[0].shape[1]
        return self

    def _marginals(self, prev: np.ndarray) -> np.ndarray:
        return np.where(prev, self.q_on, 1.0 - self.q_off)  # type: ignore[operator]

    def log_prob_next(self, history: Any, frame: Any) -> float:
        """``ln p(frame | history[-1])``; ``ValueError`` for an empty history (the first
        frame of a piece is not modelled)."""
        h, f = self._check_next(history, frame)
        if len(h) == 0:
            raise ValueError("RepeatFrames predicts a frame from the one before: history needs "
                             "at least one frame (the first frame of a piece is not scored)")
        p = self._marginals(h[-1])
        return float(_bernoulli_log(f, np.log(p), np.log1p(-p)))

    def _score(self, roll: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self._marginals(roll[:-1])
        return _bernoulli_log(roll[1:], np.log(p), np.log1p(-p)), p

    def _draw(self, history: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if len(history) == 0:
            return self.start._draw(history, rng)  # type: ignore[union-attr]
        return rng.random(self.n_pitches) < self._marginals(history[-1])


class _KNTable:
    """The distribution of a fitted :class:`~rnnkit.ngram.NGramLM` over its whole vocabulary
    at once, as a dense vector (for sampling and marginals; one ``logprob`` is one entry).

    Interpolated Kneser-Ney is a mixture over the orders: unrolling
    :math:`P(w \\mid h) = \\mathrm{own}_h(w) + \\gamma_h P(w \\mid h')` from the longest
    context down gives :math:`P(\\cdot \\mid h) = \\sum_m W_m \\mathrm{own}_{h_m} +
    W_{-1} / (|V| + 1)`, with :math:`W` the product of the :math:`\\gamma` of the longer
    contexts (1 for a context never seen). The tables read the model's counts and discounts
    (its ``_counts``, ``_ctx``, ``_discounts``); the tests check every entry against
    ``NGramLM.logprob``.
    """

    def __init__(self, lm: NGramLM) -> None:
        self.lm = lm
        self.vocab = lm.vocab  # [|V|], EOS included; index |V| is the <unk> class
        self.index = {tok: i for i, tok in enumerate(self.vocab)}
        self.k = lm.order - 1
        self.levels: list[dict[tuple, tuple[np.ndarray, np.ndarray, float]]] = []
        for m, counts in enumerate(lm._counts):
            rows: dict[tuple, tuple[list[int], list[float]]] = {}
            for g, c in counts.items():
                tot, _ = lm._ctx[m][g[:-1]]
                d = lm._discounts[m][min(c, 3) - 1]
                ids, own = rows.setdefault(g[:-1], ([], []))
                ids.append(self.index[g[-1]])
                own.append(max(c - d, 0.0) / tot)
            self.levels.append({
                h: (np.array(ids, dtype=np.int64), np.array(own), lm._ctx[m][h][1] /
                    lm._ctx[m][h][0]) for h, (ids, own) in rows.items()})

    def dist(self, context: Sequence) -> np.ndarray:
        """``[|V| + 1]``: :math:`P(w \\mid context)` for every token of :attr:`vocab`, then the
        ``<unk>`` class; sums to 1."""
        ctx = tuple(context)[-self.k:] if self.k else ()
        ctx = (LM_BOS,) * (self.k - len(ctx)) + ctx
        n = len(self.vocab)
        p = np.zeros(n + 1)
        weight = 1.0
        for m in range(self.k, -1, -1):
            seen = self.levels[m].get(ctx[self.k - m:])
            if seen is not None:
                ids, own, gamma = seen
                p[ids] += weight * own
                weight *= gamma
        return p + weight / (n + 1)


class NGramFrames(FrameBaseline):
    r"""A Kneser-Ney n-gram over whole frames, backing off to :class:`BernoulliFrames` for
    frames never seen in training.

    Each frame is one symbol (the set of pitches sounding; the empty frame is a symbol too),
    and a piece the sequence of its symbols; :class:`~rnnkit.ngram.NGramLM` (interpolated
    Kneser-Ney of ``order``; ``discount=None`` is modified KN) is fitted on them. Its
    distribution :math:`P_{KN}` covers the frames seen in training (the set
    :math:`\mathcal V`), the end of a piece (``</s>``) and a small ``<unk>`` floor. A piece
    of music keeps producing frames never heard before (in the chorales on quarter notes, one
    held-out frame in 12), far more often than that floor says, so the probability of a new
    frame is estimated separately, by Good-Turing's missing mass: :math:`\lambda = (n_1 + 1)
    / (N + 2)`, :math:`n_1` the frames (symbols) that occur once among the :math:`N` training
    frames (the same for every context). A new frame is distributed as the Bernoulli model
    :math:`B` (fitted on the same rolls) restricted to the frames outside :math:`\mathcal
    V`, a known one as :math:`P_{KN}` restricted to :math:`\mathcal V` (the piece goes on:
    its length is given, as to ``FrameModel``):

    .. math::
        p(v_t \mid v_{<t}) = \begin{cases}
            (1 - \lambda)\, \dfrac{P_{KN}(v_t \mid h)}{1 - P_{KN}(\texttt{</s>} \mid h)
                - P_{KN}(\texttt{<unk>} \mid h)} & v_t \in \mathcal V \\[2ex]
            \lambda\, \dfrac{B(v_t)}{1 - B(\mathcal V)} & v_t \notin \mathcal V
        \end{cases}

    with :math:`h` the last ``order - 1`` frames (``<s>``-padded at the start of a piece) and
    :math:`B(\mathcal V) = \sum_{f \in \mathcal V} B(f)`. It sums to 1 over all
    :math:`2^P` frames. (Should training have seen all :math:`2^P` frames, :math:`\lambda =
    0`.) The marginal :math:`p(v_{t,i} = 1 \mid v_{<t})` used for accuracy is exact: the
    known frames' terms plus :math:`\lambda\, E_B[v_i \mid v \notin \mathcal V]`,
    :math:`E_B[v_i \mid v \notin \mathcal V] = (\pi_i - \sum_{f \in \mathcal V} B(f)
    f_i) / (1 - B(\mathcal V))`.
    """

    def __init__(self, order: int = 3, discount: float | None = None) -> None:
        self.order, self.discount = order, discount
        NGramLM(order, discount)  # checks both now
        self.lm: NGramLM | None = None
        self.bernoulli: BernoulliFrames | None = None
        self.novelty: float | None = None

    @staticmethod
    def _symbol(frame: np.ndarray) -> tuple[int, ...]:
        return tuple(np.flatnonzero(frame).tolist())

    def _context(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[tuple[int, ...]]:
        """The symbols of the last ``order - 1`` of ``frames`` (all the model reads)."""
        k = self.order - 1
        return [self._symbol(f) for f in frames[len(frames) - k:]] if k else []

    def fit(self, rolls: Any) -> NGramFrames:
        """Fit the n-gram on the frame symbols of ``rolls`` (a list of ``[T, P]`` of 0/1, or
        one), the Bernoulli back-off on their frames, and the novelty rate; returns
        ``self``."""
        rolls = _as_rolls(rolls, None)
        P = rolls[0].shape[1]
        self.bernoulli = BernoulliFrames().fit(rolls)
        sequences = [[self._symbol(f) for f in r] for r in rolls]
        self.lm = NGramLM(self.order, self.discount).fit(sequences)
        self._table = _KNTable(self.lm)
        vocab = self._table.vocab
        self._eos = self._table.index[LM_EOS]
        frames = np.zeros((len(vocab), P), bool)  # the EOS row stays empty
        for i, sym in enumerate(vocab):
            if sym != LM_EOS:
                frames[i, list(sym)] = True
        self._frames = frames
        seen = np.ones(len(vocab), bool)
        seen[self._eos] = False
        all_seen = P < 30 and int(seen.sum()) == 2 ** P
        counts: dict[tuple[int, ...], int] = {}
        for s in itertools.chain.from_iterable(sequences):
            counts[s] = counts.get(s, 0) + 1
        once = sum(c == 1 for c in counts.values())
        n = sum(counts.values())
        self.novelty = 0.0 if all_seen else (once + 1.0) / (n + 2.0)
        b = np.where(seen, np.exp(self.bernoulli.log_prob(frames)), 0.0)
        mass = max(1.0 - float(b.sum()), 1e-300)  # B's mass outside the vocabulary
        self._log_unseen = math.log(mass)
        self._unk_marginal = (np.zeros(P) if all_seen else
                              np.clip((self.bernoulli.probs - b @ frames) / mass, 0.0, 1.0))
        self.n_pitches = P
        return self

    @property
    def vocab_size(self) -> int:
        """Distinct frames seen in training (``|V|``, ``</s>`` not counted)."""
        self._fitted()
        return len(self._table.vocab) - 1

    def _log_prob(self, context: list[tuple[int, ...]], frame: np.ndarray) -> float:
        lm = self.lm
        sym = self._symbol(frame)
        if sym not in self._table.index:
            if self.novelty == 0:
                return -math.inf
            return math.log(self.novelty) + float(  # type: ignore[arg-type]
                self.bernoulli.log_prob(frame)) - self._log_unseen  # type: ignore[union-attr]
        z = 1.0 - math.exp(lm.logprob(LM_EOS, context)) \
            - math.exp(lm.logprob(LM_UNK, context))  # type: ignore[union-attr]
        return math.log1p(-self.novelty) + lm.logprob(sym, context) \
            - math.log(z)  # type: ignore[union-attr, arg-type]

    def log_prob_next(self, history: Any, frame: Any) -> float:
        """``ln p(frame | history)`` (see the class); ``history [t, P]`` may be empty (the
        start of a piece)."""
        h, f = self._check_next(history, frame)
        return self._log_prob(self._context(h), f)

    def _dist(self, context: list[tuple[int, ...]]) -> np.ndarray:
        """``[|V| + 1]``: the probability of each known frame (0 at ``</s>``), then of a new
        one, :math:`\\lambda`; sums to 1."""
        p = self._table.dist(context)
        p[self._eos] = 0.0
        p[-1] = 0.0
        p *= (1.0 - self.novelty) / p.sum()  # type: ignore[operator]
        p[-1] = self.novelty
        return p

    def _score(self, roll: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logp = np.empty(len(roll) - 1)
        probs = np.empty((len(roll) - 1, roll.shape[1]))
        for t in range(1, len(roll)):
            context = self._context(roll[:t])
            logp[t - 1] = self._log_prob(context, roll[t])
            p = self._dist(context)
            probs[t - 1] = p[:-1] @ self._frames + p[-1] * self._unk_marginal
        return logp, probs

    def _draw(self, history: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self._dist(self._context(history))
        i = int(rng.choice(len(p), p=p / p.sum()))
        if i < len(p) - 1:
            return self._frames[i].copy()
        for _ in range(100_000):  # a new frame: B restricted to the complement of V
            f = self.bernoulli._draw(history, rng)  # type: ignore[union-attr]
            if self._symbol(f) not in self._table.index:
                return f
        raise RuntimeError("could not draw a frame outside the training vocabulary in 100000 "
                           "tries: the Bernoulli model puts almost all its mass on seen frames")


# -- event model ---------------------------------------------------------------------------------
class NGramEvents:
    r"""A Kneser-Ney n-gram over event ids, scored as ``EventModel`` scores.

    A sequence is ``[BOS, w_1, ..., w_n, EOS]`` as :meth:`EventVocab.encode
    <rnnkit.music.encoding.EventVocab.encode>` writes it; :class:`~rnnkit.ngram.NGramLM`
    (interpolated Kneser-Ney of ``order``; ``discount=None`` is modified KN) is fitted on
    :math:`w_1 \dots w_n`, its ``<s>`` padding standing for ``BOS`` and its ``</s>`` for
    ``EOS``. Event ids never seen in training share the ``<unk>`` mass equally, so

    .. math::
        p(w \mid h) = \begin{cases} P_{KN}(w \mid h) & w \text{ seen (or } \texttt{EOS)} \\
            P_{KN}(\texttt{<unk>} \mid h) / |U| & w \in U \end{cases}

    sums to 1 over the ``vocab_size - 2`` ids a model may emit (``EOS`` and every event id;
    ``PAD`` and ``BOS`` get probability 0), :math:`U` the event ids (``3 ..
    vocab_size - 1``) not seen in training (if there are none, the ``<unk>`` mass is
    renormalised away). The NLL per event counts every id after ``BOS``, ``EOS`` included:
    ``EventModel.log_likelihood``'s units.
    """

    def __init__(self, vocab_size: int, order: int = 3, discount: float | None = None) -> None:
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 4:
            raise ValueError(f"vocab_size must be an integer >= 4 (PAD, BOS, EOS and at least "
                             f"one event; len(EventVocab(...))), got {vocab_size!r}")
        self.vocab_size = vocab_size
        self.order, self.discount = order, discount
        NGramLM(order, discount)  # checks both now
        self.lm: NGramLM | None = None

    def _ids(self, tokens: Any, what: str) -> list[int]:
        try:
            ids = [int(t) for t in np.asarray(tokens).reshape(-1).tolist()]
        except (TypeError, ValueError):
            raise TypeError(f"{what} must be a sequence of integer event ids, got "
                            f"{tokens!r:.80}") from None
        bad = [t for t in ids if not 0 <= t < self.vocab_size]
        if bad:
            raise ValueError(f"{what} has id {bad[0]} outside the vocabulary 0.."
                             f"{self.vocab_size - 1}")
        if PAD in ids:
            raise ValueError(f"{what} contains PAD (0); strip the padding")
        if not ids or ids[0] != BOS or BOS in ids[1:] or EOS in ids[:-1]:
            raise ValueError(f"{what} must start with BOS (1), have no other BOS, and have EOS "
                             f"(2) only at its end; got {ids[:6]}...")
        return ids

    def _events(self, ids: list[int]) -> list[int]:
        """The ids between ``BOS`` and ``EOS``."""
        return ids[1:-1] if ids[-1] == EOS else ids[1:]

    def fit(self, sequences: Sequence[Any]) -> NGramEvents:
        """Fit on whole sequences ``[BOS, ..., EOS]`` (lists of ids or 1-D arrays); returns
        ``self``."""
        seqs = []
        for i, s in enumerate(sequences):
            ids = self._ids(s, f"sequence {i}")
            if ids[-1] != EOS:
                raise ValueError(f"sequence {i} does not end with EOS (2): fit on whole pieces")
            seqs.append(ids[1:-1])
        if not seqs:
            raise ValueError("no sequences given: pass a list of [BOS, ..., EOS] id lists")
        self.lm = NGramLM(self.order, self.discount).fit(seqs)
        self._table = _KNTable(self.lm)
        self._seen = np.zeros(self.vocab_size, bool)
        self._seen[[t for t in self._table.vocab if t != LM_EOS]] = True
        # the event id of each entry of the table's vocabulary
        self._where = np.array([EOS if t == LM_EOS else t for t in self._table.vocab])
        self._unseen = int(self.vocab_size - 3 - self._seen.sum())
        return self

    def _fitted(self) -> NGramLM:
        if self.lm is None:
            raise RuntimeError("NGramEvents is not fitted: call fit(sequences) first")
        return self.lm

    def _log_prob(self, token: int, events: Sequence[int]) -> float:
        lm = self._fitted()
        if token in (PAD, BOS):
            return -math.inf
        if token == EOS:
            lp = lm.logprob(LM_EOS, events)
        elif self._seen[token]:
            lp = lm.logprob(token, events)
        else:
            return lm.logprob(LM_UNK, events) - math.log(self._unseen)
        if self._unseen == 0:
            lp -= math.log1p(-math.exp(lm.logprob(LM_UNK, events)))
        return lp

    def log_prob_next(self, history: Any, token: int) -> float:
        """``ln p(token | history)``: ``history`` the ids so far, from ``BOS`` on (so
        ``[BOS]`` at the start); ``-inf`` for ``PAD`` and ``BOS``."""
        ids = self._ids(history, "history")
        if ids[-1] == EOS:
            raise ValueError("history ends with EOS: nothing follows the end")
        token = int(token)
        if not 0 <= token < self.vocab_size:
            raise ValueError(f"token {token} is outside the vocabulary 0..{self.vocab_size - 1}")
        return self._log_prob(token, ids[1:])

    def log_likelihood(self, tokens: Any) -> tuple[float, int]:
        """``(ln p(w_2 .. w_N | w_1), N - 1)`` of one sequence ``tokens`` starting with
        ``BOS`` (nats, <= 0): every id after ``BOS``, ``EOS`` included when present, as
        ``EventModel.log_likelihood``."""
        ids = self._ids(tokens, "tokens")
        if len(ids) < 2:
            raise ValueError("tokens has 1 id; at least 2 are needed to score one prediction")
        events, k = self._events(ids), self.order - 1
        total = sum(self._log_prob(t, events[max(0, i - k): i]) for i, t in enumerate(ids[1:]))
        return float(total), len(ids) - 1

    def event_nll(self, sequences: Sequence[Any]) -> tuple[float, int]:
        """``(total negative log-likelihood in nats, events scored)`` over ``sequences``."""
        out = self.evaluate(sequences)
        return out["nats"], out["events"]

    def evaluate(self, sequences: Sequence[Any]) -> dict[str, Any]:
        """``{"nats": total NLL, "events": ids scored, "nll_per_event": nats per event}``
        over ``sequences`` (each as :meth:`log_likelihood` takes it)."""
        nats, n = 0.0, 0
        for s in sequences:
            lp, k = self.log_likelihood(s)
            nats, n = nats - lp, n + k
        if n == 0:
            raise ValueError("no sequences given")
        return {"nats": nats, "events": n, "nll_per_event": nats / n}

    def distribution(self, history: Any) -> np.ndarray:
        """``[vocab_size]`` float64: :math:`p(w \\mid history)` for every id (``history`` as
        :meth:`log_prob_next`); sums to 1."""
        ids = self._ids(history, "history")
        return self._dist(ids[1:])

    def _dist(self, events: Sequence[int]) -> np.ndarray:
        self._fitted()
        table = self._table.dist(events)
        out = np.zeros(self.vocab_size)
        out[self._where] = table[:-1]
        if self._unseen:
            out[3:][~self._seen[3:]] = table[-1] / self._unseen
        else:
            out /= 1.0 - table[-1]
        return out

    def sample(self, length: int = 512, prime: Any = None, seed: int | None = None) -> list[int]:
        """Continue ``prime`` (ids from ``BOS`` on; default ``[BOS]``) by at most ``length``
        events and return the new ids (the prime not included), ending with ``EOS`` if it was
        drawn, as ``EventModel.generate``. ``seed`` makes it reproducible."""
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be an integer >= 0, got {length!r}")
        ids = self._ids([BOS] if prime is None else prime, "prime")
        if ids[-1] == EOS:
            raise ValueError("prime ends with EOS: nothing follows the end")
        rng = np.random.default_rng(seed)
        events, out = ids[1:], []
        for _ in range(length):
            p = self._dist(events)
            tok = int(rng.choice(self.vocab_size, p=p / p.sum()))
            out.append(tok)
            if tok == EOS:
                break
            events.append(tok)
        return out
