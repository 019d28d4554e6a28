"""ForecastCombination: weights against a brute-force reference, mean/median against numpy,
a good member outweighing a bad one, use inside backtest(), and errors for bad arguments."""

import dataclasses

import numpy as np
import pytest

pytest.importorskip("pandas")
pytest.importorskip("sktime")

from rnnkit.data.timeseries import SeriesTooShortError, as_series, from_array  # noqa: E402
from rnnkit.forecast.backtest import backtest  # noqa: E402
from rnnkit.forecast.baselines import SeasonalNaive  # noqa: E402
from rnnkit.forecast.combine import ForecastCombination, combination_weights  # noqa: E402
from rnnkit.forecast.result import Forecast  # noqa: E402


class Shift:
    """Last value + ``c`` (+ ``slope * h``); intervals mean -/+ ``level / 50``. A transparent
    member whose forecasts a test can recompute by hand."""

    def __init__(self, c=0.0, slope=0.0, horizon=4):
        self.c, self.slope, self.horizon, self.series = c, slope, horizon, None

    def fit(self, data, **kw):
        self.series = as_series(data, **kw)
        return self

    def predict(self, history=None, future=None, levels=None):
        hs = self.series if history is None else as_series(history)
        levels = (80, 95) if levels is None else tuple(levels)
        h = np.arange(1, self.horizon + 1)[:, None]
        means = [s.target[-1] + self.c + self.slope * h for s in hs]
        return Forecast([s.name for s in hs], hs[0].target_names, [None] * len(hs), means,
                        {lv: [m - lv / 50 for m in means] for lv in levels},
                        {lv: [m + lv / 50 for m in means] for lv in levels})


def named(y, name):
    return dataclasses.replace(from_array(y)[0], name=name)


def two_series(rng):
    a = np.cumsum(rng.normal(size=40)) + 10
    b = np.cumsum(rng.normal(size=31)) - 5
    return [named(a, "a"), named(b, "b")]


def brute_mase_errors(series, member_fns, H, V, m):
    """Mean MASE over the last V origins (stride H), each member refitted before the origin,
    computed from scratch with numpy (no backtest, no sktime)."""
    E = np.zeros((len(series), len(member_fns)))
    for i, s in enumerate(series):
        y = s.target[:, 0]
        T = len(y)
        for j, fn in enumerate(member_fns):
            errs = []
            for v in range(V):
                o = T - H - (V - 1 - v) * H
                pred = fn(y[:o])
                scale = np.mean(np.abs(y[m:o] - y[:o - m]))
                errs.append(np.mean(np.abs(y[o:o + H] - pred)) / scale)
            E[i, j] = np.mean(errs)
    return E


