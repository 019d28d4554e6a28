"""Registry of real time series shipped inside installed Python packages (no downloads).

Every entry names the package file it reads, where the data come from, its licence, its
frequency and its natural seasonal period. The files are read from the installed packages of
the ``data`` extra (``pip install rnnkit[data]``: statsmodels, pmdarima, vega_datasets,
sktime); a missing package raises an error naming the package to install.

>>> "airpassengers" in available_datasets()
True
>>> info = dataset_info("airpassengers")
>>> info.freq, info.season, info.package
('MS', 12, 'pmdarima')
>>> df = load_dataset("airpassengers")
>>> list(df.columns), len(df)
(['time', 'passengers'], 144)
"""

from __future__ import annotations

import importlib.util
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "REPORT_SET",
    "REPORT2_SET",
    "DatasetInfo",
    "available_datasets",
    "dataset_info",
    "dataset_path",
    "load_dataset",
]


@dataclass(frozen=True)
class DatasetInfo:
    """What a registered series is and where it lives.

    Attributes:
        name: registry name.
        package: the installed package that ships the file.
        path: the file's path inside that package.
        description: what the numbers are.
        source: where the package took the data from.
        licence: the licence or terms the package states for the data.
        freq: pandas frequency of the loaded ``time`` column (``None``: integer steps).
        season: natural seasonal period in steps (1 = none), used by seasonal naive and MASE.
        target: the default target column(s) of the loaded frame.
        series: column naming several series in one frame (global models), or ``None``.
        kind: a label for tables ("sales", "stock", "weather", ...).
    """

    name: str
    package: str
    path: str
    description: str
    source: str
    licence: str
    freq: str | None
    season: int
    target: tuple[str, ...]
    series: str | None = None
    kind: str = "other"
    loader: Callable | None = field(default=None, repr=False, compare=False)


_REGISTRY: dict[str, DatasetInfo] = {}


def _register(**kw) -> Callable[[Callable], Callable]:
    def add(fn: Callable) -> Callable:
        kw["target"] = tuple(kw["target"])
        _REGISTRY[kw["name"]] = DatasetInfo(loader=fn, **kw)
        return fn

    return add


def available_datasets() -> list[str]:
    """Names of all registered series."""
    return sorted(_REGISTRY)


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` registered under ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; registered: {', '.join(available_datasets())}"
        ) from None


def dataset_path(name: str) -> Path:
    """Absolute path of the file behind ``name`` inside its installed package.

    Raises ``ModuleNotFoundError`` naming the package (and the ``rnnkit[data]`` extra) when it
    is not installed, and ``FileNotFoundError`` if the package no longer ships the file.
    """
    info = dataset_info(name)
    spec = importlib.util.find_spec(info.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"dataset {name!r} is shipped by the package {info.package!r}, which is not "
            f"installed; install it with `pip install rnnkit[data]` (or `pip install "
            f"{info.package}`)",
            name=info.package,
        )
    path = Path(list(spec.submodule_search_locations)[0]) / info.path
    if not path.exists():
        raise FileNotFoundError(
            f"{info.package} no longer ships {info.path} (looked at {path}); install the "
            f"version pinned by rnnkit[data]"
        )
    return path


def load_dataset(name: str):
    """Load a registered series as a pandas DataFrame with a ``time`` column (regular, sorted,
    at ``dataset_info(name).freq``), the target column(s) and, for multi-series sets, the
    ``dataset_info(name).series`` column."""
    info = dataset_info(name)
    return info.loader(dataset_path(name))


# -- readers -----------------------------------------------------------------------------------

def _pd():
    try:
        import pandas as pd
    except ModuleNotFoundError as err:  # pragma: no cover - pandas is in the data extra
        raise ModuleNotFoundError(
            "rnnkit.data.datasets needs pandas; install it with `pip install rnnkit[data]`",
            name="pandas",
        ) from err
    return pd


def _read_tar_csv(path: Path):
    pd = _pd()
    with tarfile.open(path) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".csv"))
        return pd.read_csv(tar.extractfile(member))


