"""Data audits (rnnkit.audit.data): counts against hand and brute-force counts, Wilson
intervals against the quadratic they solve, planted label skews, series coverage against
pandas groupby, and bad input."""

from __future__ import annotations

import importlib.util
import json
import math
import random
import re
import statistics
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from rnnkit.audit import data as audit_data
from rnnkit.audit.data import (
    audit_series,
    audit_text,
    load_vader_lexicon,
    wilson_interval,
)
from rnnkit.audit.terms import GENDER, NAMES_RACE, RELIGION

HAS_VADER = importlib.util.find_spec("vaderSentiment") is not None


def words(text: str) -> list[str]:
    """A plain tokeniser for the brute-force counts: ASCII letter/digit runs, hyphen-joined."""
    return re.findall(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*", text)


# --- Wilson ----------------------------------------------------------------------------------

@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 10), (8, 10), (3, 7), (50, 100),
                                 (567, 1321), (999, 1000)])
def test_wilson_interval_solves_the_score_quadratic(k, n):
    # the Wilson bounds are the p with |phat - p| = z sqrt(p (1 - p) / n):
    # (1 + z²/n) p² - (2 phat + z²/n) p + phat² = 0
    z = NormalDist().inv_cdf(0.975)
    phat = k / n
    a, b, c = 1 + z * z / n, -(2 * phat + z * z / n), phat * phat
    root = math.sqrt(b * b - 4 * a * c)
    lo, hi = (-b - root) / (2 * a), (-b + root) / (2 * a)
    got = wilson_interval(k, n, alpha=0.05)
    assert got == pytest.approx((lo, hi), abs=1e-12)
    assert 0 <= got[0] <= phat <= got[1] <= 1


def test_wilson_interval_known_value_and_errors():
    lo, hi = wilson_interval(8, 10)  # the textbook example: 0.490 .. 0.943
    assert (round(lo, 3), round(hi, 3)) == (0.490, 0.943)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))  # no trials: no interval
    for k, n in [(-1, 5), (6, 5)]:
        with pytest.raises(ValueError):
            wilson_interval(k, n)


# --- audit_text: hand counts -----------------------------------------------------------------

FIXTURE = [
    "He said his film was good .",            # male; 6 tokens (punctuation is no token)
    "she liked her mother's film",            # female; 6 tokens (mother, s)
    "He and she argued ; bad",                # both; 5 tokens
    "a film about nothing",                   # none; 4 tokens
    "Heather's shell manager",                # no gender word (heather: a WEAT name); 4 tokens
    "THE KING AND HIS SON , GOOD AND GOOD",   # male; 8 tokens
]
LABELS = [1, 0, 0, 1, 1, 1]
LEXICON = {"good": 2.0, "liked": 1.0, "bad": -2.5, "nothing": -0.5, "argued": -1.0}


