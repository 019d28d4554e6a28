r"""Interpolated Kneser-Ney n-gram language model over any hashable tokens (words or characters).

Every training sequence is padded as ``<s> * (order - 1) + tokens + </s>``, and each token after
the padding is predicted from the ``order - 1`` tokens before it. With ``h`` a context, ``h'``
that context without its first token and ``c`` the counts of the context's order:

.. math::
    P(w \mid h) = \frac{\max(c(h w) - D(c(h w)), 0)}{c(h \bullet)}
                  + \frac{\sum_{v:\, c(h v) > 0} D(c(h v))}{c(h \bullet)}\, P(w \mid h')

(``P(w | h) = P(w | h')`` for a context never seen, ``c(h .) = 0``), down to the empty context,
whose lower-order distribution is uniform over the vocabulary plus one ``<unk>`` class,
``1 / (|V| + 1)``.

* **counts**: the highest order uses raw counts ``c(h w)``; lower orders use continuation counts
  ``N1+(. h w)``, the number of distinct tokens seen right before ``h w`` (so "francisco",
  frequent but only after "san", gets a small unigram probability);
* **discounts**: ``discount=D`` (``0 < D <= 1``) is standard KN, one ``D`` for every count;
  ``discount=None`` is modified KN (Chen & Goodman 1999): per order, ``D(1)``, ``D(2)`` and
  ``D(3+)`` from that order's count-of-counts ``n_k``: ``Y = n_1 / (n_1 + 2 n_2)``,
  ``D(k) = k - (k + 1) Y n_{k+1} / n_k``, clipped to ``[0.1, k - 0.1]`` (0.5, 1, 1.5 when
  ``n_k = 0``);
* **unknown tokens**: a token outside :attr:`NGramLM.vocab` (``<s>``, ``<unk>`` included) gets
  the ``<unk>`` class's probability, the product of the interpolation weights times
  ``1 / (|V| + 1)``: a small floor that keeps :meth:`NGramLM.logprob` finite. The vocabulary's
  probabilities plus this one sum to 1 in every context;
* **contexts** shorter than ``order - 1`` tokens are read as sentence starts (left-padded with
  ``<s>``); only the last ``order - 1`` tokens of a longer one are used.

A string is a sequence of characters, so ``fit(["hello world", ...])`` is a character model.

>>> lm = NGramLM(order=2).fit([["the", "cat"], ["the", "dog"], ["a", "cat"]])
>>> lm.vocab
['</s>', 'a', 'cat', 'dog', 'the']
>>> lm.logprob("cat", ["the"]) > lm.logprob("the", ["the"])
True
>>> round(sum(math.exp(lm.logprob(w, ["the"])) for w in lm.vocab + [UNK]), 12)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["BOS", "EOS", "UNK", "NGramLM"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
_RESERVED = (BOS, EOS, UNK)


class NGramLM:
    """Interpolated (modified) Kneser-Ney language model; see the module docstring."""

    KIND = "rnnkit.ngram"
    VERSION = 1

    def __init__(self, order: int = 3, discount: float | None = 0.75):
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise ValueError(f"order must be an int >= 1 (1 = unigram, 3 = trigram); got {order!r}")
        if discount is not None and (
            isinstance(discount, bool)
            or not isinstance(discount, (int, float))
            or not 0 < discount <= 1
        ):
            raise ValueError(f"discount must be in (0, 1] (0.75 is the usual choice), or None for "
                             f"modified Kneser-Ney; got {discount!r}")
        self.order = order
        self.discount = None if discount is None else float(discount)
        self._counts: list[dict[tuple, int]] = []  # [m]: counts of the (m + 1)-grams
        self._ctx: list[dict[tuple, tuple[int, float]]] = []  # [m]: context -> (total, D mass)
        self._discounts: list[tuple[float, float, float]] = []  # [m]: D(1), D(2), D(3+)
        self._vocab: set = set()

    # ---------------------------------------------------------------- training
    def fit(self, sequences: Iterable[Sequence]) -> NGramLM:
        """Count the n-grams of ``sequences`` (an iterable of token sequences), replacing any
        earlier fit, and return ``self``."""
        k, top, n_seq = self.order - 1, {}, 0
        for seq in sequences:
            try:
                toks = tuple(seq)
            except TypeError:
                raise TypeError(f"fit() takes an iterable of token sequences; got {seq!r}: wrap "
                                f"each sequence in a list") from None
            for t in toks:
                try:
                    hash(t)
                except TypeError:
                    raise TypeError(f"tokens must be hashable (str, int, tuple, ...); got "
                                    f"{type(t).__name__} {t!r}: convert it, e.g. to str") from None
                if isinstance(t, str) and t in _RESERVED:
                    raise ValueError(f"token {t!r} is reserved ({BOS} pads, {EOS} ends, {UNK} "
                                     f"is the unknown class and all are added internally): "
                                     f"remove or rename it in the training data")
            padded = (BOS,) * k + toks + (EOS,)
            for i in range(k, len(padded)):
                g = padded[i - k : i + 1]
                top[g] = top.get(g, 0) + 1
            n_seq += 1
        if not n_seq:
            raise ValueError("fit() got no training sequences: pass a non-empty iterable of "
                             "token sequences (e.g. [['the', 'cat'], ['a', 'dog']])")
        self._build(top)
        return self

    def _build(self, top: dict[tuple, int]) -> None:
        levels: list[dict[tuple, int]] = [top]
        for _ in range(self.order - 1):  # continuation counts N1+(. g) from the order above
            cont: dict[tuple, int] = {}
            for g in levels[0]:
                cont[g[1:]] = cont.get(g[1:], 0) + 1
            levels.insert(0, cont)
        self._counts = levels
        self._discounts = [self._estimate_discounts(lv) for lv in levels]
        self._ctx = []
        for lv, d in zip(levels, self._discounts):
            ctx: dict[tuple, tuple[int, float]] = {}
            for g, c in lv.items():
                tot, mass = ctx.get(g[:-1], (0, 0.0))
                ctx[g[:-1]] = (tot + c, mass + d[min(c, 3) - 1])
            self._ctx.append(ctx)
        self._vocab = {g[-1] for g in top}

    def _estimate_discounts(self, level: dict[tuple, int]) -> tuple[float, float, float]:
        if self.discount is not None:
            return (self.discount,) * 3
        n = [0] * 5
        for c in level.values():
            if c <= 4:
                n[c] += 1
        y = n[1] / (n[1] + 2 * n[2]) if n[1] + n[2] else 0.5
        out = []
        for k, default in ((1, 0.5), (2, 1.0), (3, 1.5)):
            d = k - (k + 1) * y * n[k + 1] / n[k] if n[k] else default
            out.append(min(max(d, 0.1), k - 0.1))
        return out[0], out[1], out[2]

    # ---------------------------------------------------------------- scoring
    @property
    def vocab(self) -> list:
        """The tokens the model predicts, sorted (``</s>`` included, ``<s>`` not)."""
        try:
            return sorted(self._vocab)
        except TypeError:  # mixed token types
            return sorted(self._vocab, key=repr)

    def _prob(self, token: Any, ctx: tuple) -> float:
        p = 1.0 / (len(self._vocab) + 1)
        for m in range(len(ctx) + 1):  # order m + 1, context: the last m tokens
            h = ctx[len(ctx) - m :]
            seen = self._ctx[m].get(h)
            if seen is None:
                continue  # unseen context: P(w | h) = P(w | h')
            tot, mass = seen
            c = self._counts[m].get(h + (token,), 0)
            own = max(c - self._discounts[m][min(c, 3) - 1], 0.0) / tot if c else 0.0
            p = own + mass / tot * p
        return p

    def logprob(self, token: Any, context: Sequence = ()) -> float:
        """Natural-log probability of ``token`` after ``context`` (its last ``order - 1``
        tokens; a shorter context is a sentence start). Unknown tokens get the ``<unk>`` mass."""
        if not self._counts:
            raise RuntimeError("NGramLM is not fitted: call fit(sequences) (or from_state) first")
        k = self.order - 1
        ctx = tuple(context)[-k:] if k else ()
        return math.log(self._prob(token, (BOS,) * (k - len(ctx)) + ctx))

    def score(self, sequence: Sequence) -> float:
        """Total natural-log probability of ``sequence`` followed by ``</s>``."""
        toks = tuple(sequence)
        return sum(self.logprob(t, toks[:i]) for i, t in enumerate(toks + (EOS,)))

    def perplexity(self, sequences: Iterable[Sequence]) -> float:
        """``exp(-total log prob / number of predicted tokens)``, ``</s>`` counted per sequence."""
        total, n = 0.0, 0
        for seq in sequences:
            total += self.score(seq)
            n += len(seq) + 1
        if not n:
            raise ValueError("perplexity() got no sequences: pass a non-empty iterable")
        return math.exp(-total / n)

    # ---------------------------------------------------------------- saving
    def state(self) -> dict:
        """Plain lists / numbers / strings (the top-order counts; the rest is rebuilt)."""
        if not self._counts:
            raise RuntimeError("NGramLM is not fitted: call fit(sequences) before state()")
        grams = list(self._counts[-1])
        for g in grams:
            for t in g:
                if not isinstance(t, str):
                    raise TypeError(f"state() requires str tokens (it stores plain data); token "
                                    f"{t!r} is {type(t).__name__}: fit on str tokens instead, "
                                    f"e.g. [[str(t) for t in seq] for seq in data]")
        return {"order": self.order, "discount": self.discount,
                "ngrams": [list(g) for g in grams],
                "counts": [self._counts[-1][g] for g in grams]}

    @classmethod
    def from_state(cls, blob: dict) -> NGramLM:
        """Rebuild the model written by :meth:`state`."""
        missing = {"order", "discount", "ngrams", "counts"} - set(blob)
        if missing:
            raise ValueError(f"not an NGramLM state (missing {sorted(missing)}); pass the dict "
                             f"that NGramLM.state() returned")
        lm = cls(int(blob["order"]), blob["discount"])
        if len(blob["ngrams"]) != len(blob["counts"]) or not blob["ngrams"]:
            raise ValueError("NGramLM state has no n-grams or mismatched ngrams / counts lists")
        top = {}
        for g, c in zip(blob["ngrams"], blob["counts"]):
            if len(g) != lm.order:
                raise ValueError(f"NGramLM state: n-gram {g!r} does not have order {lm.order}")
            top[tuple(g)] = int(c)
        lm._build(top)
        return lm

    def __repr__(self) -> str:
        kind = "modified" if self.discount is None else f"discount={self.discount}"
        return f"NGramLM(order={self.order}, {kind}, vocab={len(self._vocab)})"