def test_weights_equal_hand_computed_inverse_errors():
    rng = np.random.default_rng()
    series = two_series(rng)
    c1, c2 = rng.uniform(0.5, 2.0, size=2)
    H, V = 4, 3
    comb = ForecastCombination({"zero": Shift(0.0, horizon=H), "up": Shift(c1, horizon=H),
                                "down": lambda: Shift(-c2, 0.1, horizon=H)},
                               validation_windows=V, season=1, horizon=H).fit(series)
    fns = [lambda y: np.full(H, y[-1]), lambda y: np.full(H, y[-1] + c1),
           lambda y: y[-1] - c2 + 0.1 * np.arange(1, H + 1)]
    E = brute_mase_errors(series, fns, H, V, 1)
    np.testing.assert_allclose(comb.errors_.to_numpy(), E, rtol=1e-10)
    inv = 1 / E
    np.testing.assert_allclose(comb.weights_.to_numpy(), inv / inv.sum(1, keepdims=True),
                               rtol=1e-10)
    assert list(comb.weights_.index) == ["a", "b"]
    assert list(comb.weights_.columns) == ["zero", "up", "down"]

    # the combined forecast is the weighted sum of the members', per series
    f = comb.predict(levels=(80,))
    W = comb.weights_.to_numpy()
    for i, s in enumerate(series):
        y = s.target[:, 0]
        members = np.stack([fn(y) for fn in fns])  # [M, H]
        np.testing.assert_allclose(f.mean[i][:, 0], W[i] @ members, rtol=1e-10)
        np.testing.assert_allclose(f.lower[80][i][:, 0], W[i] @ (members - 80 / 50), rtol=1e-10)

    # top_k keeps the k lowest errors per series; "best" the single lowest
    top = ForecastCombination({"zero": Shift(0.0, horizon=H), "up": Shift(c1, horizon=H),
                               "down": lambda: Shift(-c2, 0.1, horizon=H)}, top_k=2,
                              validation_windows=V, horizon=H).fit(series)
    for i in range(2):
        keep = np.argsort(E[i])[:2]
        ref = np.zeros(3)
        ref[keep] = inv[i, keep] / inv[i, keep].sum()
        np.testing.assert_allclose(top.weights_.to_numpy()[i], ref, rtol=1e-10)
    best = ForecastCombination({"zero": Shift(0.0, horizon=H), "up": Shift(c1, horizon=H),
                                "down": lambda: Shift(-c2, 0.1, horizon=H)}, method="best",
                               validation_windows=V, horizon=H).fit(series)
    np.testing.assert_array_equal(best.weights_.to_numpy(), np.eye(3)[E.argmin(1)])


def test_weights_helper_edge_cases():
    assert combination_weights(np.array([[0.0, 2.0, 0.0]])).tolist() == [[0.5, 0.0, 0.5]]
    np.testing.assert_allclose(combination_weights(np.array([[1.0, 2.0, 4.0]]), "mean"),
                               [[1 / 3] * 3])
    with pytest.raises(ValueError, match="finite"):
        combination_weights(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="method must be"):
        combination_weights(np.ones((1, 2)), "max")


@pytest.mark.parametrize("method,reduce", [("mean", np.mean), ("median", np.median)])
def test_mean_and_median_equal_numpy(method, reduce):
    rng = np.random.default_rng()
    series = two_series(rng)
    cs = rng.normal(size=3) * 2
    members = {f"m{k}": Shift(c, slope=rng.normal(), horizon=5) for k, c in enumerate(cs)}
    comb = ForecastCombination(members, method=method, validation_windows=0,
                               horizon=5).fit(series)
    assert comb.errors_ is None and np.allclose(comb.weights_.to_numpy(), 1 / 3)
    f = comb.predict(levels=(80, 95))
    fs = [m.predict(history=series, levels=(80, 95)) for m in comb.models_.values()]
    for i in range(2):
        np.testing.assert_allclose(f.mean[i], reduce(np.stack([g.mean[i] for g in fs]), axis=0))
        for lv in (80, 95):
            np.testing.assert_allclose(
                f.upper[lv][i], reduce(np.stack([g.upper[lv][i] for g in fs]), axis=0))
    # the validation still runs (for inspection) when windows are given
    checked = ForecastCombination(members, method=method, horizon=5).fit(series)
    assert checked.errors_.shape == (2, 3)


def seasonal(rng, T=96, m=12):
    t = np.arange(T)
    return 50 + 10 * np.sin(2 * np.pi * t / m) + 0.1 * t + rng.normal(scale=0.5, size=T)


