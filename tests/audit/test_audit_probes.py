"""Counterfactual probes, text robustness scans and series robustness, against references:
the Wilson interval of statsmodels, flip rates counted by hand on keyword models, a real
rnnkit text classifier trained on a planted name bias (and on balanced data), a case-sensitive
model that ``lowercase`` must catch and ``whitespace`` must not, exact interpolation of linear
series, and the closed-form relative change of a level shift."""

from __future__ import annotations

import json
import math
import re
import time

import numpy as np
import pytest
import torch

from conftest import SEED
from rnnkit.audit.probes import (
    SERIES_PERTURBATIONS,
    TEXT_PERTURBATIONS,
    ProbeReport,
    RobustnessReport,
    bootstrap_mean_ci,
    counterfactual_probe,
    level_shift,
    missing_interpolated,
    numbers,
    robustness_scan,
    series_robustness,
    typo,
    wilson_interval,
)

# fresh data each session, replayable with RNNKIT_TEST_SEED=N (conftest)
rng = np.random.default_rng(SEED)

WORDS = ["the", "film", "was", "great", "boring", "Actors", "plot", "London", "Really", "ending",
         "music", "I", "liked", "it", "3", "twelve", "1,000", "2500", "!", ",", "."]


def random_texts(n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS, int(rng.integers(1, 9)))) for _ in range(n)]


# ----------------------------------------------------------------------------- statistics

def test_wilson_interval_matches_statsmodels():
    sm = pytest.importorskip("statsmodels.stats.proportion")
    for _ in range(20):
        n = int(rng.integers(1, 500))
        k = int(rng.integers(0, n + 1))
        alpha = float(rng.choice([0.05, 0.1, 0.01]))
        want = sm.proportion_confint(k, n, alpha=alpha, method="wilson")
        assert wilson_interval(k, n, alpha) == pytest.approx(want, abs=1e-9)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_bootstrap_mean_ci_covers_narrows_and_is_seeded():
    small, large = rng.normal(size=50), rng.normal(size=5000)
    ci_s, ci_l = bootstrap_mean_ci(small, 500, 1), bootstrap_mean_ci(large, 500, 1)
    assert ci_s[0] <= small.mean() <= ci_s[1] and ci_l[0] <= large.mean() <= ci_l[1]
    assert ci_l[1] - ci_l[0] < ci_s[1] - ci_s[0]
    # the width of a mean's 95 % interval is about 2 * 1.96 * sd / sqrt(n)
    assert ci_l[1] - ci_l[0] == pytest.approx(2 * 1.96 * large.std() / math.sqrt(5000), rel=0.15)
    assert np.array_equal(bootstrap_mean_ci(small, 200, 5), bootstrap_mean_ci(small, 200, 5))
    cols = bootstrap_mean_ci(np.stack([small, 2 * small], 1), 200, 5)
    assert cols.shape == (2, 2) and cols[1] == pytest.approx(2 * cols[0])


# ----------------------------------------------------------------------------- counterfactuals

def keyword_model(texts):
    """p(class 1) = 0.9 with "good", 0.6 with "fine", else 0.2 (a plain numpy model)."""
    p1 = np.array([0.9 if "good" in t else 0.6 if "fine" in t else 0.2 for t in texts])
    return np.stack([1 - p1, p1], 1)


