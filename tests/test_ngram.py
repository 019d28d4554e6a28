"""NGramLM: normalisation over the vocabulary plus the <unk> class, Kneser-Ney continuation
counts against a hand computation, save / load round trip and bad input."""

import json
import math

import pytest
import torch

from rnnkit.ngram import EOS, UNK, NGramLM

WORDS = [f"w{i}" for i in range(8)]


def random_corpus(n=30, max_len=6, words=WORDS):
    """Fresh random sentences (torch's generator is seeded per test from the session seed)."""
    out = []
    for _ in range(n):
        length = int(torch.randint(0, max_len + 1, ()))
        out.append([words[i] for i in torch.randint(0, len(words), (length,)).tolist()])
    return out


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("discount", [0.75, 0.3, 1.0, None])
def test_probabilities_sum_to_one(order, discount):
    lm = NGramLM(order, discount).fit(random_corpus())
    extra = ["never-seen", "<s>", EOS]  # context tokens the model may or may not know
    for _ in range(20):
        n = int(torch.randint(0, 6, ()))
        pool = WORDS + extra
        context = [pool[i] for i in torch.randint(0, len(pool), (n,)).tolist()]
        total = sum(math.exp(lm.logprob(w, context)) for w in lm.vocab)
        unk = lm.logprob(UNK, context)
        assert math.isfinite(unk)
        assert lm.logprob("never-seen", context) == unk  # every unknown token is <unk>
        assert total + math.exp(unk) == pytest.approx(1.0, abs=1e-9)


def test_vocab_and_char_model():
    lm = NGramLM(order=3).fit(["abca", "cab", ""])
    assert lm.vocab == [EOS, "a", "b", "c"]
    assert lm.logprob("b", "ca") > lm.logprob("c", "ca")


def test_hand_computed_bigram():
    # padded: <s> a b </s> | <s> a b </s> | <s> c b </s> | <s> a c </s>
    lm = NGramLM(order=2, discount=0.5).fit([["a", "b"], ["a", "b"], ["c", "b"], ["a", "c"]])
    # continuation counts N1+(. w): a {<s>} = 1, b {a, c} = 2, c {<s>, a} = 2, </s> {b, c} = 2
    # total 7, |V| = 4, lower order uniform 1 / 5, gamma = 0.5 * 4 / 7
    p1 = {w: (n - 0.5) / 7 + 0.5 * 4 / 7 / 5 for w, n in {"a": 1, "b": 2, "c": 2, EOS: 2}.items()}
    assert p1["a"] == pytest.approx(4.5 / 35) and p1["b"] == pytest.approx(9.5 / 35)
    for w, p in p1.items():
        assert math.exp(lm.logprob(w, ["zzz"])) == pytest.approx(p, rel=1e-12)  # unseen context
    assert math.exp(lm.logprob(UNK, [])) == pytest.approx(0.5 * 2 / 4 * 2 / 35, rel=1e-12)
    # c(a .) = 3 over 2 types; c(b .) = 3, one type
    assert math.exp(lm.logprob("b", ["a"])) == pytest.approx(1.5 / 3 + 1 / 3 * p1["b"])
    assert math.exp(lm.logprob("a", ["b"])) == pytest.approx(0.5 / 3 * p1["a"])
    assert math.exp(lm.logprob("a", [])) == pytest.approx(2.5 / 4 + 0.5 * 2 / 4 * p1["a"])


