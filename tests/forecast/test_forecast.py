"""Forecaster, baselines, backtest and metrics: references are hand-computed formulas, a plain
loop for the decoder, and tasks the model must learn (beat the naive forecast)."""

import dataclasses

import numpy as np
import pytest
import torch

pd = pytest.importorskip("pandas")
pytest.importorskip("sktime", reason="forecast metrics use sktime (rnnkit[data] extra)")

from rnnkit.data.timeseries import as_series  # noqa: E402
from rnnkit.forecast import (  # noqa: E402
    Forecaster,
    ForecasterConfig,
    ForecastNet,
    plot_forecast,
)
from rnnkit.forecast.backtest import backtest  # noqa: E402
from rnnkit.forecast.baselines import SeasonalNaive  # noqa: E402
from rnnkit.forecast.metrics import coverage, mae, mase, rmse, smape, width  # noqa: E402

rng = np.random.default_rng(7)
SMALL = dict(hidden_size=16, max_steps=40, eval_every=20, batch_size=32)


def seasonal_series(n=240, m=12, noise=0.05, trend=0.0):
    t = np.arange(n)
    return 10 + trend * t + np.sin(2 * np.pi * t / m) + rng.normal(0, noise, n)


# -- metrics against the textbook formulas --------------------------------------------------------

def test_metrics_match_formulas():
    y, p = rng.normal(5, 1, 20), rng.normal(5, 1, 20)
    tr = rng.normal(5, 1, 50)
    assert mae(y, p) == pytest.approx(np.abs(y - p).mean())
    assert rmse(y, p) == pytest.approx(np.sqrt(((y - p) ** 2).mean()))
    ref_smape = 100 * np.mean(2 * np.abs(y - p) / (np.abs(y) + np.abs(p)))
    assert smape(y, p) == pytest.approx(ref_smape)
    m = 4
    scale = np.abs(tr[m:] - tr[:-m]).mean()
    assert mase(y, p, tr, season=m) == pytest.approx(np.abs(y - p).mean() / scale)
    lo, hi = p - 1, p + 1
    assert coverage(y, lo, hi) == pytest.approx(np.mean((y >= lo) & (y <= hi)))
    assert width(lo, hi) == pytest.approx(2.0)