_SM = "statsmodels"
_SM_PD = "public domain (as stated in statsmodels.datasets.{0}.COPYRIGHT)"


@_register(name="co2", package=_SM, path="datasets/co2/co2.csv", freq="MS", season=12,
           description="Mauna Loa atmospheric CO2 (ppm), weekly 1958-2001 averaged to months",
           source="Scripps Institution of Oceanography via CDIAC, in statsmodels.datasets.co2",
           licence=_SM_PD.format("co2"), target=["co2"], kind="climate")
def _co2(path):
    pd = _pd()
    df = pd.read_csv(path)
    df["time"] = pd.to_datetime(df["date"].astype(str), format="%Y%m%d")
    # weekly readings have gaps; the monthly mean is the standard form of this series
    monthly = df.set_index("time")["co2"].resample("MS").mean().interpolate()
    return monthly.reset_index()


@_register(name="sunspots", package=_SM, path="datasets/sunspots/sunspots.csv", freq="YS",
           season=11, description="Yearly sunspot number 1700-2008 (11-year solar cycle)",
           source="Royal Observatory of Belgium SIDC, in statsmodels.datasets.sunspots",
           licence=_SM_PD.format("sunspots"), target=["sunactivity"], kind="astronomy")
def _sunspots(path):
    pd = _pd()
    df = pd.read_csv(path)
    return pd.DataFrame({"time": pd.to_datetime(df["YEAR"].astype(int).astype(str)),
                         "sunactivity": df["SUNACTIVITY"].astype(float)})


@_register(name="nile", package=_SM, path="datasets/nile/nile.csv", freq="YS", season=1,
           description="Yearly volume of the Nile at Aswan (1e8 m^3), 1871-1970",
           source="Cobb (1978), in statsmodels.datasets.nile",
           licence=_SM_PD.format("nile"), target=["volume"], kind="hydrology")
def _nile(path):
    pd = _pd()
    df = pd.read_csv(path)
    return pd.DataFrame({"time": pd.to_datetime(df["year"].astype(str)),
                         "volume": df["volume"].astype(float)})


@_register(name="elnino", package=_SM, path="datasets/elnino/elnino.csv", freq="MS", season=12,
           description="Monthly Pacific sea surface temperature (deg C, El Nino region), "
           "1950-2010", source="NOAA Climate Prediction Center, in statsmodels.datasets.elnino",
           licence=_SM_PD.format("elnino"), target=["sst"], kind="weather")
def _elnino(path):
    pd = _pd()
    df = pd.read_csv(path)
    long = df.melt(id_vars="YEAR", var_name="month", value_name="sst")
    months = {m: i + 1 for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}
    long["time"] = pd.to_datetime(dict(year=long["YEAR"].astype(int),
                                       month=long["month"].map(months), day=1))
    return long.sort_values("time")[["time", "sst"]].reset_index(drop=True)


@_register(name="macrodata", package=_SM, path="datasets/macrodata/macrodata.csv", freq="QS",
           season=4, description="US quarterly macro data 1959-2009: real GDP (default target), "
           "consumption, investment, CPI, unemployment, ...",
           source="Federal Reserve / BEA / BLS via statsmodels.datasets.macrodata",
           licence=_SM_PD.format("macrodata"), target=["realgdp"], kind="economics")
def _macrodata(path):
    pd = _pd()
    df = pd.read_csv(path)
    time = pd.to_datetime(dict(year=df["year"].astype(int),
                               month=(df["quarter"].astype(int) - 1) * 3 + 1, day=1))
    out = df.drop(columns=["year", "quarter"]).astype(float)
    out.insert(0, "time", time)
    return out


@_register(name="elec_equip", package=_SM, path="datasets/elec_equip/elec_equip.csv",
           freq="MS", season=12, description="Monthly new orders index of electrical equipment, "
           "euro area, 1996-2016 (2010 = 100)", source="Eurostat, in "
           "statsmodels.datasets.elec_equip", licence="Eurostat reuse policy (free reuse with "
           "acknowledgement), as shipped by statsmodels", target=["orders"], kind="sales")
