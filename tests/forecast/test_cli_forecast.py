"""`rnnkit forecast ...` end to end on small CSV files."""

import re

import numpy as np
import pytest
import torch

pd = pytest.importorskip("pandas")

from rnnkit.cli import main  # noqa: E402

rng = np.random.default_rng(3)


@pytest.fixture
def sales_csv(tmp_path):
    n = 96
    t = np.arange(n)
    df = pd.DataFrame({"month": pd.date_range("2015-01-01", periods=n, freq="MS"),
                       "sales": 100 + t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)})
    path = tmp_path / "sales.csv"
    df.to_csv(path, index=False)
    return path


def test_train_predict_backtest(sales_csv, tmp_path, capsys):
    ckpt, out, png = tmp_path / "m.pt", tmp_path / "f.csv", tmp_path / "f.png"
    assert main(["forecast", "train", "--csv", str(sales_csv), "--time", "month", "--target",
                 "sales", "--horizon", "6", "--season", "12", "--head", "gaussian",
                 "--steps", "30", "--out", str(ckpt)]) == 0
    assert ckpt.exists()
    assert main(["forecast", "predict", str(ckpt), "--csv", str(sales_csv), "--out", str(out),
                 "--plot", str(png), "--levels", "80"]) == 0
    f = pd.read_csv(out)
    assert len(f) == 6 and {"mean", "lower_80", "upper_80"} <= set(f.columns)
    assert f["time"].iloc[0] == "2023-01-01" and np.isfinite(f["mean"]).all()
    assert (f["lower_80"] < f["upper_80"]).all() and png.stat().st_size > 1000
    scores = tmp_path / "bt.csv"
    assert main(["forecast", "backtest", "--csv", str(sales_csv), "--time", "month",
                 "--target", "sales", "--horizon", "6", "--season", "12", "--model",
                 "snaive", "--windows", "2", "--out", str(scores)]) == 0
    bt = pd.read_csv(scores)
    assert len(bt) == 2 and {"mase", "smape", "coverage_80"} <= set(bt.columns)
    assert "mean:" in capsys.readouterr().out


def test_forecast_bad_input_exit_codes(sales_csv, tmp_path, capsys):
    assert main(["forecast", "train", "--csv", str(tmp_path / "nope.csv"), "--time", "m",
                 "--target", "y", "--horizon", "3"]) == 2
    assert "no such CSV file" in capsys.readouterr().err
    assert main(["forecast", "train", "--csv", str(sales_csv), "--time", "month", "--target",
                 "revenue", "--horizon", "3"]) == 2
    assert "not in the data" in capsys.readouterr().err
    gappy = tmp_path / "gappy.csv"
    pd.read_csv(sales_csv).drop(index=[20, 21]).to_csv(gappy, index=False)
    assert main(["forecast", "train", "--csv", str(gappy), "--time", "month", "--target",
                 "sales", "--horizon", "3", "--steps", "5"]) == 2
    assert "missing timestamps" in capsys.readouterr().err
    short = tmp_path / "short.csv"
    pd.read_csv(sales_csv).head(10).to_csv(short, index=False)
    assert main(["forecast", "train", "--csv", str(short), "--time", "month", "--target",
                 "sales", "--horizon", "6", "--steps", "5"]) == 2
    assert "needs at least" in capsys.readouterr().err
    assert main(["forecast", "backtest", "--csv", str(sales_csv), "--time", "month",
                 "--target", "sales", "--horizon", "3", "--ensemble", "0"]) == 2
    assert "--ensemble takes a number of RNN seeds >= 1, got 0" in capsys.readouterr().err
    assert main(["forecast", "backtest", "--csv", str(sales_csv), "--time", "month",
                 "--target", "sales", "--horizon", "3", "--model", "snaive", "--ensemble",
                 "3"]) == 2  # was silently ignored
    assert "--ensemble: RNN options, for --model lstm or gru" in capsys.readouterr().err
    assert main(["forecast", "train", "--csv", str(sales_csv), "--time", "month", "--target",
                 "sales", "--horizon", "3", "--freq", "monthly"]) == 2
    assert "is not a pandas frequency" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert main(["forecast", "predict", str(bad)]) == 2
    assert "not a readable rnnkit checkpoint" in capsys.readouterr().err


