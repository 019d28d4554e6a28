"""ES-RNN: the vectorised ES recursion against a plain per-series loop, the normalisation's
round trip, the backtest / save / load protocol, input errors, and a task it must solve (beat
seasonal naive on multiplicative seasonal series with trend, with calibrated intervals)."""

import numpy as np
import pytest
import torch

pd = pytest.importorskip("pandas")
pytest.importorskip("sktime", reason="forecast metrics use sktime (rnnkit[data] extra)")

import rnnkit  # noqa: E402
from rnnkit.data.timeseries import Series, SeriesTooShortError, from_array  # noqa: E402
from rnnkit.forecast import ESRNN, ESRNNConfig  # noqa: E402
from rnnkit.forecast.backtest import backtest  # noqa: E402
from rnnkit.forecast.baselines import SeasonalNaive  # noqa: E402
from rnnkit.forecast.esrnn import es_filter, initial_seasonality, pinball_loss  # noqa: E402
from rnnkit.saving import read_state  # noqa: E402

TINY = dict(hidden_size=8, num_layers=1, max_steps=12, eval_every=6, batch_size=32)


def rng():
    return np.random.default_rng()  # fresh inputs each run (the references are exact)


def synthetic(n_series=20, m=12, seed=0, lengths=(96, 150), noise=0.03):
    """Multiplicative seasonality x trend x lognormal noise, random phase, level and amplitude."""
    g = np.random.default_rng(seed)
    out = []
    for k in range(n_series):
        n = int(g.integers(*lengths))
        t = np.arange(n)
        season = 1 + g.uniform(0.1, 0.4) * np.sin(2 * np.pi * (t + g.integers(m)) / m)
        trend = g.uniform(50, 500) * (1 + g.uniform(-0.003, 0.01) * t)
        y = trend * season * np.exp(g.normal(0, noise, n))
        s = from_array(y, freq="MS", start="2000-01-01")[0]
        s.name = f"s{k}"
        out.append(s)
    return out


def loop_reference(z, alpha, gamma, s0, multiplicative):
    """Holt-Winters for one series, written as the textbook equations, in plain Python."""
    m = len(s0)
    seas = list(s0)
    lev = []
    if m == 1:
        seas = [1.0 if multiplicative else 0.0]
    l_prev = z[0] / seas[0] if multiplicative else z[0] - seas[0]
    for t, zt in enumerate(z):
        if m == 1:
            lt = alpha * zt + (1 - alpha) * l_prev
        elif multiplicative:
            lt = alpha * zt / seas[t] + (1 - alpha) * l_prev
            seas.append(gamma * zt / lt + (1 - gamma) * seas[t])
        else:
            lt = alpha * (zt - seas[t]) + (1 - alpha) * l_prev
            seas.append(gamma * (zt - lt) + (1 - gamma) * seas[t])
        lev.append(lt)
        l_prev = lt
    return np.array(lev), np.array(seas)


# -- the ES recursion -----------------------------------------------------------------------------

@pytest.mark.parametrize("m", [1, 4, 7])
@pytest.mark.parametrize("multiplicative", [True, False])
def test_es_filter_matches_loop(m, multiplicative):
    g = rng()
    lengths = g.integers(m + 3, 40, size=5)
    T = int(lengths.max())
    zs = [g.uniform(0.5, 3.0, n) if multiplicative else g.normal(0, 2, n) for n in lengths]
    alpha, gamma = g.uniform(0.05, 0.95, 5), g.uniform(0.05, 0.95, 5)
    s0 = g.uniform(0.6, 1.4, (5, m)) if multiplicative else g.normal(0, 1, (5, m))
    z = np.ones((5, T))
    for i, v in enumerate(zs):
        z[i, T - len(v):] = v
        z[i, :T - len(v)] = v[0]
    start = torch.tensor([T - len(v) for v in zs])
    lev, sea = es_filter(torch.tensor(z), torch.tensor(alpha), torch.tensor(gamma),
                         torch.tensor(s0), start, multiplicative)
    assert lev.dtype == torch.float64 and lev.shape == (5, T) and sea.shape == (5, T + m)
    for i, v in enumerate(zs):
        ref_l, ref_s = loop_reference(v, alpha[i], gamma[i], s0[i], multiplicative)
        p = T - len(v)
        np.testing.assert_allclose(lev[i, p:].numpy(), ref_l, rtol=1e-12, atol=1e-12)
        if m > 1:
            np.testing.assert_allclose(sea[i, p:].numpy(), ref_s, rtol=1e-12, atol=1e-12)
        else:
            assert (sea[i] == (1.0 if multiplicative else 0.0)).all()


