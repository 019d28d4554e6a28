"""`rnnkit.export` of every model family, checked against torch with onnxruntime on fresh
inputs, and the torch-free runtime (:mod:`rnnkit.onnx`) against the torch models' own
answers: classifier probabilities and attention, tagger logits, translations (beam and
greedy), forecasts with intervals."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

import rnnkit
import rnnkit.onnx as ro
from rnnkit.cli import main
from rnnkit.data.vocab import Vocab
from rnnkit.export.onnx import random_lengths
from rnnkit.text.classifier import ClassifierConfig, SequenceClassifier, TextClassifier
from rnnkit.text.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.text.tagger import SequenceTagger, TaggerConfig
from rnnkit.text.translation import Translator

WORDS = "the a cat dog sat ran on under mat rug big small red blue".split()


def sentence(rng: random.Random, lo: int = 1, hi: int = 9) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def jitter(model: torch.nn.Module) -> None:
    """Random weights everywhere (zero-initialised heads would hide a wrong graph)."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)


def text_classifier(pooling: str, bidirectional: bool, cell: str) -> TextClassifier:
    rng = random.Random()
    vocab = Vocab.build([sentence(rng) for _ in range(50)])
    model = SequenceClassifier(ClassifierConfig(
        num_classes=3, vocab_size=len(vocab), embed_size=6, hidden_size=8, num_layers=2,
        cell=cell, pooling=pooling, bidirectional=bidirectional))
    jitter(model)
    return TextClassifier(model.eval(), vocab, ["neg", "neu", "pos"])


@pytest.mark.parametrize("pooling,bidirectional,cell", [
    ("attention", True, "lstm"), ("last", True, "gru"), ("mean", False, "lstm"),
    ("max", True, "elman")])
def test_classifier_runtime_equals_torch(pooling, bidirectional, cell, tmp_path):
    clf = text_classifier(pooling, bidirectional, cell)
    path = str(tmp_path / "c.onnx")
    report = rnnkit.export(clf, path)
    assert report.max_error < 1e-5 and report.inputs == ["tokens", "lengths"]
    rng = random.Random()
    texts = [sentence(rng) for _ in range(7)] + ["", "zebra unknown words"]
    onnx_clf = ro.load(path)
    np.testing.assert_allclose(onnx_clf.predict_proba(texts),
                               clf.predict_proba(texts).numpy(), atol=1e-5)
    assert onnx_clf.predict(texts) == clf.predict(texts)
    if pooling == "attention":
        m = clf.model
        x, lengths = clf.encode(texts)
        with torch.no_grad():
            out, _, _ = __import__("rnnkit.text.classifier", fromlist=["x"]).encode_sequence(
                m.embed, m.rnn, x, lengths, m.in_drop)
            mask = torch.arange(x.shape[1])[None] < lengths[:, None]
            _, w = m.attention(m.query.expand(len(texts), -1), out, mask=mask)
        got = onnx_clf.attention(texts)
        for i, n in enumerate(lengths.tolist()):
            assert len(got[i]) == n and abs(got[i].sum() - 1) < 1e-5
            np.testing.assert_allclose(got[i], w.reshape(len(texts), -1)[i, :n].numpy(),
                                       atol=1e-5)
    else:
        with pytest.raises(ValueError, match="attention"):
            onnx_clf.attention(texts)


@pytest.mark.parametrize("features", [False, True])
def test_tagger_graph_equals_torch_at_new_lengths(features, tmp_path):
    cfg = TaggerConfig(num_tags=5, input_size=3, hidden_size=8, cell="gru") if features else \
        TaggerConfig(num_tags=5, vocab_size=20, embed_size=6, hidden_size=8, num_layers=2)
    tagger = SequenceTagger(cfg)
    jitter(tagger)
    path = str(tmp_path / "t.onnx")
    rnnkit.export(tagger, path)
    graph = ro.load(path)
    assert isinstance(graph, ro.OnnxGraph)
    gen = torch.Generator().manual_seed(random.randrange(10**6))
    for batch, steps in ((2, 3), (6, 31)):
        x = torch.randn(batch, steps, 3) if features else torch.randint(1, 20, (batch, steps))
        lengths = random_lengths(batch, steps, gen)
        with torch.no_grad():
            ref = tagger.eval()(x, lengths)
        got = graph(**{"x" if features else "tokens": x.numpy(), "lengths": lengths.numpy()})
        mask = (torch.arange(steps)[None] < lengths[:, None]).numpy()
        np.testing.assert_allclose(got["logits"][mask], ref.numpy()[mask], atol=1e-5)