def test_forecast_train_options_come_from_the_configs(sales_csv, tmp_path):
    from rnnkit.forecast import Forecaster
    from rnnkit.forecast.config import forecast_train

    toml = tmp_path / "run.toml"
    toml.write_text('[model]\nhorizon = 4\nhidden_size = 8\nquantiles = [0.2, 0.5, 0.8]\n'
                    '[train]\nmax_steps = 20\nlr = 0.01\n')
    ckpt = tmp_path / "m.pt"
    assert main(["forecast", "train", "--csv", str(sales_csv), "--time", "month", "--target",
                 "sales", "--config", str(toml), "--hidden-size", "12", "--train.lr", "0.02",
                 "--seed", "2", "--model.num_layers", "2", "--out", str(ckpt)]) == 0
    c = Forecaster.load(ckpt).config
    assert (c.horizon, c.hidden_size, c.num_layers, c.quantiles) == (4, 12, 2, (0.2, 0.5, 0.8))
    # command defaults: season 12 from the monthly frequency, input 2 x season, its baseline
    assert (c.season, c.input_len, c.transform, c.baseline) == (12, 24, "auto", "seasonal")
    assert c.train == forecast_train(20, lr=0.02, seed=2)
    assert main(["forecast", "train", "--csv", str(sales_csv), "--time", "month", "--target",
                 "sales", "--steps", "5"]) == 2                            # no horizon


def test_forecast_train_rejects_unknown_toml_keys(sales_csv, tmp_path, capsys):
    toml = tmp_path / "bad.toml"
    toml.write_text("[model]\nhorizon = 4\nhiden = 8\n")
    assert main(["forecast", "train", "--csv", str(sales_csv), "--time", "month", "--target",
                 "sales", "--config", str(toml)]) == 2
    assert "unknown [model] option(s) hiden" in capsys.readouterr().err


# -- outputs: checked before any work, never replaced silently, never left half-written ---------

def _train_args(csv, out, *extra):
    return ["forecast", "train", "--csv", str(csv), "--time", "month", "--target", "sales",
            "--horizon", "6", "--steps", "3", "--hidden-size", "4", "--out", str(out), *extra]


@pytest.fixture
def no_training(monkeypatch):
    """Training fails the test: the command must refuse before any work."""
    from rnnkit.forecast.forecaster import Forecaster

    def fit(self, *a, **k):
        raise AssertionError("trained before checking the outputs")

    monkeypatch.setattr(Forecaster, "fit", fit)


def test_outputs_are_checked_before_training(sales_csv, tmp_path, capsys, no_training):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    bad = str(a_file / "x.pt")   # under a file: cannot be written
    assert main(_train_args(sales_csv, bad)) == 2
    assert f"--out {bad}: {a_file} is a file, not a folder" in capsys.readouterr().err
    assert main(_train_args(sales_csv, tmp_path / "m.pt", "--train.out_dir", bad)) == 2
    assert "--train.out_dir" in capsys.readouterr().err
    assert main(_train_args(sales_csv, tmp_path)) == 2
    assert "is a folder" in capsys.readouterr().err
    backtest = ["forecast", "backtest", "--csv", str(sales_csv), "--time", "month",
                "--target", "sales", "--horizon", "6", "--steps", "3"]
    for flag in ("--out", "--plot"):
        assert main(backtest + [flag, bad]) == 2
        assert f"{flag} {bad}: {a_file} is a file" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.pt"))


def test_train_replaces_a_model_only_with_overwrite(sales_csv, tmp_path, capsys):
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"an earlier model")
    assert main(_train_args(sales_csv, ckpt)) == 2
    err = capsys.readouterr().err
    assert f"--out {ckpt} exists; pass --overwrite to replace it" in err
    assert ckpt.read_bytes() == b"an earlier model"
    assert main(_train_args(sales_csv, ckpt, "--overwrite")) == 0
    assert ckpt.read_bytes() != b"an earlier model"


def _interrupted(monkeypatch, cls):
    from rnnkit.train import TrainingInterrupted

    def fit(self, *a, **k):
        raise TrainingInterrupted(2, None, "SIGINT")  # what the Trainer raises on Ctrl-C

    monkeypatch.setattr(cls, "fit", fit)


