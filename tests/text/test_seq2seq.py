"""Seq2Seq: masking, parallel vs step-by-step decoding, beam scores, and a task to solve."""

import pytest
import torch
import torch.nn.functional as F

from rnnkit.text.seq2seq import BOS, EOS, PAD, Seq2Seq, Seq2SeqConfig
from rnnkit.text.translation import save_attention_heatmap


def _model(attention="general", cell="lstm", input_feeding=False, **kw):
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(src_vocab_size=14, tgt_vocab_size=11, embed_size=8, hidden_size=6,
                        attention=attention, cell=cell, input_feeding=input_feeding,
                        dropout=0.0, **kw)
    return Seq2Seq(cfg).eval()


def _batch(B=4, S=7, T=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([S] + torch.randint(1, S + 1, (B - 1,), generator=g).tolist())
    src = torch.randint(4, 14, (B, S), generator=g)
    for b, n in enumerate(lengths.tolist()):
        src[b, n:] = PAD
    tgt = torch.randint(4, 11, (B, T), generator=g)
    tgt[:, 0] = BOS
    return src, lengths, tgt


@pytest.mark.parametrize("attention", ["general", "dot", "additive", "none"])
@pytest.mark.parametrize("input_feeding", [False, True])
def test_padded_batch_equals_each_pair_alone(attention, input_feeding):
    model = _model(attention, input_feeding=input_feeding)
    src, lengths, tgt = _batch()
    noisy = src.clone()
    noisy[src == PAD] = 5  # junk in the padding must not change anything
    logits, w = model(noisy, lengths, tgt)
    for b, n in enumerate(lengths.tolist()):
        alone, wa = model(src[b : b + 1, :n], None, tgt[b : b + 1])
        torch.testing.assert_close(logits[b : b + 1], alone, atol=1e-5, rtol=1e-5)
        if w is not None:
            assert w[b, :, n:].eq(0).all()  # masked source steps: exactly zero
            torch.testing.assert_close(w[b, :, :n], wa[0], atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(w[b].sum(-1), torch.ones(tgt.shape[1]))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_parallel_decoder_equals_step_by_step(cell):
    model = _model(cell=cell)
    src, lengths, tgt = _batch(seed=1)
    parallel, _ = model(src, lengths, tgt)
    enc = model.encode(src, lengths)
    steps = []
    for t in range(tgt.shape[1]):
        lg, enc, _ = model.decode_step(tgt[:, t], enc)
        steps.append(lg)
    torch.testing.assert_close(parallel, torch.stack(steps, 1), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def _sequence_logprob(model, src, n, tokens, finished):
    """Reference: teacher-forced log-probability of BOS tokens (EOS) under the model."""
    tgt = torch.tensor([[BOS, *tokens] + ([EOS] if finished else [])])
    logits, _ = model(src[None, :n], None, tgt[:, :-1])
    gold = tgt[:, 1:]
    return float(torch.log_softmax(logits, -1).gather(-1, gold[..., None]).sum())


def test_beam_and_greedy_scores_are_true_log_probabilities():
    model = _model("additive")
    src, lengths, _ = _batch(B=3, seed=2)
    greedy = model.greedy(src, lengths, max_len=5)
    beam = model.beam(src, lengths, beam_size=3, max_len=5, length_penalty=0.0)
    for b, n in enumerate(lengths.tolist()):
        L = int(greedy.lengths[b])
        toks = greedy.tokens[b, :L].tolist()
        fin = bool(greedy.finished[b])
        ref = _sequence_logprob(model, src[b], n, toks, fin) if (fin or L) else 0.0
        assert greedy.scores[b].item() == pytest.approx(ref, abs=1e-4)
        L = int(beam.lengths[b, 0])
        toks = beam.tokens[b, 0, :L].tolist()
        fin = bool(beam.finished[b, 0])
        ref = _sequence_logprob(model, src[b], n, toks, fin)
        assert beam.scores[b, 0].item() == pytest.approx(ref, abs=1e-4)
        assert beam.scores[b, 0].item() >= greedy.scores[b].item() - 1e-5



@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sample_and_ngram_blocking_go_through_the_shared_searches(cell):
    model = _model("general", cell=cell, input_feeding=True)
    src, lengths, _ = _batch(B=3, seed=4)
    greedy = model.greedy(src, lengths, max_len=8)
    cold = model.sample(src, lengths, max_len=8, temperature=0.0)
    assert cold.tokens.tolist() == greedy.tokens.tolist()
    torch.testing.assert_close(cold.scores, greedy.scores)
    hot = model.sample(src, lengths, max_len=8, seed=3)
    assert hot.tokens.tolist() == model.sample(src, lengths, max_len=8, seed=3).tokens.tolist()
    for b, n in enumerate(lengths.tolist()):
        toks = hot.tokens[b, : hot.lengths[b]].tolist()
        ref = _sequence_logprob(model, src[b], n, toks, bool(hot.finished[b]))
        assert hot.scores[b].item() == pytest.approx(ref, abs=1e-4)
    beam = model.beam(src, lengths, beam_size=3, max_len=8, no_repeat_ngram_size=1)
    for b in range(3):
        for k in range(3):
            toks = beam.tokens[b, k, : beam.lengths[b, k]].tolist()
            assert len(toks) == len(set(toks))  # no token (1-gram) twice

def _reverse_batch(n, g, V=8, lo=2, hi=7):
    """Source: random symbols 4..V+3 of length lo..hi; target: the same reversed."""
    lengths = torch.randint(lo, hi + 1, (n,), generator=g)
    src = torch.full((n, hi), PAD)
    tgt = torch.full((n, hi + 2), PAD)
    for i, L in enumerate(lengths.tolist()):
        s = torch.randint(4, 4 + V, (L,), generator=g)
        src[i, :L] = s
        tgt[i, : L + 2] = torch.cat([torch.tensor([BOS]), s.flip(0), torch.tensor([EOS])])
    return src, lengths, tgt


def _train_reverse(attention, steps, seed=0):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = Seq2Seq(Seq2SeqConfig(src_vocab_size=12, tgt_vocab_size=12, embed_size=16,
                                  hidden_size=32, attention=attention, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        out = model.loss(_reverse_batch(64, g))
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    src, lengths, tgt = _reverse_batch(300, g)
    res = model.beam(src, lengths, beam_size=3)
    hits = 0
    for i, L in enumerate(lengths.tolist()):
        hits += int(res.lengths[i, 0]) == L and \
            res.tokens[i, 0, :L].tolist() == tgt[i, 1 : L + 1].tolist()
    return hits / len(lengths)


def test_learns_to_reverse_with_attention():
    acc = _train_reverse("general", steps=150)
    assert acc > 0.9, acc


@pytest.mark.slow
@pytest.mark.parametrize("attention", ["additive", "dot"])
def test_learns_to_reverse_other_attentions(attention):
    assert _train_reverse(attention, steps=300) > 0.9


def test_scheduled_sampling_and_input_feeding_train():
    model = _model("general", input_feeding=True, teacher_forcing=0.5).train()
    src, lengths, tgt = _batch(seed=3)
    tgt[:, -1] = EOS
    out = model.loss((src, lengths, tgt))
    out.loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
    assert out.weight == int((tgt[:, 1:] != PAD).sum())
    # with teacher forcing 1 the loss is plain cross-entropy over the non-pad gold tokens
    forced = _model("general", input_feeding=True, teacher_forcing=1.0).train()
    ref = F.cross_entropy(forced(src, lengths, tgt[:, :-1])[0].flatten(0, 1),
                          tgt[:, 1:].flatten(), ignore_index=PAD)
    torch.testing.assert_close(forced.loss((src, lengths, tgt)).loss, ref)


def test_heatmap_png(tmp_path):
    model = _model("general")
    src = torch.tensor([5, 6, 7])
    tgt = torch.tensor([BOS, 4, 5, EOS])
    w = model.attention_map(src, tgt)
    assert w.shape == (3, 3)
    path = save_attention_heatmap(w, ["a", "b", "c"], ["x", "y", "</s>"],
                                  str(tmp_path / "att.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no attention"):
        _model("none").attention_map(src, tgt)


def test_bad_input_names_the_fix():
    with pytest.raises(ValueError, match="unknown attention"):
        Seq2SeqConfig(10, 10, attention="cosine")
    with pytest.raises(ValueError, match="teacher_forcing"):
        Seq2SeqConfig(10, 10, teacher_forcing=1.5)
    model = _model()
    with pytest.raises(ValueError, match="source ids must lie in"):
        model.greedy(torch.tensor([[1, 99]]))
    with pytest.raises(ValueError, match=r"source ids of shape \[B, S\]"):
        model.greedy(torch.randn(2, 3))
    with pytest.raises(ValueError, match="BOS .. EOS"):
        model.loss((torch.tensor([[5, 6]]), None, torch.tensor([[BOS]])))
    src, lengths, tgt = _batch()
    bad = tgt.clone()
    bad[0, 2] = 11  # tgt_vocab_size is 11
    with pytest.raises(ValueError, match=r"target ids must lie in \[0, 11\)"):
        model(src, lengths, bad[:, :-1])
    bad = tgt.clone()
    bad[0, -1] = -3  # only the last gold token, which the decoder never reads
    with pytest.raises(ValueError, match="target ids must lie in"):
        model.loss((src, lengths, bad))
    with pytest.raises(ValueError, match=r"\(src, src_lengths, tgt\)"):
        model.loss((src, tgt))


def test_read_pairs_tsv_encodings_and_errors(tmp_path):
    from rnnkit.text.translation import read_pairs_tsv

    legacy = tmp_path / "latin1.tsv"
    legacy.write_bytes("caf\xe9\tcoffee\r\n\r\nna\xefve\tnaive\r\n".encode("latin-1"))
    assert read_pairs_tsv(str(legacy)) == [("café", "coffee"), ("naïve", "naive")]
    # cp1252's ellipsis (byte 0x85) reads as \x85 under Latin-1: inside a pair, not a line end
    ellipsis = tmp_path / "cp1252.tsv"
    ellipsis.write_bytes(b"un\x85deux\tone\x85two\nmore\tplus\n")
    assert read_pairs_tsv(str(ellipsis)) == [("un\x85deux", "one\x85two"), ("more", "plus")]
    with pytest.raises(FileNotFoundError, match="check the path"):
        read_pairs_tsv(str(tmp_path / "missing.tsv"))
    bad = tmp_path / "bad.tsv"
    bad.write_text("one\ttwo\nno tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.tsv:2: expected 'source<TAB>target'"):
        read_pairs_tsv(str(bad))
    (tmp_path / "empty.tsv").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        read_pairs_tsv(str(tmp_path / "empty.tsv"))
