"""The language model against torch references, state carry, exact evaluation, text helpers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import available_cells
from rnnkit.data.text import CharTokenizer, WordTokenizer
from rnnkit.text.language_model import (
    IGNORE_INDEX,
    LanguageModel,
    LanguageModelConfig,
    bits_per_token,
    perplexity,
)

V = 17


def make(cell: str = "lstm", layers: int = 2, seed: int = 0, **kw) -> LanguageModel:
    torch.manual_seed(seed)
    cfg = LanguageModelConfig(vocab_size=V, cell=cell, embed_size=8, hidden_size=12,
                              num_layers=layers, **kw)
    return LanguageModel(cfg)


def test_forward_matches_torch_lstm_with_copied_weights():
    model = make("lstm").eval()
    ref = nn.LSTM(8, 12, num_layers=2, batch_first=True)
    with torch.no_grad():
        for layer, cell in enumerate(model.rnn.cells):
            getattr(ref, f"weight_ih_l{layer}").copy_(cell.weight_ih)
            getattr(ref, f"weight_hh_l{layer}").copy_(cell.weight_hh)
            getattr(ref, f"bias_ih_l{layer}").copy_(cell.bias_ih)
            getattr(ref, f"bias_hh_l{layer}").copy_(cell.bias_hh)
    tokens = torch.randint(0, V, (3, 9))
    logits, (h, c) = model(tokens)
    ref_out, (ref_h, ref_c) = ref(F.embedding(tokens, model.embedding.weight))
    ref_logits = ref_out @ model.head.weight.T + model.head.bias
    torch.testing.assert_close(logits, ref_logits)
    torch.testing.assert_close(h, ref_h)
    torch.testing.assert_close(c, ref_c)


@pytest.mark.parametrize("cell", sorted(set(available_cells()) & {"lstm", "gru", "elman"}))
def test_chunks_with_carried_state_equal_one_pass(cell):
    model = make(cell).eval()
    tokens = torch.randint(0, V, (2, 13))
    full, _ = model(tokens)
    a, state = model(tokens[:, :6])
    b, _ = model(tokens[:, 6:], state)
    torch.testing.assert_close(torch.cat([a, b], 1), full)


def test_loss_is_mean_cross_entropy_and_skips_ignored_targets():
    model = make()
    x = torch.randint(0, V, (4, 7))
    y = torch.randint(0, V, (4, 7))
    out = model.loss((x, y))
    logits, _ = model(x)
    ref = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    torch.testing.assert_close(out.loss, ref)
    assert out.weight == 28
    torch.testing.assert_close(out.metrics["bits_per_token"], ref.detach() / math.log(2))
    y2 = y.clone()
    y2[:, :3] = IGNORE_INDEX
    out2 = model.loss({"x": x, "y": y2})
    torch.testing.assert_close(out2.loss, F.cross_entropy(logits[:, 3:].reshape(-1, V),
                                                          y[:, 3:].reshape(-1)))
    assert out2.weight == 16
    # whole sequences [B, T + 1] (full BPTT)
    seq = torch.randint(0, V, (2, 8))
    out3 = model.loss(seq)
    ref3 = F.cross_entropy(model(seq[:, :-1])[0].reshape(-1, V), seq[:, 1:].reshape(-1))
    torch.testing.assert_close(out3.loss, ref3)


def test_every_parameter_gets_a_gradient():
    model = make("gru", dropout=0.1)
    model.loss(torch.randint(0, V, (3, 10))).loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_weight_tying():
    torch.manual_seed(0)
    model = LanguageModel(LanguageModelConfig(vocab_size=V, embed_size=12, hidden_size=12,
                                              num_layers=1, tie_weights=True))
    assert model.head.weight is model.embedding.weight
    untied = LanguageModel(LanguageModelConfig(vocab_size=V, embed_size=12, hidden_size=12,
                                               num_layers=1))
    n = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in untied.parameters()) - n == V * 12
    with pytest.raises(ValueError, match="embed_size == hidden_size"):
        LanguageModelConfig(vocab_size=V, embed_size=8, hidden_size=12, tie_weights=True)


def test_bad_inputs_name_the_fix():
    model = make()
    stream = torch.randint(0, V, (50,))
    for kw in ({"bptt": 0}, {"batch_size": 0}, {"bptt": 2.5}):
        with pytest.raises(ValueError, match=f"{next(iter(kw))} must be a positive integer"):
            model.evaluate_tokens(stream, **kw)
    with pytest.raises(ValueError, match="unsqueeze"):
        model(torch.randint(0, V, (5,)))
    with pytest.raises(TypeError, match="integer ids"):
        model(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"must lie in \[0, 17\)"):
        model(torch.tensor([[1, 17]]))
    with pytest.raises(ValueError, match="empty"):
        model(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="targets must have the shape"):
        model.loss((torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"target ids must lie in \[0, 17\)"):
        model.loss(torch.tensor([[1, 2, 17]]))  # only the last target is out of range
    with pytest.raises(ValueError, match="target ids must lie in"):
        model.loss((torch.tensor([[1, 2]]), torch.tensor([[IGNORE_INDEX, -2]])))
    with pytest.raises(ValueError, match="vocab_size"):
        LanguageModel(LanguageModelConfig(vocab_size=0))
    with pytest.raises(ValueError, match="unknown language-model option"):
        LanguageModelConfig.from_dict({"hidden": 3})
    with pytest.raises(ValueError, match="no tokenizer"):
        model.predict_next("abc")
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match="vocab_size=len"):
        LanguageModel(LanguageModelConfig(vocab_size=V), tokenizer=tok)


def test_evaluate_tokens_equals_segment_by_segment_reference():
    """Every prediction scored once, each segment after its context, for every batch size
    and bptt: the number is the protocol's, not the batching's."""
    model = make().eval()
    model.EVAL_SEGMENT, model.EVAL_CONTEXT = 20, 6  # small, so 103 tokens make 6 segments
    ids = torch.randint(0, V, (103,))  # 102 predictions
    total = 0.0
    with torch.no_grad():  # reference: one plain pass per segment, context included
        for s in range(0, 102, 20):
            a, e = max(0, s - 6), min(s + 20, 102)
            logits, _ = model(ids[a:e][None])
            total += F.cross_entropy(logits[0, s - a:], ids[s + 1: e + 1], reduction="sum").item()
    for batch_size, bptt in ((1, 1000), (5, 7), (16, 4), (2, 1)):
        got = model.evaluate_tokens(ids, batch_size=batch_size, bptt=bptt)
        assert got["tokens"] == 102
        assert got["loss"] == pytest.approx(total / 102, rel=1e-5)
        assert got["perplexity"] == pytest.approx(math.exp(total / 102), rel=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        model.evaluate_tokens(ids[:1])


def test_evaluate_tokens_is_one_stream_within_a_segment():
    """A text shorter than a segment is scored exactly as one pass from its start."""
    model = make().eval()
    ids = torch.randint(0, V, (300,))
    with torch.no_grad():
        logits, _ = model(ids[:-1][None])
        ref = F.cross_entropy(logits[0], ids[1:]).item()
    for batch_size in (1, 8):
        assert model.evaluate_tokens(ids, batch_size, bptt=13)["loss"] == \
            pytest.approx(ref, rel=1e-5)


def test_metrics():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(7.5)) == pytest.approx(7.5)
    assert bits_per_token(math.log(2) * 3) == pytest.approx(3.0)
    assert math.isfinite(perplexity(1e6))


def test_predict_next_and_generate_are_consistent_with_forward():
    text = "the quick brown fox jumps over the lazy dog " * 3
    tok = CharTokenizer.from_text(text)
    torch.manual_seed(3)
    model = LanguageModel(LanguageModelConfig(vocab_size=len(tok), embed_size=8,
                                              hidden_size=16, num_layers=1), tok)
    top = model.predict_next("the qu", k=4)
    assert len(top) == 4 and all(isinstance(t, str) for t, _ in top)
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    with torch.no_grad():
        ref = model(tok.encode_tensor("the qu")[None])[0][0, -1].softmax(-1)
    assert probs[0] == pytest.approx(ref.max().item(), rel=1e-5)
    assert model.training  # restored after the helpers
    pieces = []
    a = model.generate("the", 40, temperature=1.0, seed=5, stream=pieces.append)
    b = model.generate("the", 40, temperature=1.0, seed=5)
    assert a == b == "".join(pieces) and len(pieces) == 40
    assert "<unk>" not in a
    greedy = model.generate("the", 20, temperature=0.0)
    assert greedy == model.generate("the", 20, temperature=0.0, seed=123)
    with pytest.raises(ValueError, match="priming text is empty"):
        model.generate("", 5)


def test_extra_state_roundtrip_rebuilds_the_same_model():
    tok = WordTokenizer.from_text("a b c a b d e", lowercase=True)
    torch.manual_seed(0)
    model = LanguageModel(LanguageModelConfig(vocab_size=len(tok), cell="gru", embed_size=4,
                                              hidden_size=6, num_layers=1), tok).eval()
    back = LanguageModel.from_extra_state(model.extra_state())
    back.load_state_dict(model.state_dict())
    back.eval()
    ids = tok.encode_tensor("a b c d")[None]
    torch.testing.assert_close(back(ids)[0], model(ids)[0])
    assert back.tokenizer == tok
    # checkpoints written before the key was "config" hold "model_config"
    old = {k if k != "config" else "model_config": v for k, v in model.extra_state().items()}
    assert "config" in model.extra_state() and "model_config" in old
    assert LanguageModel.from_extra_state(old).config == model.config
    with pytest.raises(ValueError, match="is not a language-model checkpoint"):
        LanguageModel.from_extra_state({"task": "classifier"})
    # word models report bits per character over the text
    result = back.evaluate_text("a b c a b d e")
    assert result["bits_per_char"] == pytest.approx(
        result["loss"] * result["tokens"] / math.log(2) / len("a b c a b d e"))