def _elec_equip(path):
    pd = _pd()
    df = pd.read_csv(path)
    return pd.DataFrame({"time": pd.to_datetime(df["DATE"], format="%b-%d-%Y"),
                         "orders": df.iloc[:, 1].astype(float)})


_PMD = "pmdarima"
_PMD_LIC = "as shipped in pmdarima (MIT-licensed package); R `datasets`/`forecast` origin"


@_register(name="airpassengers", package=_PMD, path="datasets/airpassengers.py", freq="MS",
           season=12, description="Monthly international airline passengers (thousands), "
           "1949-1960", source="Box & Jenkins (1976), R datasets::AirPassengers, in pmdarima",
           licence=_PMD_LIC, target=["passengers"], kind="sales")
def _airpassengers(path):
    pd = _pd()
    from pmdarima.datasets import load_airpassengers

    y = load_airpassengers().astype(float)
    return pd.DataFrame({"time": pd.date_range("1949-01-01", periods=len(y), freq="MS"),
                         "passengers": y})


@_register(name="wineind", package=_PMD, path="datasets/wineind.py", freq="MS", season=12,
           description="Australian wine sales by winemakers in bottles <= 1 litre, monthly "
           "1980-1994", source="Australian Bureau of Statistics via R forecast::wineind, in "
           "pmdarima", licence=_PMD_LIC, target=["sales"], kind="sales")
def _wineind(path):
    pd = _pd()
    from pmdarima.datasets import load_wineind

    y = load_wineind().astype(float)
    return pd.DataFrame({"time": pd.date_range("1980-01-01", periods=len(y), freq="MS"),
                         "sales": y})


@_register(name="msft", package=_PMD, path="datasets/data/msft.tar.gz", freq="B", season=1,
           description="Microsoft daily stock prices 1986-2017 (open, high, low, close, "
           "volume); trading days only, exchange holidays forward-filled to business days",
           source="pmdarima.datasets.load_msft (Kaggle 'Huge Stock Market Dataset')",
           licence="CC0 public domain (Kaggle dataset), as shipped by pmdarima",
           target=["Close"], kind="stock")
def _msft(path):
    pd = _pd()
    df = _read_tar_csv(path)
    df["time"] = pd.to_datetime(df["Date"])
    df = df.drop(columns=["Date", "OpenInt"]).set_index("time").astype(float)
    df = df.asfreq("B").ffill()  # holidays: carry the last close, as markets were shut
    return df.reset_index()


_VEGA = "vega_datasets"
_VEGA_LIC = "BSD-3-Clause (vega-datasets), data from the public sources named"


@_register(name="stocks", package=_VEGA, path="_data/stocks.csv", freq="MS", season=1,
           description="Monthly closing prices of MSFT, AMZN, IBM, GOOG, AAPL, 2000-2010 "
           "(GOOG from 2004): five series for one global model", source="vega-datasets "
           "stocks.csv (Yahoo Finance)", licence=_VEGA_LIC, target=["price"], series="symbol",
           kind="stock")
def _stocks(path):
    pd = _pd()
    df = pd.read_csv(path)
    df["time"] = pd.to_datetime(df["date"], format="%b %d %Y")
    return df[["symbol", "time", "price"]].sort_values(["symbol", "time"]).reset_index(drop=True)


@_register(name="seattle_weather", package=_VEGA, path="_data/seattle-weather.csv", freq="D",
           season=7, description="Daily Seattle weather 2012-2015: max/min temperature (deg C, "
           "default target temp_max), precipitation, wind", source="vega-datasets "
           "seattle-weather.csv (NOAA GHCN)", licence=_VEGA_LIC, target=["temp_max"],
           kind="weather")
def _seattle_weather(path):
    pd = _pd()
    df = pd.read_csv(path)
    df["time"] = pd.to_datetime(df["date"], format="%Y/%m/%d")
    return df[["time", "temp_max", "temp_min", "precipitation", "wind"]]


@_register(name="seattle_temps", package=_VEGA, path="_data/seattle-temps.csv", freq="h",
           season=24, description="Hourly Seattle temperature (deg F), 2010",
           source="vega-datasets seattle-temps.csv (NOAA)", licence=_VEGA_LIC, target=["temp"],
           kind="weather")
