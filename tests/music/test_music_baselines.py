"""rnnkit.music.baselines: every model's distribution sums to 1 over all it predicts (all 2^P
frames, all event ids, by enumeration), its scores are the sums of its one-step
probabilities, its units are the recurrent models', it beats a uniform model on its training
data, and its samples reproduce its own statistics."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
import torch

from rnnkit.music.baselines import (
    BOS,
    EOS,
    PAD,
    BernoulliFrames,
    NGramEvents,
    NGramFrames,
    RepeatFrames,
    _KNTable,
)
from rnnkit.music.metrics import frame_scores
from rnnkit.ngram import UNK as LM_UNK
from rnnkit.ngram import NGramLM


def seed() -> int:
    """A sampling seed drawn from torch's generator (seeded per test by conftest)."""
    return int(torch.randint(0, 2**31 - 1, ()))


def random_rolls(n=6, P=4, p=0.35, lengths=(3, 12)):
    """Rolls with some structure: each frame repeats the previous one half of the time."""
    rolls = []
    for _ in range(n):
        T = int(torch.randint(lengths[0], lengths[1] + 1, ()))
        roll = (torch.rand(T, P) < p).numpy()
        for t in range(1, T):
            if torch.rand(()) < 0.5:
                roll[t] = roll[t - 1]
        rolls.append(roll.astype(np.float32))
    return rolls


def all_frames(P):
    return [np.array(bits, dtype=np.float32) for bits in itertools.product([0, 1], repeat=P)]


def frame_models():
    return [BernoulliFrames(), RepeatFrames(), RepeatFrames(tied=False),
            NGramFrames(1), NGramFrames(2, 0.75), NGramFrames(3), NGramFrames(4, 1.0)]


def histories(rolls, P):
    """Histories to condition on: seen prefixes, and made-up ones (unseen contexts)."""
    out = [rolls[0][:1], rolls[0][:3], rolls[1][:2], np.ones((2, P), np.float32),
           np.vstack([rolls[2][:2], np.eye(P, dtype=np.float32)[:1]])]
    return out


# -- normalisation -----------------------------------------------------------------------------
@pytest.mark.parametrize("model", frame_models(), ids=lambda m: f"{type(m).__name__}"
                         f"{getattr(m, 'order', '')}{'' if getattr(m, 'tied', True) else 'u'}")
@pytest.mark.parametrize("P", [3, 4])
def test_frame_models_sum_to_one_over_all_frames(model, P):
    rolls = random_rolls(P=P, n=4, p=0.2)  # sparse: some of the 2^P frames never occur
    model.fit(rolls)
    cases = histories(rolls, P)
    if not isinstance(model, RepeatFrames):
        cases.append(np.zeros((0, P)))  # the start of a piece
    if isinstance(model, NGramFrames) and P == 4:
        assert model.vocab_size < 2**P and model.novelty > 0  # the back-off is exercised
    for h in cases:
        probs = [math.exp(model.log_prob_next(h, f)) for f in all_frames(P)]
        assert sum(probs) == pytest.approx(1.0, abs=1e-12)
        assert min(probs) > 0


def test_ngram_frames_when_training_saw_every_frame():
    P = 2
    rolls = [np.array(all_frames(P) * 3)]  # every frame of 2 pitches, in order, 3 times
    model = NGramFrames(2).fit(rolls)
    assert model.vocab_size == 4 and model.novelty == 0.0
    for h in [np.zeros((0, P)), rolls[0][:1], rolls[0][:3]]:
        total = sum(math.exp(model.log_prob_next(h, f)) for f in all_frames(P))
        assert total == pytest.approx(1.0, abs=1e-12)


def test_kn_table_is_the_language_model():
    """The dense table behind sampling and marginals equals NGramLM.logprob entry by entry."""
    words = list(range(6))
    for order in (1, 2, 3, 4):
        for discount in (0.75, None):
            seqs = [[words[i] for i in torch.randint(0, 6, (int(torch.randint(0, 7, ())),))]
                    for _ in range(25)]
            lm = NGramLM(order, discount).fit(seqs)
            table = _KNTable(lm)
            for ctx in [(), (0,), (1, 2), (5, 5, 5), (9, 1), seqs[0], seqs[1][:2]]:
                dense = table.dist(ctx)
                want = [math.exp(lm.logprob(w, list(ctx))) for w in table.vocab]
                want.append(math.exp(lm.logprob(LM_UNK, list(ctx))))
                np.testing.assert_allclose(dense, want, rtol=1e-12, atol=1e-15)
                assert dense.sum() == pytest.approx(1.0, abs=1e-12)