def translator(cell: str, attention: str, feeding: bool) -> Translator:
    rng = random.Random()
    src = Vocab.build([sentence(rng) for _ in range(60)])
    tgt = Vocab.build([sentence(rng) for _ in range(60)])
    model = Seq2Seq(Seq2SeqConfig(len(src), len(tgt), embed_size=8, hidden_size=8,
                                  cell=cell, attention=attention, input_feeding=feeding,
                                  enc_layers=2, dec_layers=2))
    jitter(model)
    return Translator(model.eval(), src, tgt, max_len=12)


@pytest.mark.parametrize("cell,attention,feeding", [
    ("lstm", "general", True), ("gru", "dot", False), ("lstm", "none", False)])
def test_translator_runtime_beam_and_greedy_equal_torch(cell, attention, feeding, tmp_path):
    tr = translator(cell, attention, feeding)
    path = str(tmp_path / "tr.onnx")
    enc, dec = rnnkit.export(tr, path)
    assert enc.max_error < 1e-5 and dec.max_error < 1e-5
    assert os.path.isfile(tmp_path / "tr.decoder.onnx")
    rng = random.Random()
    texts = [sentence(rng) for _ in range(9)]
    onnx_tr = ro.load(path)
    for beam in (1, 4):
        ref, got = tr.translate(texts, beam_size=beam), onnx_tr.translate(texts, beam_size=beam)
        assert [g[0] for g in got] == [r[0] for r in ref]
        np.testing.assert_allclose([g[1] for g in got], [r[1] for r in ref], atol=1e-4)


@pytest.fixture(scope="module")
def forecast_data():
    rng = np.random.default_rng()
    t = np.arange(240)
    return 20 + 4 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.4, len(t))


@pytest.mark.parametrize("head,decoder", [("gaussian", "autoregressive"),
                                          ("quantile", "direct"), ("point", "direct")])
def test_forecaster_runtime_equals_torch(head, decoder, forecast_data, tmp_path):
    from rnnkit.forecast.config import ForecasterConfig
    from rnnkit.forecast.forecaster import Forecaster

    cfg = ForecasterConfig(input_len=24, horizon=6, head=head, decoder=decoder,
                           hidden_size=12, calendar=(), max_steps=15)
    f = Forecaster(cfg).fit(forecast_data)
    jitter(f.net)
    f.net.eval()
    path = str(tmp_path / "f.onnx")
    assert rnnkit.export(f, path).max_error < 1e-5
    onnx_f = ro.load(path)
    history = forecast_data[: 200 + random.randrange(30)]
    levels = () if head == "point" else (80,)
    ref = f.predict(history, levels=levels or None)
    got = onnx_f.predict(history, levels=levels)
    np.testing.assert_allclose(got["point"], np.asarray(ref.mean[0]).reshape(6, 1), rtol=1e-5)
    for lv in levels:
        np.testing.assert_allclose(got["lower"][lv], np.asarray(ref.lower[lv][0]).reshape(6, 1),
                                   rtol=1e-5)
        np.testing.assert_allclose(got["upper"][lv], np.asarray(ref.upper[lv][0]).reshape(6, 1),
                                   rtol=1e-5)
    with pytest.raises(ValueError, match="input_len=24"):
        onnx_f.predict(history[:10])
    with pytest.raises(ValueError, match="NaN"):
        onnx_f.predict(np.r_[history[:-1], np.nan])


def test_export_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(TypeError, match="no exporter for a Linear"):
        rnnkit.export(torch.nn.Linear(2, 2), tmp_path / "x.onnx")
    model = SequenceClassifier(ClassifierConfig(num_classes=2, vocab_size=9, cell="mingru"))
    with pytest.raises(ValueError, match="mingru cell has no ONNX sequence operator"):
        rnnkit.export(model, tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError, match="create it first"):
        rnnkit.export(text_classifier("last", False, "lstm"), tmp_path / "no" / "x.onnx")
    assert not os.listdir(tmp_path)