def test_good_member_outweighs_bad_and_scores_near_it_held_out():
    rng = np.random.default_rng()
    y = seasonal(rng)
    members = {"good": SeasonalNaive(season=12, horizon=12),
               "bad": lambda: Shift(15.0, horizon=12)}
    comb = ForecastCombination(members, season=12, horizon=12).fit(y[:72])
    w = comb.weights_.iloc[0]
    assert w["good"] > 0.8 and w["good"] + w["bad"] == pytest.approx(1.0)

    # held-out windows (after the data the weights saw), inside backtest()
    def factory():
        return ForecastCombination(members, season=12, horizon=12, validation_windows=2)

    res = backtest(factory, y, horizon=12, n_windows=2, season=12, levels=(80,))
    good = backtest(lambda: SeasonalNaive(season=12, horizon=12), y, horizon=12, n_windows=2,
                    season=12, levels=())
    bad = backtest(lambda: Shift(15.0, horizon=12), y, horizon=12, n_windows=2, season=12,
                   levels=())
    g, b, c = (r.summary()["mase"] for r in (good, bad, res))
    assert c <= g + 0.2 * (b - g) and c < b
    assert "coverage_80" in res.scores.columns
    # refit inside backtest works too
    res2 = backtest(factory, y, horizon=12, n_windows=2, season=12, levels=(), refit=True)
    assert np.isfinite(res2.summary()["mase"])


def test_unknown_series_get_mean_weights():
    rng = np.random.default_rng()
    series = two_series(rng)
    comb = ForecastCombination({"z": Shift(0.0), "u": Shift(1.0)}, horizon=4).fit(series)
    new = named(series[0].target[:, 0] + 3, "new")
    f = comb.predict(history=[new], levels=())
    w = comb.weights_.to_numpy().mean(0)
    y = new.target[-1, 0]
    np.testing.assert_allclose(f.mean[0][:, 0], w[0] * y + w[1] * (y + 1.0))


def test_bad_arguments():
    with pytest.raises(ValueError, match="non-empty dict"):
        ForecastCombination({})
    with pytest.raises(ValueError, match="non-empty dict"):
        ForecastCombination([Shift()])
    with pytest.raises(TypeError, match="neither a model"):
        ForecastCombination({"x": 3})
    with pytest.raises(ValueError, match="method must be one of"):
        ForecastCombination({"x": Shift()}, method="weighted")
    with pytest.raises(ValueError, match="validation_windows >= 1"):
        ForecastCombination({"x": Shift()}, validation_windows=0)
    with pytest.raises(ValueError, match="validation_windows must be an integer"):
        ForecastCombination({"x": Shift()}, validation_windows=1.5)
    with pytest.raises(ValueError, match="horizon must be an integer"):
        ForecastCombination({"x": Shift()}, horizon=0)
    with pytest.raises(ValueError, match="top_k only applies"):
        ForecastCombination({"x": Shift()}, method="best", top_k=1)
    comb = ForecastCombination({"x": Shift()}, horizon=4)
    with pytest.raises(RuntimeError, match="not fitted"):
        comb.predict()
    # a member that cannot fit the data before a validation origin is named
    short = ForecastCombination({"x": SeasonalNaive(season=12, horizon=4)}, horizon=4)
    with pytest.warns(UserWarning, match="room for 1 of the 3"), \
            pytest.raises(SeriesTooShortError, match="member 'x'"):
        short.fit(np.arange(10.0))
    with pytest.raises(TypeError, match="returned a int"):
        ForecastCombination({"x": lambda: 3}, horizon=4).fit(np.arange(40.0))
    # members forecasting different horizons cannot be combined
    mixed = ForecastCombination({"a": Shift(horizon=4), "b": Shift(horizon=5)},
                                method="mean", validation_windows=0, horizon=4)
    with pytest.raises(ValueError, match="every member must forecast"):
        mixed.fit(np.arange(40.0)).predict()


