"""group_metrics against plain-Python hand computations (binary, string labels, multi-class),
fairlearn's own MetricFrame numbers as the reference of the bootstrap's metric code, the
stratified bootstrap's intervals (cover the estimate, narrow with n, match the normal
approximation, seeded), unassigned rows, the error messages and the JSON / Markdown output."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

pytest.importorskip("fairlearn")

from conftest import SEED  # noqa: E402
from rnnkit.audit.fairness import GroupReport, group_metrics  # noqa: E402

# fresh data each session, replayable with RNNKIT_TEST_SEED=N (conftest)
rng = np.random.default_rng(SEED)


def nan_eq(a: float, b: float, tol: float = 1e-12) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


def hand(y_true, y_pred, groups, positive):
    """Per-group and overall metrics in plain Python (NaN where a rate is undefined)."""
    def rates(rows):
        yt = [y_true[i] for i in rows]
        yp = [y_pred[i] for i in rows]
        n = len(rows)
        acc = sum(a == b for a, b in zip(yt, yp)) / n
        neg = [b for a, b in zip(yt, yp) if a != positive]
        pos = [b for a, b in zip(yt, yp) if a == positive]
        return {"accuracy": acc, "error_rate": 1 - acc,
                "selection_rate": sum(b == positive for b in yp) / n,
                "false_positive_rate": (sum(b == positive for b in neg) / len(neg)
                                        if neg else math.nan),
                "false_negative_rate": (sum(b != positive for b in pos) / len(pos)
                                        if pos else math.nan)}

    names = sorted({g for g in groups})
    by = {g: rates([i for i, h in enumerate(groups) if h == g]) for g in names}
    overall = rates(list(range(len(groups))))
    diff = {m: max(by[g][m] for g in names) - min(by[g][m] for g in names) for m in overall}
    ratio = {m: (min(by[g][m] for g in names) / max(by[g][m] for g in names)
                 if max(by[g][m] for g in names) > 0 else math.nan) for m in overall}
    return by, overall, diff, ratio


def test_tiny_fixture_matches_hand_computation():
    #            group a (6 rows)    group b (6 rows)
    y_true = [1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0]
    y_pred = [1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1]
    groups = ["a"] * 6 + ["b"] * 6
    r = group_metrics(y_true, y_pred, groups, n_boot=0)
    # by hand: a: 4/6 right, 3 selected, FP 1 of 3 negatives, FN 1 of 3 positives;
    #          b: 2/6 right, 3 selected, FP 2 of 3 negatives, FN 2 of 3 positives
    assert r.by_group["a"]["accuracy"] == pytest.approx(4 / 6)
    assert r.by_group["b"]["accuracy"] == pytest.approx(2 / 6)
    assert r.by_group["a"]["false_positive_rate"] == pytest.approx(1 / 3)
    assert r.by_group["b"]["false_negative_rate"] == pytest.approx(2 / 3)
    assert r.difference["accuracy"] == pytest.approx(2 / 6)
    assert r.ratio["accuracy"] == pytest.approx(0.5)
    assert r.difference["selection_rate"] == pytest.approx(0.0)
    assert r.ratio["false_positive_rate"] == pytest.approx(0.5)
    by, overall, diff, ratio = hand(y_true, y_pred, groups, 1)
    for m in r.metrics:
        for g in ("a", "b"):
            assert r.by_group[g][m] == pytest.approx(by[g][m])
        assert r.overall[m] == pytest.approx(overall[m])
        assert r.difference[m] == pytest.approx(diff[m])
        assert r.ratio[m] == pytest.approx(ratio[m])
    assert r.counts == {"a": 6, "b": 6} and r.positive == 1 and r.ci is None


@pytest.mark.parametrize("trial", range(3))
def test_random_string_labels_match_hand_computation(trial):
    n = int(rng.integers(12, 40))
    labels = ["approved", "denied"]
    y_true = [labels[i] for i in rng.integers(0, 2, n)]
    y_pred = [labels[i] for i in rng.integers(0, 2, n)]
    groups = [["north", "south", "east"][i] for i in rng.integers(0, 3, n)]
    groups[:3] = ["north", "south", "east"]  # all three present
    r = group_metrics(y_true, y_pred, groups, positive="approved", n_boot=0)
    by, overall, diff, ratio = hand(y_true, y_pred, groups, "approved")
    assert r.groups == sorted(by)
    for m in r.metrics:
        for g in by:
            assert nan_eq(r.by_group[g][m], by[g][m]), (g, m)
        assert nan_eq(r.overall[m], overall[m])
        if not any(math.isnan(by[g][m]) for g in by):
            assert nan_eq(r.difference[m], diff[m]) and nan_eq(r.ratio[m], ratio[m])


def test_multiclass_selection_rates_and_accuracy():
    n = 60
    y_true = rng.integers(0, 3, n).tolist()
    y_pred = rng.integers(0, 3, n).tolist()
    groups = rng.choice(["x", "y"], n).tolist()
    groups[:2] = ["x", "y"]
    r = group_metrics(y_true, y_pred, groups, n_boot=0)
    assert r.positive is None
    assert r.metrics == ["accuracy", "error_rate", "selection_rate[0]", "selection_rate[1]",
                         "selection_rate[2]"]
    for g in ("x", "y"):
        rows = [i for i in range(n) if groups[i] == g]
        for c in range(3):
            want = sum(y_pred[i] == c for i in rows) / len(rows)
            assert r.by_group[g][f"selection_rate[{c}]"] == pytest.approx(want)
        assert r.by_group[g]["accuracy"] == pytest.approx(
            sum(y_true[i] == y_pred[i] for i in rows) / len(rows))


def test_scores_give_per_group_auc_of_sklearn():
    from sklearn.metrics import roc_auc_score

    n = 300
    y_true = rng.integers(0, 2, n)
    scores = np.clip(0.3 * y_true + rng.random(n) * 0.8, 0, 1)
    y_pred = (scores > 0.5).astype(int)
    groups = rng.choice(["a", "b"], n)
    r = group_metrics(y_true, y_pred, groups, scores=scores, n_boot=200, seed=1)
    for g in ("a", "b"):
        rows = groups == g
        assert r.by_group[g]["roc_auc"] == pytest.approx(roc_auc_score(y_true[rows],
                                                                       scores[rows]))
        assert r.by_group[g]["mean_score"] == pytest.approx(scores[rows].mean())
        lo, hi = r.ci[g]["roc_auc"]
        assert lo <= r.by_group[g]["roc_auc"] <= hi


def test_bootstrap_metric_code_agrees_with_metricframe():
    """The bootstrap recomputes metrics in numpy; on the identity resample it must give
    fairlearn's numbers (MetricFrame is the reference)."""
    from fairlearn.metrics import MetricFrame

    from rnnkit.audit.fairness import _replicates

    n = 200
    y_true = rng.integers(0, 2, n)
    y_pred = rng.integers(0, 2, n)
    scores = rng.random(n)
    sens = rng.choice(["a", "b"], n)
    r = group_metrics(y_true, y_pred, sens, scores=scores, n_boot=0)
    ind = {"correct": y_true == y_pred, "selected": y_pred == 1, "positive": y_true == 1,
           "scores": scores}
    for g in ("a", "b"):
        idx = np.flatnonzero(sens == g)[None, :]
        got = _replicates(ind, idx, r.metrics)
        for m in r.metrics:
            assert got[m][0] == pytest.approx(r.by_group[g][m]), (g, m)
    # and the report's numbers are MetricFrame's
    mf = MetricFrame(metrics={"acc": lambda a, b: float(np.mean(a == b))}, y_true=y_true,
                     y_pred=y_pred, sensitive_features=sens)
    assert r.by_group["a"]["accuracy"] == pytest.approx(mf.by_group.loc["a", "acc"])
    assert r.difference["accuracy"] == pytest.approx(mf.difference()["acc"])


