"""rnnkit.data.timeseries and rnnkit.data.datasets: validation, scaling without leakage,
windows against a plain slicing loop, calendar features, and the package-shipped registry."""

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from rnnkit.data.timeseries import (  # noqa: E402
    SeriesScaler,
    WindowDataset,
    as_series,
    calendar_features,
    check_length,
    from_array,
    from_dataframe,
    future_index,
    resolve_calendar,
)

rng = np.random.default_rng(1234)


def frame(n=30, freq="D", cols=("y",)):
    df = pd.DataFrame({"date": pd.date_range("2021-03-01", periods=n, freq=freq)})
    for c in cols:
        df[c] = rng.normal(size=n).cumsum()
    return df


def test_windows_match_plain_slicing():
    T, C, P, K, L, H = 40, 2, 1, 3, 6, 4
    y, p, f = rng.normal(size=(T, C)), rng.normal(size=(T, P)), rng.normal(size=(T, K))
    ds = WindowDataset([y], L, H, past=[p], future=[f], stride=3)
    origins = list(range(L, T - H + 1, 3))
    assert len(ds) == len(origins)
    for k, o in enumerate(origins):
        item = ds[k]
        ref_x = np.concatenate([y, p, f], axis=1)[o - L:o]
        np.testing.assert_allclose(item["x"].numpy(), ref_x, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(item["y"].numpy(), y[o:o + H], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(item["fut"].numpy(), f[o:o + H], rtol=1e-6, atol=1e-6)


def test_windows_respect_end_and_start():
    y = rng.normal(size=(50, 1))
    train = WindowDataset([y], 5, 3, end=[30])
    assert max(o + 3 for _, o in train.index) == 30        # no target at or after step 30
    val = WindowDataset([y], 5, 3, start=[30])
    assert min(o for _, o in val.index) == 30


def test_scaler_uses_training_part_only():
    y = rng.normal(size=(100, 2))
    y[80:] += 1000.0                                          # a test period far away
    sc = SeriesScaler().fit([y], train_end=[80])
    np.testing.assert_allclose(sc.mean[0], y[:80].mean(0))
    np.testing.assert_allclose(sc.std[0], y[:80].std(0))
    z = sc.transform(0, y)
    np.testing.assert_allclose(sc.inverse_transform(0, z), y)


def test_scaler_constant_series_is_documented_not_nan():
    sc = SeriesScaler().fit([np.full((20, 1), 7.0)])
    z = sc.transform(0, np.full((5, 1), 7.0))
    assert np.isfinite(z).all() and (z == 0).all() and sc.std[0, 0] == 1.0


def test_from_dataframe_multiseries_and_covariates():
    a, b = frame(20, cols=("y", "promo")), frame(25, cols=("y", "promo"))
    df = pd.concat([a.assign(store="a"), b.assign(store="b")])
    s = from_dataframe(df, "date", "y", series="store", future_covariates=["promo"])
    assert [x.name for x in s] == ["a", "b"] and [len(x) for x in s] == [20, 25]
    assert s[0].future.shape == (20, 1) and s[0].freq == "D"
    np.testing.assert_allclose(s[1].target[:, 0], b["y"].to_numpy())


def test_missing_timestamps_error_names_fix_and_fill_interpolates():
    df = frame(30).drop(index=[10, 11]).reset_index(drop=True)
    with pytest.raises(ValueError, match="missing timestamps.*fill='interpolate'"):
        from_dataframe(df, "date", "y")
    s = from_dataframe(df, "date", "y", fill="interpolate")[0]
    assert len(s) == 30 and np.isfinite(s.target).all()
    # the filled values lie on the line between the neighbours
    y = s.target[:, 0]
    np.testing.assert_allclose(y[10], y[9] + (y[12] - y[9]) / 3, rtol=1e-9)


def test_irregular_spacing_is_an_error():
    t = pd.to_datetime(["2021-01-01 00:00", "2021-01-01 01:00", "2021-01-01 02:17",
                        "2021-01-01 03:00", "2021-01-01 04:00", "2021-01-01 05:00"])
    df = pd.DataFrame({"t": t, "y": rng.normal(size=6)})
    with pytest.raises(ValueError, match="irregular spacing|missing|do not follow"):
        from_dataframe(df, "t", "y")


def test_nan_values_error_and_fill():
    df = frame(20)
    df.loc[5, "y"] = np.nan
    with pytest.raises(ValueError, match="NaN.*fill="):
        from_dataframe(df, "date", "y")
    s = from_dataframe(df, "date", "y", fill="ffill")[0]
    assert s.target[5, 0] == s.target[4, 0]


@pytest.mark.parametrize("bad, match", [
    (lambda df: df.iloc[::-1], "not sorted"),
    (lambda df: pd.concat([df, df.iloc[:1]]).sort_values("date"), "duplicate"),
    (lambda df: df.iloc[:0], "empty"),
    (lambda df: df.assign(y=df["y"].astype(str)), "expected numbers"),
])
def test_bad_frames(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        from_dataframe(bad(frame(10)), "date", "y")


def test_missing_column_is_named_by_its_keyword_with_the_columns_to_choose_from():
    # by keyword, so the CLI names the flag to change (--target sales)
    with pytest.raises(ValueError, match=r"^column not in the data: target='sales'; choose "
                                         r"from its columns \['date', 'y'\]$"):
        from_dataframe(frame(10), "date", "sales")
    with pytest.raises(ValueError, match=r"^columns not in the data: time='t', series='id', "
                                         r"past_covariates='p'; choose from"):
        from_dataframe(frame(10), "t", "y", series="id", past_covariates=["p"])


def test_too_short_and_array_shapes():
    s = from_array(rng.normal(size=8))
    with pytest.raises(ValueError, match="has 8 steps but .* needs at least 20"):
        check_length(s, 20, "this model")
    with pytest.raises(ValueError, match="shape"):
        from_array(rng.normal(size=(2, 3, 4, 5)))
    with pytest.raises(ValueError, match="empty"):
        from_array(np.zeros(0))


def test_integer_time_and_future_index():
    df = pd.DataFrame({"step": np.arange(5, 15), "y": rng.normal(size=10)})
    s = from_dataframe(df, "step", "y")[0]
    assert s.freq is None and list(future_index(s.time, 3)) == [15, 16, 17]
    d = from_array(rng.normal(size=10), freq="MS", start="2020-01-01")[0]
    assert list(future_index(d.time, 2)) == list(pd.to_datetime(["2020-11-01", "2020-12-01"]))


def test_calendar_features_are_periodic():
    t = pd.date_range("2024-01-01", periods=14, freq="D")
    f = calendar_features(t, ["dayofweek"])
    np.testing.assert_allclose(f[:7], f[7:], atol=1e-12)             # weekly cycle
    np.testing.assert_allclose((f ** 2).sum(1), 1.0)                 # sin^2 + cos^2
    h = calendar_features(t, [], holidays=["2024-01-01", "2024-01-08"])
    assert h[:, 0].tolist() == [1] + [0] * 6 + [1] + [0] * 6
    assert resolve_calendar("auto", "D") == ("dayofweek", "dayofyear")
    assert resolve_calendar("auto", "YS") == () and resolve_calendar("auto", None) == ()
    with pytest.raises(ValueError, match="unknown calendar"):
        resolve_calendar(["weekday"], "D")


def test_as_series_dataframe_needs_columns():
    with pytest.raises(ValueError, match="time= and target="):
        as_series(frame(10))


# -- registry -------------------------------------------------------------------------------------

def test_registry_metadata_complete():
    from rnnkit.data.datasets import available_datasets, dataset_info

    names = available_datasets()
    assert len(names) >= 12
    for n in names:
        info = dataset_info(n)
        assert info.source and info.licence and info.package and info.target
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_info("nope")


@pytest.mark.parametrize("name", ["airpassengers", "yahoo", "stocks", "elnino", "co2",
                                  "seattle_weather"])
def test_registry_loads_regular_series(name):
    from rnnkit.data.datasets import dataset_info, dataset_path, load_dataset

    info = dataset_info(name)
    try:
        dataset_path(name)
    except ModuleNotFoundError as err:
        pytest.skip(f"{err.name} (rnnkit[data] extra) is not installed")
    df = load_dataset(name)
    s = from_dataframe(df, "time", info.target[0], info.series, freq=info.freq)
    assert all(len(x) > 50 and np.isfinite(x.target).all() for x in s)
    if info.freq:
        assert s[0].freq is not None


def test_registry_missing_package_message(monkeypatch):
    import importlib.util

    from rnnkit.data import datasets

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="rnnkit\\[data\\]"):
        datasets.dataset_path("airpassengers")


def test_read_csv_names_the_problem(tmp_path):
    from rnnkit.data.timeseries import read_csv

    with pytest.raises(FileNotFoundError, match="no such CSV file"):
        read_csv(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty; give a UTF-8 CSV file with a header row"):
        read_csv(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("time,value\n")
    with pytest.raises(ValueError, match="no rows"):
        read_csv(header_only)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(128, 256)) * 4)  # no NUL, but control bytes as Latin-1
    with pytest.raises(ValueError, match="is a binary file, not a CSV"):
        read_csv(binary)
    good = tmp_path / "good.csv"
    values = np.random.default_rng().normal(size=5)
    good.write_text("t,v\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    np.testing.assert_allclose(read_csv(good)["v"].to_numpy(), values)


@pytest.mark.parametrize("content, message", [
    (None, r"^no such CSV file: --csv {p}; check the path$"),
    ("folder", r"^--csv {p} is a folder, not a CSV file; give the path of a CSV file"),
    (b" \n", r"^--csv {p} is empty; give a UTF-8 CSV file with a header row and the --time "
              r"and --target columns$"),
    (b"t,v\n1,\x00\x01\n", r"^--csv {p} is a binary file, not a CSV \(it holds NUL bytes\)"),
    ("t,v\n1,caf\u00e9\n".encode("latin-1"),
     r"^--csv {p} is not UTF-8 text \(byte 0xe9 at offset 9 .*\); re-save it as UTF-8 "
     r"\(e.g. iconv -f latin1 -t utf-8\), or give a UTF-8 CSV file"),
    ("t,v\n1,2\n".encode("utf-16"), r"^--csv {p} is UTF-16 encoded, not UTF-8; re-save it"),
    (b't,v\n1,"2\n', r"^--csv {p} is not a readable CSV file \(.*\); give a UTF-8 CSV file"),
])
def test_read_csv_names_the_flag_and_what_to_give(tmp_path, content, message):
    import re

    from rnnkit.data.timeseries import read_csv

    path = tmp_path / "data.csv"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises((OSError, ValueError), match=message.format(p=re.escape(str(path)))):
        read_csv(path, "--csv", needs="the --time and --target columns")


def test_read_csv_reads_utf8_with_a_bom_and_non_latin_text(tmp_path):
    from rnnkit.data.timeseries import read_csv

    path = tmp_path / "u.csv"
    # UTF-8 continuation bytes 0x80-0x9f (Cyrillic, the euro sign) are text, not control bytes
    path.write_bytes("\ufeffзначение,note\n" .encode("utf-8")
                     + "".join(f"{i},€ Привет\n" for i in range(50)).encode("utf-8"))
    df = read_csv(path)
    assert list(df.columns) == ["значение", "note"] and df["note"][0] == "€ Привет"


def test_an_unknown_freq_names_the_fix():
    df = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=10, freq="D"),
                       "y": np.arange(10.0)})
    for make in (lambda: from_dataframe(df, "t", "y", freq="XYZ"),
                 lambda: from_array(np.arange(10.0), freq="XYZ")):
        with pytest.raises(ValueError, match=r"freq='XYZ' is not a pandas frequency; use e.g"):
            make()
    assert from_dataframe(df, "t", "y", freq="D")[0].freq == "D"


