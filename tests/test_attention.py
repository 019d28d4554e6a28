"""Attention: reference loop, exact-zero masking, normalisation, gradients, bad input."""

import math

import pytest
import torch

from rnnkit.attention import (
    AdditiveAttention,
    DotAttention,
    GeneralAttention,
    lengths_to_mask,
    make_attention,
    masked_softmax,
)

KINDS = ["additive", "dot", "general"]

def _build(kind, Q=6, K=6, dtype=torch.float64):
    torch.manual_seed(0)
    return make_attention(kind, Q, K).to(dtype)


def _reference(att, q, keys, values, lengths):
    """Plain per-sequence, per-key loop of the equations in the module docstring."""
    B, S, _ = keys.shape
    ctx = torch.zeros(B, values.shape[-1], dtype=keys.dtype)
    w = torch.zeros(B, S, dtype=keys.dtype)
    for b in range(B):
        scores = []
        for s in range(int(lengths[b])):
            k = keys[b, s]
            if isinstance(att, AdditiveAttention):
                e = att.v.weight[0] @ torch.tanh(att.query_proj.weight @ q[b]
                                                 + att.key_proj.weight @ k + att.key_proj.bias)
            elif isinstance(att, GeneralAttention):
                e = q[b] @ (att.proj.weight @ k)
            else:
                e = (q[b] @ k) * att.scale
            scores.append(e)
        e = torch.stack(scores)
        a = torch.exp(e - e.max()) / torch.exp(e - e.max()).sum()
        w[b, : len(a)] = a
        ctx[b] = (a[:, None] * values[b, : len(a)]).sum(0)
    return ctx, w


@pytest.mark.parametrize("kind", KINDS)
def test_matches_reference_loop(kind):
    att = _build(kind)
    g = torch.Generator().manual_seed(1)
    q = torch.randn(3, 6, generator=g, dtype=torch.float64)
    keys = torch.randn(3, 7, 6, generator=g, dtype=torch.float64)
    values = torch.randn(3, 7, 4, generator=g, dtype=torch.float64)
    lengths = torch.tensor([7, 4, 1])
    ctx, w = att(q, keys, values, mask=lengths_to_mask(lengths, 7))
    ref_ctx, ref_w = _reference(att, q, keys, values, lengths)
    torch.testing.assert_close(w, ref_w)
    torch.testing.assert_close(ctx, ref_ctx)


@pytest.mark.parametrize("kind", KINDS)
def test_masked_keys_get_exactly_zero_weight_and_rows_sum_to_one(kind):
    att = _build(kind, dtype=torch.float32)
    q = torch.randn(4, 5, 6) * 10  # large scores: a lazy -1e9 fill would still be exact, but
    keys = torch.randn(4, 9, 6) * 10  # a soft mask (adding log m) would not
    lengths = torch.tensor([9, 5, 2, 1])
    mask = lengths_to_mask(lengths, 9)
    _, w = att(q, keys, mask=mask)
    assert w.shape == (4, 5, 9)
    assert bool((w[~mask[:, None, :].expand_as(w)] == 0).all())
    torch.testing.assert_close(w.sum(-1), torch.ones(4, 5))
    assert bool((w >= 0).all())


@pytest.mark.parametrize("kind", KINDS)
def test_padding_content_cannot_leak_into_context(kind):
    att = _build(kind, dtype=torch.float32)
    q, keys = torch.randn(2, 6), torch.randn(2, 8, 6)
    mask = lengths_to_mask([8, 3], 8)
    ctx, w = att(q, keys, mask=mask)
    noisy = keys.clone()
    noisy[1, 3:] = torch.randn(5, 6) * 100
    ctx2, w2 = att(q, noisy, mask=mask)
    torch.testing.assert_close(ctx2, ctx)
    torch.testing.assert_close(w2, w)
    # and the trimmed sequence alone gives the same answer
    ctx3, w3 = att(q[1:], keys[1:, :3])
    torch.testing.assert_close(ctx3[0], ctx[1])
    torch.testing.assert_close(w3[0], w[1, :3])


@pytest.mark.parametrize("kind", KINDS)
def test_single_query_equals_multi_query(kind):
    att = _build(kind, dtype=torch.float32)
    q, keys = torch.randn(2, 3, 6), torch.randn(2, 5, 6)
    ctx, w = att(q, keys)
    for t in range(3):
        c1, w1 = att(q[:, t], keys)
        torch.testing.assert_close(c1, ctx[:, t])
        torch.testing.assert_close(w1, w[:, t])


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_float64(kind):
    att = _build(kind, Q=3, K=3)
    q = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    mask = lengths_to_mask([4, 2], 4)
    assert torch.autograd.gradcheck(lambda a, b: att(a, b, mask=mask)[0], (q, keys))


def test_scaled_dot_and_masked_softmax():
    att = DotAttention(4, scaled=True)
    q, k = torch.randn(1, 4), torch.randn(1, 3, 4)
    _, w = att(q, k)
    torch.testing.assert_close(w[0], torch.softmax((k[0] @ q[0]) / math.sqrt(4), -1))
    s = torch.randn(5)
    m = torch.tensor([True, False, True, False, True])
    p = masked_softmax(s, m)
    torch.testing.assert_close(p[m], torch.softmax(s[m], -1))
    assert p[~m].eq(0).all()


def test_bad_input_names_the_fix():
    att = GeneralAttention(4, 6)
    keys = torch.randn(2, 5, 6)
    with pytest.raises(ValueError, match=r"keys of shape \[B, S, 6\]"):
        att(torch.randn(2, 4), torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match="query of shape"):
        att(torch.randn(2, 3), keys)
    with pytest.raises(TypeError, match="lengths_to_mask"):
        att(torch.randn(2, 4), keys, mask=torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"mask of shape \[2, 5\]"):
        att(torch.randn(2, 4), keys, mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one valid key"):
        att(torch.randn(2, 4), keys, mask=lengths_to_mask([5, 0], 5))
    with pytest.raises(ValueError, match="S = 0"):
        att(torch.randn(2, 4), torch.randn(2, 0, 6))
    with pytest.raises(ValueError, match="use 'general' or 'additive'"):
        DotAttention(4, 6)
    with pytest.raises(ValueError, match="unknown attention"):
        make_attention("cosine", 4, 4)
