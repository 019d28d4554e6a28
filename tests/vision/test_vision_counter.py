"""The object counter and the count constraints of caption decoding: the mask against the
rules written out word by word, decoding under the constraint names exactly the counted classes,
and a counter learns to count combinations of objects it never saw together."""

from __future__ import annotations

import pytest
import torch

from rnnkit.vision.captioner import BOS, EOS, ShowAttendTell
from rnnkit.vision.counter import CountConstraint, ObjectCounter

# words: 0-3 specials, 4 "a" (article, 1), 5 "one" (1), 6 "two" (2), 7 "three" (3),
# 8 "dog" (class 0), 9 "dogs" (0), 10 "cat" (1), 11 "cats" (1), 12 "tree" (2), 13 "and", 14 "of"
CLS = [-1] * 8 + [0, 0, 1, 1, 2, -1, -1]
NUM = [0, 0, 0, 0, 1, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0]


def _constraint():
    return CountConstraint(CLS, NUM, article=[4], eos=EOS)


def _rules(remaining, pending):
    """The allowed words, written out from the module docstring's rules."""
    ok = []
    for w in range(15):
        if CLS[w] >= 0:
            left = remaining[CLS[w]]
            allowed = left > 0 and (pending == 0 or pending == left)
        elif NUM[w] > 0 and w != 4:
            allowed = NUM[w] in remaining
        elif w == EOS:
            allowed = all(r == 0 for r in remaining)
        else:
            allowed = True
        ok.append(allowed)
    return ok


def test_mask_follows_the_rules():
    con = _constraint()
    g = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))
    remaining = torch.randint(0, 4, (64, 3), generator=g)
    remaining[:5] = 0
    pending = torch.randint(0, 4, (64,), generator=g)
    lp = torch.log_softmax(torch.randn(64, 15, generator=g), -1)
    out = con.mask(lp, {"remaining": remaining, "pending": pending})
    for n in range(64):
        ok = _rules(remaining[n].tolist(), int(pending[n]))
        for w in range(15):
            assert (out[n, w] == lp[n, w]) if ok[w] else out[n, w] == float("-inf"), (n, w)


def test_update_names_classes_and_tracks_the_last_number():
    con = _constraint()
    st = con.init_state(torch.tensor([[2, 1, 0], [1, 0, 3]]))
    for toks, rem, pend in (([BOS, 6], [[2, 1, 0], [1, 0, 3]], [0, 2]),
                            ([6, 12], [[2, 1, 0], [1, 0, 0]], [2, 0]),
                            ([9, 4], [[0, 1, 0], [1, 0, 0]], [0, 1]),
                            ([13, 8], [[0, 1, 0], [0, 0, 0]], [0, 0])):
        st = con.update(torch.tensor(toks), st)
        assert st["remaining"].tolist() == rem and st["pending"].tolist() == pend
    # "a" is pending as one only while a class has one object left ("on a blue background")
    st = con.update(torch.tensor([4, 4]), con.init_state(torch.tensor([[2, 1, 0], [2, 0, 3]])))
    assert st["pending"].tolist() == [1, 0]


def _named(caption):
    """class -> the number word before its noun, for a decoded caption."""
    out, pending = {}, 0
    for w in caption:
        if CLS[w] >= 0:
            assert CLS[w] not in out, caption  # each class named once
            out[CLS[w]] = pending
            pending = 0
        elif NUM[w]:
            pending = NUM[w]
    return out


@pytest.mark.parametrize("beam", [1, 3])
def test_constrained_decoding_names_exactly_the_counted_classes(beam):
    torch.manual_seed(int(torch.randint(0, 2**31, ())))
    net = ShowAttendTell(6, 15, embed_size=8, hidden_size=12, annotation_size=6,
                         attn_size=5).eval()
    with torch.no_grad():  # nouns, numbers and the end are likely: captions end early
        net.L_o.bias[8:13] += 4.0
        net.L_o.bias[5:8] += 2.0
        net.L_o.bias[EOS] += 4.0
    f = torch.randn(16, 6, 2, 2)
    counts = torch.randint(0, 4, (16, 3))
    counts[counts.sum(1) == 0, 0] = 1
    caps = net.decode(f, beam_size=beam, max_len=40, constraint=_constraint(), counts=counts)
    unconstrained = net.decode(f, beam_size=beam, max_len=40)
    assert caps != unconstrained
    ended = [(cap, c) for cap, c in zip(caps, counts.tolist()) if len(cap) < 40]
    assert len(ended) >= 12, caps  # most end (a random net may also loop on "of" or "a")
    for cap, c in ended:  # ended by <eos>, so every counted class was named
        named = _named(cap)
        assert set(named) == {k for k in range(3) if c[k] > 0}, (cap, c)
        for k, pending in named.items():
            assert pending in (0, c[k]), (cap, c)
    with pytest.raises(ValueError, match="counts"):
        net.decode(f, constraint=_constraint())


