"""The seasonal-mean baseline (against a plain-loop formula) and ForecastSearch (its validation
score against a plain per-origin loop; choices it must get right on data built for them)."""

import dataclasses
import re

import numpy as np
import pytest
import torch

pytest.importorskip("pandas")

from rnnkit.forecast import Forecaster, ForecasterConfig, ForecastNet  # noqa: E402
from rnnkit.forecast.search import ForecastSearch, validation_score  # noqa: E402

rng = np.random.default_rng(11)
TINY = dict(hidden_size=8, max_steps=30, eval_every=10, batch_size=32, calendar=())


def seasonal_mean_loop(x: np.ndarray, m: int, H: int) -> np.ndarray:
    """b_{t+k} = mean_j y_{t+k-m*ceil(k/m)-j*m} + mean(last m) - mean(last n*m), k = 1..H."""
    L = len(x)
    n = L // m
    out = []
    for k in range(1, H + 1):
        base = L - 1 + k - m * int(np.ceil(k / m))                # index of y_{t+k-m⌈k/m⌉}
        out.append(np.mean([x[base - j * m] for j in range(n)])
                   + x[L - m:].mean() - x[L - n * m:].mean())
    return np.array(out)


@pytest.mark.parametrize("L,m,H", [(12, 4, 6), (14, 4, 9), (24, 12, 12), (7, 7, 3)])
def test_untrained_seasonal_mean_net_is_the_formula(L, m, H):
    x = torch.randn(3, L, 1, dtype=torch.float64)
    cfg = ForecasterConfig(horizon=H, input_len=L, baseline="seasonal_mean", season=m)
    net = ForecastNet(cfg, 1).double()
    got = net(x, torch.zeros(3, H, 0, dtype=torch.float64))[..., 0, 0]
    ref = torch.tensor(np.stack([seasonal_mean_loop(xi[:, 0].numpy(), m, H) for xi in x]))
    torch.testing.assert_close(got, ref)


def test_seasonal_mean_is_seasonal_naive_on_trend_plus_pattern_and_smoother_on_noise():
    m, L, H = 4, 16, 8
    t = torch.arange(L, dtype=torch.float64)
    clean = (0.3 * t + torch.tensor([1.0, -2.0, 0.5, 0.5]).repeat(L // m)).view(1, L, 1)
    nets = {b: ForecastNet(ForecasterConfig(horizon=H, input_len=L, baseline=b, season=m),
                           1).double() for b in ("seasonal", "seasonal_mean")}
    fut = torch.zeros(1, H, 0, dtype=torch.float64)
    torch.testing.assert_close(nets["seasonal_mean"](clean, fut), nets["seasonal"](clean, fut))
    # unit noise on the inputs: the seasonal naive passes variance 1 on, the seasonal mean of
    # n=4 seasons 1/4 + 1/4 + 1/16 + 2/16 - 2/16 - 2/16 = 0.4375 (profile, last-season mean,
    # n-season mean and their covariances)
    noisy = clean + torch.randn(4000, L, 1, dtype=torch.float64)
    var = {b: ((n(noisy, fut.expand(4000, -1, -1)) - n(clean, fut)) ** 2).mean().item()
           for b, n in nets.items()}
    assert abs(var["seasonal"] - 1.0) < 0.05 and abs(var["seasonal_mean"] - 0.4375) < 0.03


def test_seasonal_mean_needs_a_season_in_the_input():
    with pytest.raises(ValueError, match="input_len >= season"):
        ForecasterConfig(baseline="seasonal_mean", season=24, input_len=12)
    with pytest.raises(ValueError, match="baseline must be one of"):
        ForecasterConfig(baseline="seasonl")


def test_validation_score_is_the_per_origin_loop():
    y = 20 + np.sin(np.arange(160) * 2 * np.pi / 12) + rng.normal(0, 0.2, 160)
    cfg = ForecasterConfig(horizon=6, input_len=24, season=12, baseline="seasonal",
                           val_fraction=0.2, **TINY)
    model = Forecaster(cfg).fit(y)
    end = 160 - 32
    scale = np.abs(y[12:end] - y[:end - 12]).mean()
    ref = [np.abs(y[o:o + 6] - model.predict(history=y[:o], levels=()).mean[0][:, 0]).mean()
           for o in range(end, 160 - 6 + 1)]
    np.testing.assert_allclose(validation_score(model), np.mean(ref) / scale, rtol=1e-5)


def test_search_picks_the_baseline_the_data_needs():
    # max_steps=1: the nets stay (almost) their baselines, so the choice is clear-cut
    cfg = ForecasterConfig(horizon=6, input_len=24, season=12, val_fraction=0.25,
                           **{**TINY, "max_steps": 1})
    grid = {"baseline": ["last", "seasonal", "seasonal_mean"]}
    t = np.arange(200)
    seasonal = 10 + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.1, 200)
    s = ForecastSearch(cfg, grid, n_models=1).fit(seasonal)
    assert s.best_overrides["baseline"] != "last"
    walk = 50 + np.cumsum(rng.normal(0, 1, 200))
    s = ForecastSearch(cfg, grid, n_models=1).fit(walk)
    assert s.best_overrides == {"baseline": "last"}
    noisy = 10 + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1.0, 200)
    s = ForecastSearch(cfg, grid, n_models=1).fit(noisy)
    assert s.best_overrides == {"baseline": "seasonal_mean"}
    assert [o for o, _ in s.scores] == [{"baseline": b} for b in grid["baseline"]]