def test_runtime_names_broken_descriptions(tmp_path):
    path = str(tmp_path / "c.onnx")
    rnnkit.export(text_classifier("mean", False, "gru"), path)
    meta = ro.metadata_path(path)
    good = open(meta).read()
    for broken, match in (("{not json", "not a readable"), (json.dumps({"kind": "x"}),
                                                            "format 1")):
        with open(meta, "w") as f:
            f.write(broken)
        with pytest.raises(ValueError, match=match):
            ro.load(path)
    os.remove(meta)
    with pytest.raises(FileNotFoundError, match="export with"):
        ro.load(path)
    with open(meta, "w") as f:
        f.write(good)
    with pytest.raises(ValueError, match="not a translator"):
        ro.OnnxTranslator(path)
    with pytest.raises(TypeError, match="strings"):
        ro.load(path).predict([3])


def test_cli_exports_classifier_and_translator(tmp_path, capsys):
    rng = random.Random()
    data = tmp_path / "d.tsv"
    data.write_text("".join(f"{rng.choice(['pos', 'neg'])}\t{sentence(rng)}\n"
                            for _ in range(40)))
    assert main(["classify", "train", "--data", str(data), "--out-dir", str(tmp_path / "c"),
                 "--hidden", "8", "--embed", "4", "--no-progress", "--pooling", "attention",
                 "--train.max_steps", "2"]) == 0
    pairs = tmp_path / "p.tsv"
    pairs.write_text("".join(f"{s}\t{' '.join(reversed(s.split()))}\n"
                             for s in (sentence(rng) for _ in range(40))))
    assert main(["translate", "train", "--pairs", str(pairs), "--out-dir", str(tmp_path / "t"),
                 "--hidden", "8", "--embed", "4", "--no-progress",
                 "--train.max_steps", "2"]) == 0
    capsys.readouterr()
    for ckpt, out in (("c/best.pt", "c.onnx"), ("t/best.pt", "t.onnx")):
        assert main(["export", str(tmp_path / ckpt), "--out", str(tmp_path / out)]) == 0
        printed = capsys.readouterr().out
        assert "max |error|" in printed and "rnnkit.onnx.load" in printed
    assert "decoder step" in printed and (tmp_path / "t.decoder.onnx").is_file()
    # the description beside is never silently replaced either
    os.remove(tmp_path / "c.onnx")
    assert main(["export", str(tmp_path / "c/best.pt"), "--out", str(tmp_path / "c.onnx")]) == 2
    assert "c.onnx.json exists" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "c/best.pt"), "--out", str(tmp_path / "c.onnx"),
                 "--sequence"]) == 2
    assert "drop the flag" in capsys.readouterr().err
    clf = rnnkit.load(tmp_path / "c/best.pt")
    texts = [sentence(rng) for _ in range(5)]
    assert main(["export", str(tmp_path / "c/best.pt"), "--out", str(tmp_path / "c.onnx"),
                 "--overwrite"]) == 0
    np.testing.assert_allclose(ro.load(tmp_path / "c.onnx").predict_proba(texts),
                               clf.predict_proba(texts).numpy(), atol=1e-5)


