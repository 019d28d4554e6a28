r"""Caption quality: corpus BLEU-4 (sacrebleu), CIDEr-D, and scene-fact accuracy.

**BLEU-4** (Papineni et al. 2002) is sacrebleu's ``corpus_bleu`` with every image's references
(any number each; sacrebleu's ``13a`` tokenizer), on sacrebleu's 0-100 scale.

**CIDEr-D** (Vedantam et al. 2015, as the coco-caption reference code computes it) over the
``I`` images of the evaluated corpus. For a sentence :math:`s`, :math:`g_k(s)` is the vector of
its :math:`n`-gram counts :math:`h_k(s)` (``n = 1..4``) weighted by inverse document frequency
over the references:

.. math::
    g_k(s) = h_k(s) \,\bigl(\log I - \log \max(1, \mathrm{df}_k)\bigr),

where :math:`\mathrm{df}_k` is the number of images whose references contain n-gram
:math:`k`. For a candidate :math:`c` with references :math:`S = \{s_1..s_m\}`:

.. math::
    \mathrm{CIDEr\text{-}D}_n(c, S) = \frac{10}{m} \sum_j
        e^{-(\ell(c) - \ell(s_j))^2 / 2\sigma^2}
        \frac{\sum_k \min(g_k(c), g_k(s_j))\, g_k(s_j)}{\lVert g(c) \rVert\, \lVert g(s_j)
        \rVert},

``sigma = 6``, the candidate's weights clipped at the reference's (the ``min``), and the score
the mean over ``n = 1..4`` of the per-image values, averaged over images. As in the reference
code, the length :math:`\ell` counts bigrams (words minus one), and a zero norm leaves the
unnormalised sum. Captions are lower-cased and split on whitespace (punctuation removed).

**Scene-fact accuracy** (:func:`fact_scores`): the share of images whose caption parses in
the scene grammar, states only true facts, and names every object class with its count
(:func:`rnnkit.vision.scenes.fact_report`); plus object precision and recall over the
multisets of objects the captions count and the scenes hold.

>>> refs = [["a dog left of a cat", "there is a dog"], ["two cats", "a pair of cats"]]
>>> round(cider_d(["a dog left of a cat", "two cats"], refs), 4)
4.3953
>>> bleu4(["a dog left of a cat", "two cats"], refs) > 50
True
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

__all__ = ["bleu4", "caption_scores", "cider_d", "cider_d_per_image", "fact_scores",
           "ngram_counts"]

SIGMA = 6.0


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def _check(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> None:
    if isinstance(hyps, str) or not all(isinstance(h, str) for h in hyps):
        raise TypeError("hypotheses must be a list of strings, one caption per image")
    if len(hyps) != len(refs):
        raise ValueError(f"got {len(hyps)} captions but references for {len(refs)} images; "
                         f"give one list of references per caption")
    if not hyps:
        raise ValueError("no captions to score; give at least one image")
    for i, r in enumerate(refs):
        if isinstance(r, str) or not r or not all(isinstance(s, str) for s in r):
            raise ValueError(f"references of image {i} must be a non-empty list of strings, "
                             f"got {r!r}")


def ngram_counts(text: str, n: int = 4) -> Counter:
    """Counts of every 1..n-gram of ``text`` (lower-cased words) as tuples.

    >>> sorted(ngram_counts("a b a", 2).items())
    [(('a',), 2), (('a', 'b'), 1), (('b',), 1), (('b', 'a'), 1)]
    """
    w = _words(text)
    return Counter(tuple(w[i:i + k]) for k in range(1, n + 1) for i in range(len(w) - k + 1))


def cider_d_per_image(hyps: Sequence[str], refs: Sequence[Sequence[str]], n: int = 4,
                      sigma: float = SIGMA) -> list[float]:
    """CIDEr-D of every image (module docstring); ``refs[i]`` are image ``i``'s references."""
    _check(hyps, refs)
    ref_counts = [[ngram_counts(r, n) for r in rs] for rs in refs]
    df: Counter = Counter()
    for rs in ref_counts:
        df.update({g for c in rs for g in c})
    log_i = math.log(float(len(refs)))

    def vec(counts: Counter) -> tuple[list[dict], list[float], int]:
        v: list[dict] = [{} for _ in range(n)]
        for g, tf in counts.items():
            v[len(g) - 1][g] = tf * (log_i - math.log(max(1.0, df[g])))
        norms = [math.sqrt(sum(x * x for x in d.values())) for d in v]
        length = sum(tf for g, tf in counts.items() if len(g) == 2)  # bigrams, as the
        return v, norms, length                                     # reference code

    out = []
    for hyp, rs in zip(hyps, ref_counts):
        vh, nh, lh = vec(ngram_counts(hyp, n))
        total = 0.0
        for rc in rs:
            vr, nr, lr = vec(rc)
            penalty = math.exp(-((lh - lr) ** 2) / (2 * sigma ** 2))
            for k in range(n):
                s = sum(min(x, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, x in vh[k].items())
                if nh[k] != 0 and nr[k] != 0:
                    s /= nh[k] * nr[k]
                total += s * penalty / n
        out.append(10.0 * total / len(rs))
    return out


def cider_d(hyps: Sequence[str], refs: Sequence[Sequence[str]], n: int = 4,
            sigma: float = SIGMA) -> float:
    """Corpus CIDEr-D: the mean of :func:`cider_d_per_image`."""
    scores = cider_d_per_image(hyps, refs, n, sigma)
    return sum(scores) / len(scores)


def bleu4(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 with sacrebleu (0-100), any number of references per image."""
    import sacrebleu

    _check(hyps, refs)
    m = max(len(r) for r in refs)
    streams = [[r[j] if j < len(r) else None for r in refs] for j in range(m)]
    return float(sacrebleu.corpus_bleu(list(hyps), streams).score)


def fact_scores(captions: Sequence[str], scenes: Sequence[Any]) -> dict[str, float]:
    """Scene-fact accuracy (share of images whose caption is parsed, true and complete),
    the shares parsed / true / complete, and object-level precision and recall."""
    from .scenes import fact_report

    if len(captions) != len(scenes):
        raise ValueError(f"got {len(captions)} captions for {len(scenes)} scenes; give one "
                         f"caption per scene")
    if not captions:
        raise ValueError("no captions to score; give at least one scene")
    rows = [fact_report(c, s) for c, s in zip(captions, scenes)]
    tp = pred = true = 0
    for r in rows:
        p, a = Counter(r["predicted"]), Counter(r["actual"])
        tp += sum((p & a).values())
        pred += sum(p.values())
        true += sum(a.values())
    N = len(rows)
    return {"fact_accuracy": sum(r["correct"] for r in rows) / N,
            "parsed": sum(r["parsed"] for r in rows) / N,
            "facts_true": sum(r["true"] for r in rows) / N,
            "complete": sum(r["complete"] for r in rows) / N,
            "object_precision": tp / pred if pred else 0.0,
            "object_recall": tp / true if true else 0.0}


def caption_scores(captions: Sequence[str], scenes: Sequence[Any]) -> dict[str, float]:
    """BLEU-4, CIDEr-D (against each scene's ``captions``) and :func:`fact_scores`."""
    refs = [s.captions for s in scenes]
    return {"bleu4": bleu4(captions, refs), "cider_d": cider_d(captions, refs),
            **fact_scores(captions, scenes)}