@pytest.mark.parametrize("times, message", [
    (["2024-01-01", "2024-01-03", "2024-01-02"],
     "time column 't' is not sorted: 2024-01-02 comes after 2024-01-03; sort the rows by time"),
    (["2024-01-01", "2024-01-02", "2024-01-02"],
     "time column 't' has 1 duplicate timestamp(s), e.g. 2024-01-02; aggregate or drop"),
    ([1, 3, 2], "time column 't' is not sorted: 2 comes after 3"),
    ([1.0, None, 3.0], "time column 't' has 1 empty value(s); fill or drop those rows"),
    ([1.5, 2.5], "integer time column 't' has non-integer values"),
])
def test_check_time_order_is_the_one_time_order_check(times, message):
    from rnnkit.data.timeseries import check_time_order

    with pytest.raises(ValueError) as err:
        check_time_order(pd.Series(times), "t")
    assert str(err.value).startswith(message)
    df = pd.DataFrame({"t": times, "y": np.arange(len(times), dtype=float)})
    with pytest.raises(ValueError) as err:             # what from_dataframe says, per series
        from_dataframe(df, "t", "y")
    assert str(err.value).startswith(f"series '0': {message}")
    ok = check_time_order(pd.Series(["2024-01-01", "2024-01-02"]), "t")
    assert ok.dtype.kind == "M" and check_time_order(pd.Series([3, 4]), "t").tolist() == [3, 4]