def test_search_ensembles_seeds_of_the_winner_and_skips_duplicates():
    y = 10 + np.sin(np.arange(150) * 2 * np.pi / 7) + rng.normal(0, 0.1, 150)
    cfg = ForecasterConfig(horizon=4, input_len=14, season=1, **TINY)
    s = ForecastSearch(cfg, {"baseline": ["last", "seasonal"], "input_len": [7, 14]},
                       n_models=2)
    assert len(s.candidates) == 2                   # seasonal == last when season=1
    s.fit(y)
    assert len(s.scores) == 2 and len(s.members) == 2
    assert [m.config.seed for m in s.members] == [0, 1]
    assert all(m.config == dataclasses.replace(s.best_config, seed=m.config.seed)
               for m in s.members)
    f = s.predict(levels=())
    a, b = (m.predict(levels=()).mean[0] for m in s.members)
    assert not np.allclose(a, b)
    np.testing.assert_allclose(f.mean[0], (a + b) / 2)


def test_search_top_k_averages_the_best_scoring_candidates_with_their_seeds():
    y = 10 + np.sin(np.arange(150) * 2 * np.pi / 7) + rng.normal(0, 0.3, 150)
    cfg = ForecasterConfig(horizon=4, input_len=14, season=7, **TINY)
    grid = {"baseline": ["last", "seasonal", "seasonal_mean"]}
    s = ForecastSearch(cfg, grid, n_models=2, top_k=2).fit(y)
    order = sorted(range(3), key=lambda i: s.scores[i][1])
    assert s.chosen == [s.scores[i][0] for i in order[:2]]
    assert s.best_overrides == s.chosen[0]
    assert [(m.config.baseline, m.config.seed) for m in s.members] == [
        (o["baseline"], seed) for o in s.chosen for seed in (0, 1)]
    means = [m.predict(levels=()).mean[0] for m in s.members]
    np.testing.assert_allclose(s.predict(levels=()).mean[0], np.mean(means, axis=0))
    # more winners asked for than candidates: every candidate, once
    s = ForecastSearch(cfg, grid, n_models=1, top_k=9).fit(y)
    assert sorted(o["baseline"] for o in s.chosen) == sorted(grid["baseline"])
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        ForecastSearch(cfg, grid, top_k=0)
    with pytest.raises(ValueError, match=r"grid setting \{'input_len': 8\}: ar_window must"):
        ForecastSearch(dataclasses.replace(cfg, ar_window=10), {"input_len": [14, 8]})


def test_search_skips_windows_too_long_for_the_data():
    y = 10 + np.sin(np.arange(60) * 2 * np.pi / 7) + rng.normal(0, 0.1, 60)
    cfg = ForecasterConfig(horizon=4, input_len=14, **TINY)
    s = ForecastSearch(cfg, {"input_len": [14, 54]}, n_models=1).fit(y)
    assert [o for o, _ in s.scores] == [{"input_len": 14}]
    assert s.skipped[0][0] == {"input_len": 54} and "needs at least" in s.skipped[0][1]
    with pytest.raises(ValueError, match="no candidate fits"):
        ForecastSearch(cfg, {"input_len": [54, 60]}, n_models=1).fit(y)


