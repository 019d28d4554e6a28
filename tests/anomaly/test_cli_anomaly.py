"""`rnnkit anomaly detect` end to end on small CSV files."""

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from rnnkit.cli import main  # noqa: E402

rng = np.random.default_rng(3)


def test_anomaly_detect_writes_rows_and_png(tmp_path, capsys):
    n = 400
    y = np.sin(np.arange(n) * 2 * np.pi / 20) + rng.normal(0, 0.05, n)
    y[300] += 4
    lab = (np.arange(n) == 300).astype(int)
    csv = tmp_path / "m.csv"
    pd.DataFrame({"value": y, "label": lab}).to_csv(csv, index=False)
    out, png = tmp_path / "flagged.csv", tmp_path / "a.png"
    assert main(["anomaly", "detect", "--csv", str(csv), "--column", "value", "--label",
                 "label", "--train-frac", "0.5", "--input-len", "20", "--steps", "100",
                 "--out", str(out), "--plot", str(png)]) == 0
    flagged = pd.read_csv(out)
    assert 300 in flagged["row"].tolist() and len(flagged) <= 5
    assert png.stat().st_size > 1000
    text = capsys.readouterr().out
    assert "rolling z-score" in text and "f1" in text
    assert main(["anomaly", "detect", "--csv", str(csv), "--column", "nope"]) == 2
    assert capsys.readouterr().err == ("rnnkit anomaly: error: --column 'nope' is not a column "
                                       "of the CSV; choose from its columns ['value', "
                                       "'label']\n")


@pytest.mark.parametrize("bad", [np.nan, 2.0, "yes"])
def test_anomaly_labels_that_are_not_0_1_are_an_error_not_anomalies(bad):
    from rnnkit.anomaly.metrics import f1_scores, point_adjust

    lab = np.array([0, 1, 0, bad, 0], dtype=object if isinstance(bad, str) else float)
    with pytest.raises(ValueError, match=r"labels must be 0/1 .*map the label column"):
        f1_scores(lab, np.zeros(5))  # NaN, 2 and text used to count as true anomalies
    with pytest.raises(ValueError, match="labels must be 0/1"):
        point_adjust(lab, np.zeros(5))
    ok = np.array([0, 1, 0, 1, 0], dtype=float)
    assert f1_scores(ok, ok.astype(bool))["f1"] == 1.0


def test_anomaly_detect_checks_the_label_column_before_training(tmp_path, capsys):
    csv = tmp_path / "m.csv"
    pd.DataFrame({"value": np.sin(np.arange(200) / 3), "label": ["no"] * 199 + ["yes"]}
                 ).to_csv(csv, index=False)
    assert main(["anomaly", "detect", "--csv", str(csv), "--column", "value", "--label",
                 "label", "--steps", "5000", "--plot", ""]) == 2
    captured = capsys.readouterr()
    assert "--label column 'label' must be 0/1" in captured.err and "yes" in captured.err
    assert "flagged" not in captured.out  # nothing was trained or written


def test_anomaly_labels_in_an_object_array_and_nan_listed_once():
    from rnnkit.anomaly.metrics import f1_scores

    ok = np.array([0, 1, True, 0], dtype=object)  # 0/1 values, not numeric dtype
    assert f1_scores(ok, np.array([0, 1, 1, 0]))["f1"] == 1.0
    with pytest.raises(ValueError, match=r"found \[nan\]:"):
        f1_scores(np.array([0, np.nan, np.nan, 1]), np.zeros(4))


