"""SequenceTagger: padding invariance, masked loss, and a task that needs the future."""

import pytest
import torch
import torch.nn.functional as F

from rnnkit.text.tagger import SequenceTagger, TaggerConfig


def test_padded_batch_equals_each_sequence_alone_and_loss_ignores_padding():
    torch.manual_seed(0)
    model = SequenceTagger(TaggerConfig(num_tags=3, vocab_size=15, embed_size=6, hidden_size=5,
                                        dropout=0.0)).eval()
    lengths = torch.tensor([6, 2, 4])
    x = torch.randint(1, 15, (3, 6))
    y = torch.randint(0, 3, (3, 6))
    logits = model(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(logits[b, :n], model(x[b : b + 1, :n])[0],
                                   atol=1e-5, rtol=1e-5)
    # reference loss: mean over the 12 valid steps only
    ref = torch.cat([F.cross_entropy(logits[b, :n], y[b, :n], reduction="none")
                     for b, n in enumerate(lengths.tolist())]).mean()
    out = model.loss((x, lengths, y))
    torch.testing.assert_close(out.loss, ref)
    assert out.weight == 12


def _next_token_batch(n, g):
    """Tag at step t = the token at step t+1 (0 at the last step): needs the future."""
    lengths = torch.randint(3, 10, (n,), generator=g)
    x = torch.randint(1, 6, (n, 9), generator=g)
    y = torch.zeros_like(x)
    y[:, :-1] = x[:, 1:]
    for i, L in enumerate(lengths.tolist()):
        x[i, L:] = 0
        y[i, L - 1 :] = 0
    return x, lengths, y


@pytest.mark.parametrize("bidirectional", [True, False])
def test_bidirectional_reads_the_future(bidirectional):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = SequenceTagger(TaggerConfig(num_tags=6, vocab_size=6, embed_size=8, hidden_size=16,
                                        bidirectional=bidirectional, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(60):
        out = model.loss(_next_token_batch(64, g))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    x, lengths, y = _next_token_batch(300, g)
    pred = model.predict(x, lengths)
    valid = pred != -100
    acc = (pred == y)[valid].float().mean().item()
    if bidirectional:
        assert acc > 0.97, acc
    else:  # a forward-only tagger cannot know the next token: chance is about 1/5
        assert acc < 0.5, acc


def test_bad_labels():
    model = SequenceTagger(TaggerConfig(num_tags=3, vocab_size=10, embed_size=4, hidden_size=4))
    x = torch.randint(1, 10, (2, 5))
    with pytest.raises(ValueError, match=r"labels of shape \[2, 5\]"):
        model.loss((x, None, torch.zeros(2, 4, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"tags must lie in \[0, 3\)"):
        model.loss((x, None, torch.full((2, 5), 7)))