def _exit_code(argv):
    """``main``'s return code; an interrupt that reaches it is exit 130 (rnnkit.cli's job)."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        return 130


def test_ctrl_c_leaves_an_existing_out_untouched(sales_csv, tmp_path, monkeypatch):
    from rnnkit.forecast.forecaster import Forecaster

    _interrupted(monkeypatch, Forecaster)
    ckpt, scores = tmp_path / "m.pt", tmp_path / "bt.csv"
    ckpt.write_bytes(b"an earlier model")
    scores.write_text("earlier scores")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert _exit_code(_train_args(sales_csv, ckpt, "--overwrite")) == 130
    assert _exit_code(["forecast", "backtest", "--csv", str(sales_csv), "--time", "month",
                       "--target", "sales", "--horizon", "6", "--steps", "3", "--out",
                       str(scores), "--plot", str(tmp_path / "bt.png")]) == 130
    assert ckpt.read_bytes() == b"an earlier model" and scores.read_text() == "earlier scores"
    assert sorted(p.name for p in tmp_path.iterdir()) == before   # nothing half-written


# -- intervals: levels the model cannot give are refused -----------------------------------------

def test_predict_refuses_levels_the_head_cannot_give(sales_csv, tmp_path, capsys):
    q, point = tmp_path / "q.pt", tmp_path / "p.pt"
    assert main(_train_args(sales_csv, q, "--head", "quantile")) == 0
    assert main(_train_args(sales_csv, point)) == 0
    capsys.readouterr()
    assert main(["forecast", "predict", str(q), "--levels", "80", "95"]) == 2
    err = capsys.readouterr().err
    assert "levels 95: not available from this model's quantile head" in err
    assert "gives levels 80" in err and "--head gaussian" in err and "head='" not in err
    assert main(["forecast", "predict", str(q)]) == 0   # default: the levels it gives
    assert "lower_80" in capsys.readouterr().out
    assert main(["forecast", "predict", str(point), "--levels", "80"]) == 2
    assert "point head, which gives no intervals" in capsys.readouterr().err
    assert main(["forecast", "predict", str(point)]) == 0
    out = capsys.readouterr().out
    assert "mean" in out and "lower_" not in out
    assert main(["forecast", "backtest", "--csv", str(sales_csv), "--time", "month",
                 "--target", "sales", "--horizon", "6", "--steps", "3000",
                 "--levels", "80"]) == 2   # refused before the (long) training
    assert "levels 80: not available" in capsys.readouterr().err


# -- too short for validation: refused, with the rows needed -----------------------------------

def test_a_series_too_short_for_validation_is_refused(sales_csv, tmp_path, capsys):
    short = tmp_path / "short.csv"
    pd.read_csv(sales_csv).head(25).to_csv(short, index=False)
    args = ["forecast", "train", "--csv", str(short), "--time", "month", "--target", "sales",
            "--horizon", "7", "--steps", "3", "--hidden-size", "4",
            "--season", "1"]  # else 12 from the monthly data, and input 24 > these 25 steps
    assert main(args + ["--out", str(tmp_path / "a.pt")]) == 2
    err = capsys.readouterr().err
    assert "has 25 steps but" in err and "needs at least 28" in err
    assert "--model.val_fraction 0 to train without validation" in err
    assert "val_fraction=" not in err and not (tmp_path / "a.pt").exists()
    assert main(args + ["--model.val_fraction", "0", "--out", str(tmp_path / "b.pt")]) == 0
    assert "(no validation: --model.val_fraction 0)" in capsys.readouterr().out
    thirty = tmp_path / "thirty.csv"   # holds one validation window of one horizon
    pd.read_csv(sales_csv).head(30).to_csv(thirty, index=False)
    args[3] = str(thirty)
    assert main(args + ["--out", str(tmp_path / "c.pt")]) == 0
    out = capsys.readouterr().out
    assert "best validation loss" in out and "inf" not in out


# -- help and messages -------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["forecast"], ["forecast", "train"],
                                     ["forecast", "predict"], ["forecast", "backtest"]])
def test_help_is_plain_text_with_the_real_defaults(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(command + ["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and not re.search(r":\w+:`", text) and "`" not in text
    if command[-1] in ("train", "backtest"):
        assert "(default: raise)" in " ".join(text.split()) and "default: error" not in text
        assert "interpolate" in text and "ffill" in text


def test_errors_name_the_flags_not_python_keywords(sales_csv, tmp_path, capsys):
    gappy = tmp_path / "gappy.csv"
    pd.read_csv(sales_csv).drop(index=[20, 21]).to_csv(gappy, index=False)
    assert main(["forecast", "train", "--csv", str(gappy), "--time", "month", "--target",
                 "sales", "--horizon", "3", "--steps", "5", "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert "--fill interpolate or --fill ffill" in err and "fill=" not in err
    assert "--freq" in err and "freq=" not in err and err.count("\n") == 1
    assert main(_train_args(sales_csv, tmp_path / "m.pt", "--steps", "-1")) == 2
    err = capsys.readouterr().err
    assert "--steps must be a positive integer, got -1" in err and "warmup" not in err
    assert main(_train_args(sales_csv, tmp_path / "m.pt", "--input-len", "12",
                            "--ar-window", "13")) == 2
    assert "--ar-window must be an integer in [0, --input-len 12], got 13; lower --ar-window " \
           "or raise --input-len" in capsys.readouterr().err


def test_in_flag_words_leaves_other_words_alone():
    from rnnkit.commands.options import in_flag_words

    flags = {"series": "--series", "head": "--head", "input_len": "--input-len",
             "max_steps": "--steps"}
    assert in_flag_words("series '0': the quantile head (input_len 'x')", flags) == \
        "series '0': the quantile head (--input-len 'x')"
    assert in_flag_words("see --model.input_len and my_input_len", flags) == \
        "see --model.input_len and my_input_len"
    assert in_flag_words("max_steps must be >= 1; raise input_len=4", flags) == \
        "--steps must be >= 1; raise --input-len 4"


def test_predict_prints_the_table_alone_and_the_real_plot_path(sales_csv, tmp_path, capsys):
    ckpt = tmp_path / "m.pt"
    assert main(_train_args(sales_csv, ckpt, "--head", "gaussian")) == 0
    capsys.readouterr()
    plot = tmp_path / "plotx"
    assert main(["forecast", "predict", str(ckpt), "--plot", str(plot)]) == 0
    out, err = capsys.readouterr()
    assert "wrote" not in out and len(out.strip().splitlines()) == 7   # header + 6 rows
    assert err.strip() == f"wrote {plot}" and plot.read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "plotx.png").exists()


def test_a_failed_plot_write_leaves_no_file(sales_csv, tmp_path, capsys, monkeypatch):
    ckpt = tmp_path / "m.pt"
    assert main(_train_args(sales_csv, ckpt)) == 0
    before = sorted(p.name for p in tmp_path.iterdir())

    def replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("rnnkit.saving.os.replace", replace)
    assert main(["forecast", "predict", str(ckpt), "--plot", str(tmp_path / "f.png")]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# -- bad data and settings: named by the flag to change, refused before any training -----------

def test_missing_columns_are_named_by_their_flags(sales_csv, tmp_path, capsys):
    for extra, named in ((["--series", "store"], "--series store"),
                         (["--past-covariates", "price"], "--past-covariates price"),
                         (["--future-covariates", "promo"], "--future-covariates promo")):
        assert main(_train_args(sales_csv, tmp_path / "m.pt", *extra)) == 2
        err = capsys.readouterr().err
        assert f"not in the data: {named}; choose from its columns ['month', 'sales']" in err
        assert "=" not in err


def test_season_below_one_is_refused_for_every_model(sales_csv, tmp_path, capsys, no_training):
    for model in ("snaive", "lstm"):   # snaive used to take --season 0 as 1
        assert main(["forecast", "backtest", "--csv", str(sales_csv), "--time", "month",
                     "--target", "sales", "--horizon", "6", "--model", model,
                     "--season", "0"]) == 2
        assert "--season must be a positive integer" in capsys.readouterr().err


def test_a_backtest_whose_first_fit_is_too_short_names_windows(sales_csv, capsys):
    # 12 windows of 6 steps leave the first fit 24 of the 96 steps; input_len 20 needs 32
    assert main(["forecast", "backtest", "--csv", str(sales_csv), "--time", "month",
                 "--target", "sales", "--horizon", "6", "--input-len", "20", "--windows",
                 "12", "--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert "has 24 steps but" in err and "lower --input-len" in err
    assert "the origin of window 1 of 12: fewer windows (--windows) leave it more" in err
    errors = [line for line in err.splitlines() if line.startswith("rnnkit")]
    assert len(errors) == 1 and "n_windows" not in err
    assert "window 1/12: fitting on 24 steps ..." in err  # the progress said so before


def test_backtest_library_names_n_windows():
    from rnnkit.forecast.backtest import backtest
    from rnnkit.forecast.baselines import SeasonalNaive

    y = np.arange(40.0)
    with pytest.raises(ValueError, match="use fewer windows \\(n_windows=\\), a shorter horizon"):
        backtest(lambda: SeasonalNaive(horizon=4), y, horizon=4, n_windows=20)
    with pytest.raises(ValueError, match="n_windows must be a positive integer"):
        backtest(lambda: SeasonalNaive(horizon=4), y, horizon=4, n_windows=0)


def test_predict_csvs_must_hold_the_models_columns(sales_csv, tmp_path, capsys):
    df = pd.read_csv(sales_csv).assign(promo=0.0)
    csv = tmp_path / "promo.csv"
    df.to_csv(csv, index=False)
    ckpt = tmp_path / "m.pt"
    assert main(["forecast", "train", "--csv", str(csv), "--time", "month", "--target",
                 "sales", "--future-covariates", "promo", "--horizon", "3", "--steps", "3",
                 "--hidden-size", "4", "--out", str(ckpt)]) == 0
    capsys.readouterr()
    future = tmp_path / "future.csv"
    pd.DataFrame({"month": pd.date_range("2023-01-01", periods=3, freq="MS"),
                  "discount": [0.0, 1.0, 0.0]}).to_csv(future, index=False)
    assert main(["forecast", "predict", str(ckpt), "--future-csv", str(future)]) == 2
    assert ("--future-csv lacks the column(s) ['promo'] the model was trained on; give a CSV "
            "with the columns ['month', 'promo'] (it has ['month', 'discount'])"
            in capsys.readouterr().err)
    history = tmp_path / "history.csv"
    df.drop(columns="promo").to_csv(history, index=False)
    assert main(["forecast", "predict", str(ckpt), "--csv", str(history), "--future-csv",
                 str(future)]) == 2   # the history needs the covariate too
    assert "--csv lacks the column(s) ['promo']" in capsys.readouterr().err


# -- the season from the frequency, the input length, progress, the search's settings ----------

def _seasonal_csv(path, freq, m, n=200, start="2001-10-01"):
    """A fresh random series with a period-``m`` pattern at ``freq``, as a CSV. The pattern is
    scaled to standard deviation 10, so a naive (m = 1) forecast's error over a season is at
    least ~5 per step, well above the seasonal naive's (trend and noise, ~1.2): an unscaled
    draw of 4 close values let m = 1 win now and then."""
    r = np.random.default_rng(int(torch.randint(0, 2**31, ())))  # RNNKIT_TEST_SEED replays it
    t = np.arange(n)
    pattern = r.normal(0, 1, m)
    pattern = 10 * (pattern - pattern.mean()) / pattern.std()
    y = 200 + 0.1 * t + pattern[t % m] + r.normal(0, 1, n)
    pd.DataFrame({"when": pd.date_range(start, periods=n, freq=freq), "y": y}).to_csv(
        path, index=False)
    return path


def _backtest_scores(csv, tmp_path, capsys, *extra, name="s.csv"):
    out = tmp_path / name
    assert main(["forecast", "backtest", "--csv", str(csv), "--time", "when", "--target", "y",
                 "--horizon", "4", "--windows", "3", "--model", "snaive", "--levels",
                 "--out", str(out), *extra]) == 0
    return pd.read_csv(out), capsys.readouterr().err


@pytest.mark.parametrize("freq, m, word", [
    ("QS-OCT", 4, "quarterly"), ("MS", 12, "monthly"), ("D", 7, "daily"),
    ("h", 24, "hourly"), ("30min", 48, "half-hourly"), ("B", 5, "business-daily"),
])
def test_backtest_season_comes_from_the_frequency(freq, m, word, tmp_path, capsys):
    csv = _seasonal_csv(tmp_path / "y.csv", freq, m)
    inferred, err = _backtest_scores(csv, tmp_path, capsys)
    shown = pd.tseries.frequencies.to_offset(freq).freqstr
    assert f"season {m} (from the {word} frequency {shown}; --season to change)\n" in err
    given, err = _backtest_scores(csv, tmp_path, capsys, "--season", str(m), name="g.csv")
    assert "season " not in err.replace(str(tmp_path), "")  # a given season: not said
    pd.testing.assert_frame_equal(inferred, given)     # the reference: --season m
    none, _ = _backtest_scores(csv, tmp_path, capsys, "--season", "1", name="n.csv")
    assert inferred["mae"].mean() < none["mae"].mean()  # what m = 1 used to cost


def test_quarterly_backtest_no_longer_scores_with_season_one(tmp_path, capsys):
    """The issue's case: a quarterly CSV without --season was scored (MASE) with m = 1."""
    csv = _seasonal_csv(tmp_path / "q.csv", "QS-OCT", 4)
    inferred, _ = _backtest_scores(csv, tmp_path, capsys)
    old, _ = _backtest_scores(csv, tmp_path, capsys, "--season", "1", name="old.csv")
    assert not np.allclose(inferred["mase"], old["mase"])
    y = pd.read_csv(csv)["y"].to_numpy()
    for _, row in inferred.iterrows():  # MASE by hand with m = 4 on each window's history
        o = len(y) - 4 - (2 - int(row["window"])) * 4
        scale = np.abs(y[4:o] - y[:o - 4]).mean()
        np.testing.assert_allclose(row["mase"], np.abs(y[o:o + 4] - y[o - 4:o]).mean() / scale)