def test_anomaly_pool_error_does_not_offer_auto(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    pd.DataFrame({"value": np.sin(np.arange(200) / 3)}).to_csv(csv, index=False)
    assert main(["anomaly", "detect", "--csv", str(csv), "--column", "value", "--method",
                 "window", "--pool", "auto", "--steps", "5", "--plot", ""]) == 2
    err = capsys.readouterr().err
    assert "--pool must be a positive integer, got 'auto'" in err
    assert main(["anomaly", "detect", "--csv", str(csv), "--column", "value", "--method",
                 "forecast+window", "--window-steps", "-1", "--plot", ""]) == 2
    assert "--window-steps must be a positive integer, got -1" in capsys.readouterr().err


def test_anomaly_detect_options_come_from_the_configs(tmp_path, capsys, monkeypatch):
    from rnnkit.anomaly import AnomalyDetector

    seen = []

    def fake_fit(self, data, **kw):
        seen.append(self.config)
        raise SystemExit(0)  # no training: the settings are what is checked

    monkeypatch.setattr(AnomalyDetector, "fit", fake_fit)
    csv = tmp_path / "s.csv"
    pd.DataFrame({"value": np.sin(np.arange(200) / 3)}).to_csv(csv, index=False)
    toml = tmp_path / "run.toml"
    toml.write_text('[model]\nmethod = "window"\ninput_len = 20\nsmoothing = 3\n'
                    '[train]\nmax_steps = 70\nlr = 0.01\n')
    base = ["anomaly", "detect", "--csv", str(csv), "--column", "value", "--plot", ""]
    with pytest.raises(SystemExit):
        main(base + ["--config", str(toml), "--hidden-size", "12", "--train.lr", "0.02",
                     "--seed", "5"])
    cfg = seen.pop()
    assert (cfg.method, cfg.input_len, cfg.pool, cfg.smoothing, cfg.hidden_size) == \
        ("window", 20, 1, 3, 12)
    assert (cfg.train.max_steps, cfg.train.warmup_steps, cfg.train.lr, cfg.train.seed) == \
        (70, 7, 0.02, 5)
    with pytest.raises(SystemExit):   # the flags win over the file; command defaults below
        main(base + ["--config", str(toml), "--method", "forecast", "--input-len", "16",
                     "--model.clean_z", "0"])
    cfg = seen.pop()
    assert (cfg.method, cfg.input_len, cfg.clean_z, cfg.hidden_size) == ("forecast", 16, 0.0, 32)
    with pytest.raises(SystemExit):
        main(base)
    cfg = seen.pop()
    assert (cfg.method, cfg.input_len, cfg.train.max_steps, cfg.train.lr) == \
        ("forecast", 32, 400, 3e-3)
    toml.write_text("[model]\nhidden = 3\n")
    assert main(base + ["--config", str(toml)]) == 2
    assert "unknown [model] option(s) hidden" in capsys.readouterr().err


# -- outputs, time order, plots, help ------------------------------------------------------------

def _csv(tmp_path, n=200, name="s.csv", shuffle=False, duplicate=False):
    df = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq="h"),
                       "value": np.sin(np.arange(n) * 2 * np.pi / 20)})
    if shuffle:
        df = df.iloc[[0, 2, 1, *range(3, n)]]
    if duplicate:
        df.loc[5, "date"] = df.loc[4, "date"]
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


@pytest.fixture
def no_training(monkeypatch):
    from rnnkit.anomaly import AnomalyDetector

    def fit(self, *a, **k):
        raise AssertionError("trained before the check")

    monkeypatch.setattr(AnomalyDetector, "fit", fit)


def test_anomaly_outputs_are_checked_before_training(tmp_path, capsys, no_training):
    csv = _csv(tmp_path)
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    bad = str(a_file / "x")
    base = ["anomaly", "detect", "--csv", str(csv), "--column", "value", "--steps", "5"]
    assert main(base + ["--out", bad, "--plot", ""]) == 2
    assert f"--out {bad}: {a_file} is a file, not a folder" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "o.csv"), "--plot", bad]) == 2
    assert f"--plot {bad}: {a_file} is a file" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path), "--plot", ""]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "o.csv"), "--plot", "",
                        "--train.out_dir", bad]) == 2
    assert "--train.out_dir" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("problem, message", [
    ({"shuffle": True}, "time column 'date' is not sorted: 2024-01-01 01:00:00 comes after "
                        "2024-01-01 02:00:00; sort the rows by time first"),
    ({"duplicate": True}, "time column 'date' has 1 duplicate timestamp(s), e.g. "
                          "2024-01-01 04:00:00; aggregate or drop the duplicates first"),
])
def test_rows_out_of_time_order_are_refused_as_by_forecast(tmp_path, capsys, no_training,
                                                           problem, message):
    csv = _csv(tmp_path, **problem)
    assert main(["anomaly", "detect", "--csv", str(csv), "--column", "value", "--time", "date",
                 "--out", str(tmp_path / "o.csv"), "--plot", ""]) == 2
    assert capsys.readouterr().err == f"rnnkit anomaly: error: {message}\n"
    # the forecast commands say the same (one check, rnnkit.data.timeseries.check_time_order)
    assert main(["forecast", "train", "--csv", str(csv), "--time", "date", "--target", "value",
                 "--horizon", "3", "--out", str(tmp_path / "m.pt")]) == 2
    assert capsys.readouterr().err == f"rnnkit forecast: error: series '0': {message}\n"