def test_es_filter_gradients_reach_parameters():
    g = rng()
    z = torch.tensor(g.uniform(1, 2, (3, 30)))
    a = torch.full((3,), 0.3, dtype=torch.float64, requires_grad=True)
    gm = torch.full((3,), 0.2, dtype=torch.float64, requires_grad=True)
    s0 = torch.tensor(g.uniform(0.8, 1.2, (3, 6)), requires_grad=True)
    lev, sea = es_filter(z, a, gm, s0)
    (lev.log().sum() + sea.log().sum()).backward()
    for p in (a, gm, s0):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_initial_seasonality_recovers_factors():
    m = 6
    true = np.array([0.8, 0.9, 1.0, 1.1, 1.25, 0.97])
    true = true / np.exp(np.log(true).mean())
    t = np.arange(48)
    z = (10 + 0.1 * t) * np.tile(true, 8)
    np.testing.assert_allclose(initial_seasonality(z, m), true, rtol=0.03)
    off = np.array([-1.0, 0.5, 0.2, 0.3, -0.4, 0.4])
    np.testing.assert_allclose(initial_seasonality(5 + 0.2 * t + np.tile(off, 8), m, False),
                               off, atol=1e-8)


def test_pinball_loss_matches_formula():
    g = rng()
    q = torch.tensor([0.1, 0.5, 0.9])
    pred, y = torch.tensor(g.normal(size=(4, 3, 3))), torch.tensor(g.normal(size=(4, 3)))
    e = y.numpy()[..., None] - pred.numpy()
    ref = np.where(e >= 0, q.numpy() * e, (q.numpy() - 1) * e).mean()
    assert float(pinball_loss(pred, y, q.double())) == pytest.approx(ref)


@pytest.mark.parametrize("form", ["multiplicative", "additive"])
def test_normalise_then_relevel_is_identity(form):
    """Inputs x and targets of a window, re-seasonalised and re-levelled, give back the data."""
    g = rng()
    cfg = ESRNNConfig(horizon=5, season=4, input_len=7, form=form)
    model = ESRNN(cfg)
    mult = form == "multiplicative"
    z = torch.tensor(g.uniform(0.5, 2.0, (3, 40)) if mult else g.normal(0, 1, (3, 40)))
    s0 = torch.tensor(g.uniform(0.7, 1.3, (3, 4)) if mult else g.normal(0, 1, (3, 4)))
    val, lev, sea = model._states(z, torch.zeros(3, dtype=torch.long), mult,
                                  torch.tensor(g.uniform(0.1, 0.9, 3)),
                                  torch.tensor(g.uniform(0.1, 0.9, 3)), s0)
    rows, t = torch.tensor([0, 1, 2, 1]), torch.tensor([6, 20, 34, 30])
    x, y, base = model._windows(val, lev, sea, rows, t)
    back = (lambda v: v.exp()) if mult else (lambda v: v)
    for b in range(4):
        r, o = int(rows[b]), int(t[b])
        # input: x_j + level_t + season_j -> z_j
        np.testing.assert_allclose(back(x[b] + lev[r, o] + sea[r, o - 6:o + 1]).numpy(),
                                   z[r, o - 6:o + 1].numpy(), rtol=1e-12, atol=1e-12)
        # target: + level_t + seasonal index known at t (repeated every m) -> z_{t+k}
        np.testing.assert_allclose(back(y[b] + base[b]).numpy(), z[r, o + 1:o + 6].numpy(),
                                   rtol=1e-12, atol=1e-12)
        k = np.arange(1, 6)
        np.testing.assert_allclose(base[b].numpy(),
                                   (lev[r, o] + sea[r, o + (k - 1) % 4 + 1]).numpy())


# -- the protocol -----------------------------------------------------------------------------

