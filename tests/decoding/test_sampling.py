"""Sampling filters against plain-loop references, sampling distributions, seeds, streaming."""

from __future__ import annotations

import math

import pytest
import torch

from rnnkit.decoding import generate_tokens, greedy, sample_logits, top_k_filter, top_p_filter
from rnnkit.text.language_model import LanguageModel, LanguageModelConfig


def ref_top_k(row: list[float], k: int) -> list[bool]:
    kth = sorted(row, reverse=True)[k - 1]
    return [v >= kth for v in row]


def ref_top_p(row: list[float], p: float) -> list[bool]:
    z = max(row)
    probs = [math.exp(v - z) for v in row]
    total = sum(probs)
    probs = [q / total for q in probs]
    keep = [False] * len(row)
    mass = 0.0
    for i in sorted(range(len(row)), key=lambda i: -probs[i]):
        if mass >= p:
            break
        keep[i] = True
        mass += probs[i]
    return keep


def test_top_k_matches_reference():
    torch.manual_seed(0)
    logits = torch.randn(6, 30)
    for k in (1, 3, 17, 30):
        kept = ~top_k_filter(logits, k).isinf()
        assert kept.tolist() == [ref_top_k(r, k) for r in logits.tolist()]


def test_top_p_matches_reference():
    torch.manual_seed(1)
    logits = torch.randn(8, 25) * 2
    for p in (0.05, 0.3, 0.75, 0.95):
        kept = ~top_p_filter(logits, p).isinf()
        assert kept.tolist() == [ref_top_p(r, p) for r in logits.tolist()]
    assert torch.equal(top_p_filter(logits, 1.0), logits)


def test_sampling_follows_tempered_softmax():
    torch.manual_seed(2)
    logits = torch.randn(1, 6)
    n = 40_000
    gen = torch.Generator().manual_seed(3)
    for temperature in (0.5, 1.0, 2.0):
        draws = sample_logits(logits.expand(n, 6), temperature, generator=gen)
        freq = torch.bincount(draws, minlength=6).float() / n
        expected = (logits[0] / temperature).softmax(-1)
        # 5 standard errors of a binomial proportion
        tol = 5 * torch.sqrt(expected * (1 - expected) / n)
        assert ((freq - expected).abs() <= tol).all(), (temperature, freq, expected)


def test_top_k_top_p_and_banned_restrict_the_support():
    torch.manual_seed(4)
    logits = torch.randn(1, 20)
    many = logits.expand(5000, 20)
    allowed = set(logits[0].topk(4).indices.tolist())
    assert set(sample_logits(many, 1.5, top_k=4).tolist()) <= allowed
    nucleus = set((~top_p_filter(logits, 0.5).isinf()).nonzero()[:, 1].tolist())
    assert set(sample_logits(many, 1.0, top_p=0.5).tolist()) <= nucleus
    best = int(logits.argmax())
    assert best not in set(sample_logits(many, 1.0, banned=[best]).tolist())


def test_greedy_and_zero_temperature():
    torch.manual_seed(5)
    logits = torch.randn(7, 11)
    assert torch.equal(greedy(logits), logits.argmax(-1))
    assert torch.equal(sample_logits(logits, 0.0), logits.argmax(-1))
    banned = logits.argmax(-1)[0].item()
    assert sample_logits(logits[:1], 0.0, banned=[banned]).item() != banned


def test_seeded_sampling_is_reproducible():
    logits = torch.randn(4, 50)
    a = sample_logits(logits, 1.0, generator=torch.Generator().manual_seed(9))
    b = sample_logits(logits, 1.0, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)


def test_bad_arguments():
    logits = torch.randn(2, 5)
    with pytest.raises(ValueError, match="temperature"):
        sample_logits(logits, -1.0)
    with pytest.raises(ValueError, match=r"\[B, V\]"):
        sample_logits(torch.randn(5), 1.0)
    with pytest.raises(ValueError, match="top_k"):
        top_k_filter(logits, 0)
    with pytest.raises(ValueError, match="top_p"):
        top_p_filter(logits, 0.0)
    with pytest.raises(ValueError, match="every token is banned"):
        sample_logits(logits, 1.0, banned=range(5))


def small_lm(cell: str = "lstm") -> LanguageModel:
    torch.manual_seed(6)
    return LanguageModel(LanguageModelConfig(vocab_size=12, cell=cell, embed_size=6,
                                             hidden_size=10, num_layers=2)).eval()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_generate_tokens_matches_a_step_by_step_reference(cell):
    model = small_lm(cell)
    prime = torch.randint(1, 12, (3, 5))
    out = torch.stack(list(generate_tokens(model, prime, 8, temperature=0.9, top_k=6, seed=11)),
                      1)  # [B, 8]
    # reference: re-run the whole sequence from scratch at every step, same random stream
    gen = torch.Generator().manual_seed(11)
    seq = prime
    with torch.no_grad():
        for _ in range(8):
            logits, _ = model(seq)
            tok = sample_logits(logits[:, -1], 0.9, top_k=6, generator=gen)
            seq = torch.cat([seq, tok[:, None]], 1)
    assert torch.equal(out, seq[:, 5:])


def test_generate_tokens_errors():
    model = small_lm()
    with pytest.raises(ValueError, match="prime is empty"):
        next(generate_tokens(model, torch.zeros(1, 0, dtype=torch.long), 3))
    with pytest.raises(ValueError, match=r"\[B, P\]"):
        next(generate_tokens(model, torch.tensor([1, 2]), 3))
    with pytest.raises(ValueError, match="length"):
        next(generate_tokens(model, torch.tensor([[1]]), -1))


def test_a_temperature_too_small_for_float32_decodes_greedily():
    """logits / 1e-45 overflows to inf (and 0 / 1e-300 is nan in float32): greedy, not an
    error, row by row."""
    torch.manual_seed(4)
    logits = torch.randn(5, 12)
    logits[2] = 0.0  # 0 / (1e-300 as float32 = 0) is nan
    logits[2, 7] = 1.0
    gen = torch.Generator().manual_seed(0)
    for temperature in (1e-45, 1e-300, 5e-324):
        for top_k, top_p in ((None, None), (3, None), (None, 0.5), (4, 1e-46)):
            got = sample_logits(logits, temperature, top_k, top_p, generator=gen)
            assert got.tolist() == greedy(logits).tolist()
    # a batch where only one row overflows: that row is greedy, the others still sample
    mixed = torch.zeros(2, 4)
    mixed[0] = torch.tensor([1e38, 0.0, 0.0, 0.0])
    draws = torch.stack([sample_logits(mixed, 0.1, generator=gen) for _ in range(200)])  # 1e39
    assert (draws[:, 0] == 0).all() and len(set(draws[:, 1].tolist())) > 1


def test_top_p_always_keeps_the_most_likely_token():
    logits = torch.tensor([[0.1, 2.0, -1.0, 2.0], [5.0, 1.0, 0.0, -3.0]])
    for p in (1e-46, 1e-300, 1e-9):  # 1e-46 rounds to 0 in float32
        kept = ~top_p_filter(logits, p).isinf()
        assert kept.sum(-1).tolist() == [1, 1]
        assert kept.float().argmax(-1).tolist() == [1, 0]
        draw = sample_logits(logits, 1.0, top_p=p, generator=torch.Generator().manual_seed(1))
        assert draw.tolist() == [1, 0]