def test_the_plot_x_axis_is_the_time_column(tmp_path, capsys, monkeypatch):
    import rnnkit.anomaly

    seen = {}

    def plot(values, detection, labels=None, path="", title="", time=None):
        seen["time"] = time
        return path

    monkeypatch.setattr(rnnkit.anomaly, "plot_anomalies", plot)
    csv = _csv(tmp_path)
    base = ["anomaly", "detect", "--csv", str(csv), "--column", "value", "--input-len", "8",
            "--steps", "3", "--out", str(tmp_path / "o.csv"), "--plot", str(tmp_path / "a.png")]
    assert main(base + ["--time", "date"]) == 0
    assert seen["time"][0] == np.datetime64("2024-01-01T00:00") and len(seen["time"]) == 200
    assert main(base) == 0
    assert seen["time"] is None      # no --time: the row number
    from rnnkit.anomaly.plots import _figure
    from rnnkit.anomaly.result import Detection

    y = np.sin(np.arange(50.0))
    flags = (np.arange(50) == 20).astype(np.int8)
    dates = pd.date_range("2024-01-01", periods=50, freq="D").to_numpy()
    fig = _figure(y, Detection(y, np.abs(y), 0.5, flags), flags, "", dates)
    assert np.issubdtype(np.asarray(fig.axes[0].lines[0].get_xdata()).dtype, np.datetime64)


def test_ctrl_c_leaves_an_existing_out_untouched(tmp_path, monkeypatch):
    from rnnkit.anomaly import AnomalyDetector
    from rnnkit.train import TrainingInterrupted

    def fit(self, *a, **k):
        raise TrainingInterrupted(2, None, "SIGINT")

    monkeypatch.setattr(AnomalyDetector, "fit", fit)
    csv = _csv(tmp_path)
    out = tmp_path / "o.csv"
    out.write_text("earlier rows")
    before = sorted(p.name for p in tmp_path.iterdir())
    try:
        code = main(["anomaly", "detect", "--csv", str(csv), "--column", "value", "--out",
                     str(out), "--plot", str(tmp_path / "a.png")])
    except KeyboardInterrupt:
        code = 130   # rnnkit.cli.main's exit code for an interrupt
    assert code == 130 and out.read_text() == "earlier rows"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("command", [["anomaly"], ["anomaly", "detect"]])
def test_anomaly_help_is_plain_text(command, capsys):
    with pytest.raises(SystemExit):
        main(command + ["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and ":mod:" not in text and ":class:" not in text


def test_anomaly_errors_name_the_flags(tmp_path, capsys, no_training):
    csv = _csv(tmp_path, n=60)
    assert main(["anomaly", "detect", "--csv", str(csv), "--column", "value",
                 "--model.smoothing", "0", "--plot", ""]) == 2
    assert "--model.smoothing must be a positive integer, got 0" in capsys.readouterr().err


def test_anomaly_bad_csv_and_columns_name_the_flags(tmp_path, capsys, no_training):
    csv = _csv(tmp_path, n=60)
    assert main(["anomaly", "detect", "--csv", str(csv), "--column", "v", "--time", "when",
                 "--label", "lab", "--plot", ""]) == 2
    err = capsys.readouterr().err
    assert "--column 'v', --time 'when', --label 'lab' are not columns of the CSV" in err
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"value,note\n" + "".join(f"{i},café\n" for i in range(60))
                      .encode("latin-1"))
    assert main(["anomaly", "detect", "--csv", str(latin), "--column", "value", "--plot",
                 ""]) == 2
    err = capsys.readouterr().err
    assert f"--csv {latin} is not UTF-8 text" in err and "re-save it as UTF-8" in err
    assert "give a UTF-8 CSV file with a header row and the --column column" in err
