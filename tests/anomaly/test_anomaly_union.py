"""AnomalyUnion: its flags and scores against its members run on their own (OR of the flags,
max of threshold-scaled scores), streaming against the members' own streams, save / load, and
a spike that only the one-step member can see."""

import numpy as np
import pytest

pytest.importorskip("pandas")

from conftest import SEED  # noqa: E402
from rnnkit.anomaly import AnomalyConfig, AnomalyDetector  # noqa: E402
from rnnkit.anomaly.metrics import f1_scores  # noqa: E402
from rnnkit.anomaly.union import AnomalyUnion  # noqa: E402

# fresh data each session, replayable like torch's draws: RNNKIT_TEST_SEED=N (conftest)
rng = np.random.default_rng(SEED)


def series(n=500, period=25, spike=380):
    t = np.arange(n)
    y = np.sin(2 * np.pi * t / period) + rng.normal(0, 0.05, n)
    y[spike] += 3.0
    lab = np.zeros(n, dtype=int)
    lab[spike] = 1
    return y, lab


def copies(u: AnomalyUnion) -> list[AnomalyDetector]:
    return [AnomalyDetector.from_state(d.state()) for d in u.detectors]


def test_union_is_the_or_of_its_members_and_scores_in_threshold_units(tmp_path):
    y, lab = series()
    u = AnomalyUnion.of_methods(("forecast", "window"), input_len=25, pool=5, hidden_size=16,
                                max_steps=150, seed=int(rng.integers(1000))).fit(y[:250])
    assert [d.config.pool for d in u.detectors] == [1, 5] and u.names == ["forecast", "window"]
    res = u.detect(y)
    own = [d.detect(y) for d in copies(u)]
    np.testing.assert_array_equal(res.flags, np.maximum(own[0].flags, own[1].flags))
    ref = np.maximum(own[0].smoothed / own[0].threshold, own[1].smoothed / own[1].threshold)
    np.testing.assert_allclose(res.scores, ref)
    assert res.threshold == 1.0
    np.testing.assert_array_equal(res.extra["members"]["window"].flags, own[1].flags)
    # the one-step member finds the spike; the union keeps it
    assert own[0].flags[380:383].any() and res.flags[380:383].any()
    assert f1_scores(lab[250:], res.flags[250:])["recall_pa"] == 1.0
    # save / load: the same detection
    u.save(tmp_path / "u.pt")
    again = AnomalyUnion.load(tmp_path / "u.pt").detect(y)
    np.testing.assert_array_equal(again.flags, res.flags)
    np.testing.assert_allclose(again.scores, res.scores, rtol=1e-6)


def test_union_streaming_follows_its_members_streams():
    y, _ = series(400, spike=330)
    u = AnomalyUnion.of_methods(("forecast", "autoencoder"), input_len=20, hidden_size=8,
                                max_steps=40, threshold_window=200).fit(y[:250])
    own = copies(u)
    seen_threshold = False
    for v in y[200:340]:
        score, flagged = u.update(v)
        outs = [d.update(v) for d in own]
        assert flagged == any(f for _, f in outs)
        ref = max([e / d.stream_threshold for (e, _), d in zip(outs, own)
                   if d.stream_threshold] or [0.0])
        assert score == pytest.approx(ref)
        seen_threshold |= ref > 0
    assert seen_threshold
    u.reset_stream()
    assert u.update(y[0]) == (0.0, False)


def test_union_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="non-empty list of AnomalyDetector"):
        AnomalyUnion([])
    with pytest.raises(ValueError, match="non-empty list of AnomalyDetector"):
        AnomalyUnion(["forecast"])
    d = AnomalyDetector(AnomalyConfig(input_len=10, max_steps=5)).fit(rng.normal(size=80))
    d.save(tmp_path / "one.pt")
    with pytest.raises(ValueError, match=r"rnnkit.anomaly/2 file; rnnkit.load\(path\) reads it"):
        AnomalyUnion.load(tmp_path / "one.pt")
    assert AnomalyUnion([d, d]).names == ["forecast", "forecast#2"]


def test_cli_forecast_plus_window(tmp_path, capsys):
    import pandas as pd

    from rnnkit.cli import main

    y, lab = series(600, period=30, spike=500)
    csv = tmp_path / "s.csv"
    pd.DataFrame({"value": y, "label": lab}).to_csv(csv, index=False)
    common = ["--threads", "1", "anomaly", "detect", "--csv", str(csv), "--column", "value",
              "--label", "label", "--train-frac", "0.5", "--method", "forecast+window"]
    assert main([*common, "--input-len", "20", "--steps", "120", "--window-steps", "20",
                 "--window-hidden-size", "8", "--out", str(tmp_path / "f.csv"),
                 "--plot", str(tmp_path / "f.png")]) == 0
    text = capsys.readouterr().out
    W = int(text.split("window member: input_len ")[1].split(",")[0])
    assert abs(W - 30) <= 3 and "rows flagged" in text and (tmp_path / "f.png").exists()
    assert 500 in pd.read_csv(tmp_path / "f.csv")["row"].tolist()
    assert main([*common, "--input-len", "auto"]) == 2
    assert "--input-len is the forecast member's" in capsys.readouterr().err