def _seattle_temps(path):
    pd = _pd()
    df = pd.read_csv(path)
    df["time"] = pd.to_datetime(df["date"], format="%Y/%m/%d %H:%M")
    # the file skips one hour (DST); put it back by time interpolation
    s = df.set_index("time")["temp"].asfreq("h").interpolate()
    return s.reset_index()


@_register(name="sf_temps", package=_VEGA, path="_data/sf-temps.csv", freq="h", season=24,
           description="Hourly San Francisco temperature (deg F), 2010",
           source="vega-datasets sf-temps.csv (NOAA)", licence=_VEGA_LIC, target=["temp"],
           kind="weather")
def _sf_temps(path):
    pd = _pd()
    df = pd.read_csv(path)
    df["time"] = pd.to_datetime(df["date"], format="%Y/%m/%d %H:%M:%S")
    s = df.set_index("time")["temp"].asfreq("h").interpolate()
    return s.reset_index()


@_register(name="iowa_electricity", package=_VEGA, path="_data/iowa-electricity.csv",
           freq="YS", season=1, description="Yearly net electricity generation in Iowa by source "
           "(Fossil Fuels, Nuclear, Renewables), 2001-2017, GWh", source="vega-datasets "
           "iowa-electricity.csv (US EIA)", licence=_VEGA_LIC, target=["net_generation"],
           series="source", kind="energy")
def _iowa(path):
    pd = _pd()
    df = pd.read_csv(path)
    df["time"] = pd.to_datetime(df["year"])
    return df[["source", "time", "net_generation"]].astype({"net_generation": float})


@_register(name="us_employment", package=_VEGA, path="_data/us-employment.csv", freq="MS",
           season=12, description="US monthly employment by sector (thousands), 2006-2015; "
           "default target: total nonfarm", source="vega-datasets us-employment.csv (US BLS)",
           licence=_VEGA_LIC, target=["nonfarm"], kind="economics")
def _us_employment(path):
    pd = _pd()
    df = pd.read_csv(path)
    df.insert(0, "time", pd.to_datetime(df.pop("month")))
    return df


_SKT = "sktime"


@_register(name="yahoo", package=_SKT, path="datasets/data/yahoo/yahoo.csv", freq=None, season=1,
           description="Yahoo Webscope S5 anomaly benchmark series: 1000 points with a 0/1 "
           "`label` column (7 anomalies); `time` is the integer step",
           source="Yahoo Webscope S5 (A1/A2 benchmark), as shipped in sktime",
           licence="Yahoo Webscope research-use terms; redistributed by sktime (BSD-3)",
           target=["data"], kind="anomaly")
def _yahoo(path):
    return _labelled(path)


@_register(name="mitdb", package=_SKT, path="datasets/data/mitdb/mitdb.csv", freq=None, season=1,
           description="ECG excerpt of the MIT-BIH Arrhythmia Database, 7500 samples with a 0/1 "
           "`label` column (one anomalous segment); `time` is the integer step",
           source="PhysioNet MIT-BIH Arrhythmia Database, as shipped in sktime",
           licence="Open Data Commons Attribution v1.0 (PhysioNet); redistributed by sktime",
           target=["data"], kind="anomaly")
def _mitdb(path):
    return _labelled(path)


def _labelled(path):
    pd = _pd()
    df = pd.read_csv(path)
    df.insert(0, "time", pd.RangeIndex(len(df)))
    return df


# -- the report set ------------------------------------------------------------------------------
# Series registered for the forecasting benchmark's untouched report set: no model choice,
# setting or search may be made on them (see benchmarks/forecast.py). Each loader builds the
# calendar from the start date the source states; the values are the package's own.

REPORT_SET = ("ausbeer", "austres", "woolyrnq", "lynx", "seatbelts", "shampoo", "uschange",
              "taylor", "goog", "heartrate")
"""Names of the report-set series (registered below)."""