def test_backtest_save_load_and_interval_order(tmp_path):
    data = synthetic(4, m=12, lengths=(70, 90))
    cfg = ESRNNConfig(horizon=6, season=12, **TINY)
    res = backtest(lambda: ESRNN(cfg), data, horizon=6, n_windows=2, season=12)
    assert len(res.scores) == 8 and np.isfinite(res.scores["mase"]).all()
    assert {"coverage_80", "coverage_95"} <= set(res.scores.columns)
    model = ESRNN(cfg).fit(data)
    f = model.predict()
    for i in range(4):
        assert f.mean[i].shape == (6, 1)
        assert (f.lower[95][i] < f.lower[80][i]).all() and (f.lower[80][i] < f.mean[i]).all()
        assert (f.mean[i] < f.upper[80][i]).all() and (f.upper[80][i] < f.upper[95][i]).all()
    assert f.time[0][0] == data[0].time[-1] + pd.offsets.MonthBegin(1)
    path = tmp_path / "esrnn.pt"
    model.save(path)
    assert read_state(path, "rnnkit.esrnn")["format"] == "rnnkit.esrnn/1"  # weights_only load
    for loaded in (rnnkit.load(path), ESRNN.load(path)):
        for hist in (None, data):
            a, b = model.predict(history=hist), loaded.predict(history=hist)
            for i in range(4):
                np.testing.assert_array_equal(a.mean[i], b.mean[i])
                np.testing.assert_array_equal(a.upper[95][i], b.upper[95][i])
    torch.load(path, weights_only=True)


def test_fit_is_reproducible_and_history_extends():
    data = synthetic(3, m=4, lengths=(50, 60))
    cfg = ESRNNConfig(horizon=4, season=4, **TINY)
    a = ESRNN(cfg).fit([s.head(40) for s in data])
    b = ESRNN(cfg).fit([s.head(40) for s in data])
    fa, fb = a.predict(history=data), b.predict(history=data)
    np.testing.assert_array_equal(fa.mean[1], fb.mean[1])
    assert a.history["best_step"] in (6, 12) and not a.history["refit"]
    r = ESRNN(cfg, refit=True).fit([s.head(40) for s in data])
    assert r.history["refit"] and r.history["best_step"] in (6, 12)
    assert np.isfinite(r.predict(history=data).mean[0]).all()
    # forecasting from the longer history starts after its end, not the fitted data's
    assert fa.time[0][0] == data[0].time[-1] + pd.offsets.MonthBegin(1)
    assert not np.allclose(fa.mean[0], a.predict().mean[0])


def test_unseen_series_and_single_series_renaming():
    data = synthetic(3, m=4, lengths=(50, 60))
    model = ESRNN(ESRNNConfig(horizon=4, season=4, **TINY)).fit(data[:2])
    f = model.predict(history=[data[2]])
    assert f.names == ["s2"] and np.isfinite(f.mean[0]).all()
    single = ESRNN(ESRNNConfig(horizon=4, season=4, **TINY)).fit(data[0].target[:, 0])
    g = single.predict(history=data[1].target[:, 0])
    assert g.names == [single.names[0]] and np.isfinite(g.mean[0]).all()


def test_non_positive_series_use_the_additive_form():
    g = rng()
    t = np.arange(60)
    ys = [np.sin(2 * np.pi * t / 4) + g.normal(0, 0.1, 60),  # crosses zero
          5 + np.sin(2 * np.pi * t / 4) + g.normal(0, 0.1, 60)]
    data = [from_array(y)[0] for y in ys]
    data[1].name = "1"
    model = ESRNN(ESRNNConfig(horizon=4, season=4, **TINY)).fit(data)
    assert model.mult.tolist() == [False, True]
    f = model.predict()
    assert all(np.isfinite(m).all() for m in f.mean)
    assert (f.lower[80][0] < f.upper[80][0]).all()
    with pytest.raises(ValueError, match="form='additive'"):
        model.predict(history=[data[0], Series("1", data[1].time, data[1].target - 10,
                                               data[1].past, data[1].future, None)])
    with pytest.raises(ValueError, match="values <= 0.*form='auto' or 'additive'"):
        ESRNN(ESRNNConfig(horizon=4, season=4, form="multiplicative", **TINY)).fit(data)