def test_runtime_runs_without_torch(tmp_path):
    """A fresh interpreter that imports rnnkit.onnx and runs a language model, a classifier
    and a translator never imports torch."""
    from rnnkit.data.text import CharTokenizer
    from rnnkit.text.language_model import LanguageModel, LanguageModelConfig

    tok = CharTokenizer.from_text("the cat sat on the mat")
    lm = LanguageModel(LanguageModelConfig(vocab_size=len(tok), embed_size=4, hidden_size=8),
                       tok)
    rnnkit.export(lm, tmp_path / "lm.onnx")
    rnnkit.export(text_classifier("attention", True, "lstm"), tmp_path / "c.onnx")
    tr = translator("gru", "dot", True)
    rnnkit.export(tr, tmp_path / "t.onnx")
    code = f"""
import sys, rnnkit.onnx as ro
d = {str(tmp_path)!r}
print(repr(ro.load(d + "/lm.onnx").generate("the ", 10, temperature=0)))
print(ro.load(d + "/c.onnx").predict(["the cat sat", "a dog"]))
print(ro.load(d + "/t.onnx").translate(["the cat sat"], beam_size=3)[0][0])
assert "torch" not in sys.modules, "torch was imported"
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == repr(lm.generate("the ", 10, temperature=0))
    assert lines[2] == tr.translate(["the cat sat"], beam_size=3)[0][0]


@pytest.mark.parametrize("bidirectional", [True, False])
def test_recognizer_runtime_equals_torch(bidirectional, tmp_path):
    import wave

    from rnnkit.speech.config import DecodeConfig, SpeechConfig
    from rnnkit.speech.recognizer import SpeechRecognizer

    rec = SpeechRecognizer(SpeechConfig(hidden_size=24, num_layers=2, channels=4,
                                        bidirectional=bidirectional))
    jitter(rec.model)
    rec.model.eval()
    path = str(tmp_path / "s.onnx")
    assert rnnkit.export(rec, path).max_error < 1e-4
    onnx_rec = ro.load(path)
    pcm = (np.random.default_rng().normal(0, 0.1, 16000 + random.randrange(16000))
           .clip(-1, 1) * 32767).astype(np.int16)
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    samples = torch.from_numpy(pcm.astype(np.float32) / 32768)
    np.testing.assert_allclose(onnx_rec.features(samples.numpy()),
                               rec.featurize(samples).numpy(), atol=2e-3)
    ref = rec.log_probs(samples).numpy()
    got = onnx_rec.log_probs(str(tmp_path / "a.wav"))
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=2e-3)
    assert onnx_rec.transcribe(str(tmp_path / "a.wav")) == \
        rec.transcribe(samples, DecodeConfig(beam_size=1))[0].text
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEnot really")
    with pytest.raises(ValueError, match="not a readable WAV"):
        onnx_rec.transcribe(str(tmp_path / "bad.wav"))
    with pytest.raises(ValueError, match="shorter than one frame"):
        onnx_rec.transcribe(np.full(10, 0.3))


def test_cli_exports_forecaster_and_recognizer(forecast_data, tmp_path, capsys):
    from rnnkit.forecast.config import ForecasterConfig
    from rnnkit.forecast.forecaster import Forecaster
    from rnnkit.speech.config import SpeechConfig
    from rnnkit.speech.recognizer import SpeechRecognizer

    f = Forecaster(ForecasterConfig(input_len=24, horizon=6, hidden_size=8, calendar=(),
                                    max_steps=5)).fit(forecast_data)
    rnnkit.save(f, tmp_path / "f.forecaster")
    rnnkit.save(SpeechRecognizer(SpeechConfig(hidden_size=8, num_layers=1, channels=2)),
                tmp_path / "s.speech")
    for model, out in (("f.forecaster", "f.onnx"), ("s.speech", "s.onnx")):
        assert main(["export", str(tmp_path / model), "--out", str(tmp_path / out)]) == 0
        assert "max |error|" in capsys.readouterr().out
    history = forecast_data[:100]
    np.testing.assert_allclose(ro.load(tmp_path / "f.onnx").predict(history)["point"][:, 0],
                               np.asarray(f.predict(history).mean[0]).ravel(), rtol=1e-5)
    assert isinstance(ro.load(tmp_path / "s.onnx"), ro.OnnxRecognizer)


def test_translator_without_max_len_and_bare_seq2seq(tmp_path):
    tr = translator("gru", "dot", False)
    tr.max_len = None  # the constructor's default: the search sizes it from the source
    rnnkit.export(tr, tmp_path / "t.onnx")
    texts = [sentence(random.Random()) for _ in range(4)]
    onnx_tr = ro.load(tmp_path / "t.onnx")
    for beam in (1, 3):
        assert [t for t, _ in onnx_tr.translate(texts, beam)] == \
            [t for t, _ in tr.translate(texts, beam)]
    with pytest.raises(ValueError, match="length_penalty"):
        onnx_tr.translate(texts, 3, length_penalty=-1)
    rnnkit.export(tr.model, tmp_path / "bare.onnx")  # a Seq2Seq: graphs + a description
    assert ro.read_metadata(tmp_path / "bare.onnx")["kind"] == "seq2seq"
    assert isinstance(ro.load(tmp_path / "bare.onnx"), ro.OnnxGraph)


def test_recognizer_takes_integer_and_multichannel_arrays(tmp_path):
    from rnnkit.speech.config import SpeechConfig
    from rnnkit.speech.recognizer import SpeechRecognizer

    rec = SpeechRecognizer(SpeechConfig(hidden_size=8, num_layers=1, channels=2,
                                        normalize="global"))
    jitter(rec.model)
    rec.model.eval()
    rnnkit.export(rec, tmp_path / "s.onnx")
    onnx_rec = ro.load(tmp_path / "s.onnx")
    pcm = (np.random.default_rng().normal(0, 0.1, (12000, 2)).clip(-1, 1) * 32767) \
        .astype(np.int16)
    np.testing.assert_allclose(onnx_rec.log_probs(pcm),
                               rec.log_probs(torch.from_numpy(pcm)).numpy(), atol=2e-3)
    with pytest.raises(ValueError, match="silent"):
        onnx_rec.transcribe(np.zeros(16000))


def test_forecaster_description_and_argument_checks(tmp_path):
    import pandas as pd

    from rnnkit.forecast.config import ForecasterConfig
    from rnnkit.forecast.forecaster import Forecaster

    rng = np.random.default_rng()
    n = 150
    frame = pd.DataFrame({"t": np.tile(np.arange(n), 2), "id": np.repeat([10, 20], n),
                          "y": rng.normal(10, 1, 2 * n), "temp": rng.normal(0, 1, 2 * n)})
    f = Forecaster(ForecasterConfig(input_len=12, horizon=3, hidden_size=8, calendar=(),
                                    head="gaussian", max_steps=3))
    f.fit(frame, time="t", target="y", series="id", past_covariates=["temp"])
    rnnkit.export(f, tmp_path / "cov.onnx")
    meta = ro.read_metadata(tmp_path / "cov.onnx")
    assert meta["past_covariates"] == ["temp"] and len(meta["covariate_scaler"]) == 2
    assert isinstance(ro.load(tmp_path / "cov.onnx"), ro.OnnxGraph)  # not target-only
    f2 = Forecaster(ForecasterConfig(input_len=12, horizon=3, hidden_size=8, calendar=(),
                                     head="gaussian", max_steps=3))
    f2.fit(frame, time="t", target="y", series="id")
    rnnkit.export(f2, tmp_path / "f.onnx")
    onnx_f = ro.load(tmp_path / "f.onnx")
    y20 = frame[frame.id == 20].y.to_numpy()
    by_id = onnx_f.predict(y20, series=20)["point"]  # an id, not a position
    np.testing.assert_allclose(by_id, onnx_f.predict(y20, series=1)["point"])
    np.testing.assert_allclose(by_id.ravel(), np.asarray(f2.predict(
        frame[frame.id == 20][["t", "id", "y"]]).mean[0]).ravel(), rtol=1e-5)
    for bad in (0, 100, -10):
        with pytest.raises(ValueError, match=r"percentages in \(0, 100\)"):
            onnx_f.predict(y20, series=20, levels=(bad,))


def test_failed_check_keeps_no_graph_and_no_stale_description(tmp_path, monkeypatch):
    import rnnkit.export.onnx as core

    path = tmp_path / "c.onnx"
    rnnkit.export(text_classifier("last", False, "gru"), path)
    real = core.session

    class Off:  # onnxruntime answers 1.0 off: a wrong graph
        def __init__(self, sess):
            self.sess = sess

        def __getattr__(self, name):
            return getattr(self.sess, name)

        def run(self, *a, **k):
            return [o + 1.0 for o in self.sess.run(*a, **k)]

    monkeypatch.setattr(core, "session", lambda p, t=None: Off(real(p, t)))
    with pytest.raises(ValueError, match="was not kept"):
        rnnkit.export(text_classifier("last", False, "gru"), path)
    assert not path.exists() and not os.path.exists(ro.metadata_path(path))


def test_runtime_refuses_broken_files_clearly(tmp_path):
    from rnnkit.data.text import CharTokenizer
    from rnnkit.text.language_model import LanguageModel, LanguageModelConfig

    tok = CharTokenizer.from_text("abc ")
    lm = LanguageModel(LanguageModelConfig(vocab_size=len(tok), embed_size=4, hidden_size=8),
                       tok)
    rnnkit.export(lm, tmp_path / "seq.onnx", stream=False)
    assert isinstance(ro.load(tmp_path / "seq.onnx"), ro.OnnxGraph)  # no step graph
    with pytest.raises(IsADirectoryError, match="is a folder"):
        rnnkit.export(lm, tmp_path)
    (tmp_path / "seq.onnx").write_bytes(os.urandom(64))
    with pytest.raises(ValueError, match="not a loadable ONNX graph"):
        ro.load(tmp_path / "seq.onnx")
    rnnkit.export(text_classifier("mean", False, "gru"), tmp_path / "c.onnx")
    meta = json.loads(open(ro.metadata_path(tmp_path / "c.onnx")).read())
    del meta["vocab"]
    with open(ro.metadata_path(tmp_path / "c.onnx"), "w") as f:
        json.dump(meta, f)
    with pytest.raises(ValueError, match=r"lacks \['vocab'\]"):
        ro.load(tmp_path / "c.onnx")