def test_counterfactual_probe_counts_flips_and_shifts_like_by_hand():
    texts = [" ".join(rng.choice(["a", "good", "fine", "film", "plot"], 4)) for _ in range(200)]

    def transform(t):  # good -> fine, fine -> bad; texts with neither are not applicable
        new = t.replace("good", "FINE").replace("fine", "bad").replace("FINE", "fine")
        return new if new != t else None

    calls = []

    def model(batch):
        calls.append(len(batch))
        return torch.as_tensor(keyword_model(batch))  # torch output is accepted too

    r = counterfactual_probe(model, texts, transform, labels=["neg", "pos"], n_boot=300,
                             seed=2, worst=3, batch_size=64)
    pairs = [(t, transform(t)) for t in texts if transform(t) is not None]
    p0 = keyword_model([a for a, _ in pairs])
    p1 = keyword_model([b for _, b in pairs])
    flips = p0.argmax(1) != p1.argmax(1)
    k = p0.argmax(1)
    shift = p1[np.arange(len(pairs)), k] - p0[np.arange(len(pairs)), k]
    assert (r.n_total, r.n_applicable, r.n_flipped) == (200, len(pairs), int(flips.sum()))
    assert r.flip_rate == pytest.approx(flips.mean())
    assert r.flip_ci_wilson == pytest.approx(wilson_interval(int(flips.sum()), len(pairs)))
    lo, hi = r.flip_ci_bootstrap
    assert lo <= r.flip_rate <= hi
    assert r.shifts["predicted_class"]["mean"] == pytest.approx(shift.mean())
    assert r.shifts["predicted_class"]["mean_abs"] == pytest.approx(np.abs(shift).mean())
    assert r.shifts["class_1"]["mean"] == pytest.approx((p1[:, 1] - p0[:, 1]).mean())
    assert max(calls) <= 64 and sum(calls) == 2 * len(pairs)
    assert len(r.worst) == 3
    assert [abs(w["shift"]) for w in r.worst] == sorted(np.abs(shift), reverse=True)[:3]
    assert {w["prediction"] for w in r.worst} <= {"neg", "pos"}
    json.dumps(r.to_dict(), allow_nan=False)
    assert "Counterfactual probe" in r.to_markdown()


def test_counterfactual_probe_with_nothing_applicable():
    r = counterfactual_probe(keyword_model, ["a film"], lambda t: None)
    assert isinstance(r, ProbeReport) and r.n_applicable == 0 and math.isnan(r.flip_rate)
    assert json.loads(json.dumps(r.to_dict(), allow_nan=False))["flip_rate"] is None
    assert "none of the 1 texts" in r.to_markdown()


def test_counterfactual_probe_rejects_bad_model_output():
    with pytest.raises(ValueError, match=r"shape \[N, C\]"):
        counterfactual_probe(lambda b: np.zeros(len(b)), ["good"], lambda t: "bad")


# ----------------------------------------------------------------------------- planted bias

MALE = ["james", "john", "robert", "michael", "david", "william"]
FEMALE = ["mary", "linda", "susan", "sarah", "karen", "emma"]
SWAP = {**dict(zip(MALE, FEMALE)), **dict(zip(FEMALE, MALE))}


def swap_names(text: str) -> str | None:
    """The counterfactual: every first name replaced by its partner of the other gender."""
    tokens = text.split(" ")
    new = [SWAP.get(t, t) for t in tokens]
    return " ".join(new) if new != tokens else None


def sentences(n: int, planted: bool) -> tuple[list[str], list[str]]:
    """``"<name> <verb> <mood> at the <place> ."``; planted: the name's gender decides the label
    (the mood is filler); balanced: the mood decides it and names are drawn independently."""
    texts, labels = [], []
    for _ in range(n):
        male = rng.random() < 0.5
        name = rng.choice(MALE if male else FEMALE)
        if planted:
            label, mood = ("1" if male else "0"), rng.choice(["happy", "sad"])
        else:
            label = "1" if rng.random() < 0.5 else "0"
            mood = "happy" if label == "1" else "sad"
        texts.append(f"{name} {rng.choice(['was', 'stayed', 'worked'])} {mood} at the "
                     f"{rng.choice(['office', 'station', 'market', 'library', 'park'])} .")
        labels.append(label)
    return texts, labels