def biased_data(n_per_group: int, p_a: float = 0.7, p_b: float = 0.4):
    """Group a selected with rate p_a, group b with p_b; y_pred a noisy copy of y_true."""
    groups = np.array(["a"] * n_per_group + ["b"] * n_per_group)
    p = np.where(groups == "a", p_a, p_b)
    y_true = (rng.random(2 * n_per_group) < p).astype(int)
    y_pred = np.where(rng.random(2 * n_per_group) < 0.85, y_true, 1 - y_true)
    return y_true, y_pred, groups


def test_bootstrap_intervals_cover_narrow_and_are_seeded():
    small = group_metrics(*biased_data(300), n_boot=500, seed=3)
    large = group_metrics(*biased_data(3000), n_boot=500, seed=3)
    for r in (small, large):
        for g in r.groups:
            for m in r.metrics:
                lo, hi = r.ci[g][m]
                assert lo <= r.by_group[g][m] <= hi, (g, m)
        for m in r.metrics:
            lo, hi = r.overall_ci[m]
            assert lo <= r.overall[m] <= hi
        # a planted gap of ~0.2 in selection rate (0.64 vs 0.43): its interval holds the
        # estimate and excludes 0
        lo, hi = r.difference_ci["selection_rate"]
        assert 0 < lo <= r.difference["selection_rate"] <= hi
    for m in small.metrics:
        for g in small.groups:
            assert np.diff(large.ci[g][m]) < np.diff(small.ci[g][m]), (g, m)
    # width against the normal approximation 2 z sqrt(p (1 - p) / n) of a proportion
    p, n = large.by_group["a"]["accuracy"], large.counts["a"]
    assert np.diff(large.ci["a"]["accuracy"])[0] == pytest.approx(
        2 * 1.959964 * math.sqrt(p * (1 - p) / n), rel=0.15)
    data = biased_data(100)
    one, two = group_metrics(*data, n_boot=300, seed=7), group_metrics(*data, n_boot=300, seed=7)
    assert one.to_dict() == two.to_dict()
    other = group_metrics(*data, n_boot=300, seed=8)
    assert other.ci != one.ci and other.by_group == one.by_group