def test_metric_bad_input():
    with pytest.raises(ValueError, match="shape"):
        mae(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        mae(np.array([1.0, np.nan]), np.ones(2))
    with pytest.raises(ValueError, match="constant"):
        mase(np.ones(3), np.ones(3) * 2, np.ones(10))


# -- the network ----------------------------------------------------------------------------------

@pytest.mark.parametrize("head", ["point", "gaussian", "quantile"])
@pytest.mark.parametrize("decoder", ["direct", "autoregressive"])
def test_net_shapes_and_gradients(head, decoder):
    cfg = ForecasterConfig(horizon=5, input_len=12, hidden_size=8, head=head, decoder=decoder,
                           quantiles=(0.1, 0.5, 0.9))
    net = ForecastNet(cfg, n_targets=2, n_past=1, n_future=3)
    for p in net.parameters():                     # leave the naive-start init for this test
        torch.nn.init.normal_(p, std=0.3)
    batch = {"x": torch.randn(4, 12, 6), "y": torch.randn(4, 5, 2), "fut": torch.randn(4, 5, 3)}
    out = net.loss(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    pr = net.predict_params(batch["x"], batch["fut"])
    assert pr["point"].shape == (4, 5, 2)
    if head == "quantile":
        q = pr["quantiles"]
        assert q.shape == (4, 5, 2, 3) and (q[..., 1:] >= q[..., :-1]).all()
        assert torch.equal(pr["point"], q[..., 1])
    if head == "gaussian":
        assert (pr["std"] > 0).all()


def test_autoregressive_decoder_equals_plain_step_loop():
    cfg = ForecasterConfig(horizon=4, input_len=6, hidden_size=8, decoder="autoregressive")
    net = ForecastNet(cfg, n_targets=1, n_future=2)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x, fut = torch.randn(3, 6, 3), torch.randn(3, 4, 2)
    got = net(x, fut)[..., 0, 0]
    # reference: encoder, then feed back each prediction by hand with decoder.step
    last = x[:, -1:, :1]
    xin = torch.cat([x[..., :1] - last, x[..., 1:]], dim=-1)
    _, state = net.encoder(xin)
    prev, ref = torch.zeros(3, 1), []
    for k in range(4):
        h, state = net.decoder.step(torch.cat([prev, fut[:, k]], -1), state)
        yk = net.head(h) + last[:, 0]
        ref.append(yk)
        prev = yk - last[:, 0]
    torch.testing.assert_close(got, torch.cat(ref, dim=1))
    # teacher forcing with the model's own outputs reproduces free running
    torch.testing.assert_close(net(x, fut, y_teacher=got.unsqueeze(-1))[..., 0, 0], got)


def test_untrained_net_is_the_naive_and_seasonal_naive_forecast():
    x = torch.randn(2, 12, 1)
    net = ForecastNet(ForecasterConfig(horizon=6, input_len=12), 1)
    torch.testing.assert_close(net(x, torch.zeros(2, 6, 0))[..., 0, 0],
                               x[:, -1, 0:1].expand(2, 6))
    cfg = ForecasterConfig(horizon=6, input_len=12, baseline="seasonal", season=4)
    net = ForecastNet(cfg, 1)
    ref = x[:, [8, 9, 10, 11, 8, 9], 0]
    torch.testing.assert_close(net(x, torch.zeros(2, 6, 0))[..., 0, 0], ref)


def test_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="head must be one of"):
        ForecasterConfig(head="poisson")
    with pytest.raises(ValueError, match="raise input_len"):
        ForecasterConfig(baseline="seasonal", season=24, input_len=12)
    with pytest.raises(ValueError, match="horizon must be a positive"):
        ForecasterConfig(horizon=0)


# -- fitting --------------------------------------------------------------------------------------

def test_forecaster_learns_sine_better_than_naive():
    y = seasonal_series(300, m=10, noise=0.05)
    cfg = ForecasterConfig(horizon=5, input_len=20, hidden_size=24, max_steps=250, lr=5e-3,
                           calendar=(), val_fraction=0.0)
    fc = Forecaster(cfg).fit(y[:-5])
    pred = fc.predict(levels=()).mean[0][:, 0]
    naive = np.full(5, y[-6])
    assert mae(y[-5:], pred) < 0.5 * mae(y[-5:], naive)


def test_no_leakage_scaler_sees_only_training_part():
    y = seasonal_series(100)
    y[90:] += 500.0                              # validation tail far away
    fc = Forecaster(ForecasterConfig(horizon=5, input_len=12, val_fraction=0.1, **SMALL))
    fc.fit(y, freq="MS")
    assert fc.scaler.mean[0, 0] == pytest.approx(y[:90].mean())


def test_multiseries_dataframe_with_future_covariate_and_intervals(tmp_path):
    n = 80
    frames = []
    for name, lvl in (("a", 10.0), ("b", 50.0)):
        promo = (rng.random(n) < 0.2).astype(float)
        frames.append(pd.DataFrame({
            "date": pd.date_range("2020-01-06", periods=n, freq="W-MON"), "store": name,
            "sales": lvl + 5 * promo + rng.normal(0, 0.2, n), "promo": promo}))
    df = pd.concat(frames)
    cfg = ForecasterConfig(horizon=4, input_len=8, head="gaussian", **SMALL)
    fc = Forecaster(cfg).fit(df, time="date", target="sales", series="store",
                             future_covariates=["promo"])
    with pytest.raises(ValueError, match="future=\\.\\.\\."):
        fc.predict()
    fut = [np.array([[1.0], [0.0], [0.0], [1.0]])] * 2
    f = fc.predict(future=fut, levels=(50, 90))
    assert f.names == ["a", "b"]
    for i in range(2):
        assert (f.lower[90][i] <= f.lower[50][i]).all() and (f.lower[50][i] <= f.mean[i]).all()
        assert (f.mean[i] <= f.upper[50][i]).all() and (f.upper[50][i] <= f.upper[90][i]).all()
    frame = f.to_frame()
    assert set(frame.columns) >= {"series", "time", "mean", "lower_90", "upper_90"}
    assert len(frame) == 8 and frame["time"].iloc[0] == pd.Timestamp("2021-07-19")
    # save / load round trip gives the same forecast
    path = tmp_path / "m.pt"
    fc.save(path)
    g = Forecaster.load(path).predict(future=fut, levels=(90,))
    for i in range(2):
        np.testing.assert_allclose(g.mean[i], f.mean[i], rtol=1e-6)
        np.testing.assert_allclose(g.upper[90][i], f.upper[90][i], rtol=1e-6)
    png = plot_forecast(fc.series, f, str(tmp_path / "f.png"))
    assert (tmp_path / "f.png").stat().st_size > 1000 and png.endswith("f.png")


def test_quantile_head_intervals_and_log_transform():
    y = np.exp(seasonal_series(150, noise=0.02) / 5)
    cfg = ForecasterConfig(horizon=6, input_len=24, head="quantile", transform="auto",
                           quantiles=(0.1, 0.5, 0.9), **SMALL)
    fc = Forecaster(cfg).fit(y)
    assert fc.log
    with pytest.raises(ValueError, match=r"levels 95: not available .* gives levels 80; .* "
                                         r"head='gaussian'.* 0\.025 and 0\.975"):
        fc.predict(levels=(80, 95))                  # was silently dropped
    f = fc.predict()                                 # default: the levels its quantiles give
    assert list(f.lower) == [80]
    assert (f.lower[80][0] <= f.mean[0]).all() and (f.mean[0] <= f.upper[80][0]).all()
    assert (f.mean[0] > 0).all()
    with pytest.raises(ValueError, match="strictly positive"):
        Forecaster(dataclasses.replace(cfg, transform="log")).fit(y - 100)


def test_bad_inputs_to_fit_and_predict(tmp_path):
    cfg = ForecasterConfig(horizon=6, input_len=24, **SMALL)
    with pytest.raises(ValueError, match="needs at least"):
        Forecaster(cfg).fit(rng.normal(size=20))
    with pytest.raises(ValueError, match="NaN"):
        Forecaster(cfg).fit(np.where(np.arange(100) == 50, np.nan, rng.normal(size=100)))
    with pytest.raises(RuntimeError, match="not fitted"):
        Forecaster(cfg).predict()
    # a constant series is handled: finite, constant forecast
    fc = Forecaster(cfg).fit(np.full(100, 3.0))
    m = fc.predict(levels=()).mean[0]
    assert np.isfinite(m).all() and np.allclose(m, 3.0, atol=1e-3)
    assert fc.predict().lower == {}                  # a point head: no intervals by default
    with pytest.raises(ValueError, match="levels 80: not available from this model's point"):
        fc.predict(levels=(80,))
    fc2 = Forecaster(cfg).fit(rng.normal(size=100))
    with pytest.raises(ValueError, match="needs at least 24"):
        fc2.predict(history=rng.normal(size=10))
    for lv in (150, 100, 0, -5):  # NaN, infinite, empty and inverted bounds before the check
        with pytest.raises(ValueError, match="strictly between 0 and 100"):
            fc2.predict(levels=(80, lv))
    with pytest.raises(TypeError, match=r"such as \(80, 95\)"):
        fc2.predict(levels=80)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable rnnkit checkpoint"):
        Forecaster.load(bad)


def test_validation_tail_is_at_least_one_horizon_or_the_fit_is_refused(monkeypatch):
    cfg = ForecasterConfig(horizon=7, input_len=14, **SMALL)
    assert [cfg.validation_steps(n) for n in (30, 100)] == [7, 10]
    assert cfg.min_length() == 28 and dataclasses.replace(cfg, val_fraction=0).min_length() == 21
    fc = Forecaster(cfg).fit(seasonal_series(30))   # was trained without validation (loss inf)
    assert np.isfinite(fc.history["best_val_loss"])
    with pytest.raises(ValueError, match="has 25 steps but .* needs at least 28; .* "
                                         "val_fraction=0 to train without validation"):
        Forecaster(cfg).fit(seasonal_series(25))
    no_val = Forecaster(dataclasses.replace(cfg, val_fraction=0.0)).fit(seasonal_series(25))
    assert no_val.history["best_val_loss"] == float("inf")   # asked for: no validation
    import rnnkit.forecast.forecaster as module

    monkeypatch.setattr(module, "fit_steps", lambda *a, **k: {"steps": 3, "history": None,
                                                              "best_val_loss": float("nan")})
    with pytest.raises(ValueError, match="validation loss is nan after 3 steps"):
        Forecaster(cfg).fit(seasonal_series(60))


def test_backtest_plot_legend_names_each_thing_once():
    from rnnkit.forecast.plots import _figure

    y = seasonal_series(80)
    res = backtest(lambda: SeasonalNaive(12, 6), y, horizon=6, n_windows=3, season=12,
                   levels=(80,))
    fig = _figure(as_series(y), res.forecasts[-1], res, 200, "")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["history", "forecast", "80% interval", "backtest"]
    assert len(fig.axes[0].lines) == 1 + 1 + 2      # the last window is the forecast, once


# -- baselines and backtest -----------------------------------------------------------------------

def test_seasonal_naive_exact_and_intervals_grow():
    y = rng.normal(size=30)
    f = SeasonalNaive(season=7, horizon=10).fit(y).predict(levels=(80,))
    np.testing.assert_allclose(f.mean[0][:, 0], np.concatenate([y[-7:], y[-7:-4]]))
    w = f.upper[80][0][:, 0] - f.lower[80][0][:, 0]
    assert w[7] > w[6] and np.allclose(w[:7], w[0])
    with pytest.raises(ValueError, match="strictly between 0 and 100"):
        SeasonalNaive(season=7, horizon=10).fit(y).predict(levels=(100,))


class Spy:
    """Records what each fit and predict saw."""

    fits: list = []

    def __init__(self, horizon):
        self.h = horizon

    def fit(self, series):
        Spy.fits.append(len(series[0]))
        self.inner = SeasonalNaive(1, self.h).fit(series)
        return self

    def predict(self, history=None, future=None, levels=()):
        Spy.fits.append(("predict", len(history[0])))
        return self.inner.predict(history=history, levels=levels)


@pytest.mark.parametrize("refit", [False, True])
def test_backtest_origins_and_no_peeking(refit):
    Spy.fits = []
    y = rng.normal(size=60).cumsum()
    res = backtest(lambda: Spy(5), y, horizon=5, n_windows=3, refit=refit, levels=())
    origins = [45, 50, 55]
    assert [o[0] for o in res.origins] == origins
    fits = [f for f in Spy.fits if not isinstance(f, tuple)]
    preds = [f[1] for f in Spy.fits if isinstance(f, tuple)]
    assert preds == origins
    assert fits == (origins if refit else origins[:1])
    # the naive forecast's scores, by hand
    for k, o in enumerate(origins):
        assert res.scores["mae"].iloc[k] == pytest.approx(np.abs(y[o:o + 5] - y[o - 1]).mean())


def test_backtest_rolling_window_and_errors():
    y = rng.normal(size=60).cumsum()
    Spy.fits = []
    backtest(lambda: Spy(5), y, horizon=5, n_windows=2, refit=True, window="rolling",
             train_size=20, levels=())
    assert [f for f in Spy.fits if not isinstance(f, tuple)] == [20, 20]
    with pytest.raises(ValueError, match="train_size"):
        backtest(lambda: Spy(5), y, horizon=5, window="rolling")
    with pytest.raises(ValueError, match="needs at least"):
        backtest(lambda: Spy(5), y[:12], horizon=5, n_windows=3)


def test_rnn_backtest_beats_seasonal_naive_on_seasonal_trend():
    y = seasonal_series(260, m=12, noise=0.1, trend=0.02)
    cfg = ForecasterConfig(horizon=12, input_len=24, season=12, baseline="seasonal",
                           hidden_size=16, max_steps=150, calendar=(), lr=5e-3)
    rnn = backtest(lambda: Forecaster(cfg), y, horizon=12, n_windows=2, season=12, levels=())
    base = backtest(lambda: SeasonalNaive(12, 12), y, horizon=12, n_windows=2, season=12,
                    levels=())
    assert rnn.summary()["mase"] < base.summary()["mase"]


@pytest.mark.slow
def test_statistical_baselines_run_and_score():
    from rnnkit.forecast.baselines import ARIMA, ETS

    pytest.importorskip("pmdarima")
    y = seasonal_series(120, m=12, noise=0.1, trend=0.05)
    for model in (ETS(12, 12), ARIMA(12, 12)):
        res = backtest(lambda model=model: model, y, horizon=12, n_windows=2, season=12)
        s = res.summary()
        assert s["mase"] < 1.0 and 0.5 <= s["coverage_80"] <= 1.0


def test_arima_and_ets_keep_the_searched_model_at_later_origins():
    pm = pytest.importorskip("pmdarima")
    from rnnkit.forecast.baselines import ARIMA, ETS

    y = 50 + np.cumsum(rng.normal(0.5, 1.0, 160))               # random walk with drift
    arima = ARIMA(season=1, horizon=6)
    arima._forecast_1d(y[:148], 0, ())
    order, sorder, intercept, _ = arima.orders[0]
    got, _ = arima._forecast_1d(y[:154], 0, ())                  # warm-started re-estimate
    assert arima.orders[0][:3] == (order, sorder, intercept)
    ref = pm.ARIMA(order=order, seasonal_order=sorder, with_intercept=intercept,
                   suppress_warnings=True).fit(y[:154]).predict(6)
    np.testing.assert_allclose(got, ref, rtol=1e-2)
    ets = ETS(season=12, horizon=6)
    ets._forecast_1d(seasonal_series(120, noise=0.1), 0, ())
    form = ets.forms[0]
    ets._forecast_1d(seasonal_series(126, noise=0.1), 0, ())
    assert ets.forms[0] == form and form[2] == "add"            # seasonal form kept


def test_ensemble_averages_its_members():
    from rnnkit.forecast import ForecastEnsemble

    y = seasonal_series(120)
    cfg = ForecasterConfig(horizon=4, input_len=12, head="gaussian", **SMALL)
    ens = ForecastEnsemble(cfg, n_models=2).fit(y)
    f = ens.predict(levels=(80,))
    a, b = (m.predict(levels=(80,)) for m in ens.members)
    assert not np.allclose(a.mean[0], b.mean[0])              # different seeds
    np.testing.assert_allclose(f.mean[0], (a.mean[0] + b.mean[0]) / 2)
    np.testing.assert_allclose(f.upper[80][0], (a.upper[80][0] + b.upper[80][0]) / 2)
    with pytest.raises(ValueError, match="n_models"):
        ForecastEnsemble(cfg, n_models=0)


def test_ensemble_of_different_settings_saves_and_loads(tmp_path):
    from rnnkit.forecast import ForecastEnsemble, load_forecaster

    y = seasonal_series(120)
    cfgs = [ForecasterConfig(horizon=4, input_len=12, head="gaussian", **SMALL),
            ForecasterConfig(horizon=4, input_len=24, ar_window=12, baseline="seasonal",
                             season=12, head="gaussian", **SMALL)]
    ens = ForecastEnsemble.of([Forecaster(c).fit(y) for c in cfgs])
    ens.save(tmp_path / "ens.pt")
    for again in (ForecastEnsemble.load(tmp_path / "ens.pt"), load_forecaster(tmp_path / "ens.pt")):
        assert [m.config for m in again.members] == cfgs
        for hist in (None, y[:100]):
            f, g = (e.predict(history=hist, levels=(80,)) for e in (ens, again))
            np.testing.assert_allclose(g.mean[0], f.mean[0])
            np.testing.assert_allclose(g.lower[80][0], f.lower[80][0])
    ens.members[0].save(tmp_path / "one.pt")
    assert isinstance(load_forecaster(tmp_path / "one.pt"), Forecaster)
    torch.save({"kind": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError,
                       match="not a rnnkit.forecaster or rnnkit.forecast_ensemble or "
                       "rnnkit.esrnn or rnnkit.forecast_combination file"):
        load_forecaster(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a rnnkit.forecast_ensemble file"):
        ForecastEnsemble.load(tmp_path / "one.pt")
    with pytest.raises(ValueError, match="at least one forecaster"):
        ForecastEnsemble.of([])
    with pytest.raises(ValueError, match="only Forecaster objects"):
        ForecastEnsemble.of([ens])
    assert len(ForecastEnsemble.of(m for m in ens.members).members) == 2   # any iterable
    other = Forecaster(dataclasses.replace(cfgs[0], horizon=3)).fit(y)
    with pytest.raises(ValueError, match="same horizon of the same series"):
        ForecastEnsemble.of([ens.members[0], other])
    point = Forecaster(dataclasses.replace(cfgs[0], head="point")).fit(y)
    with pytest.raises(ValueError, match="mix a point head with interval heads"):
        ForecastEnsemble.of([ens.members[0], point])
    with pytest.raises(RuntimeError, match="not fitted"):
        ForecastEnsemble.of([Forecaster(cfgs[0])])


def test_past_covariate_that_leads_the_target_is_used():
    n = 300
    x = rng.normal(size=n)
    y = 5 + np.concatenate([[0.0], x[:-1]])            # y_t = 5 + x_{t-1}
    df = pd.DataFrame({"t": np.arange(n), "y": y, "x": x})
    cfg = ForecasterConfig(horizon=1, input_len=4, hidden_size=16, max_steps=200, lr=1e-2,
                           baseline="none", val_fraction=0.0)
    with_x = Forecaster(cfg).fit(df.iloc[:-20], time="t", target="y", past_covariates=["x"])
    assert with_x.net.P == 1 and with_x.series[0].freq is None
    preds = [with_x.predict(history=df.iloc[:k], levels=()).mean[0][0, 0]
             for k in range(n - 20, n)]
    # only x_{t-1} can tell y_t (std 1): the errors must be far below that
    assert np.abs(np.array(preds) - y[n - 20:]).mean() < 0.3


# -- LSTNet's linear autoregressive highway ------------------------------------------------------

@pytest.mark.parametrize("decoder", ["direct", "autoregressive"])
def test_ar_highway_adds_a_linear_map_of_the_last_p_values_to_the_baseline(decoder):
    L, H, m, p, C = 12, 6, 4, 5, 2
    cfg = ForecasterConfig(horizon=H, input_len=L, baseline="seasonal", season=m, ar_window=p,
                           decoder=decoder, hidden_size=8)
    net = ForecastNet(cfg, n_targets=C).double()
    torch.nn.init.normal_(net.ar.weight)
    torch.nn.init.normal_(net.ar.bias)
    x = torch.randn(3, L, C, dtype=torch.float64)
    fut = torch.zeros(3, H, 0, dtype=torch.float64)
    got = net(x, fut)[..., 0]                                            # head still zero
    W, b = net.ar.weight.detach().numpy(), net.ar.bias.detach().numpy()
    xn = x.numpy()
    ref = np.empty((3, H, C))
    for i in range(3):
        for c in range(C):
            for k in range(H):
                seasonal = xn[i, L - m + k % m, c]
                ref[i, k, c] = seasonal + b[k] + sum(
                    W[k, j] * (xn[i, L - p + j, c] - xn[i, L - 1, c]) for j in range(p))
    np.testing.assert_allclose(got.detach().numpy(), ref, rtol=1e-12, atol=1e-12)
    got.sum().backward()
    assert net.ar.weight.grad.abs().sum() > 0
    if decoder == "autoregressive":
        # with a live head the fed-back forecasts include the highway: free running equals
        # teacher forcing on the model's own outputs only if both add it the same way
        torch.nn.init.normal_(net.head.weight, std=0.3)
        with torch.no_grad():
            free = net(x, fut)[..., 0]
            torch.testing.assert_close(net(x, fut, y_teacher=free)[..., 0], free)
            assert not torch.allclose(free, got)


def test_ar_highway_learns_a_damped_cycle_and_survives_save_load(tmp_path):
    # AR(2) y_t = 1.5 y_{t-1} - 0.8 y_{t-2} + e_t: the best h-step forecast is linear in the
    # last two values, which the highway represents exactly
    a1, a2, n, H = 1.5, -0.8, 1200, 4
    e = np.random.default_rng(0).normal(0, 1, n)
    y = np.zeros(n)
    for t in range(2, n):
        y[t] = a1 * y[t - 1] + a2 * y[t - 2] + e[t]
    cfg = ForecasterConfig(horizon=H, input_len=16, ar_window=8, hidden_size=8, max_steps=400,
                           lr=1e-2, calendar=(), val_fraction=0.0, point_loss="mse")
    fc, twin = (Forecaster(dataclasses.replace(cfg, ar_window=p)).fit(y[:1000]) for p in (8, 0))
    origins = range(1000, n - H)
    s = as_series(y)[0]
    pred, pred_twin = (np.stack([f[:, 0] for f in m.predict(
        history=[s.head(o) for o in origins], levels=()).mean]) for m in (fc, twin))
    truth = np.stack([y[o:o + H] for o in origins])
    oracle = []
    for o in origins:                               # the true conditional mean, step by step
        h = [y[o - 2], y[o - 1]]
        for _ in range(H):
            h.append(a1 * h[-1] + a2 * h[-2])
        oracle.append(h[2:])
    naive = np.repeat(y[np.array(origins) - 1, None], H, axis=1)
    err, err_twin, err_oracle, err_naive = (np.sqrt(((truth - f) ** 2).mean()) for f in
                                            (pred, pred_twin, np.array(oracle), naive))
    # data seeds 0-3: 1.08-1.18 x the oracle with the highway, 2-10% below the error without
    # it (seed 0: 1.08 x, 9% below)
    assert err < 1.15 * err_oracle and err < 0.75 * err_naive, (err, err_oracle, err_naive)
    assert err < 0.95 * err_twin, (err, err_twin, err_oracle)
    fc.save(tmp_path / "ar.pt")
    again = Forecaster.load(tmp_path / "ar.pt").predict(history=y[:1100], levels=()).mean[0]
    np.testing.assert_allclose(again, fc.predict(history=y[:1100], levels=()).mean[0])


def test_ar_window_longer_than_the_input_is_refused():
    with pytest.raises(ValueError, match=r"in \[0, input_len=12\], got 13; lower ar_window"):
        ForecasterConfig(input_len=12, ar_window=13)
    with pytest.raises(ValueError, match="got True"):
        ForecasterConfig(input_len=12, ar_window=True)
    with pytest.raises(ValueError, match="input_len must be a positive integer, got None"):
        ForecasterConfig(input_len=None, ar_window=4)


def test_checkpoint_from_before_the_ar_highway_loads():
    y = seasonal_series(120)
    fc = Forecaster(ForecasterConfig(horizon=4, input_len=12, **SMALL)).fit(y)
    old = fc.state()
    del old["config"]["ar_window"]                  # what an older rnnkit wrote
    again = Forecaster.from_state(old)
    assert again.config.ar_window == 0 and again.net.ar is None
    np.testing.assert_allclose(again.predict(levels=()).mean[0], fc.predict(levels=()).mean[0])


def test_file_with_the_old_flat_config_loads(tmp_path):
    """Files written before ForecasterConfig held a TrainConfig: the training keys sit flat in
    the config dict and the tag is the old ``{"kind": "rnnkit.forecaster"}``."""
    import rnnkit
    from rnnkit.saving import FORMAT_KEY, read_state

    y = seasonal_series(120)
    cfg = ForecasterConfig(horizon=4, input_len=12, head="gaussian", seed=3, patience=2,
                           **SMALL)
    fc = Forecaster(cfg).fit(y)
    fc.save(tmp_path / "new.pt")
    blob = read_state(tmp_path / "new.pt", Forecaster.KIND, version=Forecaster.VERSION)
    assert blob[FORMAT_KEY] == "rnnkit.forecaster/2" and "max_steps" not in blob["config"]
    old = {k: v for k, v in blob.items() if k != FORMAT_KEY}
    train = old["config"].pop("train")
    old["config"].update(max_steps=train["max_steps"], lr=train["lr"],
                         weight_decay=train["weight_decay"], eval_every=train["eval_every"],
                         patience=train["early_stop_patience"], seed=train["seed"],
                         max_time=train["max_time"], progress=train["progress"],
                         device=train["device"], quantiles=list(cfg.quantiles))
    old["kind"] = "rnnkit.forecaster"
    torch.save(old, tmp_path / "old.pt")
    want = fc.predict(levels=(80,))
    for again in (rnnkit.load(tmp_path / "old.pt"), Forecaster.load(tmp_path / "old.pt")):
        assert again.config == cfg and again.config.train == cfg.train
        got = again.predict(levels=(80,))
        np.testing.assert_array_equal(got.mean[0], want.mean[0])
        np.testing.assert_array_equal(got.upper[80][0], want.upper[80][0])


def test_config_holds_the_model_and_one_train_config():
    from rnnkit.forecast.config import forecast_train
    from rnnkit.train import TrainConfig
    from rnnkit.train.budget import step_budget

    cfg = ForecasterConfig()
    assert cfg.train == step_budget(1000, lr=3e-3, eval_every=100, early_stop_patience=5)
    assert (cfg.max_steps, cfg.lr, cfg.patience, cfg.seed, cfg.device) == (1000, 3e-3, 5, 0,
                                                                           "cpu")
    flat = ForecasterConfig(max_steps=200, lr=1e-2, patience=None, seed=4)
    assert flat.train == forecast_train(200, lr=1e-2, early_stop_patience=None, seed=4)
    assert flat.train.warmup_steps == 20 and flat.train.log_every == 200  # follow max_steps
    assert dataclasses.replace(flat, seed=5).train.seed == 5
    assert ForecasterConfig(train={"max_steps": 7}).train == TrainConfig(max_steps=7)
    with pytest.raises(TypeError, match=r"unknown setting\(s\) hiden_size; model settings"):
        ForecasterConfig(hiden_size=8)
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        ForecasterConfig(train={"steps": 7})


def test_naive2_indices_match_statsmodels_classical_decomposition():
    """Naive2 (the M4 benchmark): the seasonal indices equal statsmodels' multiplicative
    ``seasonal_decompose`` (centred 2 x m moving average), and the forecast is the last
    seasonally adjusted value re-seasonalised; an aseasonal series gets the plain naive."""
    from statsmodels.tsa.seasonal import seasonal_decompose

    from rnnkit.forecast.baselines import Naive2, seasonal_indices

    rng = np.random.default_rng()
    for m, T in ((12, 77), (4, 41), (7, 64)):
        t = np.arange(T)
        y = (20 + 0.1 * t) * (1 + 0.3 * np.sin(2 * np.pi * t / m + rng.uniform(0, 6))) \
            * np.exp(rng.normal(0, 0.02, T))
        idx = seasonal_indices(y, m)
        ref = seasonal_decompose(y, model="multiplicative", period=m).seasonal[:m]
        np.testing.assert_allclose(idx[np.arange(m) % m], ref, rtol=1e-10)
        f = Naive2(season=m, horizon=2 * m).fit(y).predict(levels=(80,))
        want = y[-1] / idx[(T - 1) % m] * idx[np.arange(T, T + 2 * m) % m]
        np.testing.assert_allclose(f.mean[0][:, 0], want, rtol=1e-12)
        assert (f.lower[80][0][:, 0] < f.mean[0][:, 0]).all()
    # white noise (a fixed draw: one in ten would pass a 90 % test by chance): naive forecast
    noise = np.random.default_rng(0).normal(10, 1, 60)
    assert seasonal_indices(noise, 12) is None
    f = Naive2(season=12, horizon=5).fit(noise).predict(levels=())
    np.testing.assert_array_equal(f.mean[0][:, 0], np.full(5, noise[-1]))