def test_search_errors_name_the_fix():
    with pytest.raises(ValueError, match="not a ForecasterConfig field"):
        ForecastSearch(ForecasterConfig(), {"hidden": [8]})
    with pytest.raises(ValueError, match="non-empty list"):
        ForecastSearch(ForecasterConfig(), {"baseline": "last"})
    with pytest.raises(ValueError, match="val_fraction > 0"):
        ForecastSearch(ForecasterConfig(val_fraction=0.0), {})
    with pytest.raises(RuntimeError, match="not fitted"):
        ForecastSearch(ForecasterConfig(), {}).predict()
    with pytest.raises(ValueError, match="baseline must be one of"):
        ForecastSearch(ForecasterConfig(), {"baseline": ["lasst"]})


def test_cli_search_train_and_backtest(tmp_path, capsys):
    import pandas as pd

    from rnnkit.cli import main

    n = 120
    t = np.arange(n)
    csv = tmp_path / "s.csv"
    pd.DataFrame({"month": pd.date_range("2010-01-01", periods=n, freq="MS"),
                  "sales": 100 + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)}
                 ).to_csv(csv, index=False)
    common = ["--csv", str(csv), "--time", "month", "--target", "sales", "--horizon", "6",
              "--season", "12", "--steps", "20", "--search", "baseline=last,seasonal_mean",
              "input_len=24"]
    assert main(["forecast", "train", *common, "--out", str(tmp_path / "m.pt")]) == 0
    out = capsys.readouterr().out
    assert "validation scores: {'baseline': 'last', 'input_len': 24}" in out
    assert (tmp_path / "m.pt").exists()
    # two settings x two seeds, saved as one ensemble that predict reads
    assert main(["forecast", "train", *common[:-1], "input_len=24,36", "--top-k", "2",
                 "--ensemble", "2", "--out", str(tmp_path / "ens.pt")]) == 0
    assert "averaging 4 network(s)" in capsys.readouterr().out
    assert main(["forecast", "predict", str(tmp_path / "ens.pt"), "--levels",
                 "--out", str(tmp_path / "f.csv"), "--plot", str(tmp_path / "f.png")]) == 0
    f = pd.read_csv(tmp_path / "f.csv")
    assert len(f) == 6 and np.isfinite(f["mean"]).all() and (tmp_path / "f.png").exists()
    assert main(["forecast", "backtest", *common, "--model", "gru", "--windows", "2",
                 "--ensemble", "2", "--levels"]) == 0
    assert "mean:" in capsys.readouterr().out
    assert main(["forecast", "backtest", *common, "--model", "lstm", "--windows", "2",
                 "--top-k", "2", "--ar-window", "12", "--levels"]) == 0
    assert "mean:" in capsys.readouterr().out
    assert main(["forecast", "backtest", *common, "--top-k", "0"]) == 2
    assert "--top-k takes a number of settings >= 1, got 0" in capsys.readouterr().err
    no_search = common[:common.index("--search")]
    assert main(["forecast", "train", *no_search, "--top-k", "2"]) == 2
    assert "give the settings with --search" in capsys.readouterr().err
    assert main(["forecast", "backtest", *common, "--ar-window", "25"]) == 2
    assert "--ar-window must be an integer in [0, --input-len 24]" in capsys.readouterr().err
    assert main(["forecast", "backtest", *common[:-2], "baseline", "--model", "lstm"]) == 2
    assert "FIELD=V1,V2" in capsys.readouterr().err


def test_search_grid_takes_the_training_keywords():
    s = ForecastSearch(ForecasterConfig(max_steps=40), {"lr": [1e-3, 3e-3], "max_steps": [20]})
    assert [(c.train.lr, c.train.max_steps, c.train.warmup_steps) for _, c in s.candidates] == [
        (1e-3, 20, 2), (3e-3, 20, 2)]


def test_search_says_each_fit_only_when_asked(capsys):
    y = 10 + np.sin(np.arange(120) * 2 * np.pi / 7) + rng.normal(0, 0.2, 120)
    cfg = ForecasterConfig(horizon=4, input_len=14, season=7, **{**TINY, "max_steps": 5})
    lines = []
    s = ForecastSearch(cfg, {"baseline": ["last", "seasonal"], "input_len": [14, 200]},
                       n_models=2, progress=lines.append).fit(y)
    assert capsys.readouterr() == ("", "")
    scores = iter(s.scores)
    expected = []
    for i, (over, _) in enumerate(s.candidates, 1):
        if over["input_len"] == 200:
            expected.append(f"setting {i}/4 {over}: skipped, its window does not fit the series")
        else:
            o, v = next(scores)
            expected.append(f"setting {i}/4 {o}: validation score {v:.4f}")
    expected.append(f"seed 2/2 of {s.chosen[0]}: fitted")
    assert [re.sub(r" \(\d+ s\)$", "", line) for line in lines] == expected
