"""Tiny models of every served kind, built once per session in about a second, and the inputs
the panels take (a CSV series, a WAV clip).

Language model, classifiers, translator and speech recogniser are built untrained and saved as
the training commands save them (the playground only runs them); the forecaster and the anomaly
detector are fitted for a few steps with the library's own ``fit`` (they need their scalers)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.train.checkpoint import FORMAT, save_checkpoint

TEXT = "the quick brown fox jumps over the lazy dog. " * 20
GOOD = ["a gorgeous witty film", "great fun and moving", "a lovely warm story"]
BAD = ["a dull tedious mess", "boring and flat plot", "an awful script"]
WORDS = {"one": "un", "two": "deux", "three": "trois", "four": "quatre", "five": "cinq"}
RATE = 16000


def _save_app(app, model, path: Path) -> None:
    """A trainer checkpoint, as `rnnkit train text` / `classify train` / `translate train`
    write it (what `rnnkit.load` rebuilds by its task)."""
    save_checkpoint({"format": FORMAT, "model": model.state_dict(),
                     "extra_state": app.extra_state()}, path)


def _series(n: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 10 + np.sin(np.arange(n) * 2 * np.pi / 12) + rng.normal(0, 0.1, n)


def _clip(seconds: float = 0.6) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * math.pi * 440 * t) + 0.01 * rng.normal(size=len(t))
            ).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Model files by id as `rnnkit serve` names them (the file stems), plus input files:
    ``series.csv`` (``date``, ``value``), ``words.csv`` (no numeric column), ``clip.wav``."""
    import pandas as pd
    import soundfile as sf

    from rnnkit.anomaly.config import AnomalyConfig
    from rnnkit.anomaly.detector import AnomalyDetector
    from rnnkit.data.text import CharTokenizer
    from rnnkit.data.vocab import Vocab
    from rnnkit.forecast.forecaster import Forecaster, ForecasterConfig
    from rnnkit.speech import SpeechRecognizer
    from rnnkit.speech.config import SpeechConfig
    from rnnkit.text.classifier import ClassifierConfig, SequenceClassifier, TextClassifier
    from rnnkit.text.language_model import LanguageModel, LanguageModelConfig
    from rnnkit.text.seq2seq import Seq2Seq, Seq2SeqConfig
    from rnnkit.text.translation import Translator

    root = tmp_path_factory.mktemp("serve_models")
    torch.manual_seed(0)  # the same tiny models every session (each test reseeds after)
    files: dict[str, Path] = {}

    tok = CharTokenizer.from_text(TEXT)
    lm = LanguageModel(LanguageModelConfig(vocab_size=len(tok), hidden_size=32, embed_size=16,
                                           num_layers=1), tokenizer=tok).eval()
    _save_app(lm, lm, root / "lm.pt")

    vocab = Vocab.build(GOOD + BAD)
    for pooling in ("attention", "max"):
        cfg = ClassifierConfig(num_classes=2, vocab_size=len(vocab), embed_size=8,
                               hidden_size=8, pooling=pooling, dropout=0.0)
        clf = TextClassifier(SequenceClassifier(cfg).eval(), vocab, ["neg", "pos"])
        _save_app(clf, clf.model, root / f"clf_{pooling}.pt")

    sv, tv = Vocab.build(list(WORDS)), Vocab.build(list(WORDS.values()))
    tr = Translator(Seq2Seq(Seq2SeqConfig(len(sv), len(tv), embed_size=8, hidden_size=8,
                                          attention="additive")).eval(), sv, tv, max_len=6)
    _save_app(tr, tr.model, root / "tr.pt")

    y = _series()
    dates = pd.date_range("2000-01-01", periods=len(y), freq="MS")
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "value": y}).to_csv(
        root / "series.csv", index=False)
    fc = Forecaster(ForecasterConfig(horizon=6, input_len=24, hidden_size=8, max_steps=10,
                                     head="gaussian"))
    fc.fit(pd.read_csv(root / "series.csv"), time="date", target="value")
    rnnkit.save(fc, root / "fc.pt")

    spiky = y.copy()
    spiky[150] += 6.0
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "value": spiky}).to_csv(
        root / "spiky.csv", index=False)
    det = AnomalyDetector(AnomalyConfig(input_len=16, hidden_size=8, max_steps=20))
    det.fit(y[:120])
    rnnkit.save(det, root / "an.pt")

    rec = SpeechRecognizer(SpeechConfig(hidden_size=8, num_layers=1, channels=2, n_mels=24))
    rnnkit.save(rec, root / "asr.pt")

    (root / "words.csv").write_text("name,colour\nann,red\nbob,blue\n", encoding="utf-8")
    sf.write(root / "clip.wav", _clip(), RATE)
    for name in ("lm", "clf_attention", "clf_max", "tr", "fc", "an", "asr"):
        files[name] = root / f"{name}.pt"
    files.update(series=root / "series.csv", spiky=root / "spiky.csv",
                 words=root / "words.csv", wav=root / "clip.wav", root=root)
    return files


@pytest.fixture(scope="session")
def served(tiny_models):
    """The served models (:func:`rnnkit.serve.models.load_models`) by id."""
    from rnnkit.serve.models import load_models

    names = ("lm", "clf_attention", "clf_max", "tr", "fc", "an", "asr")
    return load_models([str(tiny_models[n]) for n in names])


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (``rep_call``), so a browser fixture can
    save a screenshot when the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
