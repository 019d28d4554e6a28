"""The report-set series load offline with the length, calendar and season their sources state.

Only loading is tested here: no model is fitted or scored on these series (they are the
forecasting benchmark's untouched report set)."""

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pmdarima")
pytest.importorskip("sktime")

from rnnkit.data.datasets import REPORT_SET, dataset_info, load_dataset  # noqa: E402
from rnnkit.data.timeseries import from_dataframe  # noqa: E402

# name: (length, freq, season, first time stamp, last time stamp, target)
EXPECTED = {
    "ausbeer": (211, "QS", 4, "1956-01-01", "2008-07-01", "beer"),
    "austres": (89, "QS", 4, "1971-04-01", "1993-04-01", "residents"),
    "woolyrnq": (119, "QS", 4, "1965-01-01", "1994-07-01", "tonnes"),
    "lynx": (114, "YS", 1, "1821-01-01", "1934-01-01", "trappings"),
    "seatbelts": (192, "MS", 12, "1969-01-01", "1984-12-01", "ksi"),
    "shampoo": (36, "MS", 12, "1991-01-01", "1993-12-01", "sales"),
    "uschange": (187, "QS", 4, "1970-01-01", "2016-07-01", "consumption"),
    "taylor": (4032, "30min", 48, "2000-06-05 00:00", "2000-08-27 23:30", "demand"),
    "goog": (1084, "B", 1, "2004-08-19", "2008-10-14", "close"),
    "heartrate": (150, "500ms", 1, "2000-01-01 00:00:00", "2000-01-01 00:01:14.5", "bpm"),
}


def test_report_set_is_the_expected_list():
    assert set(REPORT_SET) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_report_series_loads(name):
    n, freq, season, first, last, target = EXPECTED[name]
    info = dataset_info(name)
    assert (info.freq, info.season, info.target) == (freq, season, (target,))
    assert info.description and info.source and info.licence
    df = load_dataset(name)
    assert len(df) == n
    t = pd.DatetimeIndex(df["time"])
    assert t.is_monotonic_increasing and t.is_unique
    assert t[0] == pd.Timestamp(first) and t[-1] == pd.Timestamp(last)
    # a regular calendar at the registered frequency: re-indexing adds no step
    assert len(pd.date_range(t[0], t[-1], freq=freq)) == n
    y = df[target].to_numpy(float)
    assert np.isfinite(y).all() and y.std() > 0
    (series,) = from_dataframe(df, "time", target, freq=freq)  # rnnkit reads it as is
    assert len(series) == n and series.freq is not None


def test_report_values_match_the_packages():
    """Spot checks against the packages' own loaders and the sources' known values."""
    from pmdarima.datasets import load_lynx, load_taylor
    from sktime.datasets import load_shampoo_sales

    np.testing.assert_array_equal(load_dataset("lynx")["trappings"], load_lynx())
    np.testing.assert_array_equal(load_dataset("taylor")["demand"], load_taylor())
    np.testing.assert_allclose(load_dataset("shampoo")["sales"],
                               np.asarray(load_shampoo_sales(), float))
    belts = load_dataset("seatbelts")
    assert belts["ksi"].iloc[0] == 1687  # R UKDriverDeaths, Jan 1969
    law = belts.loc[belts["law"] == 1, "time"]
    assert law.iloc[0] == pd.Timestamp("1983-02-01") and len(law) == 23  # Feb 1983 - Dec 1984
    assert load_dataset("ausbeer")["beer"].iloc[0] == 284.0


# the second report set: name -> (series, steps per series, freq, first, last)
EXPECTED2 = {
    "fertility": (20, 52, "YS", "1960-01-01", "2011-01-01"),
    "danish_money": (5, 55, "QS", "1974-01-01", "1987-07-01"),
    "german_rates": (2, 107, "QS", "1972-04-01", "1998-10-01"),
}


def test_second_report_set_is_the_expected_list():
    from rnnkit.data.datasets import REPORT2_SET

    assert set(REPORT2_SET) == set(EXPECTED2) and not set(REPORT2_SET) & set(REPORT_SET)


@pytest.mark.parametrize("name", sorted(EXPECTED2))
def test_second_report_set_loads_as_regular_series(name):
    k, n, freq, first, last = EXPECTED2[name]
    info = dataset_info(name)
    assert info.freq == freq and info.series and info.description and info.licence
    series = from_dataframe(load_dataset(name), "time", info.target[0], info.series, freq=freq)
    assert len(series) == k and len({s.name for s in series}) == k
    for s in series:
        t = pd.DatetimeIndex(s.time)
        assert len(s) == n and t[0] == pd.Timestamp(first) and t[-1] == pd.Timestamp(last)
        assert len(pd.date_range(t[0], t[-1], freq=freq)) == n
        assert np.isfinite(s.target).all() and s.target.std() > 0


def test_second_report_set_values_match_the_package():
    """The rule picks whole rows of the World Bank file; the values are the package's own."""
    import statsmodels.datasets as smd

    from rnnkit.data.datasets import FERTILITY_COUNTRIES

    wb = smd.fertility.load_pandas().data.set_index("Country Code")
    fert = load_dataset("fertility")
    assert fert["country"].nunique() == FERTILITY_COUNTRIES
    complete = wb.dropna(subset=[str(y) for y in range(1960, 2012)]).index.sort_values()
    assert fert["country"].iloc[0] == complete[0]  # the rule starts at the first code
    for code, rows in fert.groupby("country"):
        np.testing.assert_array_equal(rows["fertility"].to_numpy(),
                                      wb.loc[code, [str(y) for y in range(1960, 2012)]]
                                      .to_numpy(float))
    dk = smd.danish_data.load_pandas().data
    np.testing.assert_array_equal(
        load_dataset("danish_money").query("variable == 'ibo'")["value"], dk["ibo"])
    de = smd.interest_inflation.load_pandas().data
    np.testing.assert_array_equal(
        load_dataset("german_rates").query("variable == 'R'")["value"], de["R"])