def test_unassigned_rows_are_left_out_and_counted():
    y_true = [1, 0, 1, 0, 1, 1, 0, 0]
    y_pred = [1, 1, 0, 0, 1, 1, 0, 1]
    groups = ["a", "b", None, "", float("nan"), "a", "b", "  "]
    r = group_metrics(y_true, y_pred, groups, n_boot=50)
    assert r.n_unassigned == 4 and r.counts == {"a": 2, "b": 2}
    assert r.by_group["a"]["accuracy"] == pytest.approx(1.0)  # rows 0 and 5
    assert r.by_group["b"]["accuracy"] == pytest.approx(0.5)  # rows 1 and 6
    assert "4 rows without a group" in r.to_markdown()


def test_ints_as_groups_and_undefined_rates():
    # group 2 has no negatives: its false positive rate is undefined (NaN), not 0
    r = group_metrics([0, 1, 1, 1], [1, 1, 0, 1], [1, 1, 2, 2], n_boot=20)
    assert r.groups == ["1", "2"]
    assert math.isnan(r.by_group["2"]["false_positive_rate"])
    assert r.by_group["1"]["false_positive_rate"] == 1.0
    json.dumps(r.to_dict(), allow_nan=False)


def test_report_serialises_and_renders():
    r = group_metrics(*biased_data(50), n_boot=100)
    assert isinstance(r, GroupReport)
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["groups"] == ["a", "b"] and d["counts"] == {"a": 50, "b": 50}
    assert len(d["ci"]["a"]["accuracy"]) == 2
    md = r.to_markdown()
    assert "| selection_rate |" in md and "a (n=50)" in md and "difference" in md


@pytest.mark.parametrize("kwargs, match", [
    ({"y_true": [1, 0], "y_pred": [1], "groups": ["a", "b"]}, "one entry per row"),
    ({"y_true": [], "y_pred": [], "groups": []}, "no rows"),
    ({"y_true": [1, 0, 1], "y_pred": [1, 0, 0], "groups": ["a", "a", None]}, "only one group"),
    ({"y_true": [1, 0], "y_pred": [1, 0], "groups": [None, ""]}, "none of the 2 rows"),
    ({"y_true": ["yes", "no"], "y_pred": ["no", "no"], "groups": ["a", "b"]}, "positive="),
    ({"y_true": ["yes", "no"], "y_pred": ["no", "no"], "groups": ["a", "b"],
      "positive": "maybe"}, "not one of the labels"),
    ({"y_true": [1, 0], "y_pred": ["1", "0"], "groups": ["a", "b"]}, "mix label types"),
    ({"y_true": [1, 0], "y_pred": [1, 0], "groups": ["a", "b"], "scores": [0.1]},
     "one entry per row"),
])
def test_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        group_metrics(n_boot=0, **kwargs)


def test_missing_fairlearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "fairlearn.metrics", None)
    with pytest.raises(ImportError, match=r"pip install 'rnnkit\[audit\]'"):
        group_metrics([1, 0], [1, 0], ["a", "b"])


def test_two_group_difference_interval_holds_zero_without_a_gap_and_not_with_one():
    rng = np.random.default_rng()
    y = rng.integers(0, 2, 300)
    p = np.where(rng.random(300) < 0.8, y, 1 - y)
    same = group_metrics(np.r_[y, y], np.r_[p, p], ["a"] * 300 + ["b"] * 300, n_boot=400,
                         seed=int(rng.integers(1000)))
    for m in ("accuracy", "selection_rate"):
        lo, hi = same.difference_ci[m]
        assert same.difference[m] == 0 and lo < 0 < hi
    worse = np.where(rng.random(300) < 0.5, y, 1 - y)  # group b: a coin flip
    gap = group_metrics(np.r_[y, y], np.r_[p, worse], ["a"] * 300 + ["b"] * 300, n_boot=400)
    lo, hi = gap.difference_ci["accuracy"]
    assert 0 < lo <= gap.difference["accuracy"] <= hi
