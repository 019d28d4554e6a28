"""`rnnkit export` of a language model and generation from the ONNX files with the
torch-free runtime (:mod:`rnnkit.onnx`)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.decoding.sampling import top_k_filter, top_p_filter
from rnnkit.onnx import OnnxLanguageModel, filter_logits, sample_logits
from rnnkit.text.language_model import load_language_model
from rnnkit.text.onnx import export_language_model


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    rng = random.Random()
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran"]
    (d / "t.txt").write_text(" ".join(rng.choice(words) for _ in range(3000)))
    assert main(["train", "text", "--data", str(d / "t.txt"), "--out-dir", str(d / "run"),
                 "--max-steps", "30", "--hidden", "24", "--embed", "8", "--bptt", "16",
                 "--train.progress", "false"]) == 0
    return d


@pytest.mark.parametrize("cell", ["lstm", "mingru", "layernorm_gru"])
def test_greedy_generation_in_onnxruntime_equals_torch(cell, tmp_path):
    from rnnkit.data.text import CharTokenizer
    from rnnkit.text.language_model import LanguageModel, LanguageModelConfig

    tok = CharTokenizer.from_text("the quick brown fox jumps over the lazy dog")
    lm = LanguageModel(LanguageModelConfig(vocab_size=len(tok), cell=cell, embed_size=6,
                                           hidden_size=12, num_layers=2), tok)
    path = str(tmp_path / "lm.onnx")
    report = export_language_model(lm, path)
    assert report.max_error < 1e-5
    prime = "".join(random.choice("the quick") for _ in range(5))
    assert OnnxLanguageModel(path).generate(prime, 40, temperature=0) == lm.generate(prime, 40,
                                                                          temperature=0)


def test_cli_export_step_and_sequence(lm_run, capsys):
    ckpt = lm_run / "run" / "best.pt"
    out = lm_run / "lm.onnx"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    assert "max |error|" in capsys.readouterr().out
    lm = load_language_model(str(ckpt))
    text = OnnxLanguageModel(str(out)).generate("the cat", 12, temperature=0)
    assert text == lm.generate("the cat", 12, temperature=0)
    assert main(["export", str(ckpt), "--out", str(out)]) == 2  # exists: refused
    assert "--overwrite" in capsys.readouterr().err
    seq = lm_run / "seq.onnx"
    assert main(["export", str(ckpt), "--out", str(seq), "--sequence"]) == 0
    from rnnkit.export import run_onnx

    ids = torch.tensor([lm.tokenizer.encode("the cat sat on a mat and")])
    with torch.no_grad():
        ref, _ = lm.eval()(ids)
    got, _ = run_onnx(str(seq), ids.numpy())
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-5, rtol=1e-4)


def test_cli_export_refuses_models_it_cannot_write(tmp_path, capsys):
    import rnnkit
    from rnnkit.ngram import NGramLM

    rnnkit.save(NGramLM(2).fit(["a cat sat", "a dog ran"]), tmp_path / "n.rnnkit")
    assert main(["export", str(tmp_path / "n.rnnkit"), "--out",
                 str(tmp_path / "n.onnx")]) == 2
    err = capsys.readouterr().err
    assert "NGramLM" in err and "rnnkit classify train" in err and "rnnkit.export(" in err
    assert not (tmp_path / "n.onnx").exists()


def test_filters_equal_torch_sampling_rules():
    """The runtime's top-k / top-p / ban cuts keep exactly the tokens torch's keep."""
    for _ in range(20):
        logits = torch.randn(3, 17) * 3
        k, p = random.randint(1, 17), random.uniform(0.05, 1.0)
        t = random.uniform(0.3, 2.0)
        banned = logits.clone()
        banned[:, 4] = float("-inf")
        ref = top_p_filter(top_k_filter(banned / t, k), p)
        got = filter_logits(logits.numpy(), t, k, p, banned=(4,))
        np.testing.assert_array_equal(np.isinf(got), ref.isinf().numpy())
        np.testing.assert_allclose(got[~np.isinf(got)], ref[~ref.isinf()].double().numpy(),
                                   rtol=1e-6)


def test_sampling_draws_from_the_softmax():
    logits = np.random.default_rng().normal(size=(1, 6)) * 2
    p = np.exp(logits[0] - logits.max())
    p /= p.sum()
    rng = np.random.default_rng(random.randrange(10**6))
    n = 20000
    draws = np.concatenate([sample_logits(np.repeat(logits, 1000, 0), 1.0, rng=rng)
                            for _ in range(n // 1000)])
    freq = np.bincount(draws, minlength=6) / n
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-9)
    assert sample_logits(logits, 0).tolist() == [int(logits.argmax())]


def test_seeded_generation_repeats_and_respects_cuts(tmp_path):
    from rnnkit.data.text import CharTokenizer
    from rnnkit.text.language_model import LanguageModel, LanguageModelConfig

    tok = CharTokenizer.from_text("a quick brown fox jumps over the lazy dog")
    lm = LanguageModel(LanguageModelConfig(vocab_size=len(tok), embed_size=6, hidden_size=12),
                       tok)
    path = str(tmp_path / "lm.onnx")
    export_language_model(lm, path)
    onnx_lm = OnnxLanguageModel(path)
    seed = random.randrange(10**6)
    for kw in ({"temperature": 1.0}, {"temperature": 0.8, "top_k": 5},
               {"temperature": 1.2, "top_p": 0.9}):
        text = onnx_lm.generate("the ", 30, seed=seed, **kw)
        assert len(text) == 30 and text == onnx_lm.generate("the ", 30, seed=seed, **kw)
    # top_k=1 is greedy whatever the temperature
    assert onnx_lm.generate("the ", 25, temperature=1.5, top_k=1, seed=seed) == \
        lm.generate("the ", 25, temperature=0)
    pieces = list(onnx_lm.stream("the ", 5, temperature=0))
    assert "".join(pieces) == lm.generate("the ", 5, temperature=0) and len(pieces) == 5


def test_tiny_temperatures_are_greedy_and_top_p_keeps_the_top_token():
    """The runtime's two rules match torch's: scaled logits that overflow decode greedily,
    and top-p keeps the most likely token however small p is."""
    logits = np.array([[0.0, 3.0, 1.0, 3.0], [2.0, -1.0, 0.5, 0.0]])
    for temperature in (1e-320, 5e-324):
        x = filter_logits(logits, temperature)
        assert np.isfinite(x).sum(-1).tolist() == [1, 1]
        assert sample_logits(logits, temperature, rng=np.random.default_rng(0)).tolist() == [1, 0]
        assert sample_logits(logits, temperature, 2, 0.5).tolist() == [1, 0]
    for p in (1e-300, 5e-324):
        kept = np.isfinite(filter_logits(logits, 1.0, top_p=p))
        assert kept.sum(-1).tolist() == [1, 1] and kept.argmax(-1).tolist() == [1, 0]
        ref = ~top_p_filter(torch.tensor(logits, dtype=torch.float32), p).isinf()
        np.testing.assert_array_equal(kept, ref.numpy())