def test_marginals_are_sums_over_frames():
    """frame_probs (what accuracy thresholds) = sum over all 2^P frames of p(frame) * frame."""
    P = 4
    rolls = random_rolls(P=P, p=0.25)
    for model in frame_models():
        model.fit(rolls)
        roll = rolls[0]
        probs = model.frame_probs(roll)
        logp = model.frame_log_probs(roll)
        assert probs.shape == (len(roll) - 1, P) and logp.shape == (len(roll) - 1,)
        for t in range(1, len(roll)):
            p = np.array([math.exp(model.log_prob_next(roll[:t], f)) for f in all_frames(P)])
            np.testing.assert_allclose(probs[t - 1], p @ np.array(all_frames(P)), rtol=1e-10)
            assert logp[t - 1] == pytest.approx(model.log_prob_next(roll[:t], roll[t]),
                                                rel=1e-12)


def test_events_sum_to_one_over_the_vocabulary():
    V = 12
    seqs = [[BOS, *[int(t) for t in torch.randint(3, 9, (int(torch.randint(0, 8, ())),))], EOS]
            for _ in range(20)]  # ids 9..11 never occur
    for order, discount in [(1, None), (2, 0.75), (3, None), (4, 1.0)]:
        model = NGramEvents(V, order, discount).fit(seqs)
        for h in [[BOS], seqs[0][:-1], [BOS, 3, 4], [BOS, 11, 10, 9], seqs[1][:-1][:3]]:
            p = [math.exp(model.log_prob_next(h, w)) for w in range(V)]
            assert sum(p) == pytest.approx(1.0, abs=1e-12)
            assert p[PAD] == p[BOS] == 0.0 and min(p[2:]) > 0
            np.testing.assert_allclose(model.distribution(h), p, rtol=1e-12)
        unseen = set(range(3, V)) - {t for s in seqs for t in s}  # 9, 10, 11 and any other
        assert math.exp(model.log_prob_next([BOS], 9)) == pytest.approx(
            math.exp(model.lm.logprob(LM_UNK, [])) / len(unseen))  # they share <unk> equally
    full = NGramEvents(5, 2).fit([[BOS, 3, 4, 3, EOS], [BOS, 4, EOS]])  # every id seen
    for h in [[BOS], [BOS, 3], [BOS, 4, 4]]:
        assert sum(math.exp(full.log_prob_next(h, w)) for w in range(5)) == pytest.approx(1.0)


# -- scores ------------------------------------------------------------------------------------
def test_scores_are_sums_of_one_step_log_probs():
    P = 4
    rolls = random_rolls(P=P)
    for model in frame_models():
        model.fit(rolls[:4])
        out = model.evaluate(rolls[4:])
        by_step = -sum(model.log_prob_next(r[:t], r[t]) for r in rolls[4:]
                       for t in range(1, len(r)))
        assert out["frames"] == sum(len(r) - 1 for r in rolls[4:])
        assert out["nats"] == pytest.approx(by_step, rel=1e-12)
        assert out["nll_per_frame"] == pytest.approx(by_step / out["frames"], rel=1e-12)
        assert model.frame_nll(rolls[4:]) == (out["nats"], out["frames"])

    seqs = [[BOS, *[int(t) for t in torch.randint(3, 10, (6,))], EOS] for _ in range(8)]
    events = NGramEvents(10, 3).fit(seqs[:6])
    for s in seqs[6:] + [seqs[0][:4]]:  # a whole sequence, and a prefix without EOS
        lp, n = events.log_likelihood(s)
        assert n == len(s) - 1
        assert lp == pytest.approx(sum(events.log_prob_next(s[:i], s[i])
                                       for i in range(1, len(s))), rel=1e-12)


def test_independent_models_score_as_frame_scores():
    """Bernoulli and Repeat are products of Bernoullis: their NLL and accuracy are
    metrics.frame_scores of their marginals."""
    rolls = random_rolls(P=5)
    for model in (BernoulliFrames(), RepeatFrames(), RepeatFrames(tied=False)):
        model.fit(rolls)
        for roll in rolls:
            mine = model.evaluate([roll])
            ref = frame_scores(model.frame_probs(roll), roll[1:])
            assert mine["nll_per_frame"] == pytest.approx(ref["nll"], rel=1e-12)
            assert (mine["tp"], mine["fp"], mine["fn"], mine["frame_accuracy"]) == \
                (ref["tp"], ref["fp"], ref["fn"], ref["accuracy"])


def test_hand_computed_parameters():
    rolls = [np.array([[1, 0], [1, 0], [1, 1], [0, 1]])]
    assert BernoulliFrames().fit(rolls).probs.tolist() == [4 / 6, 3 / 6]
    untied = RepeatFrames(tied=False).fit(rolls)
    # pitch 0: 1->1, 1->1, 1->0; pitch 1: 0->0, 0->1, 1->1: on kept 3 of 4, off kept 1 of 2
    assert (untied.q_on, untied.q_off) == ((3 + 1) / (4 + 2), (1 + 1) / (2 + 2))
    assert RepeatFrames().fit(rolls).q == (4 + 1) / (6 + 2)