def test_integer_steps_and_a_datasets_own_season(tmp_path, capsys):
    csv = tmp_path / "steps.csv"
    pd.DataFrame({"when": np.arange(60), "y": rng.normal(size=60)}).to_csv(csv, index=False)
    _, err = _backtest_scores(csv, tmp_path, capsys)
    assert "season 1 (the --time column holds integer steps, no frequency; --season to " \
           "change)" in err
    pytest.importorskip("vega_datasets")
    # stocks is monthly (12 by its frequency) but registered with season 1: that wins
    assert main(["forecast", "backtest", "--dataset", "stocks", "--horizon", "3", "--windows",
                 "1", "--model", "snaive", "--levels"]) == 0
    err = capsys.readouterr().err
    assert "season 1 (the stocks data set's own; --season to change)" in err
    assert "from the monthly frequency" not in err


def test_input_length_choice_and_training_settings_are_said(sales_csv, tmp_path, capsys):
    from rnnkit.forecast import Forecaster
    from rnnkit.forecast.config import forecast_train

    out = tmp_path / "m.pt"
    assert main(_train_args(sales_csv, out, "--eval-every", "7", "--patience", "3",
                            "--steps", "20")) == 0
    err = capsys.readouterr().err
    assert "season 12 (from the monthly frequency MS; --season to change)" in err
    assert "input length 24 (2 x the season 12; --input-len to change)" in err
    c = Forecaster.load(out).config
    assert c.train == forecast_train(20, eval_every=7, early_stop_patience=3)
    assert main(_train_args(sales_csv, out, "--overwrite", "--season", "1", "--input-len",
                            "10")) == 0
    assert "input length 10 (given; --input-len to change)" in capsys.readouterr().err
    assert main(_train_args(sales_csv, out, "--overwrite", "--season", "1")) == 0
    assert "input length 12 (2 x the horizon 6; --input-len to change)" in \
        capsys.readouterr().err