def train(planted: bool):
    from rnnkit.text.classifier import ClassifierConfig, train_text_classifier
    from rnnkit.train import TrainConfig

    texts, labels = sentences(400, planted)
    config = ClassifierConfig(vocab_size=1, embed_size=16, hidden_size=16, bidirectional=False,
                              pooling="max", dropout=0.0)
    train_config = TrainConfig(epochs=4, lr=1e-2, progress=False, plot=False, out_dir=None,
                               device="cpu", seed=SEED % 10_000)
    clf, metrics = train_text_classifier(texts, labels, config, train_config, batch_size=32,
                                         seed=SEED % 10_000)
    assert metrics["accuracy"] > 0.95  # both tasks are learnable; the probe asks which cue
    return clf


def test_planted_name_bias_is_found_and_balanced_model_passes():
    """Measured (seeds 1-5 and 6 session seeds, 4 epochs, 300 probe texts): planted flip rate
    1.0 (Wilson [0.987, 1], mean |shift| 0.99), balanced 0.0 (Wilson [0, 0.013], mean |shift|
    <= 0.004); the thresholds below (> 0.5, < 0.1) leave wide margins."""
    start = time.perf_counter()
    biased = train(planted=True)
    probe_texts, _ = sentences(300, planted=True)
    r = counterfactual_probe(biased.predict_proba, probe_texts, swap_names,
                             labels=biased.classes, n_boot=500, seed=SEED)
    assert r.n_applicable == 300
    assert r.flip_rate > 0.5 and r.flip_ci_wilson[0] > 0.5
    assert r.shifts["predicted_class"]["mean"] < -0.3  # the predicted class loses probability
    assert r.worst and all(w["prediction"] != w["counterfactual_prediction"] for w in r.worst)

    fair = train(planted=False)
    probe_texts, _ = sentences(300, planted=False)
    r = counterfactual_probe(fair.predict_proba, probe_texts, swap_names, n_boot=500, seed=SEED)
    assert r.n_applicable == 300
    assert r.flip_ci_wilson[1] < 0.1
    assert r.shifts["predicted_class"]["mean_abs"] < 0.1
    assert time.perf_counter() - start < 60  # ~5 s on one thread


# ----------------------------------------------------------------------------- text robustness

def case_model(texts):
    """Says class 1 exactly when the text has an upper-case letter."""
    return np.array([[0.1, 0.9] if any(c.isupper() for c in t) else [0.9, 0.1] for t in texts])


def test_case_sensitive_model_is_caught_by_lowercase_not_whitespace():
    texts = random_texts(150)
    r = robustness_scan(case_model, texts, seed=SEED, n_boot=200)
    assert isinstance(r, RobustnessReport) and list(r.results) == list(TEXT_PERTURBATIONS)
    cased = sum(t != t.lower() for t in texts)
    low = r.results["lowercase"]
    assert low.n_applicable == cased and low.n_changed == cased and low.changed_rate == 1.0
    assert low.changed_ci == pytest.approx(wilson_interval(cased, cased))
    ws = r.results["whitespace"]
    assert ws.n_applicable == len(texts) and ws.n_changed == 0
    assert ws.changed_ci[1] < 0.05
    # upper case breaks the texts without capitals (the ones with letters)
    up = r.results["uppercase"]
    assert up.n_changed == sum(t == t.lower() and t != t.upper() for t in texts)
    for e in low.examples:
        assert e["perturbed"] == e["text"].lower() and e["prediction"] != e[
            "perturbed_prediction"]
    json.dumps(r.to_dict(), allow_nan=False)
    md = r.to_markdown()
    assert "| lowercase |" in md and "### lowercase" in md


def test_scan_is_seeded_and_takes_custom_perturbations():
    texts = random_texts(60)

    def shout(text, rng):
        return text + "!!!"

    perts = {**TEXT_PERTURBATIONS, "shout": shout}
    one = robustness_scan(keyword_model, texts, perts, seed=4, n_boot=100)
    two = robustness_scan(keyword_model, texts, perts, seed=4, n_boot=100)
    assert one.to_dict() == two.to_dict()
    assert one.results["shout"].n_applicable == 60
    # adding a perturbation does not change the others' edits (own generator per name)
    base = robustness_scan(keyword_model, texts, seed=4, n_boot=100)
    assert base.results["typo"] == one.results["typo"]