def test_hand_computed_trigram_uses_continuation_counts():
    lm = NGramLM(order=3, discount=0.5).fit([["a", "b"], ["a", "b"], ["c", "b"], ["a", "c"]])
    # distinct trigrams: <s><s>a, <s>ab, ab</s>, <s><s>c, <s>cb, cb</s>, <s>ac, ac</s>
    # bigram continuation counts: (b, </s>) = 2 (after a and c; its raw count is 3),
    # (a, b) = 1 and (a, c) = 1 (both only after <s>); unigram ones as in the bigram model
    p1_b, p1_eos = 9.5 / 35, 9.5 / 35
    p2_eos_b = (2 - 0.5) / 2 + 0.5 * 1 / 2 * p1_eos
    p2_b_a = (1 - 0.5) / 2 + 0.5 * 2 / 2 * p1_b
    assert math.exp(lm.logprob(EOS, ["zzz", "b"])) == pytest.approx(p2_eos_b, rel=1e-12)
    assert math.exp(lm.logprob("b", ["zzz", "a"])) == pytest.approx(p2_b_a, rel=1e-12)
    # raw trigram counts at the top: c(<s> a .) = 3 over 2 types; c(c b .) = 1
    assert math.exp(lm.logprob("b", ["a"])) == pytest.approx(1.5 / 3 + 1 / 3 * p2_b_a)
    assert math.exp(lm.logprob(EOS, ["c", "b"])) == pytest.approx(0.5 + 0.5 * p2_eos_b)
    assert lm.score(["c", "b"]) == pytest.approx(
        lm.logprob("c", []) + lm.logprob("b", ["c"]) + lm.logprob(EOS, ["c", "b"]))


def test_score_and_perplexity():
    corpus = random_corpus()
    lm = NGramLM(3).fit(corpus)
    test = random_corpus(5)
    for seq in test:
        want = sum(lm.logprob(w, seq[:i]) for i, w in enumerate(seq + [EOS]))
        assert lm.score(seq) == pytest.approx(want, abs=1e-12)
    n = sum(len(s) + 1 for s in test)
    assert lm.perplexity(test) == pytest.approx(math.exp(-sum(map(lm.score, test)) / n))
    # only the last order - 1 context tokens matter
    assert lm.logprob("w1", ["w5", "w2", "w3"]) == lm.logprob("w1", ["w2", "w3"])


@pytest.mark.parametrize("discount", [0.6, None])
def test_state_round_trip(discount):
    lm = NGramLM(3, discount).fit(random_corpus(50))
    blob = json.loads(json.dumps(lm.state()))  # plain data only
    back = NGramLM.from_state(blob)
    assert back.vocab == lm.vocab and back.order == 3 and back.discount == lm.discount
    pool = WORDS + ["never-seen", EOS, UNK]
    for _ in range(200):
        ctx = [pool[i] for i in torch.randint(0, len(pool), (int(torch.randint(0, 4, ())),))]
        w = pool[int(torch.randint(0, len(pool), ()))]
        assert back.logprob(w, ctx) == lm.logprob(w, ctx)
    assert NGramLM.KIND == "rnnkit.ngram" and NGramLM.VERSION == 1


def test_errors():
    for order in (0, -1, 1.5, "3", True):
        with pytest.raises(ValueError, match="order must be an int >= 1"):
            NGramLM(order)
    for d in (0, -0.1, 1.5, "0.5"):
        with pytest.raises(ValueError, match="discount must be in"):
            NGramLM(2, d)
    with pytest.raises(ValueError, match="no training sequences"):
        NGramLM().fit([])
    with pytest.raises(TypeError, match="hashable"):
        NGramLM().fit([[["not", "hashable"]]])
    with pytest.raises(TypeError, match="iterable of token sequences"):
        NGramLM().fit([1, 2])
    with pytest.raises(ValueError, match="reserved"):
        NGramLM().fit([["a", EOS]])
    with pytest.raises(RuntimeError, match="call fit"):
        NGramLM().logprob("a", [])
    ints = NGramLM(2).fit([[1, 2, 3], [2, 3]])  # any hashable token works...
    assert math.isfinite(ints.logprob(3, [2]))
    with pytest.raises(TypeError, match="state\\(\\) requires str tokens"):
        ints.state()  # ... but saving needs str
    with pytest.raises(ValueError, match="not an NGramLM state"):
        NGramLM.from_state({"order": 2})
