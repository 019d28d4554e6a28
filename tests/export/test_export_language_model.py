"""`rnnkit export` of a language model and generation from the ONNX files."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.text.language_model import load_language_model
from rnnkit.text.onnx import OnnxLM, export_language_model


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
    assert OnnxLM(path).generate(prime, 40, temperature=0) == lm.generate(prime, 40,
                                                                          temperature=0)


def test_cli_export_step_and_sequence(lm_run, capsys):
    ckpt = lm_run / "run" / "best.pt"
    out = lm_run / "lm.onnx"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    assert "max |error|" in capsys.readouterr().out
    lm = load_language_model(str(ckpt))
    text = OnnxLM(str(out)).generate("the cat", 12, temperature=0)
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


def test_cli_export_refuses_other_models(tmp_path, capsys):
    path = tmp_path / "d.tsv"
    path.write_text("".join(f"{'pos' if i % 2 else 'neg'}\tsome text {i}\n" for i in range(40)))
    assert main(["classify", "train", "--data", str(path), "--out-dir", str(tmp_path / "c"),
                 "--hidden", "8", "--embed", "4", "--no-progress",
                 "--train.max_steps", "2"]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "c" / "best.pt"), "--out",
                 str(tmp_path / "c.onnx")]) == 2
    err = capsys.readouterr().err
    assert "language models" in err and "export_recurrent" in err
    assert not (tmp_path / "c.onnx").exists()


def test_seeded_sampling_in_onnxruntime_equals_torch(tmp_path):
    from rnnkit.data.text import CharTokenizer
    from rnnkit.text.language_model import LanguageModel, LanguageModelConfig

    tok = CharTokenizer.from_text("a quick brown fox jumps over the lazy dog")
    lm = LanguageModel(LanguageModelConfig(vocab_size=len(tok), embed_size=6, hidden_size=12),
                       tok)
    path = str(tmp_path / "lm.onnx")
    export_language_model(lm, path)
    seed = random.randrange(10**6)
    for kw in ({"temperature": 1.0}, {"temperature": 0.8, "top_k": 5},
               {"temperature": 1.2, "top_p": 0.9}):
        assert OnnxLM(path).generate("the ", 30, seed=seed, **kw) == \
            lm.generate("the ", 30, seed=seed, **kw)