def test_top_k_beyond_the_grid_counts_the_grid(sales_csv, tmp_path, capsys, no_training):
    grid = ["--search", "baseline=last,seasonal", "input_len=24,36", "ar_window=0,12"]
    for command in ("train", "backtest"):
        argv = ["forecast", command, "--csv", str(sales_csv), "--time", "month", "--target",
                "sales", "--horizon", "6", *grid, "--top-k", "12"]
        assert main(argv) == 2
        assert capsys.readouterr().err == (
            "rnnkit forecast: error: --top-k 12 but the --search grid has 8 settings; give "
            "--top-k 8 or less (--top-k 8 averages them all) or more values to --search\n")


def test_backtest_says_each_window(sales_csv, tmp_path, capsys):
    scores = tmp_path / "bt.csv"
    for refit in ((), ("--refit",)):
        assert main(["forecast", "backtest", "--csv", str(sales_csv), "--time", "month",
                     "--target", "sales", "--horizon", "6", "--model", "snaive", "--windows",
                     "3", "--levels", "--out", str(scores), *refit]) == 0
        err = capsys.readouterr().err.splitlines()
        bt = pd.read_csv(scores)
        fits = [line for line in err if ": fitting on" in line]
        assert fits[0] == "window 1/3: fitting on 78 steps ..."
        assert len(fits) == (3 if refit else 1)
        assert len([line for line in err if re.fullmatch(r"window \d/3: fitted \(\d+ s\)",
                                                         line)]) == len(fits)
        said = [float(re.match(r"window \d/3: MASE ([\d.]+) \(\d+ s in all\)", line)[1])
                for line in err if ": MASE" in line]
        np.testing.assert_allclose(said, bt["mase"], atol=5e-4)  # the scores it wrote


