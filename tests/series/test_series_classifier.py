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


def _band_reference(accs, n):
    """The band by its formula: within one binomial standard error of the top accuracy, and
    within one series whatever the error."""
    top = max(accs)
    return {r for r, x in enumerate(accs)
            if x >= top - max(math.sqrt(top * (1 - top) / n), 1 / n) - 1e-6}


def _confident(ys, k, right):
    """Held-out probabilities ``[N, K]``: 0.95 on the true class where ``right``, else on the
    next class."""
    p = torch.full((len(ys), k), 0.05 / (k - 1))
    p[torch.arange(len(ys)), torch.where(right, ys, (ys + 1) % k)] = 0.95
    return p


@pytest.mark.parametrize("band_helps", [True, False])
@pytest.mark.parametrize("combine", ["best", "band", "auto"])
def test_recipes_the_folds_cannot_tell_apart_are_averaged_when_the_folds_say_so(combine,
                                                                               band_helps):
    n, k = 40, 3
    ys = torch.randint(k, (n,))
    accs = [0.9, 0.86, 0.79, 0.88]  # band: 0.9 - sqrt(0.09 / 40) = 0.8526 -> recipes 0, 1, 3
    assert _band_reference(accs, n) == {0, 1, 3}
    clf = SeriesClassifier(_cfg(combine=combine))
    clf.cv = [{"model": "fcn", "shuffle": False, "accuracy": [a] * 4, "loss": [0.1] * 4,
               "best_epoch": 2} for a in accs]
    top_right = torch.randperm(n) >= 4  # the top recipe misses 4 series
    # the others: right everywhere (their votes outweigh the top's misses), or wrong on 8
    # series the top gets right (their two votes outweigh the top's)
    other_right = torch.ones(n, dtype=torch.bool)
    if not band_helps:
        other_right[torch.nonzero(top_right)[:8, 0]] = False
    held = [_confident(ys, k, top_right if r == 0 else other_right) for r in range(4)]
    order = sorted(range(4), key=lambda r: -accs[r])  # [0, 3, 1, 2]
    kept, extra = clf._combine(order, held, ys)
    average = np.mean([held[r].numpy() for r in (0, 1, 3)], 0)
    assert extra["cv_top"] == pytest.approx(36 / 40)
    assert extra["cv_band"] == pytest.approx(float((average.argmax(-1) == ys.numpy()).mean()))
    assert (extra["cv_band"] > extra["cv_top"]) == band_helps
    assert kept == {"best": [0], "band": [0, 3, 1],
                    "auto": [0, 3, 1] if band_helps else [0]}[combine]


def test_the_band_is_at_least_one_series_wide():
    n = 40
    accs = [1.0, 0.975, 0.95, 0.975]  # no error at 1.0: the band still takes one miss more
    assert _band_reference(accs, n) == {0, 1, 3}
    clf = SeriesClassifier(_cfg(combine="band"))
    clf.cv = [{"model": "fcn", "shuffle": False, "accuracy": [a], "loss": [0.1],
               "best_epoch": 1} for a in accs]
    ys = torch.randint(2, (n,))
    kept, _ = clf._combine([0, 1, 3, 2], [torch.rand(n, 2) for _ in accs], ys)
    assert kept == [0, 1, 3]


def test_a_band_of_recipes_is_refit_averaged_saved_and_loaded(tmp_path):
    # classes "up" and "down": noise around +2 or -2, which every recipe separates, so the
    # folds cannot tell the three apart and all three are refit
    ys = ["up" if i % 2 else "down" for i in range(32)]
    xs = [torch.randn(int(torch.randint(10, 17, ())), 1) + (2 if y == "up" else -2) for y in ys]
    clf = SeriesClassifier(_cfg(models="fcn,gru-fcn,lstm-fcn", shuffle="on", epochs=8,
                                cv_folds=2, ensemble=2, combine="band"))
    clf.fit(xs, ys)
    accs = [r["accuracy"][r["best_epoch"] - 1] for r in clf.cv]
    band = sorted(_band_reference(accs, len(ys)))
    assert len(band) >= 2, accs
    assert clf.members == [(m["model"], m["shuffle"], m["epochs"])
                           for m in clf.recipe["members"]]
    assert sorted((m["model"], m["epochs"]) for m in clf.recipe["members"]) == sorted(
        (clf.cv[r]["model"], clf.cv[r]["best_epoch"]) for r in band)
    assert len(clf.nets) == 2 * len(band)
    xt = [torch.randn(12, 1) + 2 * torch.randn(()) for _ in range(9)]
    feats = clf._features(xt)
    every = [torch.cat([torch.softmax(net(f[None]), -1) for f in feats]) for net in clf.nets]
    torch.testing.assert_close(clf.predict_proba(xt), sum(every) / len(every))
    clf.save(tmp_path / "band.pt")
    loaded = SeriesClassifier.load(tmp_path / "band.pt")
    assert loaded.members == clf.members and loaded.recipe == clf.recipe
    torch.testing.assert_close(loaded.predict_proba(xt), clf.predict_proba(xt), rtol=0, atol=0)


def test_a_file_from_before_recipe_bands_loads_as_one_recipe_and_a_damaged_one_is_refused():
    xs, ys = _waves(16, seed=int(torch.randint(1000, ())))
    clf = SeriesClassifier(_cfg(models="gru-fcn", shuffle="on", epochs=2, cv_folds=2,
                                ensemble=2)).fit(xs, ys)
    blob = clf.state()
    old = {**blob, "config": {k: v for k, v in blob["config"].items() if k != "combine"},
           "recipe": {k: clf.recipe[k] for k in ("model", "shuffle", "epochs", "cv_accuracy")}}
    loaded = SeriesClassifier.from_state(old)  # version 1: no members, no combine
    assert loaded.members == [("gru-fcn", True, clf.recipe["epochs"])]
    assert loaded.config.combine == "best" and loaded.recipe["members"] == clf.recipe["members"]
    torch.testing.assert_close(loaded.predict_proba(xs), clf.predict_proba(xs), rtol=0, atol=0)
    two = {**blob, "config": {**blob["config"], "ensemble": 2},
           "recipe": {**blob["recipe"], "members": blob["recipe"]["members"] * 2}}
    with pytest.raises(ValueError, match="holds 2 networks for 2 recipe.s. x 2 seed.s.; it is "
                                         "damaged: train the classifier again"):
        SeriesClassifier.from_state(two)