@pytest.mark.parametrize("freq, season", [
    ("QS-OCT", 4), ("QE-DEC", 4), ("BQS-JAN", 4), ("MS", 12), ("ME", 12), ("BMS", 12),
    ("SMS", 24), ("W-SUN", 52), ("W-WED", 52), ("D", 7), ("B", 5), ("h", 24), ("30min", 48),
    ("15min", 96), ("2h", 12), ("6h", 4), ("3MS", 4), ("2QS-JAN", 2), ("YS-JAN", 1),
    ("YE-DEC", 1), ("2D", 1), ("min", 1), ("7min", 1), ("s", 1),
])
def test_season_for_freq_reads_the_frequency_pandas_infers(freq, season):
    from rnnkit.data.timeseries import season_for_freq

    # the reference: the frequency pandas itself infers from such time stamps
    stamps = pd.date_range("2021-10-01", periods=12, freq=freq)
    inferred = pd.infer_freq(stamps) or freq
    assert season_for_freq(inferred) == season_for_freq(freq) == season


def test_season_for_freq_words_and_errors():
    from rnnkit.data.timeseries import freq_kind, season_for_freq

    assert season_for_freq(None) == 1 and freq_kind(None) == "integer-step"
    assert [freq_kind(f) for f in ("QS-OCT", "MS", "W", "D", "B", "h", "30min", "YS")] == [
        "quarterly", "monthly", "weekly", "daily", "business-daily", "hourly", "half-hourly",
        "annual"]
    assert freq_kind("3MS") == "every-3-months" and freq_kind("2h") == "every-2-hours"
    with pytest.raises(ValueError, match="is not a pandas frequency"):
        season_for_freq("fortnightly")