def test_units_match_the_recurrent_models():
    """Frames scored = FrameModel's (every frame after the first); events scored =
    EventModel's (every id after BOS)."""
    from rnnkit.music.events import EventModel, EventModelConfig
    from rnnkit.music.frames import FrameModel, FrameModelConfig

    rolls = random_rolls(n=3, P=4)
    frame_model = FrameModel(FrameModelConfig(n_pitches=4, hidden_size=8, embed_size=8,
                                              num_layers=1))
    for roll in rolls:
        _, frames = frame_model.frame_nll(torch.from_numpy(roll))
        assert BernoulliFrames().fit(rolls).frame_nll([roll])[1] == frames
    seq = [BOS, 3, 4, 5, 4, EOS]
    event_model = EventModel(EventModelConfig(vocab_size=8, hidden_size=8, embed_size=8,
                                              num_layers=1))
    assert NGramEvents(8, 2).fit([seq]).log_likelihood(seq)[1] == \
        event_model.log_likelihood(seq)[1]


def test_training_likelihood_beats_uniform():
    P = 6
    rolls = random_rolls(n=10, P=P, p=0.2, lengths=(20, 40))
    uniform = P * math.log(2)  # every one of 2^P frames equally likely
    for model in frame_models():
        assert model.fit(rolls).evaluate(rolls)["nll_per_frame"] < uniform, repr(model)
    trigram = NGramFrames(3).fit(rolls).evaluate(rolls)["nll_per_frame"]
    assert trigram < BernoulliFrames().fit(rolls).evaluate(rolls)["nll_per_frame"]
    seqs = [[BOS, *([3, 4, 5] * int(torch.randint(1, 5, ()))), EOS] for _ in range(10)]
    events = NGramEvents(20, 3).fit(seqs).evaluate(seqs)
    assert events["nll_per_event"] < math.log(20 - 2)  # uniform over EOS and the 17 events
    assert events["events"] == sum(len(s) - 1 for s in seqs)


# -- sampling ----------------------------------------------------------------------------------
def test_bernoulli_samples_have_its_frequencies():
    model = BernoulliFrames().fit(random_rolls(P=5, p=0.3))
    roll = model.sample(4000, seed=seed())
    assert roll.shape == (4000, 5) and roll.dtype == np.float32
    n = len(roll)
    sd = np.sqrt(model.probs * (1 - model.probs) / n)
    assert np.all(np.abs(roll.mean(0) - model.probs) < 5 * sd)
    refit = BernoulliFrames().fit([roll])
    assert np.abs(refit.probs - model.probs).max() < 0.04


def test_repeat_samples_refit_to_the_same_model():
    rolls = random_rolls(P=4, p=0.3)
    for tied in (True, False):
        model = RepeatFrames(tied=tied).fit(rolls)
        sample = model.sample(3000, prime=rolls[0][:2], seed=seed())
        np.testing.assert_array_equal(sample[:2], rolls[0][:2])  # the prime comes first
        refit = RepeatFrames(tied=tied).fit([sample])
        assert abs(refit.q_on - model.q_on) < 0.04 and abs(refit.q_off - model.q_off) < 0.04