def test_audit_text_hand_counts():
    a = audit_text(FIXTURE, LABELS, lists=[GENDER, NAMES_RACE], lexicon=LEXICON, top=3)
    assert a.n_texts == 6 and a.n_tokens == 6 + 6 + 5 + 4 + 4 + 8
    assert a.label_counts == [{"label": 0, "count": 2, "share": 2 / 6},
                              {"label": 1, "count": 4, "share": 4 / 6}]
    male, female, both = (a.group("gender", g) for g in ("male", "female", "both"))
    assert (male.texts, female.texts, both.texts) == (3, 2, 1)
    assert male.per_1000 == pytest.approx(500.0)
    assert male.mentions == 2 + 1 + 3  # he his | he | king his son
    assert male.top_terms == [("he", 2), ("his", 2), ("king", 1)]
    assert female.top_terms == [("she", 2), ("her", 1), ("mother", 1)]
    assert both.top_terms == [("he", 1), ("she", 1)]
    # lengths of the male texts: 6, 5, 8
    assert male.length["mean"] == pytest.approx(19 / 3)
    assert male.length["median"] == 6
    assert male.length["p10"] == pytest.approx(5 + 0.2 * (6 - 5))  # numpy's linear rule
    # labels of the male texts: 1, 0, 1
    r0, r1 = male.labels
    assert (r0.label, r0.count, r0.n, r1.label, r1.count) == (0, 1, 3, 1, 2)
    assert (r1.low, r1.high) == wilson_interval(2, 3)
    assert r1.ratio == pytest.approx((2 / 3) / (4 / 6))
    # sentiment: positive words (>= 1) good, liked; negative (<= -1) bad, argued
    assert a.positive_share == pytest.approx(4 / 33)  # good, liked, GOOD, GOOD
    assert a.negative_share == pytest.approx(2 / 33)  # argued, bad ("nothing": -0.5, neither)
    assert male.positive_share == pytest.approx(3 / 19)
    assert male.negative_share == pytest.approx(2 / 19)
    assert male.positive_ratio == pytest.approx((3 / 19) / (4 / 33))
    assert female.positive_share == pytest.approx(1 / 11)
    ea = a.group("names_race", "european_american")
    assert (ea.texts, ea.top_terms) == (1, [("Heather", 1)])
    assert a.group("names_race", "african_american").texts == 0
    assert a.group("names_race", "african_american").labels == []
    assert [m["texts_any"] for m in a.lists] == [4, 1]


def test_audit_text_matches_brute_force_on_random_texts():
    rng = random.Random(7)
    vocab = (sorted(GENDER.vocabulary) + sorted(RELIGION.vocabulary)
             + ["film", "the", "heather", "shell", "manager", ".", ",", "it's", "x-men"] * 8)
    texts = [" ".join(rng.choice([w, w.upper(), w.capitalize()])
                      for w in rng.choices(vocab, k=rng.randint(1, 20))) for _ in range(300)]
    labels = [rng.choice("ab") for _ in texts]
    a = audit_text(texts, labels, lists=[GENDER, RELIGION], lexicon=None)
    for tl in (GENDER, RELIGION):
        per_text = [{tl.vocabulary[w.lower()] for w in words(t) if w.lower() in tl.vocabulary}
                    for t in texts]
        for g in tl.groups:
            idx = [i for i, gs in enumerate(per_text) if g in gs]
            stats = a.group(tl.name, g)
            assert stats.texts == len(idx)
            assert stats.mentions == sum(tl.vocabulary.get(w.lower()) == g
                                         for i in idx for w in words(texts[i]))
            if idx:
                lengths = [len(words(texts[i])) for i in idx]
                assert stats.length["mean"] == pytest.approx(statistics.mean(lengths))
                assert stats.length["median"] == pytest.approx(statistics.median(lengths))
                n_a = sum(labels[i] == "a" for i in idx)
                assert stats.labels[0].count == n_a
                assert stats.labels[0].overall == labels.count("a") / len(texts)
        both = [i for i, gs in enumerate(per_text) if len(gs) >= 2]
        assert a.group(tl.name, "both").texts == len(both)
    assert a.n_tokens == sum(len(words(t)) for t in texts)


def test_planted_label_skew_is_flagged_and_balanced_group_is_not():
    rng = random.Random(3)
    texts, labels = [], []
    for i in range(60):  # "she" texts are always label 1
        texts.append(f"she made film number {i}")
        labels.append(1)
    for i in range(60):  # "he" texts: half and half
        texts.append(f"he made film number {i}")
        labels.append(i % 2)
    for i in range(300):  # the rest: balanced overall
        texts.append(f"a film about {rng.choice(['cats', 'dogs', 'trains'])}")
        labels.append(0 if i < 180 else 1)
    a = audit_text(texts, labels, lists=GENDER, lexicon=None)
    overall1 = labels.count(1) / len(labels)
    female = a.group("gender", "female")
    assert female.labels[1].rate == 1.0 and female.labels[1].flagged
    assert female.labels[0].flagged
    assert female.labels[1].low > overall1
    male = a.group("gender", "male")
    assert not any(r.flagged for r in male.labels)
    assert {(lst, g) for lst, g, _ in a.flagged()} == {("gender", "female")}
    md = a.to_markdown()
    assert "gender/female" in md and "gender/male" not in md