def _pmd_frame(loader: str, start: str, freq: str, column: str):
    pd = _pd()
    import pmdarima.datasets as pmd_data

    y = getattr(pmd_data, loader)().astype(float)
    return pd.DataFrame({"time": pd.date_range(start, periods=len(y), freq=freq), column: y})


@_register(name="ausbeer", package=_PMD, path="datasets/ausbeer.py", freq="QS", season=4,
           description="Total quarterly beer production in Australia (megalitres), "
           "1956 Q1 - 2008 Q3", source="Australian Bureau of Statistics via R fpp::ausbeer, "
           "in pmdarima.datasets.load_ausbeer", licence=_PMD_LIC, target=["beer"],
           kind="sales")
def _ausbeer(path):
    """Australian beer production, megalitres per quarter, 211 quarters from 1956 Q1 (the
    package's array ends with a NaN placeholder for 2008 Q4, dropped here)."""
    df = _pmd_frame("load_ausbeer", "1956-01-01", "QS", "beer")
    return df[df["beer"].notna()].reset_index(drop=True)


@_register(name="austres", package=_PMD, path="datasets/austres.py", freq="QS", season=4,
           description="Number of Australian residents (thousands), quarterly, 1971 Q2 - "
           "1993 Q2", source="Brockwell & Davis (1996), R datasets::austres, in "
           "pmdarima.datasets.load_austres", licence=_PMD_LIC, target=["residents"],
           kind="demography")
def _austres(path):
    """Australian residents in thousands, 89 quarters from 1971 Q2 (R's ``tsp(austres)`` is
    1971.25 - 1993.25; pmdarima's docstring says "March 1971 to March 1994", which would be 93
    quarters, not the 89 it ships)."""
    return _pmd_frame("load_austres", "1971-04-01", "QS", "residents")


@_register(name="woolyrnq", package=_PMD, path="datasets/woolyrnq.py", freq="QS", season=4,
           description="Quarterly production of woollen yarn in Australia (tonnes), "
           "1965 Q1 - 1994 Q3", source="Australian Bureau of Statistics via R "
           "forecast::woolyrnq, in pmdarima.datasets.load_woolyrnq", licence=_PMD_LIC,
           target=["tonnes"], kind="production")
def _woolyrnq(path):
    """Australian woollen yarn production, tonnes per quarter, 119 quarters from 1965 Q1."""
    return _pmd_frame("load_woolyrnq", "1965-01-01", "QS", "tonnes")


@_register(name="lynx", package=_PMD, path="datasets/lynx.py", freq="YS", season=1,
           description="Annual number of lynx trapped in the Mackenzie River district of "
           "Canada, 1821-1934 (count; a ~10-year cycle of varying length, so no fixed season)",
           source="Hudson's Bay Company records via Campbell & Walker (1977), Brockwell & Davis "
           "(1991), R datasets::lynx, in pmdarima.datasets.load_lynx", licence=_PMD_LIC,
           target=["trappings"], kind="ecology")
def _lynx(path):
    """Canadian lynx trappings per year, 114 years from 1821."""
    return _pmd_frame("load_lynx", "1821-01-01", "YS", "trappings")


@_register(name="taylor", package=_PMD, path="datasets/taylor.py", freq="30min", season=48,
           description="Half-hourly electricity demand in England and Wales (megawatts), "
           "Monday 5 June - Sunday 27 August 2000 (12 weeks; daily period 48, weekly 336)",
           source="Taylor (2003), J. Oper. Res. Soc.; R forecast::taylor, in "
           "pmdarima.datasets.load_taylor", licence=_PMD_LIC, target=["demand"],
           kind="energy")
def _taylor(path):
    """Electricity demand in MW every 30 minutes, 4032 steps from 2000-06-05 00:00."""
    return _pmd_frame("load_taylor", "2000-06-05 00:00", "30min", "demand")


@_register(name="heartrate", package=_PMD, path="datasets/heartrate.py", freq="500ms",
           season=1, description="Heart rate of one subject (beats per minute) sampled every "
           "0.5 s, 150 samples", source="MIT-BIH database sample (Goldberger & Rigney, "
           "'Nonlinear dynamics at the bedside', 1991), in pmdarima.datasets.load_heartrate",
           licence=_PMD_LIC, target=["bpm"], kind="health")