def test_save_load_round_trip(tmp_path):
    from rnnkit import saving
    from rnnkit.forecast import Forecaster, ForecasterConfig
    from rnnkit.forecast.baselines import ETS, Naive2

    rng = np.random.default_rng()
    y = seasonal(rng, T=60, m=4)
    tiny = Forecaster(ForecasterConfig(horizon=4, input_len=8, hidden_size=4, max_steps=5,
                                       head="gaussian"))
    comb = ForecastCombination({"snaive": SeasonalNaive(season=4, horizon=4),
                                "ets": lambda: ETS(season=4, horizon=4), "rnn": tiny,
                                "naive2": Naive2(season=4, horizon=4)},
                               season=4, horizon=4, validation_windows=2)
    comb.fit(from_array(y, freq="MS", start="2000-01-01"))
    path = tmp_path / "comb.pt"
    comb.save(path)
    back = saving.load(path)
    assert isinstance(back, ForecastCombination)
    assert back.weights_.equals(comb.weights_) and back.errors_.equals(comb.errors_)
    a, b = comb.predict(levels=(80,)), back.predict(levels=(80,))
    np.testing.assert_allclose(b.mean[0], a.mean[0], rtol=1e-6)
    np.testing.assert_allclose(b.lower[80][0], a.lower[80][0], rtol=1e-6)
    assert list(b.time[0]) == list(a.time[0])
    assert ForecastCombination.load(path).method == "inverse_error"

    unsavable = ForecastCombination({"x": Shift()}, horizon=4).fit(np.arange(40.0))
    with pytest.raises(NotImplementedError, match="member 'x' is a Shift, which cannot be "
                       "saved"):
        unsavable.save(tmp_path / "no.pt")
    with pytest.raises(RuntimeError, match="not fitted"):
        ForecastCombination({"x": Shift()}).save(tmp_path / "no.pt")


def test_refit_false_fits_each_member_once_before_the_validation_origins():
    """``refit=False`` (a global RNN's usual use): one fit before the first validation origin
    plus the final one, instead of one per origin; a member that forecasts from the history
    it is given scores the same either way."""
    fits = []

    class Counted(Shift):
        def fit(self, data, **kw):
            fits.append(len(as_series(data)[0]))
            return super().fit(data, **kw)

    rng = np.random.default_rng()
    series = two_series(rng)
    H, V = 4, 3
    errs = {}
    for refit in (True, False):
        fits.clear()
        comb = ForecastCombination({"a": lambda: Counted(0.0, horizon=H),
                                    "b": lambda: Counted(1.0, horizon=H)},
                                   validation_windows=V, horizon=H, refit=refit).fit(series)
        errs[refit] = comb.errors_.to_numpy()
        # per member the validation fits (V or 1), each on the data before an origin; then
        # each member's final fit on all 40 steps of the first series
        per = V if refit else 1
        assert fits == [40 - H * V + H * k for k in range(per)] * 2 + [40, 40]
    np.testing.assert_allclose(errs[True], errs[False], rtol=1e-12)


def test_short_series_use_the_validation_windows_that_fit_or_equal_weights():
    """A series too short for every validation window (backtest needs H + (V-1) H + m + 2
    steps): the windows that fit weight the members; with none, equal weights; a warning
    says which."""
    rng = np.random.default_rng()
    H = 4
    members = {"zero": Shift(0.0, horizon=H), "up": Shift(1.0, horizon=H)}
    y = np.cumsum(rng.normal(size=H + H + 1 + 2)) + 10  # room for 2 of 3 windows, m = 1
    with pytest.warns(UserWarning, match="room for 2 of the 3 validation windows"):
        two = ForecastCombination(members, validation_windows=3, horizon=H).fit(y)
    ref = ForecastCombination(members, validation_windows=2, horizon=H).fit(y)
    np.testing.assert_allclose(two.weights_.to_numpy(), ref.weights_.to_numpy(), rtol=1e-12)
    with pytest.warns(UserWarning, match="room for 0 of the 3.*equal weights"):
        none = ForecastCombination(members, validation_windows=3, horizon=H).fit(y[:H + 2])
    np.testing.assert_array_equal(none.weights_.to_numpy(), [[0.5, 0.5]])
    f = none.predict(levels=())
    np.testing.assert_allclose(f.mean[0][:, 0], y[H + 1] + 0.5)