def test_results_are_json_and_markdown():
    a = audit_text(pd.Series(FIXTURE), np.array(LABELS), lists=[GENDER], lexicon=LEXICON)
    d = json.loads(json.dumps(a.to_dict()))
    assert d["n_texts"] == 6 and d["label_counts"][1]["label"] == 1
    assert {g["group"] for g in d["groups"]} == {"male", "female", "both"}
    md = a.to_markdown()
    assert md.startswith("# Data audit: 6 texts") and "## gender: male / female" in md
    no_labels = audit_text(FIXTURE, lexicon=None)
    assert no_labels.label_counts == [] and all(g.labels == [] for g in no_labels.groups)
    assert "No labels given" in no_labels.to_markdown()


@pytest.mark.skipif(not HAS_VADER, reason="vaderSentiment not installed")
def test_vader_lexicon_thresholds():
    lex = load_vader_lexicon()
    assert lex["good"] == pytest.approx(1.9) and lex["bad"] == pytest.approx(-2.5)
    a = audit_text(["good bad okay"], lexicon="vader")
    # good (1.9) positive, bad (-2.5) negative, okay (0.9) neither: |score| < 1
    assert lex["okay"] < 1
    assert a.positive_share == pytest.approx(1 / 3) and a.negative_share == pytest.approx(1 / 3)


def test_missing_vader_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "vaderSentiment" else real(name, *a))
    audit_data.load_vader_lexicon.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"rnnkit\[audit\]"):
            audit_text(["he is good"])
        assert audit_text(["he is good"], lexicon=None).lexicon is None
    finally:
        audit_data.load_vader_lexicon.cache_clear()


def test_bad_text_input():
    with pytest.raises(ValueError, match="empty"):
        audit_text([])
    with pytest.raises(ValueError, match="single str"):
        audit_text("he is here")
    with pytest.raises(ValueError, match=r"texts\[1\] is NoneType"):
        audit_text(["ok", None], lexicon=None)
    with pytest.raises(ValueError, match=r"fillna"):
        audit_text(pd.Series(["ok", float("nan")]), lexicon=None)
    with pytest.raises(ValueError, match="labels has 1 entries but texts has 2"):
        audit_text(["a", "b"], [1], lexicon=None)
    with pytest.raises(ValueError, match=r"labels\[0\] is missing"):
        audit_text(["a"], [None], lexicon=None)
    with pytest.raises(ValueError, match="unknown lexicon"):
        audit_text(["a"], lexicon="afinn")


def test_rt_polarity_his_count(shared_data):
    from rnnkit.data.sentiment import load_rt_polarity

    texts, labels = load_rt_polarity(str(shared_data))
    a = audit_text(texts, labels, lists=[GENDER], lexicon=None)
    # rt-polarity is space-tokenised and lower-cased: count "his" by plain splitting; two
    # "[t]his" (an edited quote) hold the word "his" too, as the audit tokenises them
    his = sum(t.replace("[", " ").replace("]", " ").split().count("his") for t in texts)
    assert dict(a.group("gender", "male").top_terms)["his"] == his
    assert a.n_texts == len(texts) == 10662


# --- audit_series ----------------------------------------------------------------------------

def random_series(seed: int, n: int = 1200) -> tuple[pd.Series, np.ndarray]:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2019-11-03 06:00", periods=n, freq="17h")
    v = rng.normal(size=n)
    v[rng.random(n) < 0.1] = np.nan
    v[300:400] = np.nan  # a gap
    pred = v + rng.normal(0.2, 1.0, size=n)
    pred[rng.random(n) < 0.05] = np.nan
    return pd.Series(v, index=idx), pred