def _heartrate(path):
    """Heart rate in beats per minute every 0.5 s, 150 samples (clock starts at 0)."""
    return _pmd_frame("load_heartrate", "2000-01-01 00:00:00", "500ms", "bpm")


@_register(name="seatbelts", package=_SKT, path="datasets/data/seatbelts/seatbelts.csv",
           freq="MS", season=12, description="Car drivers killed or seriously injured in Great "
           "Britain per month (count), Jan 1969 - Dec 1984; `law` is 1 from Feb 1983, when "
           "wearing front seat belts became compulsory", source="Harvey & Durbin (1986), R "
           "datasets::UKDriverDeaths / Seatbelts, as shipped in sktime",
           licence="R datasets (GPL) origin; redistributed by sktime (BSD-3)",
           target=["ksi"], kind="safety")
def _seatbelts(path):
    """UK car drivers killed or seriously injured per month, 192 months from 1969-01."""
    pd = _pd()
    df = pd.read_csv(path)
    return pd.DataFrame({"time": pd.to_datetime(df.iloc[:, 0]),
                         "ksi": df["KSI"].astype(float),
                         # sktime marks only the change month; R's Seatbelts$law stays 1 after
                         "law": df["label"].astype(float).cummax()})


@_register(name="shampoo", package=_SKT, path="datasets/data/ShampooSales/ShampooSales.csv",
           freq="MS", season=12, description="Monthly sales of a shampoo over three years "
           "(sales count; the book's 'years 1-3' dated 1991-1993 by sktime)",
           source="Makridakis, Wheelwright & Hyndman (1998), Forecasting: methods and "
           "applications, ch. 3; as shipped in sktime (load_shampoo_sales)",
           licence="textbook example data; redistributed by sktime (BSD-3)",
           target=["sales"], kind="sales")
def _shampoo(path):
    """Shampoo sales per month, 36 months from 1991-01."""
    pd = _pd()
    df = pd.read_csv(path)
    return pd.DataFrame({"time": pd.to_datetime(df["Time"], format="%Y-%m"),
                         "sales": df["Sales"].astype(float)})


@_register(name="uschange", package=_SKT, path="datasets/data/Uschange/Uschange.csv",
           freq="QS", season=4, description="Quarterly percentage changes of US personal "
           "consumption expenditure (default target), disposable income, production, savings "
           "and the unemployment rate (change in percentage points), 1970 Q1 - 2016 Q3",
           source="Federal Reserve Bank of St Louis via R fpp2::uschange (Hyndman & "
           "Athanasopoulos, FPP2), as shipped in sktime", licence="public US statistics; "
           "redistributed by sktime (BSD-3)", target=["consumption"], kind="economics")
def _uschange(path):
    """US growth rates in percent per quarter, 187 quarters from 1970 Q1."""
    pd = _pd()
    df = pd.read_csv(path, index_col=0)
    time = pd.PeriodIndex(df.pop("Quarter").str.replace(" ", ""), freq="Q").to_timestamp()
    out = df.astype(float).rename(columns=str.lower)
    out.insert(0, "time", time)
    return out.reset_index(drop=True)


@_register(name="goog", package="matplotlib", path="mpl-data/sample_data/goog.npz", freq="B",
           season=1, description="Google daily stock prices (USD; open, high, low, close, "
           "adjusted close, volume), 19 Aug 2004 - 14 Oct 2008; trading days, exchange "
           "holidays forward-filled to business days", source="Yahoo Finance, in matplotlib's "
           "sample data (mpl-data/sample_data/goog.npz)", licence="matplotlib sample data "
           "(matplotlib licence, PSF-based); prices from Yahoo Finance", target=["close"],
           kind="stock")
def _goog(path):
    """Google's daily prices in USD on business days, 1084 steps from 2004-08-19."""
    import numpy as np

    pd = _pd()
    with np.load(path) as z:
        a = z["price_data"]
    df = pd.DataFrame({name: a[name] for name in a.dtype.names})
    df["time"] = pd.to_datetime(df.pop("date"))
    df = df.set_index("time").astype(float).asfreq("B").ffill()
    return df.reset_index()


