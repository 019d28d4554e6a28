"""rnnkit.save / rnnkit.load on the text applications (language model, text classifier,
translator: trainer checkpoints dispatched by their task) and tokenizers, and the errors
rnnkit.load gives for files it cannot rebuild."""

from __future__ import annotations

import os
import random

import pytest
import torch
from torch import nn

import rnnkit
from rnnkit.data.text import CharTokenizer, TextDataConfig, Tokenizer
from rnnkit.saving import file_kind
from rnnkit.train import TrainConfig, load_checkpoint
from rnnkit.train.checkpoint import FORMAT, save_checkpoint

WORDS = ["to", "be", "or", "not", "that", "is", "the", "question"]


def _rng() -> random.Random:
    return random.Random(torch.randint(0, 2**31, ()).item())  # fresh inputs every run


def _sentences(rng: random.Random, n: int, words=WORDS) -> list[str]:
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 6))) for _ in range(n)]


def _quick(out_dir) -> TrainConfig:
    return TrainConfig(max_steps=2, progress=False, out_dir=str(out_dir))


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    from rnnkit.text.generation import fit_text
    from rnnkit.text.language_model import LanguageModelConfig

    out = tmp_path_factory.mktemp("lm")
    text = " ".join(_sentences(random.Random(0), 300))
    cfg = LanguageModelConfig(cell="gru", embed_size=8, hidden_size=12)
    run = fit_text(text, cfg, TextDataConfig(batch_size=4, bptt=16), _quick(out))
    return run.model.eval(), out / "last.pt"


def _lm_logits(model, tokens):
    with torch.no_grad():
        return model(tokens)[0]


def test_language_model_loads_with_identical_outputs(lm_run):
    from rnnkit.text.language_model import LanguageModel, load_language_model

    model, path = lm_run
    back = rnnkit.load(path)
    assert type(back) is LanguageModel and not back.training
    assert back.tokenizer == model.tokenizer and back.config == model.config
    tokens = torch.randint(0, model.config.vocab_size, (3, 11))
    torch.testing.assert_close(_lm_logits(back, tokens), _lm_logits(model, tokens),
                               rtol=0, atol=0)
    torch.testing.assert_close(_lm_logits(load_language_model(str(path)), tokens),
                               _lm_logits(model, tokens), rtol=0, atol=0)
    # a checkpoint written before the extra_state key was "config" ("model_config") still loads
    ckpt = load_checkpoint(path)
    extra = ckpt["extra_state"]
    assert "config" in extra and "model_config" not in extra
    extra["model_config"] = extra.pop("config")
    old = LanguageModel.from_state(ckpt)
    torch.testing.assert_close(_lm_logits(old, tokens), _lm_logits(model, tokens), rtol=0, atol=0)


def test_text_classifier_loads_with_identical_probabilities(tmp_path):
    from rnnkit.text.classifier import ClassifierConfig, TextClassifier, train_text_classifier

    rng = random.Random(1)
    texts = _sentences(rng, 40)
    labels = ["pos" if "be" in t.split() else "neg" for t in texts]
    cfg = ClassifierConfig(vocab_size=1, embed_size=6, hidden_size=8, pooling="attention")
    clf, _ = train_text_classifier(texts, labels, cfg, _quick(tmp_path), val_fraction=0.25,
                                   batch_size=8)
    back = rnnkit.load(tmp_path / "last.pt")
    assert type(back) is TextClassifier and not back.model.training
    assert back.classes == clf.classes and type(back.vocab) is type(clf.vocab)
    new = _sentences(_rng(), 5, WORDS + ["unseen", "words"]) + [""]
    torch.testing.assert_close(back.predict_proba(new), clf.predict_proba(new), rtol=0, atol=0)
    again = TextClassifier.from_checkpoint(str(tmp_path / "last.pt"))
    torch.testing.assert_close(again.predict_proba(new), clf.predict_proba(new), rtol=0, atol=0)


def test_translator_loads_with_identical_translations(tmp_path):
    from rnnkit.text.seq2seq import Seq2SeqConfig
    from rnnkit.text.translation import Translator, train_translator

    french = dict(zip(WORDS, ["etre", "ou", "ne", "pas", "cela", "est", "la", "question"]))
    rng = random.Random(2)
    pairs = [(s, " ".join(french[w] for w in s.split())) for s in _sentences(rng, 40)]
    cfg = Seq2SeqConfig(5, 5, embed_size=6, hidden_size=8)
    tr, _ = train_translator(pairs, cfg, _quick(tmp_path), val_fraction=0.2, batch_size=8)
    back = rnnkit.load(tmp_path / "last.pt")
    assert type(back) is Translator and not back.model.training
    assert back.max_len == tr.max_len
    new = _sentences(_rng(), 4, WORDS + ["unseen"])
    for beam in (1, 3):
        assert back.translate(new, beam_size=beam) == tr.translate(new, beam_size=beam)
    again = Translator.from_checkpoint(str(tmp_path / "last.pt"))
    assert again.translate(new, beam_size=2) == tr.translate(new, beam_size=2)


def test_tokenizer_saves_and_loads_through_rnnkit(tmp_path):
    rng = _rng()
    tok = CharTokenizer.from_text("".join(rng.choice("abcdef \n") for _ in range(200)))
    path = tmp_path / "vocab.json"
    rnnkit.save(tok, path)
    assert file_kind(path) == ("rnnkit.tokenizer", 1)
    back = rnnkit.load(path)
    assert type(back) is CharTokenizer and back == tok == Tokenizer.load(path)
    probe = "".join(rng.choice("abcdefxyz ") for _ in range(50))
    assert back.encode(probe) == tok.encode(probe)


def test_load_names_what_a_file_is(tmp_path, lm_run):
    plain = tmp_path / "weights.pt"
    torch.save({"w": torch.randn(3)}, plain)
    with pytest.raises(ValueError, match="not an rnnkit file"):
        rnnkit.load(plain)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(lm_run[1].read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        rnnkit.load(corrupt)
    no_task = tmp_path / "no_task.pt"
    save_checkpoint({"format": FORMAT, "model": {"w": torch.randn(2)}, "extra_state": None},
                    no_task)
    with pytest.raises(ValueError, match="trainer checkpoint .*no application task"):
        rnnkit.load(no_task)


def test_save_refuses_a_plain_module(tmp_path):
    with pytest.raises(TypeError, match="torch.save"):
        rnnkit.save(nn.Linear(2, 2), tmp_path / "linear.pt")
    assert not (tmp_path / "linear.pt").exists()


def test_a_file_with_code_is_refused_without_torchs_weights_only_false_advice(tmp_path):
    import collections

    path = tmp_path / "code.pt"
    torch.save({"format": "rnnkit.train/1", "x": collections.OrderedDict,
                "f": os.path.join}, path)
    with pytest.raises(ValueError) as err:
        rnnkit.load(path)
    assert "never runs code" in str(err.value) and "weights_only" not in str(err.value)