def test_backtest_library_is_silent_unless_asked(capsys):
    from rnnkit.forecast.backtest import backtest
    from rnnkit.forecast.baselines import SeasonalNaive

    y = rng.normal(size=60).cumsum()
    lines = []
    quiet = backtest(lambda: SeasonalNaive(horizon=4), y, horizon=4, n_windows=2, levels=())
    assert capsys.readouterr() == ("", "")
    said = backtest(lambda: SeasonalNaive(horizon=4), y, horizon=4, n_windows=2, levels=(),
                    progress=lines.append)
    pd.testing.assert_frame_equal(quiet.scores, said.scores)
    assert [line.split(":")[0] for line in lines] == ["window 1/2"] * 3 + ["window 2/2"]
    assert capsys.readouterr() == ("", "")


# -- ES-RNN, Naive2 and the combination (--model esrnn | naive2 | comb) -------------------------

@pytest.fixture
def shops_csv(tmp_path):
    """Two quarterly series (one global ES-RNN across them), 40 steps each."""
    r = np.random.default_rng(5)
    t = np.arange(40)
    frames = [pd.DataFrame({"q": pd.date_range("2010-01-01", periods=40, freq="QS"),
                            "shop": f"shop{k}",
                            "sales": 50 + 10 * k + 0.5 * t + np.tile([6.0, -2.0, 3.0, -7.0], 10)
                            + r.normal(0, 1, 40)})
              for k in range(2)]
    path = tmp_path / "shops.csv"
    pd.concat(frames).to_csv(path, index=False)
    return path


def _shops(csv, *extra):
    return ["--csv", str(csv), "--time", "q", "--target", "sales", "--series", "shop",
            "--horizon", "4", *extra]


TINY_ES = ["--steps", "20", "--hidden-size", "8", "--eval-every", "10"]


