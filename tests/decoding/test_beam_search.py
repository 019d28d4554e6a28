"""Beam search against exhaustive search, greedy decoding, batching and bad input."""

import itertools

import pytest
import torch

from rnnkit.decoding.beam import (
    beam_search,
    greedy_search,
    index_state,
    ngram_ban_mask,
    sample_search,
)

V, EOS, BOS, H = 4, 0, 4, 8  # tokens 0..3 (0 = EOS); BOS = 4 is an input-only token

class ToyDecoder:
    """A random GRU language model conditioned on a per-sequence context: a state-dependent
    decoder whose state must be reordered correctly by the search."""

    def __init__(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.cell = torch.nn.GRUCell(H, H)
        with torch.no_grad():
            for p in self.cell.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        self.emb = torch.randn(V + 1, H, generator=g)
        self.out = torch.randn(H, V, generator=g) * 1.5

    def init(self, B, seed=1):
        return torch.randn(B, H, generator=torch.Generator().manual_seed(seed))

    @torch.no_grad()
    def step(self, tokens, h):
        h = self.cell(self.emb[tokens], h)
        return torch.log_softmax(h @ self.out, -1), h

    def score(self, h, seq, finished):
        """Summed log-prob of seq (+ EOS if finished) for one sequence with state h [H]."""
        h, last, total = h[None], torch.tensor([BOS]), 0.0
        for tok in list(seq) + ([EOS] if finished else []):
            logp, h = self.step(last, h)
            total += float(logp[0, tok])
            last = torch.tensor([tok])
        return total


def _exhaustive(dec, h, max_len, alpha):
    """Every hypothesis beam search can return: ended by EOS within max_len, or cut at max_len."""
    hyps = []
    for n in range(max_len):
        for seq in itertools.product(range(1, V), repeat=n):
            hyps.append((dec.score(h, seq, True) / (n + 1) ** alpha, seq))
    for seq in itertools.product(range(1, V), repeat=max_len):
        hyps.append((dec.score(h, seq, False) / max_len ** alpha, seq))
    return sorted(hyps, key=lambda x: -x[0])


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_wide_beam_equals_exhaustive_search(alpha):
    dec, max_len = ToyDecoder(), 4
    h0 = dec.init(2)
    K = 3 ** max_len + 3  # >= number of live hypotheses: nothing is pruned
    out = beam_search(dec.step, h0, 2, bos=BOS, eos=EOS, beam_size=K, max_len=max_len,
                      length_penalty=alpha)
    for b in range(2):
        ref = _exhaustive(dec, h0[b], max_len, alpha)
        for k in range(5):
            got = tuple(out.tokens[b, k, : out.lengths[b, k]].tolist())
            assert got == ref[k][1]
            assert out.scores[b, k].item() == pytest.approx(ref[k][0], abs=1e-4)


def test_beam_hypotheses_are_scored_consistently_and_sorted():
    dec = ToyDecoder(seed=3)
    h0 = dec.init(3, seed=5)
    out = beam_search(dec.step, h0, 3, bos=BOS, eos=EOS, beam_size=3, max_len=6,
                      length_penalty=0.7)
    assert out.tokens.shape[:2] == (3, 3)
    assert bool((out.scores[:, :-1] >= out.scores[:, 1:]).all())
    for b in range(3):
        for k in range(3):
            n = int(out.lengths[b, k])
            seq = out.tokens[b, k, :n].tolist()
            assert EOS not in seq
            fin = bool(out.finished[b, k])
            raw = dec.score(h0[b], seq, fin)
            assert out.scores[b, k].item() == pytest.approx(raw / (n + fin) ** 0.7, abs=1e-4)


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_beam_of_one_is_greedy_search(seed):
    # an EOS extension ends a hypothesis only from among the K best: with K = 1 the beam
    # follows greedy's path token for token, EOS included (no length penalty)
    dec = ToyDecoder(seed=seed)
    h0 = dec.init(16, seed=seed + 1)
    greedy = greedy_search(dec.step, h0, 16, bos=BOS, eos=EOS, max_len=7)
    one = beam_search(dec.step, h0, 16, bos=BOS, eos=EOS, beam_size=1, max_len=7,
                      length_penalty=0.0)
    assert 0 < int(greedy.finished.sum()) < 16  # some end with EOS, some run to max_len
    assert one.lengths[:, 0].tolist() == greedy.lengths.tolist()
    assert one.finished[:, 0].tolist() == greedy.finished.tolist()
    for b in range(16):
        n = int(greedy.lengths[b])
        assert one.tokens[b, 0, :n].tolist() == greedy.tokens[b, :n].tolist()
        score = dec.score(h0[b], greedy.tokens[b, :n].tolist(), bool(greedy.finished[b]))
        assert greedy.scores[b].item() == pytest.approx(score, abs=1e-4)
    torch.testing.assert_close(one.scores[:, 0], greedy.scores, atol=1e-5, rtol=0)


def test_wider_beam_beats_or_ties_greedy():
    dec = ToyDecoder(seed=7)
    h0 = dec.init(16, seed=2)
    greedy = greedy_search(dec.step, h0, 16, bos=BOS, eos=EOS, max_len=7)
    wide = beam_search(dec.step, h0, 16, bos=BOS, eos=EOS, beam_size=5, max_len=7,
                       length_penalty=0.0)
    assert bool((wide.scores[:, 0] >= greedy.scores - 1e-5).all())
    assert bool((wide.scores[:, 0] > greedy.scores + 1e-5).any())  # and finds better ones


def test_batched_equals_one_by_one():
    dec = ToyDecoder(seed=11)
    h0 = dec.init(4, seed=9)
    batched = beam_search(dec.step, h0, 4, bos=BOS, eos=EOS, beam_size=3, max_len=6)
    for b in range(4):
        alone = beam_search(dec.step, h0[b : b + 1], 1, bos=BOS, eos=EOS, beam_size=3,
                            max_len=6)
        torch.testing.assert_close(alone.scores[0], batched.scores[b])
        L = alone.tokens.shape[-1]
        assert alone.tokens[0].tolist() == batched.tokens[b, :, :L].tolist()


def test_index_state_handles_nested_states():
    idx = torch.tensor([1, 1, 0])
    s = {"h": torch.arange(2.0), "pair": (torch.arange(2), torch.arange(4).view(2, 2)), "n": 3}
    out = index_state(s, idx)
    assert out["h"].tolist() == [1.0, 1.0, 0.0]
    assert out["pair"][1].tolist() == [[2, 3], [2, 3], [0, 1]]
    assert out["n"] == 3


def test_bad_input():
    dec = ToyDecoder()
    with pytest.raises(ValueError, match="beam_size must be a positive integer"):
        beam_search(dec.step, dec.init(1), 1, bos=BOS, eos=EOS, beam_size=0)
    with pytest.raises(ValueError, match="length_penalty must be >= 0"):
        beam_search(dec.step, dec.init(1), 1, bos=BOS, eos=EOS, length_penalty=-1.0)
    with pytest.raises(ValueError, match=r"log-probabilities of shape \[3, V\]"):
        beam_search(lambda t, s: (torch.zeros(3), s), None, 1, bos=1, eos=0, beam_size=3)


def _has_repeat(seq, n):
    grams = [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]
    return len(grams) != len(set(grams))


@pytest.mark.parametrize("n", [1, 2])
def test_ngram_blocking_equals_brute_force(n):
    """A wide beam with blocking = exhaustive search over the hypotheses without a repeated
    n-gram (BOS excluded, EOS never part of an n-gram)."""
    dec, max_len, alpha = ToyDecoder(seed=5), 4, 1.0
    h0 = dec.init(2, seed=4)
    K = 3 ** max_len + 3  # >= number of live hypotheses: nothing is pruned
    out = beam_search(dec.step, h0, 2, bos=BOS, eos=EOS, beam_size=K, max_len=max_len,
                      length_penalty=alpha, no_repeat_ngram_size=n)
    for b in range(2):
        allowed = [(s, q) for s, q in _exhaustive(dec, h0[b], max_len, alpha)
                   if not _has_repeat(q, n)]
        got = [(float(s), tuple(out.tokens[b, k, : out.lengths[b, k]].tolist()))
               for k, s in enumerate(out.scores[b]) if s > float("-inf")]
        assert len(got) == min(K, len(allowed))  # the K best allowed ones, best first
        for (gs, gq), (ws, wq) in zip(got, allowed):
            assert gs == pytest.approx(ws, abs=1e-4)
            assert gq == wq or gs == pytest.approx(ws, abs=1e-6)
        assert not any(_has_repeat(q, n) for _, q in got)


def test_ngram_blocking_in_greedy_and_narrow_beam():
    dec = ToyDecoder(seed=3)
    h0 = dec.init(8, seed=2)
    for n in (1, 2, 3):
        g = greedy_search(dec.step, h0, 8, bos=BOS, eos=EOS, max_len=9, no_repeat_ngram_size=n)
        b = beam_search(dec.step, h0, 8, bos=BOS, eos=EOS, beam_size=3, max_len=9,
                        no_repeat_ngram_size=n)
        for i in range(8):
            assert not _has_repeat(g.tokens[i, : g.lengths[i]].tolist(), n)
            for k in range(3):
                assert not _has_repeat(b.tokens[i, k, : b.lengths[i, k]].tolist(), n)
    plain = beam_search(dec.step, h0, 8, bos=BOS, eos=EOS, beam_size=3, max_len=9)
    off = beam_search(dec.step, h0, 8, bos=BOS, eos=EOS, beam_size=3, max_len=9,
                      no_repeat_ngram_size=0)
    torch.testing.assert_close(plain.scores, off.scores)
    with pytest.raises(ValueError, match="no_repeat_ngram_size must be an integer >= 0"):
        beam_search(dec.step, h0, 8, bos=BOS, eos=EOS, no_repeat_ngram_size=-1)


def test_ngram_ban_mask_reference():
    hist = torch.tensor([[1, 2, 3, 1, 2], [3, 3, 3, 3, 3]])
    assert ngram_ban_mask(hist, 3, 5)[0].nonzero().flatten().tolist() == [3]
    assert ngram_ban_mask(hist, 2, 5)[1].nonzero().flatten().tolist() == [3]
    assert ngram_ban_mask(hist, 1, 5)[0].nonzero().flatten().tolist() == [1, 2, 3]
    assert not ngram_ban_mask(hist, 6, 5).any() and not ngram_ban_mask(hist, 0, 5).any()


def test_sample_search_greedy_limit_seeds_and_scores():
    dec = ToyDecoder(seed=7)
    h0 = dec.init(6, seed=3)
    g = greedy_search(dec.step, h0, 6, bos=BOS, eos=EOS, max_len=7)
    for kw in ({"temperature": 0.0}, {"top_k": 1}):
        s = sample_search(dec.step, h0, 6, bos=BOS, eos=EOS, max_len=7, **kw)
        assert s.tokens.tolist() == g.tokens.tolist()
        torch.testing.assert_close(s.scores, g.scores)
    a = sample_search(dec.step, h0, 6, bos=BOS, eos=EOS, max_len=7, seed=1, top_p=0.9)
    b = sample_search(dec.step, h0, 6, bos=BOS, eos=EOS, max_len=7, seed=1, top_p=0.9)
    assert a.tokens.tolist() == b.tokens.tolist()
    for i in range(6):  # the score is the model's log-prob of the drawn sequence
        seq = a.tokens[i, : a.lengths[i]].tolist()
        assert a.scores[i].item() == pytest.approx(dec.score(h0[i], seq, bool(a.finished[i])),
                                                   abs=1e-4)
    draws = {tuple(sample_search(dec.step, h0[:1], 1, bos=BOS, eos=EOS, max_len=7,
                                 seed=s).tokens[0].tolist()) for s in range(20)}
    assert len(draws) > 1  # it does sample
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        sample_search(dec.step, h0, 6, bos=BOS, eos=EOS, temperature=-1.0)


def test_index_state_per_entry_batch_dim():
    s = {"dec": (torch.arange(6).view(1, 3, 2), torch.arange(6).view(1, 3, 2)),
         "mem": torch.arange(3), "feed": None}
    out = index_state(s, torch.tensor([2, 0]), dim={"dec": 1})
    assert out["dec"][0].tolist() == [[[4, 5], [0, 1]]]
    assert out["mem"].tolist() == [2, 0] and out["feed"] is None
