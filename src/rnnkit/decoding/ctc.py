r"""CTC decoding, shared by the speech and vision (OCR) wings: best path and prefix beam search,
with an optional n-gram language model and a lexicon (word list).

**Shapes.** ``log_probs`` is ``[T, V]`` (one utterance) or ``[B, T, V]`` with ``lengths [B]``
(frames past ``lengths[b]`` are ignored): per frame, log-probabilities over ``V`` labels, one
of them ``blank`` (``log_softmax`` outputs; rows are checked to sum to 1 after ``exp``). A
labelling ``y`` is the image of alignments ``pi`` (one label per frame) under ``B``, which
merges repeats and then drops blanks (Graves et al. 2006)::

    p(y | x) = sum over pi with B(pi) = y of prod_t p_t(pi_t)

* :func:`ctc_greedy`: best path, ``B(argmax_v p_t(v))``; its score is the path's log-prob.
* :func:`ctc_prefix_beam_search` (Hannun et al. 2014, "First-pass large vocabulary continuous
  speech recognition using bi-directional recurrent DNNs"): every prefix ``l`` carries two
  log-probs over frames ``1..t``, ``p_b(l)`` (alignments collapsing to ``l`` that end in blank)
  and ``p_nb(l)`` (ending in ``l``'s last label); with ``(+)`` = logaddexp and ``p = log p_t``::

      p_b'(l)       (+)= (p_b(l) (+) p_nb(l)) + p(blank)
      p_nb'(l)      (+)= p_nb(l) + p(last(l))                  (repeat, merged)
      p_nb'(l + c)  (+)= p_b(l) + p(c)                         if c == last(l)
      p_nb'(l + c)  (+)= (p_b(l) (+) p_nb(l)) + p(c)           otherwise

  and keeps the ``beam_size`` prefixes with the best ``score = acoustic + lm_weight * lm +
  word_bonus * words``, where ``acoustic = p_b (+) p_nb = log p(l | x[:t])``. With a beam at least
  the number of distinct prefixes (and ``prune_log_prob=None``) the search is exact.
* **LM** (an :class:`~rnnkit.ngram.NGramLM` or anything with ``logprob(token, context)``):
  ``lm_unit="char"`` scores every emitted label ``alphabet[c]`` given the labels before it;
  ``lm_unit="word"`` scores a word when it is completed (a ``space`` label is emitted), and the
  last word at the end; both add ``</s>`` at the end. ``lm_score`` is the unweighted sum.
* **lexicon**: prefixes whose partial word is no prefix of a lexicon word are dropped as they
  appear, so are completed words outside the lexicon and, at the end, hypotheses whose last word
  is incomplete: a word list / grammar (e.g. digit strings). If every hypothesis is dropped the
  result is empty.
* **frames**: per token, the frame where it was emitted (for beam search: the frame whose
  first-emission mass was the largest), strictly increasing: per-character timestamps.

>>> import torch
>>> probs = torch.tensor([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
>>> best = ctc_prefix_beam_search(probs.log(), beam_size=4, alphabet=["_", "a", "b"])[0]
>>> best.text, best.tokens, best.frames, round(best.acoustic, 4)
('ab', [1, 2], [0, 3], -0.4228)
>>> ctc_greedy(probs.log(), alphabet="_ab")[0].text
'ab'
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import torch
from torch import Tensor

__all__ = ["CTCGreedyStream", "CTCHypothesis", "ctc_beam_search_batch", "ctc_greedy",
           "ctc_prefix_beam_search"]

NEG = -math.inf
_EOS = "</s>"


@dataclass
class CTCHypothesis:
    """One decoded labelling: ``tokens`` (label ids, blanks and repeats removed), ``frames``
    (per token, the frame it was emitted at), ``score`` (what the search ranks by),
    ``acoustic`` (CTC log-prob: of the labelling for beam search, of the best path for
    greedy), ``lm_score`` (unweighted LM log-prob), ``text`` (with an ``alphabet``) and
    ``words`` (the number of words, counted when an ``alphabet`` is given)."""

    tokens: list[int]
    frames: list[int]
    score: float
    acoustic: float
    lm_score: float = 0.0
    text: str | None = None
    words: int = field(default=0, repr=False)


def _lae(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == NEG:
        return a
    return a + math.log1p(math.exp(b - a))


def _check(log_probs: Any, lengths: Any, blank: int, dims: tuple[int, ...], fn: str):
    """Validate and return (float64 [B, T, V], lengths list, was_batched)."""
    if not isinstance(log_probs, Tensor):
        log_probs = torch.as_tensor(log_probs)
    if log_probs.dim() not in dims:
        want = " or ".join({2: "[T, V]", 3: "[B, T, V]"}[d] for d in dims)
        raise ValueError(f"{fn}: log_probs must be {want} (frames x labels); got shape "
                         f"{tuple(log_probs.shape)}" + (": use ctc_beam_search_batch for a batch"
                                                       if log_probs.dim() == 3 else ""))
    if not log_probs.is_floating_point():
        raise TypeError(f"{fn}: log_probs must be a float tensor of log_softmax outputs; got "
                        f"{log_probs.dtype}")
    tol = 1e-3 if log_probs.dtype in (torch.float32, torch.float64) else 2e-2
    batched = log_probs.dim() == 3
    x = log_probs.detach().to("cpu", torch.float64)
    if not batched:
        x = x.unsqueeze(0)
    B, T, V = x.shape
    if isinstance(blank, bool) or not isinstance(blank, int) or not 0 <= blank < V:
        raise ValueError(f"{fn}: blank={blank!r} is not a label index in [0, {V}); pass the "
                         f"blank's index (usually 0) for these {V} labels")
    if lengths is None:
        lens = [T] * B
    else:
        lens = torch.as_tensor(lengths).reshape(-1).tolist()
        if len(lens) != B or any(int(n) != n or not 0 <= n <= T for n in lens):
            raise ValueError(f"{fn}: lengths must hold {B} ints in [0, {T}] (valid frames per "
                             f"sequence); got {lens}")
        lens = [int(n) for n in lens]
    valid = torch.arange(T)[None, :] < torch.tensor(lens)[:, None]
    if torch.isnan(x[valid]).any() or (x[valid] == math.inf).any():
        raise ValueError(f"{fn}: log_probs contains NaN or +inf: pass finite log_softmax outputs")
    lse = x.logsumexp(-1)
    bad = valid & ~(lse.abs() <= tol)
    if bad.any():
        b, t = bad.nonzero()[0].tolist()
        raise ValueError(f"{fn}: log_probs are not log-probabilities: frame {t} (sequence {b}) "
                         f"has logsumexp {lse[b, t].item():.4g}, not 0: pass log_softmax outputs "
                         f"(logits.log_softmax(-1)), not logits or probabilities")
    return x, lens, batched


def _text(alphabet: Sequence[str] | None, tokens: list[int]) -> str | None:
    return None if alphabet is None else "".join(alphabet[t] for t in tokens)


def _check_alphabet(alphabet: Sequence[str] | None, V: int, fn: str) -> None:
    if alphabet is not None and len(alphabet) != V:
        raise ValueError(f"{fn}: alphabet has {len(alphabet)} entries but log_probs has {V} "
                         f"labels: give one string per label (the blank's included, e.g. '_')")


def ctc_greedy(log_probs: Tensor, lengths: Tensor | None = None, blank: int = 0, *,
               alphabet: Sequence[str] | None = None) -> list[CTCHypothesis]:
    """Best-path decoding of ``log_probs`` ``[B, T, V]`` (or ``[T, V]``: one result): the
    argmax label per frame, repeats merged, blanks dropped; ``frames`` holds the first frame of
    each emitted token's run, ``score`` = ``acoustic`` = the best path's log-prob."""
    x, lens, _ = _check(log_probs, lengths, blank, (2, 3), "ctc_greedy")
    _check_alphabet(alphabet, x.shape[-1], "ctc_greedy")
    vals, best = x.max(-1)
    out = []
    for b, n in enumerate(lens):
        tokens, frames, _ = _collapse(best[b, :n].tolist(), blank, blank, 0)
        s = float(vals[b, :n].sum())
        out.append(CTCHypothesis(tokens, frames, s, s, 0.0, _text(alphabet, tokens)))
    return out


def _collapse(labels: list[int], prev: int, blank: int, offset: int
              ) -> tuple[list[int], list[int], int]:
    """Best-path labels (after a frame whose label was ``prev``) -> emitted tokens, their
    frames (``offset`` + index) and the last label: repeats merged, blanks dropped."""
    tokens, frames = [], []
    for t, c in enumerate(labels):
        if c != blank and c != prev:
            tokens.append(c)
            frames.append(offset + t)
        prev = c
    return tokens, frames, prev


class CTCGreedyStream:
    """:func:`ctc_greedy` over frames that arrive in chunks: :meth:`push` takes the next
    ``[T_chunk, V]`` log-probabilities and returns the tokens decided by them (best path needs
    no look-ahead) with their absolute frames; together they equal ``ctc_greedy`` of the whole.

    >>> lp = torch.tensor([[.1, .8, .1], [.1, .8, .1], [.8, .1, .1], [.1, .1, .8]]).log()
    >>> s = CTCGreedyStream()
    >>> s.push(lp[:1]), s.push(lp[1:3]), s.push(lp[3:])
    (([1], [0]), ([], []), ([2], [3]))
    """

    def __init__(self, blank: int = 0) -> None:
        self.blank, self.prev, self.frame = blank, blank, 0

    def push(self, log_probs: Tensor) -> tuple[list[int], list[int]]:
        if log_probs.ndim != 2:
            raise ValueError(f"CTCGreedyStream.push takes one chunk of frames [T, V], got shape "
                             f"{tuple(log_probs.shape)}")
        labels = log_probs.argmax(-1).tolist()
        tokens, frames, self.prev = _collapse(labels, self.prev, self.blank, self.frame)
        self.frame += len(labels)
        return tokens, frames


def ctc_prefix_beam_search(
    log_probs: Tensor, beam_size: int = 8, blank: int = 0, *, lm: Any = None,
    lm_weight: float = 0.0, lm_unit: str = "word", word_bonus: float = 0.0,
    alphabet: Sequence[str] | None = None, space: str = " ", lexicon: Iterable[str] | None = None,
    nbest: int = 1, prune_log_prob: float | None = -12.0,
) -> list[CTCHypothesis]:
    """CTC prefix beam search over ``log_probs`` ``[T, V]`` (see the module docstring); returns
    up to ``nbest`` hypotheses, best score first. ``prune_log_prob``: labels below it at a frame
    are not tried there (blank and the best other label always are); ``None`` tries all."""
    fn = "ctc_prefix_beam_search"
    x, _, _ = _check(log_probs, None, blank, (2,), fn)
    x = x[0]
    T, V = x.shape
    for name, v in (("beam_size", beam_size), ("nbest", nbest)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{fn}: {name} must be an int >= 1; got {v!r}")
    _check_alphabet(alphabet, V, fn)
    if lm_unit not in ("word", "char"):
        raise ValueError(f"{fn}: lm_unit must be 'word' or 'char' (what the LM's tokens are); "
                         f"got {lm_unit!r}")
    for what, given in (("lexicon", lexicon is not None), ("lm", lm is not None),
                        ("word_bonus", word_bonus != 0)):
        if given and alphabet is None:
            raise ValueError(f"{fn}: {what} needs alphabet= (one string per label) to spell "
                             f"words; pass alphabet")
    if lm is not None and not lm_weight >= 0:
        raise ValueError(f"{fn}: lm_weight must be >= 0 (0 ignores the LM); got {lm_weight!r}")
    lex_words = lex_prefixes = None
    if lexicon is not None:
        lex_words = frozenset(lexicon)
        bad = [w for w in lex_words if not isinstance(w, str) or not w or space in w]
        if bad:
            raise ValueError(f"{fn}: lexicon entries must be non-empty str words without "
                             f"{space!r}; got {bad[:5]}")
        lex_prefixes = {w[:i] for w in lex_words for i in range(1, len(w) + 1)}
    word_lm, char_lm = lm is not None and lm_unit == "word", lm is not None and lm_unit == "char"
    k = max(int(getattr(lm, "order", 1 << 30)) - 1, 0)
    spell = alphabet is not None

    # candidate labels per frame
    rows = x.tolist()
    if prune_log_prob is None:
        keep = torch.ones(T, V, dtype=torch.bool)
    else:
        keep = x >= prune_log_prob
        if V > 1:
            others = x.clone()
            others[:, blank] = NEG
            keep[torch.arange(T), others.argmax(-1)] = True
    keep[:, blank] = False
    cands = [[(c, row[c]) for c in range(V) if ok[c]] for row, ok in zip(rows, keep.tolist())]

    # prefix trie, node 0 = the empty prefix; kids[n][c] = the node of prefix n + c, -1 when the
    # lexicon forbids it. A candidate extension that is not a node yet is kept as the key
    # (n, c) and made a node only if it can enter the beam; a node's LM score is computed only
    # then too (LM log-probs are <= 0, so bonus[n] + its word bonus bounds the score before).
    parent, last, kids, n_words, partial = [-1], [-1], [{}], [0], [""]
    lm_s: list[float] = [0.0]
    ctx: list[tuple] = [()]
    bonus = [0.0]  # lm_weight * lm + word_bonus * words
    emit_best, frames_link = [NEG], [None]
    wstep = [word_bonus if spell and alphabet[c] == space else 0.0 for c in range(V)]

    def make(n: int, c: int) -> int:
        """Add prefix n + c to the trie (LM scored); -1 if the lexicon forbids it."""
        w, part, s, cx = n_words[n], partial[n], lm_s[n], ctx[n]
        if spell:
            piece = alphabet[c]
            if piece == space:
                if part:
                    if lex_words is not None and part not in lex_words:
                        return -1
                    if word_lm:
                        s += lm.logprob(part, cx)
                        cx = (cx + (part,))[-k:] if k else ()
                    w, part = w + 1, ""
            else:
                part += piece
                if lex_prefixes is not None and part not in lex_prefixes:
                    return -1
            if char_lm:
                s += lm.logprob(piece, cx)
                cx = (cx + (piece,))[-k:] if k else ()
        for lst, v in ((parent, n), (last, c), (kids, {}), (n_words, w), (partial, part),
                       (lm_s, s), (ctx, cx), (bonus, lm_weight * s + word_bonus * w),
                       (emit_best, NEG), (frames_link, None)):
            lst.append(v)
        return len(parent) - 1

    log1p, exp = math.log1p, math.exp
    beam: dict[int, list[float]] = {0: [0.0, NEG]}  # node -> [p_b, p_nb]
    for t in range(T):
        pblank, ext = rows[t][blank], cands[t]
        nxt: dict[Any, list[float]] = {}  # node or (parent, label) -> [p_b, p_nb]
        emitted = []  # (node, first-emission log-prob at t, frames link)
        for n, (pb, pnb) in beam.items():
            ptot = _lae(pb, pnb)
            e = nxt.get(n)
            if e is None:
                nxt[n] = [ptot + pblank, NEG]
            else:
                e[0] = _lae(e[0], ptot + pblank)
            ln, kd, link = last[n], kids[n], frames_link[n]
            for c, p in ext:
                if c == ln:
                    if pnb != NEG:
                        e = nxt[n]
                        e[1] = _lae(e[1], pnb + p)
                    xv = pb + p
                    if xv == NEG:
                        continue
                else:
                    xv = ptot + p
                child = kd.get(c)
                if child is None:  # one parent per prefix: this is its only mass at t
                    nxt[(n, c)] = [NEG, xv]
                    continue
                if child < 0:
                    continue
                e = nxt.get(child)
                if e is None:
                    nxt[child] = [NEG, xv]
                else:  # inline logaddexp: the hot spot
                    a = e[1]
                    e[1] = xv + log1p(exp(a - xv)) if xv > a else a + log1p(exp(xv - a))
                if xv > emit_best[child]:
                    emitted.append((child, xv, (t, link)))
        # keep the beam_size best scores, trying candidates in order of their score's bound
        ranked = []
        for key, (b, nb) in nxt.items():
            ac = _lae(b, nb)
            if key.__class__ is int:
                ranked.append((ac + bonus[key], ac, key))
            else:
                n, c = key
                ranked.append((ac + bonus[n] + (wstep[c] if partial[n] else 0.0), ac, key))
        ranked.sort(key=itemgetter(0), reverse=True)
        heap: list[tuple[float, int]] = []
        made = {}
        for bound, ac, key in ranked:
            if len(heap) == beam_size and bound <= heap[0][0]:
                break
            if key.__class__ is int:
                m = key
            else:
                n, c = key
                m = kids[n][c] = make(n, c)
                if m < 0:
                    continue
                emit_best[m], frames_link[m] = nxt[key][1], (t, frames_link[n])
            made[m] = nxt[key]
            item = (ac + bonus[m], m)
            if len(heap) < beam_size:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
        for m, xv, link in emitted:
            emit_best[m], frames_link[m] = xv, link
        beam = {m: made[m] for _, m in heap}

    out = []
    for n, (pb, pnb) in beam.items():
        acoustic, s, w, part, cx = _lae(pb, pnb), lm_s[n], n_words[n], partial[n], ctx[n]
        if part:
            if lex_words is not None and part not in lex_words:
                continue
            w += 1
            if word_lm:
                s += lm.logprob(part, cx)
                cx = (cx + (part,))[-k:] if k else ()
        if lm is not None:
            s += lm.logprob(_EOS, cx)
        tokens, frames, m, link = [], [], n, frames_link[n]
        while m > 0:
            tokens.append(last[m])
            m = parent[m]
        while link is not None:
            frames.append(link[0])
            link = link[1]
        tokens.reverse()
        frames.reverse()
        score = acoustic + (lm_weight * s if lm is not None else 0.0) + word_bonus * w
        out.append(CTCHypothesis(tokens, frames, score, acoustic, s, _text(alphabet, tokens), w))
    out.sort(key=lambda h: -h.score)
    return out[:nbest]


def ctc_beam_search_batch(log_probs: Tensor, lengths: Tensor | None = None, beam_size: int = 8,
                          blank: int = 0, **kwargs: Any) -> list[list[CTCHypothesis]]:
    """:func:`ctc_prefix_beam_search` on every sequence of ``log_probs`` ``[B, T, V]`` (its
    first ``lengths[b]`` frames); ``kwargs`` are that function's. One list per sequence."""
    x, lens, _ = _check(log_probs, lengths, blank, (3,), "ctc_beam_search_batch")
    return [ctc_prefix_beam_search(x[b, :n], beam_size, blank, **kwargs)
            for b, n in enumerate(lens)]