@pytest.mark.parametrize("name", list(TEXT_PERTURBATIONS))
def test_each_perturbation_changes_the_text_or_declines_and_is_seeded(name):
    f = TEXT_PERTURBATIONS[name]
    texts = random_texts(80) + ["", "   ", "ok"]
    for t in texts:
        a = f(t, np.random.default_rng(11))
        b = f(t, np.random.default_rng(11))
        assert a == b
        assert a is None or (isinstance(a, str) and a != t), (name, t, a)


def test_typo_is_one_swap_or_one_deletion_in_a_long_word():
    for t in random_texts(100):
        new = typo(t, rng)
        if not re.search(r"[A-Za-z]{4,}", t):
            assert new is None
            continue
        if len(new) == len(t) - 1:  # one deletion
            assert any(t[:i] + t[i + 1:] == new for i in range(len(t)))
        else:  # one swap of two adjacent, different characters
            diff = [i for i in range(len(t)) if t[i] != new[i]]
            assert len(diff) == 2 and diff[1] == diff[0] + 1
            assert t[diff[0]] == new[diff[1]] and t[diff[1]] == new[diff[0]]
    assert typo("a bb cat", rng) is None


@pytest.mark.parametrize("text, other", [
    ("i have 3 cats and 12 dogs", "i have three cats and twelve dogs"),
    ("it cost 1,000 dollars", "it cost 1000 dollars"),
    ("we sold 2500 units in 20 days", "we sold 2,500 units in twenty days"),
    ("zero of 1,234,567 people", "0 of 1234567 people"),
    ("pi is 3.14, not 21 or twenty-one", "pi is 3.14, not 21 or twenty-one"),
])
def test_numbers_round_trip(text, other):
    rng0 = np.random.default_rng(0)
    if other == text:
        assert numbers(text, rng0) is None
        return
    assert numbers(text, rng0) == other
    assert numbers(other, rng0) == text


def test_numbers_round_trip_on_random_texts():
    for t in random_texts(100):
        t = t.lower()
        new = numbers(t, rng)
        if new is not None:
            assert numbers(new, rng) == t


# ----------------------------------------------------------------------------- series

def windows(n: int = 400, t: int = 40, f: int = 2) -> np.ndarray:
    return rng.normal(size=(n, t, f))


def test_linear_model_changes_like_the_noise_level():
    x = windows()
    a = rng.normal(size=(x.shape[1] * x.shape[2], 30))

    def linear(batch):  # a 30-step forecast, linear in the window
        return batch.reshape(len(batch), -1) @ a

    # noise of 1 % of the std: ||A e|| / ||A x|| ~ 0.01 (a ratio of two chi_30 norms)
    r = series_robustness(linear, x, seed=SEED, n_boot=200, tolerance=0.1)
    assert r.kind == "series-regression" and r.tolerance == 0.1
    noise = r.results["noise"]
    assert noise.mean_change == pytest.approx(0.01, rel=0.2)
    assert noise.n_changed == 0
    lo, hi = noise.mean_change_ci
    assert lo <= noise.mean_change <= hi
    # a level shift of 1 % of each window's std: closed form for the identity model
    ident = series_robustness(lambda b: b, x, seed=SEED, n_boot=0)
    want = (np.linalg.norm(0.01 * np.broadcast_to(x.std(1, keepdims=True), x.shape)
                           .reshape(len(x), -1), axis=1)
            / np.linalg.norm(x.reshape(len(x), -1), axis=1))
    assert ident.results["level_shift"].mean_change == pytest.approx(want.mean(), rel=1e-6)
    json.dumps(r.to_dict(), allow_nan=False)
    assert "| noise |" in r.to_markdown()