@pytest.mark.parametrize("segments", ["year", "month", "weekday"])
def test_series_coverage_equals_pandas_groupby(segments):
    s, pred = random_series(0)
    a = audit_series(s, segments=segments, predictions=pred)
    key = {"year": s.index.year, "month": s.index.strftime("%Y-%m"),
           "weekday": s.index.day_name()}[segments]
    df = pd.DataFrame({"v": s.values, "err": pred - s.values, "t": s.index}, index=s.index)
    g = df.groupby(np.asarray(key))
    want = pd.DataFrame({"count": g.size(), "missing": g["v"].apply(lambda x: x.isna().sum()),
                         "first": g["t"].min(), "last": g["t"].max(),
                         "mae": g["err"].apply(lambda e: e.abs().mean()),
                         "bias": g["err"].mean()})
    got = {seg.segment: seg for seg in a.segments}
    assert set(got) == set(want.index)
    for k, row in want.iterrows():
        seg = got[k]
        assert (seg.count, seg.missing) == (row["count"], row["missing"])
        assert seg.missing_share == pytest.approx(row["missing"] / row["count"])
        assert (seg.first, seg.last) == (row["first"], row["last"])
        if np.isnan(row["mae"]):  # no point with both value and prediction (the gap)
            assert seg.mae is None and seg.bias is None and seg.n_scored == 0
        else:
            assert seg.mae == pytest.approx(row["mae"])
            assert seg.bias == pytest.approx(row["bias"])
    assert a.n == len(s) and a.n_missing == int(s.isna().sum())
    assert a.mae == pytest.approx(np.nanmean(np.abs(pred - s.values)))
    if segments == "weekday":
        assert [x.segment for x in a.segments] == ["Monday", "Tuesday", "Wednesday", "Thursday",
                                                   "Friday", "Saturday", "Sunday"]
    else:
        assert [x.segment for x in a.segments] == sorted(want.index)
    json.dumps(a.to_dict())
    assert a.to_markdown().count("\n|") == len(a.segments) + 2


def test_series_arrays_callables_and_missing_timestamps():
    idx = pd.to_datetime(["2020-01-01", None, "2020-03-01", "2021-01-01"])
    a = audit_series(np.array([1.0, 2.0, np.nan, 4.0]), index=idx, segments="year")
    assert [(x.segment, x.count, x.missing) for x in a.segments] == [(2020, 2, 1), (2021, 1, 0)]
    assert a.n_unsegmented == 1
    b = audit_series([1.0, np.nan, 3.0, 4.0, 5.0], segments=lambda i: "even" if i % 2 == 0
                     else "odd")
    assert [(x.segment, x.count, x.missing) for x in b.segments] == [("even", 3, 0),
                                                                    ("odd", 2, 1)]
    assert (b.segments[0].first, b.segments[0].last) == (0, 4)


def test_bad_series_input():
    with pytest.raises(ValueError, match="empty"):
        audit_series([])
    with pytest.raises(ValueError, match="needs timestamps"):
        audit_series([1.0, 2.0])
    with pytest.raises(ValueError, match="numbers"):
        audit_series(pd.Series([1.0, 2.0]), segments="month")
    with pytest.raises(ValueError, match="index has 1 entries"):
        audit_series([1.0, 2.0], index=pd.to_datetime(["2020-01-01"]))
    with pytest.raises(ValueError, match="predictions has 1"):
        audit_series(pd.Series([1.0, 2.0], index=pd.date_range("2020", periods=2)),
                     predictions=[1.0])
    with pytest.raises(ValueError, match="must be numbers"):
        audit_series(["a", "b"], segments=str)
    with pytest.raises(ValueError, match="segments must be"):
        audit_series(pd.Series([1.0], index=pd.date_range("2020", periods=1)),
                     segments="hour")
