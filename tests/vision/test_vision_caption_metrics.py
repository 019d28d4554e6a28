"""Caption metrics: CIDEr-D against hand-computed cases, BLEU-4 against sacrebleu, scene-fact
accuracy and object precision/recall on hand-made scenes."""

from __future__ import annotations

import math

import pytest
import sacrebleu

from rnnkit.vision.caption_metrics import (
    bleu4,
    caption_scores,
    cider_d,
    cider_d_per_image,
    fact_scores,
    ngram_counts,
)
from rnnkit.vision.scenes import Scene, SceneObject


def test_cider_d_hand_computed_exact_match():
    # two images; every n-gram occurs in one image's references: idf = log 2 for all.
    # image 1: n=1 and n=2 cosines are 1, n=3, 4 have no n-grams -> (1 + 1 + 0 + 0) / 4 * 10
    # image 2: only n=1 -> 1 / 4 * 10
    scores = cider_d_per_image(["a b", "c"], [["a b"], ["c"]])
    assert scores == pytest.approx([5.0, 2.5])
    assert cider_d(["a b", "c"], [["a b"], ["c"]]) == pytest.approx(3.75)


def test_cider_d_hand_computed_clipping_and_length_penalty():
    # hyp "a a b" vs ref "a b" (idf l = log 2 everywhere):
    #   n=1: hyp (a: 2l, b: l), ref (a: l, b: l): clipped dot l*l + l*l over l*sqrt5 * l*sqrt2
    #   n=2: hyp (aa: l, ab: l), ref (ab: l): l*l over l*sqrt2 * l
    #   n=3: the reference has no trigram: 0
    #   length = bigrams: 2 vs 1 -> exp(-1 / 72)
    want = 10 * math.exp(-1 / 72) * (2 / math.sqrt(10) + 1 / math.sqrt(2)) / 4
    assert cider_d_per_image(["a a b", "c"], [["a b"], ["c"]])[0] == pytest.approx(want)


def test_cider_d_averages_references_and_ignores_case_and_punctuation():
    one = cider_d_per_image(["A dog.", "x"], [["a dog"], ["x"]])[0]
    two = cider_d_per_image(["a dog", "x"], [["a dog", "a cat"], ["x", "x"]])[0]
    assert one == pytest.approx(two * 2 - cider_d_per_image(
        ["a dog", "x"], [["a cat", "a cat"], ["x", "x"]])[0])
    assert ngram_counts("A dog.") == ngram_counts("a dog")


def test_cider_d_common_words_weigh_nothing():
    # "a" is in every image's references: idf 0, so matching only it scores 0
    refs = [["a dog"], ["a cat"], ["a cow"]]
    assert cider_d_per_image(["a", "a", "a"], refs) == pytest.approx([0, 0, 0])
    assert cider_d_per_image(["a dog", "a cat", "a cow"], refs)[0] > 0


def test_bleu4_matches_sacrebleu_and_takes_ragged_references():
    hyps = ["two dogs left of a cat", "there is a red apple", "a pizza above a car"]
    refs = [["two dogs to the left of a cat", "a cat right of two dogs"],
            ["a red apple", "there is one apple"], ["a pizza over a car", "a car below a pizza"]]
    want = sacrebleu.corpus_bleu(hyps, [[r[0] for r in refs], [r[1] for r in refs]]).score
    assert bleu4(hyps, refs) == pytest.approx(want)
    assert bleu4(["a b c d e"], [["a b c d e"]]) == pytest.approx(100.0)
    ragged = [refs[0][:1], refs[1], refs[2][:1]]
    assert 0 < bleu4(hyps, ragged) <= 100


@pytest.mark.parametrize("hyps,refs", [(["a"], []), ([], []), (["a"], [[]]), ("abc", [["a"]] * 3),
                                       (["a"], ["a"])])
def test_bad_inputs(hyps, refs):
    with pytest.raises((ValueError, TypeError)):
        cider_d(hyps, refs)
    with pytest.raises((ValueError, TypeError)):
        bleu4(hyps, refs)


def _scene(*objs, bg="white", captions=("x",)):
    return Scene(tuple(SceneObject(n, r, c, "small") for n, r, c in objs), bg, list(captions))


def test_fact_scores_by_hand():
    s1 = _scene(("dog", 0, 0), ("cat", 0, 2))                  # dog left of cat
    s2 = _scene(("pizza", 0, 0), ("pizza", 1, 1), ("car", 2, 2))
    caps = ["a dog to the left of a cat",                       # correct
            "two pizzas and a car and a dog"]                    # extra dog: false
    r = fact_scores(caps, [s1, s2])
    assert r["fact_accuracy"] == 0.5 and r["parsed"] == 1.0 and r["complete"] == 1.0
    assert r["object_precision"] == pytest.approx(5 / 6)       # 6 objects said, 5 real
    assert r["object_recall"] == pytest.approx(1.0)
    r = fact_scores(["gibberish words", "a pizza"], [s1, s2])
    assert r["fact_accuracy"] == 0 and r["parsed"] == 0.5
    assert r["object_precision"] == 1.0 and r["object_recall"] == pytest.approx(1 / 5)
    with pytest.raises(ValueError):
        fact_scores(["a dog"], [s1, s2])


def test_caption_scores_combines():
    s = _scene(("dog", 0, 0), captions=["a dog on a white background", "there is a dog"])
    t = _scene(("cat", 0, 0), captions=["a cat on a white background", "there is a cat"])
    r = caption_scores(["there is a dog", "a cat on a white background"], [s, t])
    assert r["fact_accuracy"] == 1.0 and r["bleu4"] > 0 and r["cider_d"] > 0
