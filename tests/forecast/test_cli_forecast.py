"""`rnnkit forecast ...` end to end on small CSV files."""

import numpy as np
import pytest

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
    assert (c.input_len, c.transform, c.baseline) == (8, "auto", "last")   # command defaults
    assert c.train == forecast_train(20, lr=0.02, seed=2)
    assert main(["forecast", "train", "--csv", str(sales_csv), "--time", "month", "--target",
                 "sales", "--steps", "5"]) == 2                            # no horizon


def test_forecast_train_rejects_unknown_toml_keys(sales_csv, tmp_path, capsys):
    toml = tmp_path / "bad.toml"
    toml.write_text("[model]\nhorizon = 4\nhiden = 8\n")
    assert main(["forecast", "train", "--csv", str(sales_csv), "--time", "month", "--target",
                 "sales", "--config", str(toml)]) == 2
    assert "unknown [model] option(s) hiden" in capsys.readouterr().err