def planted_threshold_windows():
    """Windows whose feature-0 mean is positive or clearly negative, plus planted ones just
    below 0 (by 0.1 % of the std), which a +1 % level shift pushes over."""
    x = windows(300, 30, 1)
    x -= x.mean(1, keepdims=True)
    x += rng.choice([-1.0, 1.0], size=(300, 1, 1)) * 0.5
    planted = rng.choice(300, 12, replace=False)
    x[planted] -= 0.001 * x[planted].std(1, keepdims=True) + 0.5 * np.sign(
        x[planted].mean(1, keepdims=True))
    return x, set(planted.tolist())


def test_thresholding_regressor_is_flagged():
    x, planted = planted_threshold_windows()

    def step(batch):  # 1 or 2: a score that jumps when the mean crosses 0
        return 1.0 + (batch[:, :, 0].mean(1) > 0)

    r = series_robustness(step, x, seed=SEED, n_boot=100, tolerance=0.05, worst=12)
    shift = r.results["level_shift"]
    assert shift.n_changed == len(planted)
    assert {e["index"] for e in shift.examples} == planted
    assert all(e["change"] > 0.05 for e in shift.examples)


def test_thresholding_classifier_is_flagged_with_labels_and_probabilities():
    x, planted = planted_threshold_windows()

    def labels(batch):
        return (batch[:, :, 0].mean(1) > 0).astype(np.int64)

    def probs(batch):
        p = 0.5 * (1 + np.tanh(1e4 * batch[:, :, 0].mean(1)))  # a steep sigmoid
        return np.stack([1 - p, p], 1)

    for predict in (labels, probs):
        r = series_robustness(predict, x, seed=SEED, n_boot=100, worst=20)
        assert r.kind == "series-classification" and r.tolerance is None
        shift = r.results["level_shift"]
        assert shift.n_changed == len(planted)
        assert {e["index"] for e in shift.examples} == planted
        assert shift.changed_ci == pytest.approx(wilson_interval(len(planted), len(x)))
        json.dumps(r.to_dict(), allow_nan=False)


def test_missing_values_are_linear_interpolation():
    n, t, f = 20, 25, 3
    time_axis = np.arange(t)[None, :, None]
    lines = rng.normal(size=(n, 1, f)) + rng.normal(size=(n, 1, f)) * time_axis
    # a straight line is its own linear interpolation
    assert missing_interpolated(lines, np.random.default_rng(0)) == pytest.approx(lines)
    x = windows(n, t, f)
    y = missing_interpolated(x, np.random.default_rng(0), fraction=0.1)
    for i in range(n):
        gone = np.flatnonzero((y[i] != x[i]).any(1))
        assert len(gone) <= round(0.1 * t) and 0 not in gone and t - 1 not in gone
        keep = np.setdiff1d(np.arange(t), gone)
        for j in range(f):
            assert y[i, gone, j] == pytest.approx(np.interp(gone, keep, x[i, keep, j]))
    assert missing_interpolated(x[:, :2], np.random.default_rng(0)) is None


def test_series_perturbations_are_seeded_and_torch_windows_work():
    x = windows(30, 20, 2)
    for name, f in SERIES_PERTURBATIONS.items():
        a, b = f(x.copy(), np.random.default_rng(3)), f(x.copy(), np.random.default_rng(3))
        assert np.array_equal(a, b), name
        assert not np.array_equal(a, x), name
    assert level_shift(x, None) == pytest.approx(x + 0.01 * x.std(1, keepdims=True))
    seen = []

    def model(batch):
        seen.append(type(batch))
        return batch.mean(dim=(1, 2))

    r = series_robustness(model, torch.as_tensor(x, dtype=torch.float32), n_boot=0,
                          batch_size=8)
    assert set(seen) == {torch.Tensor} and r.n_total == 30


def test_series_errors():
    with pytest.raises(ValueError, match=r"\[N, T, F\]"):
        series_robustness(lambda b: b, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="NaN"):
        series_robustness(lambda b: b, np.full((2, 5, 1), np.nan))
    with pytest.raises(ValueError, match="one output per window"):
        series_robustness(lambda b: b[:1], np.ones((3, 5, 1)))