def test_bad_inputs_name_the_fix():
    y = 10 + np.sin(np.arange(60))
    bad = y.copy()
    bad[7] = np.nan
    cfg = ESRNNConfig(horizon=4, season=4, **TINY)
    with pytest.raises(ValueError, match="NaN.*fill="):
        ESRNN(cfg).fit(bad)
    nan_series = Series("x", pd.RangeIndex(60), bad[:, None], np.zeros((60, 0)),
                        np.zeros((60, 0)), None)
    with pytest.raises(ValueError, match="NaN/inf"):
        ESRNN(cfg).fit([nan_series])
    with pytest.raises(SeriesTooShortError, match="input_len"):
        ESRNN(cfg).fit(y[:cfg.input_len + cfg.horizon - 1])
    # too short for any validation window before which a training window fits: a warning
    # saying so and all max_steps, exactly as asked for with val_windows=0
    short = y[:cfg.input_len + cfg.horizon + 2]
    with pytest.warns(UserWarning, match="room for 0 of the .* validation windows.*without "
                      "early stopping"):
        warned = ESRNN(cfg).fit(short)
    ok = ESRNN(cfg, val_windows=0).fit(short)
    assert ok.history["best_step"] == warned.history["best_step"] == cfg.max_steps
    np.testing.assert_allclose(warned.predict().mean[0], ok.predict().mean[0], rtol=1e-6)
    # room for one of the three: early stopping on that one
    one = y[:cfg.input_len + 2 * cfg.horizon + cfg.val_stride - 1]
    with pytest.warns(UserWarning, match="room for 1 of the 3 validation windows"):
        assert ESRNN(cfg).fit(one).history["val_windows"] == 1
    df = pd.DataFrame({"t": pd.date_range("2000-01-01", periods=60, freq="MS"), "y": y,
                       "x": np.arange(60.0)})
    with pytest.raises(ValueError, match="no covariates.*leave them out"):
        ESRNN(cfg).fit(df, time="t", target="y", past_covariates=["x"])
    with pytest.raises(RuntimeError, match="not fitted"):
        ESRNN(cfg).predict()
    model = ESRNN(cfg).fit(y)
    with pytest.raises(ValueError, match="levels \\[50.0\\] were not learned"):
        model.predict(levels=(50,))
    assert model.predict(levels=()).lower == {}
    with pytest.raises(ValueError, match="needs input_len|input_len="):
        model.predict(history=y[:3])


@pytest.mark.parametrize("kw, match", [
    (dict(horizon=0), "horizon must be a positive integer"),
    (dict(season=1.5), "season must be a positive integer"),
    (dict(form="log"), "form must be one of"),
    (dict(levels=(120,)), "strictly between 0 and 100"),
    (dict(lr=0), "lr must be a positive number"),
    (dict(max_history=10), "max_history=10 is shorter.*raise max_history"),
])
def test_config_errors(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ESRNNConfig(**kw)


def test_config_defaults():
    c = ESRNNConfig(horizon=6, season=12)
    assert c.input_len == 12 and c.val_stride == 3
    assert c.quantiles == (0.025, 0.1, 0.5, 0.9, 0.975)
    assert ESRNNConfig(levels=()).quantiles == (0.5,)


# -- a task it must solve ---------------------------------------------------------------------

@pytest.mark.slow
def test_beats_seasonal_naive_with_calibrated_intervals():
    torch.set_num_threads(1)
    data = synthetic(20, m=12, seed=3)
    cfg = ESRNNConfig(horizon=12, season=12, max_steps=300, eval_every=25, seed=0)
    es = backtest(lambda: ESRNN(cfg), data, horizon=12, n_windows=2, season=12)
    sn = backtest(lambda: SeasonalNaive(12, 12), data, horizon=12, n_windows=2, season=12)
    s_es, s_sn = es.summary(), sn.summary()
    assert s_es["mase"] < 0.9 * s_sn["mase"], (s_es, s_sn)
    assert 0.65 <= s_es["coverage_80"] <= 0.95, s_es
    assert 0.85 <= s_es["coverage_95"] <= 1.0, s_es
