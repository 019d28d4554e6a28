"""SeriesClassifier: learns a simple task, chooses by cross-validation, saves and loads."""

import math

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.series.classifier import SeriesClassifier, _folds
from rnnkit.series.config import SeriesClassifierConfig


def _waves(n, seed):
    """Class "slow" is one period of a sine, "fast" three, with random phase, amplitude,
    offset, noise and length (12-20 steps), in two channels (the second a scaled copy)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n):
        fast = i % 2
        T = int(rng.integers(12, 21))
        t = np.linspace(0, 2 * math.pi, T)
        s = rng.uniform(0.5, 2) * np.sin((3 if fast else 1) * t + rng.uniform(0, 2 * math.pi))
        s = s + rng.normal(0, 0.1, T) + rng.normal(0, 1)
        xs.append(np.stack([s, 100 * s + 50], 1).astype(np.float32))
        ys.append("fast" if fast else "slow")
    return xs, ys


def _cfg(**kw):
    base = dict(models="fcn", epochs=12, width=0.125, lr=1e-2, batch_size=8, cv_folds=1,
                ensemble=1, min_steps=1, seed=int(torch.randint(1000, ())))
    return SeriesClassifierConfig(**{**base, **kw})


def test_a_small_model_learns_a_two_class_task():
    xs, ys = _waves(48, seed=int(torch.randint(1000, ())))
    clf = SeriesClassifier(_cfg()).fit(xs, ys)
    xt, yt = _waves(60, seed=int(torch.randint(1000, 2000, ())))
    acc = np.mean([p == y for p, y in zip(clf.predict(xt), yt)])
    assert acc >= 0.9, acc
    assert clf.classes == ["fast", "slow"]
    probs = clf.predict_proba(xt)
    torch.testing.assert_close(probs.sum(1), torch.ones(len(xt)))
    # channel statistics are stored: the second channel's scale (x100) is taken out
    assert clf.std[1] / clf.std[0] == pytest.approx(100, rel=1e-3)


def test_cross_validation_chooses_recipe_and_epoch_from_training_data_only():
    xs, ys = _waves(24, seed=int(torch.randint(1000, ())))
    clf = SeriesClassifier(_cfg(models="fcn,gru-fcn", shuffle="on", epochs=3, cv_folds=2))
    clf.fit(xs, ys)
    assert [(r["model"], r["shuffle"]) for r in clf.cv] == [("fcn", False), ("gru-fcn", True)]
    best = max(clf.cv, key=lambda r: max(r["accuracy"]))
    assert max(best["accuracy"]) == pytest.approx(clf.recipe["cv_accuracy"])
    assert 1 <= clf.recipe["epochs"] <= 3
    assert clf.candidates(10) == [("fcn", False), ("gru-fcn", True)]
    auto = SeriesClassifier(_cfg(models="lstm-fcn", rnn_max_steps=64))
    assert auto.candidates(64) == [("lstm-fcn", True), ("lstm-fcn", False)]
    assert auto.candidates(65) == [("lstm-fcn", True)]


def test_stratified_folds_partition_and_balance():
    labels = [0] * 10 + [1] * 5
    folds = _folds(labels, 3, seed=3)
    assert sorted(i for f in folds for i in f) == list(range(15))
    assert all(sum(labels[i] for i in f) in (1, 2) for f in folds)  # 5 ones over 3 folds


def test_save_load_round_trip_gives_identical_probabilities(tmp_path):
    xs, ys = _waves(16, seed=int(torch.randint(1000, ())))
    clf = SeriesClassifier(_cfg(models="lstm-fcn", shuffle="on", epochs=2, max_steps=8,
                                ensemble=2))
    clf.fit(xs, ys)
    assert clf.factor == 3  # up to 20 steps averaged to at most 8
    assert len(clf.nets) == 2
    path = tmp_path / "series.pt"
    clf.save(path)
    xt, _ = _waves(7, seed=int(torch.randint(1000, 2000, ())))
    for loaded in (SeriesClassifier.load(path), rnnkit.load(path)):
        assert isinstance(loaded, SeriesClassifier) and loaded.classes == clf.classes
        assert loaded.recipe == clf.recipe
        torch.testing.assert_close(loaded.predict_proba(xt), clf.predict_proba(xt),
                                   rtol=0, atol=0)
    # the ensemble averages its members' probabilities, one series at a time as in a batch
    members = [torch.cat([torch.softmax(net(f[None]), -1) for f in clf._features(
        [torch.as_tensor(x) for x in xt])]) for net in clf.nets]
    torch.testing.assert_close(clf.predict_proba(xt), (members[0] + members[1]) / 2)


def test_bad_input_names_the_fix():
    xs, ys = _waves(8, seed=0)
    with pytest.raises(ValueError, match="at least 2 classes"):
        SeriesClassifier(_cfg()).fit(xs, ["a"] * 8)
    with pytest.raises(ValueError, match="got 8 series but 7 labels"):
        SeriesClassifier(_cfg()).fit(xs, ys[:7])
    with pytest.raises(ValueError, match="missing or infinite"):
        SeriesClassifier(_cfg()).fit([*xs[:7], np.full((5, 2), np.nan)], ys)
    with pytest.raises(RuntimeError, match="not trained"):
        SeriesClassifier(_cfg()).predict(xs)
    with pytest.raises(ValueError, match="models must be one of"):
        SeriesClassifierConfig(models="fcn,transformer")
    clf = SeriesClassifier(_cfg(epochs=1)).fit(xs, ys)
    with pytest.raises(ValueError, match="have 1 channels but the model was trained on 2"):
        clf.predict([x[:, :1] for x in xs])


def test_long_series_are_pooled_alone_and_short_ones_kept_whole():
    from rnnkit.series.classifier import _reduce

    short, long = torch.randn(5, 2), torch.randn(23, 2)
    out = _reduce([short, long], 8, "mean")
    assert torch.equal(out[0], short)  # at most max_steps: never shrunk
    assert out[1].shape == (8, 2)  # ceil(23 / 3) windows of 3 (the last of 2)
    torch.testing.assert_close(out[1][-1], long[21:].mean(0))
    spiky = torch.zeros(24, 1)
    spiky[7] = 5.0
    assert _reduce([spiky], 8, "max")[0].max() == 5.0  # a spike survives max pooling
    both = _reduce([long, short], 8, "mean+max")
    assert both[0].shape == (8, 4) and torch.equal(both[1], torch.cat([short, short], 1))


def test_auto_norm_keeps_shapes_of_series_whose_magnitudes_differ_by_orders():
    xs, ys = _waves(16, seed=1)
    scaled = [x * 10.0 ** (i % 4 - 2) for i, x in enumerate(xs)]  # 0.01x ... 10x
    clf = SeriesClassifier(_cfg(epochs=1)).fit(scaled, ys)
    assert clf.norm == "series+log" and clf.channels() == 4
    assert SeriesClassifier(_cfg(epochs=1)).fit(xs, ys).norm == "global"
    feats = clf._features([torch.as_tensor(x) for x in scaled[:4]])
    for f, x in zip(feats, xs[:4]):  # the per-series z-normalised channel ignores the scale
        x = torch.as_tensor(x[:, 0])
        torch.testing.assert_close(f[:, 0], (x - x.mean()) / x.std(unbiased=False),
                                   atol=1e-3, rtol=0)
