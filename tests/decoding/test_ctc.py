"""CTC decoding against brute force (every alignment enumerated), LM and lexicon behaviour,
frames, batching and bad input."""

import itertools
import math

import pytest
import torch

from rnnkit.decoding import (
    CTCHypothesis,
    ctc_beam_search_batch,
    ctc_greedy,
    ctc_prefix_beam_search,
)
from rnnkit.ngram import NGramLM

ALPHA = ["_", " ", "a", "b", "c", "d"]  # blank = 0, space = 1


def collapse(path, blank=0):
    out, prev = [], blank
    for c in path:
        if c != blank and c != prev:
            out.append(c)
        prev = c
    return tuple(out)


def brute_force(lp, blank=0):
    """labelling -> probability, summing every one of the V^T alignments."""
    T, V = lp.shape
    probs = lp.exp().tolist()
    out = {}
    for path in itertools.product(range(V), repeat=T):
        p = math.prod(probs[t][c] for t, c in enumerate(path))
        key = collapse(path, blank)
        out[key] = out.get(key, 0.0) + p
    return out


def rand_lp(T, V, scale=2.0, dtype=torch.float64):
    return (torch.randn(T, V, dtype=dtype) * scale).log_softmax(-1)


def words_of(text):
    return [w for w in text.split(" ") if w]