def test_counter_counts_combinations_it_never_saw():
    # features: each cell of a 3 x 3 grid holds one of 4 object codes (or nothing) plus
    # noise; training scenes never hold classes 0 and 1 together, the test scenes always do
    g = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))
    codes = torch.randn(4, 16, generator=g)

    def scenes(n, pair):
        feats, counts = torch.randn(n, 16, 3, 3, generator=g) * 0.3, torch.zeros(n, 4)
        for i in range(n):
            cells = torch.randperm(9, generator=g)[: int(torch.randint(1, 5, (), generator=g))]
            for j, cell in enumerate(cells.tolist()):
                k = [0, 1][j % 2] if pair else int(torch.randint(0, 4, (), generator=g))
                if not pair and k in (0, 1) and counts[i, 1 - k] > 0:
                    k = 2 + k
                feats[i, :, cell // 3, cell % 3] += codes[k]
                counts[i, k] += 1
        return feats, counts

    train_f, train_c = scenes(600, False)
    assert not ((train_c[:, 0] > 0) & (train_c[:, 1] > 0)).any()
    test_f, test_c = scenes(100, True)
    test_c_pairs = (test_c[:, 0] > 0) & (test_c[:, 1] > 0)
    counter = ObjectCounter(16, 4, hidden_size=32, dropout=0.0)
    flat = train_f.transpose(0, 1).flatten(1)
    counter.set_stats(flat.mean(1), flat.std(1))
    opt = torch.optim.Adam(counter.parameters(), 1e-2)
    for _ in range(600):
        loss = counter.loss((train_f, train_c)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    pred = counter.predict(test_f)
    assert test_c_pairs.float().mean() > 0.5
    assert (pred == test_c.long()).all(1).float().mean() >= 0.95
    assert torch.allclose(counter(test_f), counter.density(test_f).sum((2, 3)))


def test_counter_refuses_bad_shapes():
    with pytest.raises(ValueError, match="hidden_size"):
        ObjectCounter(8, 3, hidden_size=0)
    with pytest.raises(ValueError, match=r"features \[B, 8"):
        ObjectCounter(8, 3)(torch.randn(2, 5, 3, 3))
    with pytest.raises(ValueError, match="one entry per word"):
        CountConstraint([0, 1], [0])


def test_checklist_crosses_off_named_classes_and_forward_equals_stepping():
    torch.manual_seed(int(torch.randint(0, 2**31, ())))
    net = ShowAttendTell(6, 15, embed_size=8, hidden_size=12, annotation_size=6, attn_size=5,
                         word_class=CLS, n_classes=3).eval()
    f = torch.randn(2, 6, 2, 2)
    counts = torch.tensor([[2.0, 1.0, 0.0], [1.0, 0.0, 3.0]])
    toks = torch.tensor([[BOS, 6, 9, 13, 10, 14], [BOS, 7, 12, 13, 5, 8]])
    logits, alphas = net(f, toks, counts=counts)
    state = net.initial_state(net.annotations(f), counts)
    seen = []
    for t in range(toks.shape[1]):  # the reference: one word at a time
        out, state, a = net.step(toks[:, t], state)
        seen.append(state["checklist"] * 4)
        assert torch.allclose(out, logits[:, t], atol=1e-6)
        assert torch.allclose(a, alphas[:, t], atol=1e-6)
    assert seen[1].tolist() == [[2, 1, 0], [1, 0, 3]]  # "two" / "three": nothing named yet
    assert seen[2].tolist() == [[0, 1, 0], [1, 0, 0]]  # "dogs" / "tree" crossed off
    assert seen[5].tolist() == [[0, 0, 0], [0, 0, 0]]
    # the checklist changes what the decoder says
    other, _ = net(f, toks, counts=counts.flip(0))
    assert not torch.allclose(other, logits)
    with pytest.raises(ValueError, match="checklist"):
        net(f, toks)
    with pytest.raises(ValueError, match="word_class"):
        ShowAttendTell(6, 15, word_class=CLS, n_classes=2)


def test_scene_lexicon_and_classes_no_word_can_name():
    from rnnkit.vision.captioner import _word_lexicon
    from rnnkit.vision.scenes import CLASSES

    order = list(CLASSES)
    words = ["<pad>", "<bos>", "<eos>", "<unk>", "a", "an", "two", "puppies", "dog", "apple",
             "left", "of"]
    classes, numbers, articles = _word_lexicon(words)
    assert classes == [-1] * 7 + [order.index("dog")] * 2 + [order.index("apple"), -1, -1]
    assert numbers == [0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 0]
    assert articles == [4, 5]
    with pytest.raises(ValueError, match="count_objects=False"):
        _word_lexicon(["<pad>", "<bos>", "<eos>", "<unk>", "hello"])
    # a class no word names is dropped from the counts, so <eos> is not refused forever
    con = CountConstraint(classes, numbers, articles, eos=EOS)
    counts = torch.zeros(2, len(order), dtype=torch.long)
    counts[:, order.index("dog")] = 2
    counts[1, order.index("cat")] = 1
    named = con.nameable(counts)
    assert named[:, order.index("cat")].tolist() == [0, 0]
    assert named[:, order.index("dog")].tolist() == [2, 2]