@pytest.fixture
def one_blas_thread():
    """ARIMA and ETS on one BLAS thread: on a busy machine, threads fighting over the cores
    make each statsmodels fit ~20x slower (the results are the same)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1):
        yield


@pytest.fixture
def esrnn_configs(monkeypatch):
    """The configs of the ESRNNs the command builds (the real class, only watched)."""
    from rnnkit.forecast.esrnn import ESRNN

    seen, init = [], ESRNN.__init__

    def watched(self, config=None, **kw):
        init(self, config, **kw)
        seen.append(self.config)

    monkeypatch.setattr(ESRNN, "__init__", watched)
    return seen


def _weights(out: str) -> pd.DataFrame:
    """The per-series weights table printed after "combination weights ...:"."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("combination weights"))
    head = lines[start + 1].split()
    rows = [line.split() for line in lines[start + 2:] if line.strip()]
    rows = [r for r in rows if len(r) == len(head)]
    return pd.DataFrame([[r[0], *map(float, r[1:])] for r in rows], columns=head)


def test_backtest_esrnn_maps_the_flags_and_scores(shops_csv, tmp_path, capsys, esrnn_configs):
    out = tmp_path / "bt.csv"
    assert main(["forecast", "backtest", *_shops(shops_csv), "--model", "esrnn", *TINY_ES,
                 "--model.num_layers", "1", "--train.lr", "0.01", "--seed", "3",
                 "--patience", "2", "--windows", "2", "--out", str(out)]) == 0
    cap = capsys.readouterr()
    bt = pd.read_csv(out)
    assert len(bt) == 4 and sorted(bt["series"].unique()) == ["shop0", "shop1"]
    assert np.isfinite(bt["mase"]).all() and {"coverage_80", "coverage_95"} <= set(bt.columns)
    assert "mean: mae" in cap.out
    assert "season 4 (from the quarterly frequency" in cap.err
    assert "input length 4 (max(horizon, season, 4), ES-RNN's default" in cap.err
    c = esrnn_configs[-1]
    assert (c.horizon, c.season, c.input_len, c.hidden_size, c.num_layers) == (4, 4, 4, 8, 1)
    assert (c.max_steps, c.eval_every, c.lr, c.seed, c.patience) == (20, 10, 0.01, 3, 2)


def test_backtest_naive2_is_the_m4_benchmark(shops_csv, tmp_path, capsys):
    from rnnkit.forecast.backtest import backtest
    from rnnkit.forecast.baselines import Naive2

    out = tmp_path / "bt.csv"
    assert main(["forecast", "backtest", *_shops(shops_csv), "--model", "naive2", "--windows",
                 "2", "--levels", "80", "--out", str(out)]) == 0
    assert "mean: mae" in capsys.readouterr().out
    ref = backtest(lambda: Naive2(season=4, horizon=4), pd.read_csv(shops_csv), horizon=4,
                   n_windows=2, season=4, levels=(80,), time="q", target="sales",
                   series="shop")
    got = pd.read_csv(out)
    np.testing.assert_allclose(got["mase"], ref.scores["mase"])
    np.testing.assert_allclose(got["coverage_80"], ref.scores["coverage_80"])


def test_backtest_comb_prints_weights_that_sum_to_one(shops_csv, tmp_path, capsys,
                                                      one_blas_thread):
    assert main(["forecast", "backtest", *_shops(shops_csv), "--model", "comb", *TINY_ES,
                 "--windows", "1", "--validation-windows", "1", "--levels", "80"]) == 0
    out = capsys.readouterr().out
    assert "mean: mae" in out
    assert "combination weights (--combine inverse_error, 1 validation windows" in out
    w = _weights(out)
    assert list(w.columns) == ["series", "esrnn", "ets", "arima"]
    assert sorted(w["series"]) == ["shop0", "shop1"]
    np.testing.assert_allclose(w[["esrnn", "ets", "arima"]].sum(axis=1), 1.0, atol=2e-4)
    assert (w[["esrnn", "ets", "arima"]] > 0).all().all()  # inverse errors: all members count