# -- the second report set -----------------------------------------------------------------------
# Registered after the first report set had been read (stop 24): series no model of the
# forecasting benchmark has run on, from statsmodels' bundled data. The selection below is a
# rule on names and completeness only, fixed before any value was looked at or any model run.

REPORT2_SET = ("fertility", "danish_money", "german_rates")
"""Names of the second report set's data sets (registered below; several series each)."""

FERTILITY_COUNTRIES = 20
"""How many of the World Bank fertility series :func:`load_dataset` ``("fertility")`` holds."""


@_register(name="fertility", package=_SM, path="datasets/fertility/fertility.csv", freq="YS",
           season=1, description="Total fertility rate (births per woman), yearly 1960-2011, "
           "for 20 countries or regions: those with no gap in 1960-2011 (the file's 2012 and "
           "2013 columns are empty), in order of their World Bank code, every k-th with "
           "k = count / 20", source="World Bank World Development Indicators "
           "(SP.DYN.TFRT.IN), in statsmodels.datasets.fertility",
           licence="World Bank terms of use (as stated in statsmodels.datasets.fertility."
           "COPYRIGHT)", target=["fertility"], series="country", kind="demography")
def _fertility(path):
    pd = _pd()
    df = pd.read_csv(path)
    years = [str(y) for y in range(1960, 2012)]
    df = df.dropna(subset=years).sort_values("Country Code").reset_index(drop=True)
    n = len(df)
    pick = [i * n // FERTILITY_COUNTRIES for i in range(FERTILITY_COUNTRIES)]
    out = df.loc[pick, ["Country Code", *years]].melt(id_vars="Country Code", var_name="year",
                                                      value_name="fertility")
    out["time"] = pd.to_datetime(out.pop("year"), format="%Y")
    out = out.rename(columns={"Country Code": "country"})[["country", "time", "fertility"]]
    return out.sort_values(["country", "time"]).reset_index(drop=True).astype(
        {"fertility": float})


@_register(name="danish_money", package=_SM, path="datasets/danish_data/data.csv", freq="QS",
           season=4, description="Danish money demand data, quarterly 1974 Q1 - 1987 Q3: log "
           "real money (lrm), log real income (lry), log prices (lpy), bond rate (ibo), deposit "
           "rate (ide), five series", source="Johansen and Juselius (1990), in "
           "statsmodels.datasets.danish_data", licence=_SM_PD.format("danish_data"),
           target=["value"], series="variable", kind="economics")
def _danish_money(path):
    pd = _pd()
    df = pd.read_csv(path, encoding="utf-8-sig")
    df["time"] = pd.PeriodIndex(df.pop("period"), freq="Q").to_timestamp()
    out = df.melt(id_vars="time", var_name="variable", value_name="value")
    return out[["variable", "time", "value"]].sort_values(["variable", "time"]).reset_index(
        drop=True).astype({"value": float})


@_register(name="german_rates", package=_SM, path="datasets/interest_inflation/E6.csv",
           freq="QS", season=4, description="West German inflation (Dp: quarterly change of "
           "the log GDP deflator) and nominal long-term interest rate (R), quarterly 1972 Q2 - "
           "1998 Q4, two series", source="Lütkepohl (2005), data set E6 of JMulTi, in "
           "statsmodels.datasets.interest_inflation", licence="as stated in "
           "statsmodels.datasets.interest_inflation (no terms given; distributed with "
           "statsmodels, BSD-3)", target=["value"], series="variable", kind="economics")
def _german_rates(path):
    pd = _pd()
    df = pd.read_csv(path)
    df["time"] = pd.PeriodIndex.from_fields(year=df.pop("year"), quarter=df.pop("quarter"),
                                            freq="Q").to_timestamp()
    out = df.melt(id_vars="time", var_name="variable", value_name="value")
    return out[["variable", "time", "value"]].sort_values(["variable", "time"]).reset_index(
        drop=True).astype({"value": float})