@pytest.mark.parametrize("T", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("blank", [0, 2])
def test_against_brute_force(T, blank):
    for _ in range(3):
        lp = rand_lp(T, 3)
        exact = brute_force(lp, blank)
        assert math.fsum(exact.values()) == pytest.approx(1.0, abs=1e-12)  # (c)
        # (a) greedy = collapse of the argmax path, frames = first frame of each run
        best = lp.argmax(-1).tolist()
        g = ctc_greedy(lp, blank=blank)[0]
        assert tuple(g.tokens) == collapse(best, blank)
        assert g.frames == [t for t in range(T) if best[t] != blank
                            and (t == 0 or best[t - 1] != best[t])]
        assert g.acoustic == pytest.approx(lp.max(-1).values.sum().item(), abs=1e-12)
        # (b) an exhaustive beam gives every labelling with its exact probability, in order
        hyps = ctc_prefix_beam_search(lp, beam_size=64, blank=blank, prune_log_prob=None,
                                      nbest=1000)
        assert {tuple(h.tokens) for h in hyps} == set(exact)
        for h in hyps:
            assert h.acoustic == pytest.approx(math.log(exact[tuple(h.tokens)]), abs=1e-9)
            assert h.score == h.acoustic and h.lm_score == 0.0
        ranked = sorted(exact.items(), key=lambda kv: -kv[1])
        assert [h.score for h in hyps] == pytest.approx([math.log(p) for _, p in ranked],
                                                        abs=1e-9)
        gaps_ok = [ranked[i][1] - ranked[i + 1][1] > 1e-9 for i in range(len(ranked) - 1)]
        for i, h in enumerate(hyps):  # order, wherever brute force has no near-tie
            if (i == 0 or gaps_ok[i - 1]) and (i == len(hyps) - 1 or gaps_ok[i]):
                assert tuple(h.tokens) == ranked[i][0]
        top = ctc_prefix_beam_search(lp, beam_size=64, blank=blank, prune_log_prob=None,
                                     nbest=3)
        assert [h.tokens for h in top] == [h.tokens for h in hyps[:3]]
        assert math.fsum(math.exp(h.acoustic) for h in hyps) == pytest.approx(1.0, abs=1e-9)


def test_lexicon_against_brute_force():
    alphabet = ["_", " ", "a", "b"]
    for _ in range(4):
        lp = rand_lp(4, 4)
        lexicon = {"a", "ab", "ba", "bb"}
        drop = ["a", "ab", "ba", "bb"][int(torch.randint(0, 4, ()))]
        lexicon.discard(drop)
        exact = brute_force(lp)
        valid = {k: p for k, p in exact.items()
                 if all(w in lexicon for w in words_of("".join(alphabet[c] for c in k)))}
        hyps = ctc_prefix_beam_search(lp, beam_size=128, prune_log_prob=None, nbest=1000,
                                      alphabet=alphabet, lexicon=lexicon)
        assert {tuple(h.tokens) for h in hyps} == set(valid)
        for h in hyps:
            assert h.acoustic == pytest.approx(math.log(valid[tuple(h.tokens)]), abs=1e-9)
            assert all(w in lexicon for w in words_of(h.text))


@pytest.mark.parametrize("unit", ["word", "char"])
def test_lm_and_word_bonus_against_brute_force(unit):
    alphabet = ["_", " ", "a", "b"]
    corpus = [["a", "ab"], ["b"], ["ab", "ab", "a"], ["ba"]]
    lm = NGramLM(2).fit(corpus if unit == "word" else [" ".join(s) for s in corpus])
    weight, bonus = 0.8, float(torch.rand(())) * 2 - 1
    for _ in range(3):
        lp = rand_lp(4, 4)
        want = {}
        for k, p in brute_force(lp).items():
            text = "".join(alphabet[c] for c in k)
            words = words_of(text)
            lm_score = lm.score(words if unit == "word" else text)
            want[k] = (math.log(p) + weight * lm_score + bonus * len(words), lm_score)
        hyps = ctc_prefix_beam_search(lp, beam_size=128, prune_log_prob=None, nbest=1000,
                                      alphabet=alphabet, lm=lm, lm_unit=unit,
                                      lm_weight=weight, word_bonus=bonus)
        assert len(hyps) == len(want)
        for h in hyps:
            assert h.score == pytest.approx(want[tuple(h.tokens)][0], abs=1e-9)
            assert h.lm_score == pytest.approx(want[tuple(h.tokens)][1], abs=1e-9)
        assert hyps[0].score == pytest.approx(max(s for s, _ in want.values()), abs=1e-9)
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


@pytest.mark.parametrize("unit", ["word", "char"])
def test_lm_weight_zero_changes_nothing(unit):
    corpus = [["ab", "cd"], ["a", "dc", "b"], ["ba"]]
    lm = NGramLM(3).fit(corpus if unit == "word" else [" ".join(s) for s in corpus])
    lp = rand_lp(30, len(ALPHA), scale=3.0)
    plain = ctc_prefix_beam_search(lp, beam_size=6, alphabet=ALPHA, nbest=4)
    with_lm = ctc_prefix_beam_search(lp, beam_size=6, alphabet=ALPHA, nbest=4, lm=lm,
                                     lm_unit=unit, lm_weight=0.0, word_bonus=0.0)
    assert [(h.tokens, h.frames, h.text) for h in with_lm] == [
        (h.tokens, h.frames, h.text) for h in plain]
    assert [h.score for h in with_lm] == [h.score for h in plain]
    assert [h.acoustic for h in with_lm] == [h.acoustic for h in plain]


def ambiguous(w1, w2):
    """Acoustics that slightly prefer w1 over w2 (same length) at every differing letter."""
    rows = []
    for a, b in zip(w1, w2):
        p = torch.full((len(ALPHA),), 0.02, dtype=torch.float64)
        if a == b:
            p[ALPHA.index(a)] = 0.9
        else:
            p[ALPHA.index(a)], p[ALPHA.index(b)] = 0.5, 0.42
        rows += [p / p.sum(), torch.tensor([0.9, 0.02, 0.02, 0.02, 0.02, 0.02],
                                           dtype=torch.float64)]
    return torch.stack(rows).log()


@pytest.mark.parametrize("unit", ["word", "char"])
def test_lm_flips_an_ambiguous_word(unit):
    letters = "abcd"
    w1 = "".join(letters[i] for i in torch.randint(0, 4, (3,)).tolist())
    pos = int(torch.randint(0, 3, ()))  # w2 differs from w1 in one random letter
    other = letters[(letters.index(w1[pos]) + 1 + int(torch.randint(0, 3, ()))) % 4]
    w2 = w1[:pos] + other + w1[pos + 1 :]
    lp = ambiguous(w1, w2)
    corpus = [[w2]] * 20 + [[w1]]
    lm = NGramLM(2).fit(corpus if unit == "word" else [s[0] for s in corpus])
    plain = ctc_prefix_beam_search(lp, beam_size=8, alphabet=ALPHA)[0]
    assert plain.text == w1
    best = ctc_prefix_beam_search(lp, beam_size=8, alphabet=ALPHA, lm=lm, lm_unit=unit,
                                  lm_weight=1.0)[0]
    assert best.text == w2 and best.acoustic < plain.acoustic
    assert best.lm_score == pytest.approx(lm.score([w2] if unit == "word" else w2), abs=1e-12)
    assert best.lm_score > lm.score([w1] if unit == "word" else w1)


def test_lexicon_restricts_random_outputs():
    letters = "abcd"
    lexicon = {"".join(letters[i] for i in torch.randint(0, 4, (n,)).tolist())
               for n in (1, 2, 2, 3)}
    for _ in range(5):
        lp = rand_lp(25, len(ALPHA), scale=2.0)
        hyps = ctc_prefix_beam_search(lp, beam_size=8, alphabet=ALPHA, lexicon=lexicon,
                                      nbest=8)
        for h in hyps:
            assert all(w in lexicon for w in words_of(h.text)), (h.text, lexicon)


def test_frames():
    T = 40
    for _ in range(3):
        lp = rand_lp(T, len(ALPHA), scale=3.0)
        lm = NGramLM(2).fit([["ab", "c"], ["d"]])
        hyps = ctc_prefix_beam_search(lp, beam_size=8, nbest=5, alphabet=ALPHA, lm=lm,
                                      lm_weight=0.5) + ctc_prefix_beam_search(lp, nbest=5)
        hyps += ctc_greedy(lp)
        for h in hyps:
            assert len(h.frames) == len(h.tokens)
            assert all(0 <= f < T for f in h.frames)
            assert all(a < b for a, b in zip(h.frames, h.frames[1:]))
    # a peaked alignment: each token is stamped where it was emitted
    align = [0, 2, 2, 0, 0, 3, 0, 3, 3, 1, 4, 0]
    probs = torch.full((len(align), len(ALPHA)), 0.01, dtype=torch.float64)
    probs[torch.arange(len(align)), torch.tensor(align)] = 0.95
    lp = (probs / probs.sum(-1, keepdim=True)).log()
    for h in (ctc_prefix_beam_search(lp, alphabet=ALPHA)[0], ctc_greedy(lp, alphabet=ALPHA)[0]):
        assert h.text == "abb c" and h.frames == [1, 5, 7, 9, 10]


def test_batch_matches_single():
    B, T, V = 3, 12, len(ALPHA)
    lp = (torch.randn(B, T, V) * 2).log_softmax(-1)
    lengths = torch.tensor([12, 0, 7])
    lp[1] = float("nan")  # padding past the length is never read
    lp[2, 7:] = 5.0
    batch = ctc_beam_search_batch(lp, lengths, beam_size=4, nbest=2, alphabet=ALPHA)
    greedy = ctc_greedy(lp, lengths, alphabet=ALPHA)
    assert len(batch) == len(greedy) == B
    for b in range(B):
        one = lp[b, : lengths[b]]
        assert batch[b] == ctc_prefix_beam_search(one, 4, nbest=2, alphabet=ALPHA)
        assert greedy[b] == ctc_greedy(one, alphabet=ALPHA)[0]
    assert greedy[1] == CTCHypothesis([], [], 0.0, 0.0, 0.0, "")
    assert batch[1][0].tokens == [] and batch[1][0].score == 0.0


def test_errors():
    lp = rand_lp(5, 4)
    with pytest.raises(ValueError, match=r"\[T, V\] or \[B, T, V\]"):
        ctc_greedy(lp[0])
    with pytest.raises(ValueError, match="ctc_beam_search_batch"):
        ctc_prefix_beam_search(lp[None])
    with pytest.raises(ValueError, match=r"\[B, T, V\]"):
        ctc_beam_search_batch(lp)
    for blank in (-1, 4, 1.0):
        with pytest.raises(ValueError, match="blank"):
            ctc_prefix_beam_search(lp, blank=blank)
    for bad in (lp.exp(), lp + 1.0, torch.randn(5, 4)):
        with pytest.raises(ValueError, match="pass log_softmax outputs"):
            ctc_prefix_beam_search(bad)
        with pytest.raises(ValueError, match="pass log_softmax outputs"):
            ctc_greedy(bad)
    with pytest.raises(TypeError, match="float tensor"):
        ctc_greedy(torch.zeros(5, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        ctc_greedy(torch.full((5, 4), float("nan")))
    for beam in (0, -3, 2.5):
        with pytest.raises(ValueError, match="beam_size must be an int >= 1"):
            ctc_prefix_beam_search(lp, beam_size=beam)
    with pytest.raises(ValueError, match="nbest"):
        ctc_prefix_beam_search(lp, nbest=0)
    with pytest.raises(ValueError, match="lexicon needs alphabet"):
        ctc_prefix_beam_search(lp, lexicon={"ab"})
    lm = NGramLM(2).fit([["ab"]])
    with pytest.raises(ValueError, match="lm needs alphabet"):
        ctc_prefix_beam_search(lp, lm=lm)
    with pytest.raises(ValueError, match="word_bonus needs alphabet"):
        ctc_prefix_beam_search(lp, word_bonus=1.0)
    with pytest.raises(ValueError, match="one string per label"):
        ctc_prefix_beam_search(lp, alphabet=["_", "a"])
    with pytest.raises(ValueError, match="lm_unit"):
        ctc_prefix_beam_search(lp, alphabet="_ ab", lm=lm, lm_unit="bpe")
    with pytest.raises(ValueError, match="lm_weight must be >= 0"):
        ctc_prefix_beam_search(lp, alphabet="_ ab", lm=lm, lm_weight=-1.0)
    with pytest.raises(ValueError, match="lexicon entries"):
        ctc_prefix_beam_search(lp, alphabet="_ ab", lexicon={"a b"})
    with pytest.raises(ValueError, match="lengths must hold"):
        ctc_greedy(lp[None], torch.tensor([6]))


def test_greedy_stream_equals_greedy_of_the_whole_for_any_chunking():
    from rnnkit.decoding import CTCGreedyStream

    g = torch.Generator().manual_seed(int(torch.randint(0, 2**31, (1,))))
    for _ in range(5):
        T = int(torch.randint(1, 60, (1,), generator=g))
        lp = torch.randn(T, 4, generator=g).mul(3).log_softmax(-1)
        whole = ctc_greedy(lp)[0]
        s, tokens, frames, i = CTCGreedyStream(), [], [], 0
        while i < T:
            k = int(torch.randint(1, 7, (1,), generator=g))
            tk, fr = s.push(lp[i:i + k])
            tokens += tk
            frames += fr
            i += k
        assert (tokens, frames) == (whole.tokens, whole.frames)