def test_train_esrnn_saves_it_and_predict_reads_it(shops_csv, tmp_path, capsys):
    import rnnkit
    from rnnkit.forecast.esrnn import ESRNN

    ckpt, fc = tmp_path / "es.pt", tmp_path / "f.csv"
    assert main(["forecast", "train", *_shops(shops_csv), "--model", "esrnn", *TINY_ES,
                 "--cell", "gru", "--out", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "trained gru ES-RNN (seed 0) on 2 series for" in out and f"saved {ckpt}" in out
    model = rnnkit.load(ckpt)
    assert isinstance(model, ESRNN) and model.config.cell == "gru"
    assert (model.config.horizon, model.config.season, model.config.max_steps) == (4, 4, 20)
    before = ckpt.read_bytes()
    assert main(["forecast", "train", *_shops(shops_csv), "--model", "esrnn", *TINY_ES,
                 "--out", str(ckpt)]) == 2  # never replaced without --overwrite
    assert "--overwrite" in capsys.readouterr().err and ckpt.read_bytes() == before
    assert main(["forecast", "predict", str(ckpt), "--out", str(fc), "--levels", "80"]) == 0
    f = pd.read_csv(fc)
    assert len(f) == 8 and sorted(f["series"].unique()) == ["shop0", "shop1"]
    assert f["time"].iloc[0] == "2020-01-01" and np.isfinite(f["mean"]).all()
    assert (f["lower_80"] < f["mean"]).all() and (f["mean"] < f["upper_80"]).all()
    # from a history CSV (its last 36 steps): the same columns as in training
    hist = tmp_path / "h.csv"
    pd.read_csv(shops_csv).groupby("shop").tail(36).to_csv(hist, index=False)
    assert main(["forecast", "predict", str(ckpt), "--csv", str(hist), "--out", str(fc)]) == 0
    g = pd.read_csv(fc)
    assert len(g) == 8 and np.isfinite(g["mean"]).all()
    assert main(["forecast", "predict", str(ckpt), "--levels", "50"]) == 2  # not learned
    assert "50" in capsys.readouterr().err


def test_train_comb_of_esrnn_seeds_then_predict(shops_csv, tmp_path, capsys, one_blas_thread):
    import rnnkit
    from rnnkit.forecast.combine import ForecastCombination

    ckpt, fc = tmp_path / "comb.pt", tmp_path / "f.csv"
    assert main(["forecast", "train", *_shops(shops_csv), "--model", "comb", *TINY_ES,
                 "--ensemble", "2", "--combine", "best", "--validation-windows", "1",
                 "--out", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert out.count("trained lstm ES-RNN") == 2  # the seeds 0 and 1, averaged
    assert "(seed 0)" in out and "(seed 1)" in out
    w = _weights(out)
    vals = w[["esrnn", "ets", "arima"]].to_numpy()
    assert ((vals == 0) | (vals == 1)).all() and (vals.sum(axis=1) == 1).all()  # best: one
    comb = rnnkit.load(ckpt)
    assert isinstance(comb, ForecastCombination) and comb.method == "best"
    assert list(comb.models_) == ["esrnn", "ets", "arima"]
    assert isinstance(comb.models_["esrnn"], ForecastCombination)  # the mean of the seeds
    assert comb.models_["esrnn"].method == "mean" and len(comb.models_["esrnn"].models_) == 2
    assert main(["forecast", "predict", str(ckpt), "--csv", str(shops_csv), "--out", str(fc),
                 "--levels", "80"]) == 0
    f = pd.read_csv(fc)
    assert len(f) == 8 and np.isfinite(f[["mean", "lower_80", "upper_80"]]).all().all()
    # the combined forecast is the chosen member's own (weights 1 / 0)
    direct = comb.predict(levels=(80,))
    for i, name in enumerate(direct.names):
        np.testing.assert_allclose(f.loc[f["series"] == name, "mean"], direct.mean[i][:, 0],
                                   rtol=1e-6)


@pytest.fixture
def no_esrnn_training(monkeypatch):
    from rnnkit.forecast.esrnn import ESRNN

    def fit(self, *a, **k):
        raise AssertionError("trained before refusing the flags")

    monkeypatch.setattr(ESRNN, "fit", fit)


@pytest.mark.parametrize("action, extra, named", [
    ("backtest", ["--model", "esrnn", "--ar-window", "8"], ["--ar-window"]),
    ("backtest", ["--model", "comb", "--search", "baseline=last,seasonal"], ["--search"]),
    ("backtest", ["--model", "esrnn", "--head", "gaussian", "--model.baseline", "last"],
     ["--head", "--model.baseline"]),
    ("backtest", ["--model", "comb", "--past-covariates", "sales"], ["--past-covariates"]),
    ("train", ["--model", "esrnn", "--model.val_fraction", "0.2", "--train.optimizer", "sgd"],
     ["--model.val_fraction", "--train.optimizer"]),
    ("train", ["--model", "comb", "--top-k", "2"], ["--top-k"]),
    ("backtest", ["--model", "lstm", "--combine", "mean"], ["--combine"]),
    ("train", ["--validation-windows", "3"], ["--validation-windows", "--model comb"]),
    ("backtest", ["--model", "esrnn", "--levels", "50"], ["--levels 50", "80, 95"]),
    ("backtest", ["--model", "comb", "--combine", "best", "--validation-windows", "0"],
     ["--combine best", "--validation-windows"]),
    ("backtest", ["--model", "esrnn", "--hidden-size", "0"], ["--hidden-size"]),
])
def test_esrnn_and_comb_refuse_flags_in_one_line(shops_csv, tmp_path, capsys, action, extra,
                                                 named, no_esrnn_training):
    argv = ["forecast", action, *_shops(shops_csv), "--steps", "5", *extra]
    if action == "train":
        argv += ["--out", str(tmp_path / "m.pt")]
    assert main(argv) == 2
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit forecast: error:"), cap.err
    assert all(n in lines[0] for n in named), lines[0]
    assert cap.out == "" and not (tmp_path / "m.pt").exists()