def test_ngram_samples_follow_its_conditionals():
    """Order 2: the next frame depends on the previous one only; over a long sample the
    frequency of each (previous, next) pair matches p(next | previous) within 5 sigma."""
    P = 3
    rolls = random_rolls(P=P, p=0.3)
    model = NGramFrames(2, 0.75).fit(rolls)
    roll = model.sample(6000, seed=seed())
    frames = all_frames(P)
    index = {tuple(f): i for i, f in enumerate(frames)}
    counts = np.zeros((len(frames), len(frames)))
    for a, b in zip(roll[:-1], roll[1:]):
        counts[index[tuple(a)], index[tuple(b)]] += 1
    for i, prev in enumerate(frames):
        n = counts[i].sum()
        if n < 100:
            continue
        p = np.array([math.exp(model.log_prob_next(np.vstack([frames[0], prev]), f))
                      for f in frames])
        assert np.all(np.abs(counts[i] - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1), prev


def test_ngram_samples_new_frames_at_its_novelty_rate():
    rolls = random_rolls(n=8, P=6, p=0.3, lengths=(5, 10))
    model = NGramFrames(3).fit(rolls)
    known = {model._symbol(f) for r in rolls for f in r}
    assert len(known) == model.vocab_size
    roll = model.sample(3000, seed=seed())
    new = np.array([model._symbol(f) not in known for f in roll])
    lam, n = model.novelty, len(roll)
    assert 0 < lam < 1 and abs(new.mean() - lam) < 5 * math.sqrt(lam * (1 - lam) / n)


def test_event_samples_follow_its_distribution():
    seqs = [[BOS, *[int(t) for t in torch.randint(3, 7, (int(torch.randint(1, 6, ())),))], EOS]
            for _ in range(15)]
    model = NGramEvents(9, 2).fit(seqs)
    first = np.zeros(9)
    lengths = []
    for i in range(1500):
        out = model.sample(length=50, seed=seed() + i)
        first[out[0]] += 1
        lengths.append(len(out))
        assert PAD not in out and BOS not in out and EOS not in out[:-1]
    p = model.distribution([BOS])
    assert np.all(np.abs(first - 1500 * p) <= 5 * np.sqrt(1500 * p * (1 - p)) + 1)
    assert model.sample(length=50, seed=7) == model.sample(length=50, seed=7)
    assert len(model.sample(length=3, prime=[BOS, 3], seed=1)) <= 3


def test_samples_are_reproducible_and_keep_the_prime():
    rolls = random_rolls(P=4)
    for model in frame_models():
        model.fit(rolls)
        a, b = model.sample(10, seed=3), model.sample(10, seed=3)
        np.testing.assert_array_equal(a, b)
        assert a.shape == (10, 4) and set(np.unique(a)) <= {0.0, 1.0}
        primed = model.sample(2, prime=rolls[1][:3], seed=1)
        np.testing.assert_array_equal(primed[:3], rolls[1][:3])
        assert primed.shape == (5, 4)


# -- errors ------------------------------------------------------------------------------------
def test_bad_use_is_refused():
    with pytest.raises(RuntimeError, match="not fitted"):
        BernoulliFrames().evaluate([np.zeros((3, 2))])
    model = RepeatFrames().fit([np.zeros((3, 2))])
    with pytest.raises(ValueError, match="at least one frame"):
        model.log_prob_next(np.zeros((0, 2)), [0, 1])
    with pytest.raises(ValueError, match=r"\[T, 2\]"):
        model.evaluate([np.zeros((3, 5))])
    with pytest.raises(ValueError, match="only 0 and 1"):
        BernoulliFrames().fit([np.full((3, 2), 0.5)])
    with pytest.raises(ValueError, match="fewer than 2 frames"):
        model.evaluate([np.zeros((1, 2))])
    with pytest.raises(ValueError, match="vocab_size"):
        NGramEvents(2)
    with pytest.raises(ValueError, match="order"):
        NGramFrames(0)
    events = NGramEvents(6, 2)
    with pytest.raises(ValueError, match="start with BOS"):
        events.fit([[3, 4, EOS]])
    with pytest.raises(ValueError, match="end with EOS"):
        events.fit([[BOS, 3, 4]])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        events.fit([[BOS, 7, EOS]])
    with pytest.raises(RuntimeError, match="not fitted"):
        events.log_likelihood([BOS, 3])


# -- real chorales -----------------------------------------------------------------------------
EIGHT = ["bach/bwv269", "bach/bwv347", "bach/bwv86.6", "bach/bwv267", "bach/bwv40.8",
       "bach/bwv153.1", "bach/bwv281", "bach/bwv17.7"]


def test_on_real_chorales():
    """Fitted on 5 chorales, scored on 3 others (quarter-note frames, 16th-note events): the
    n-grams beat the Bernoulli floor, which beats a uniform model, as on the full corpus."""
    pytest.importorskip("music21", reason="rnnkit[music] (music21) not installed")
    from rnnkit.music import corpus
    from rnnkit.music.encoding import EventVocab, PianoRoll, quantize

    t = time.perf_counter()
    pieces = [corpus.chorale(name) for name in EIGHT]
    train, test = pieces[:5], pieces[5:]
    roll = PianoRoll(grid=1.0)
    frames = {k: [roll.encode(p) for p in v] for k, v in (("train", train), ("test", test))}
    nll = {}
    for name, model in [("bernoulli", BernoulliFrames()), ("repeat", RepeatFrames()),
                        ("repeat untied", RepeatFrames(tied=False)),
                        ("ngram3", NGramFrames(3))]:
        model.fit(frames["train"])
        nll[name] = model.evaluate(frames["test"])["nll_per_frame"]
    vocab = EventVocab(steps=16, grid=0.25)
    events = {k: [vocab.encode(quantize(p, 0.25)) for p in v]
              for k, v in (("train", train), ("test", test))}
    for order in (1, 3):
        model = NGramEvents(len(vocab), order).fit(events["train"])
        nll[f"events{order}"] = model.evaluate(events["test"])["nll_per_event"]
    print(f"held-out NLL on 3 chorales: { {k: round(v, 3) for k, v in nll.items()} }; "
          f"{time.perf_counter() - t:.1f} s")
    assert nll["ngram3"] < nll["bernoulli"] < roll.size * math.log(2)
    assert nll["events3"] < nll["events1"] < math.log(len(vocab) - 2)
