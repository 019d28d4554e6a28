r"""Time series for forecasting: validated series, calendar features, per-series scaling fitted
on training data only, and sliding windows ``(past [L, F], future [H, C])``.

A :class:`Series` is one regularly spaced series: a time index ``[T]``, targets ``[T, C]``,
optional past covariates ``[T, P]`` (known only up to now) and known-future covariates
``[T, K]`` (known ahead, e.g. promotions). Calendar features are computed from the index, so
they are known for any future step.

Validation happens once, here: unsorted or duplicate timestamps (:func:`check_time_order`, also
used by the anomaly command), missing timestamps, irregular spacing, NaNs and infinities raise
errors that name the fix (``fill="interpolate"`` or ``fill="ffill"`` repairs NaNs and missing
steps, documented below), and too-short series are caught where a window length is known
(:func:`check_length`). Hints spell options as Python keywords (``fill='interpolate'``); the
CLI rewrites them as its flags (``--fill interpolate``).

>>> import numpy as np
>>> s = from_array(np.arange(10.0), freq="D", start="2024-01-01")[0]
>>> s.target.shape, s.freq, str(s.time[-1].date())
((10, 1), 'D', '2024-01-10')
>>> sc = SeriesScaler().fit([s], train_end=[8])      # statistics from the first 8 steps only
>>> float(sc.mean[0, 0]), round(float(sc.std[0, 0]), 3)
(3.5, 2.291)
>>> ds = WindowDataset([sc.transform(0, s.target)], input_len=4, horizon=2)
>>> len(ds), tuple(ds[0]["x"].shape), tuple(ds[0]["y"].shape)
(5, (4, 1), (2, 1))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "Series",
    "SeriesScaler",
    "SeriesTooShortError",
    "WindowDataset",
    "as_series",
    "calendar_features",
    "check_length",
    "check_time_order",
    "from_array",
    "freq_kind",
    "from_dataframe",
    "future_index",
    "read_csv",
    "resolve_calendar",
    "season_for_freq",
]


def _pd():
    try:
        import pandas as pd
    except ModuleNotFoundError as err:  # pragma: no cover
        raise ModuleNotFoundError(
            "rnnkit.data.timeseries needs pandas for time indexes; install it with "
            "`pip install rnnkit[data]`", name="pandas") from err
    return pd


#: characters text hardly ever holds (a CSV with many is binary): the C0 controls but tab, line
#: feed, form feed and carriage return; DEL; the C1 controls (what Latin-1 reads binary as)
_CONTROLS = dict.fromkeys([*range(0, 9), 11, *range(14, 32), *range(127, 160)])


def read_csv(path: Any, flag: str | None = None, needs: str | None = None):
    """Read a UTF-8 CSV file into a DataFrame, with errors that name the file (by its ``flag``,
    e.g. ``"--csv"``, when given), the problem and what to give instead (``needs``: what the
    file must hold besides a header row, e.g. ``"the --time and --target columns"``).

    A missing path, a folder, an empty or binary file, a file in another encoding than UTF-8
    (Latin-1, UTF-16: re-save it as UTF-8; a CSV is not guessed at, since a wrong guess would
    silently change column names and values), an unparseable file and a header without rows
    are all refused before any work.

    >>> read_csv("no/such.csv")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no such CSV file: no/such.csv; check the path
    """
    import io
    from pathlib import Path

    pd = _pd()
    path = Path(path)
    name = f"{flag} {path}" if flag else str(path)
    give = "give a UTF-8 CSV file with a header row" + (f" and {needs}" if needs else "")
    if path.is_dir():
        raise IsADirectoryError(f"{name} is a folder, not a CSV file; give the path of a CSV "
                                f"file (in it)")
    if not path.is_file():
        raise FileNotFoundError(f"no such CSV file: {name}; check the path")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise OSError(f"{name}: cannot read it ({err.strerror or err}); {give} that is "
                      f"readable") from None
    if not raw.strip():
        raise ValueError(f"{name} is empty; {give}")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValueError(f"{name} is UTF-16 encoded, not UTF-8; re-save it as UTF-8 (e.g. "
                         f"iconv -f utf-16 -t utf-8), or {give}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        text, bad = None, err
    head = text[:65536] if text is not None else raw[:65536].decode("latin-1")
    nul = "\x00" in head
    if nul or len(head) - len(head.translate(_CONTROLS)) > len(head) // 10:
        raise ValueError(f"{name} is a binary file, not a CSV (it holds "
                         f"{'NUL' if nul else 'control'} bytes); {give}")
    if text is None:
        raise ValueError(f"{name} is not UTF-8 text (byte 0x{raw[bad.start]:02x} at offset "
                         f"{bad.start} cannot be decoded: Latin-1 or Windows-1252?); re-save it "
                         f"as UTF-8 (e.g. iconv -f latin1 -t utf-8), or {give}")
    try:
        df = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{name} is not a readable CSV file ({detail}); {give}, its values "
                         f"separated by commas") from None
    if df.empty:
        raise ValueError(f"{name} has a header but no rows; {give} and at least one data row")
    return df


@dataclass
class Series:
    """One regularly spaced (possibly multivariate) series.

    Attributes:
        name: series id (the value of the series column, or ``"0"``).
        time: ``pandas.DatetimeIndex`` (with ``freq``) or ``RangeIndex`` of integer steps, ``[T]``.
        target: float64 ``[T, C]``.
        past: past covariates, float64 ``[T, P]`` (``P`` may be 0).
        future: known-future covariates, float64 ``[T, K]`` (``K`` may be 0).
        freq: pandas frequency string, or ``None`` for integer steps.
        target_names, past_names, future_names: column names.
    """

    name: str
    time: Any
    target: np.ndarray
    past: np.ndarray
    future: np.ndarray
    freq: str | None
    target_names: tuple[str, ...] = ("y",)
    past_names: tuple[str, ...] = ()
    future_names: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.target)

    def head(self, n: int) -> Series:
        """The first ``n`` steps (a forecast origin: everything after it is unseen)."""
        return replace(self, time=self.time[:n], target=self.target[:n], past=self.past[:n],
                       future=self.future[:n])


# -- construction and validation ---------------------------------------------------------------

def _check_values(values: np.ndarray, what: str, name: str, fill: str) -> np.ndarray:
    bad = ~np.isfinite(values)
    if not bad.any():
        return values
    if fill == "raise":
        rows = np.nonzero(bad.any(axis=1))[0]
        raise ValueError(
            f"series {name!r}: {what} has {int(bad.sum())} NaN/inf values (first at rows "
            f"{rows[:5].tolist()}); clean them, or pass fill='interpolate' or fill='ffill'")
    pd = _pd()
    frame = pd.DataFrame(values).replace([np.inf, -np.inf], np.nan)
    frame = frame.interpolate(limit_direction="both") if fill == "interpolate" else \
        frame.ffill().bfill()
    out = frame.to_numpy(dtype=np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"series {name!r}: {what} has a column that is entirely NaN; drop it")
    return out


def _check_freq(freq: str | None) -> None:
    """A clear error for a ``freq`` pandas cannot parse (checked once, before any work)."""
    if freq is None:
        return
    try:
        _pd().tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError):
        raise ValueError(f"freq={freq!r} is not a pandas frequency; use e.g. 'D' (daily), 'MS' "
                         f"(month start), 'h' (hourly), 'W-SUN' (weekly, on Sundays), 'QS' "
                         f"(quarter start), or leave it out to infer it") from None


def check_time_order(times, column: str, name: str | None = None):
    """The time column ``times`` ``[T]`` (datetimes, parseable strings or integer steps) parsed,
    after checking that its rows are in time order: no empty or duplicate timestamps, strictly
    increasing. Returns a pandas Series ``[T]`` of datetimes, or of integer steps for a numeric
    column; errors name the column (and the series ``name`` when given) and the fix.

    >>> import pandas as pd
    >>> check_time_order(pd.Series([1, 2, 5]), "step").tolist()
    [1, 2, 5]
    >>> check_time_order(pd.Series(["2024-01-02", "2024-01-01"]), "date")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: time column 'date' is not sorted: 2024-01-01 comes after 2024-01-02; sort ...
    """
    pd = _pd()
    where = f"series {name!r}: " if name is not None else ""
    t = pd.Series(times).reset_index(drop=True)
    if t.isna().any():
        raise ValueError(f"{where}time column {column!r} has {int(t.isna().sum())} empty "
                         f"value(s); fill or drop those rows")
    if pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t):
        if not (t == t.round()).all():
            raise ValueError(f"{where}integer time column {column!r} has non-integer values; "
                             "pass datetimes or integer steps")
        t = t.astype("int64")
    else:
        try:
            t = pd.to_datetime(t)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{where}time column {column!r} could not be parsed as dates "
                             f"({err}); pass ISO dates or integer steps") from None
    def show(v) -> str:  # a date without its midnight time
        return str(v.date()) if isinstance(v, pd.Timestamp) and v == v.normalize() else str(v)

    dup = t.duplicated()
    if dup.any():
        raise ValueError(f"{where}time column {column!r} has {int(dup.sum())} duplicate "
                         f"timestamp(s), e.g. {show(t[dup].iloc[0])}; aggregate or drop the "
                         f"duplicates first")
    back = np.nonzero((t.diff() < (pd.Timedelta(0) if t.dtype.kind == "M" else 0)).to_numpy())[0]
    if len(back):
        i = int(back[0])
        raise ValueError(f"{where}time column {column!r} is not sorted: {show(t.iloc[i])} comes "
                         f"after {show(t.iloc[i - 1])}; sort the rows by time first")
    return t


def _regularize(frame, time_col: str, freq: str | None, fill: str, name: str):
    """Sort check, duplicates, and missing timestamps / irregular spacing."""
    pd = _pd()
    t = check_time_order(frame[time_col], time_col, name)
    if t.dtype.kind != "M":
        steps = t.to_numpy()
        gaps = np.nonzero(np.diff(steps) != 1)[0]
        if len(gaps):
            if fill == "raise":
                raise ValueError(
                    f"series {name!r}: {len(gaps)} gaps in integer time steps (first after "
                    f"step {int(steps[gaps[0]])}); fill them, or pass fill='interpolate' or "
                    f"fill='ffill'")
            full = np.arange(int(steps[0]), int(steps[-1]) + 1)
            frame = frame.set_index(time_col).reindex(full).rename_axis(time_col).reset_index()
        index = pd.RangeIndex(int(frame[time_col].iloc[0]),
                              int(frame[time_col].iloc[-1]) + 1)
        return frame, index, None
    if len(t) < 3 and freq is None:
        raise ValueError(f"series {name!r}: {len(t)} rows are too few to infer a frequency; "
                         "pass freq= explicitly")
    inferred = freq or pd.infer_freq(pd.DatetimeIndex(t))
    if inferred is None:
        # irregular or with missing timestamps: guess the step as the most common spacing
        diffs = pd.Series(t).diff().dropna()
        step = diffs.mode().iloc[0]
        inferred = pd.tseries.frequencies.to_offset(step).freqstr
        if fill == "raise":
            full = pd.date_range(t.iloc[0], t.iloc[-1], freq=step)
            missing = full.difference(pd.DatetimeIndex(t))
            extra = pd.DatetimeIndex(t).difference(full)
            what = (f"{len(missing)} missing timestamps (first: {missing[0]})" if len(missing)
                    else f"irregular spacing ({len(extra)} timestamps off the {inferred} grid, "
                    f"first: {extra[0] if len(extra) else '?'})")
            raise ValueError(
                f"series {name!r}: {what}; resample to a regular grid, pass freq= explicitly, "
                f"or pass fill='interpolate' or fill='ffill' to reindex to freq {inferred!r}")
    full = pd.date_range(t.iloc[0], t.iloc[-1], freq=inferred)
    if len(full) != len(t) or not (full == pd.DatetimeIndex(t)).all():
        if fill == "raise":
            missing = full.difference(pd.DatetimeIndex(t))
            raise ValueError(
                f"series {name!r}: timestamps do not follow freq {inferred!r} "
                f"({len(missing)} missing, first: {missing[0] if len(missing) else '-'}); "
                "pass fill='interpolate' or fill='ffill' to reindex, or fix freq=")
        frame = frame.assign(**{time_col: t}).set_index(time_col)
        # put off-grid rows onto the grid by time interpolation, then keep the grid
        union = frame.index.union(full)
        num = frame.select_dtypes("number").reindex(union)
        num = num.interpolate(method="time") if fill == "interpolate" else num.ffill()
        frame = num.reindex(full).rename_axis(time_col).reset_index()
    index = pd.DatetimeIndex(full, freq=inferred)
    return frame, index, index.freqstr


def from_dataframe(df, time: str, target: str | Sequence[str], series: str | None = None,
                   past_covariates: Sequence[str] = (), future_covariates: Sequence[str] = (),
                   freq: str | None = None, fill: str = "raise") -> list[Series]:
    """Validated :class:`Series` from a long pandas DataFrame.

    Args:
        df: one row per time step (and per series when ``series`` is given).
        time: the time column: datetimes (or parseable strings) or integer steps.
        target: one or several target columns (multivariate forecasting).
        series: column with a series id; every id becomes one series (global model).
        past_covariates: columns known only up to the forecast origin.
        future_covariates: columns known for the forecast horizon too (pass their future values
            to ``predict``).
        freq: pandas frequency (``"D"``, ``"MS"``, ``"h"``, ...); inferred when ``None``.
        fill: ``"raise"`` (default: missing timestamps, irregular spacing and NaNs are errors),
            ``"interpolate"`` (reindex to ``freq`` and interpolate linearly in time) or
            ``"ffill"`` (reindex and carry the last value forward).
    """
    pd = _pd()
    if fill not in ("raise", "interpolate", "ffill"):
        raise ValueError(f"fill must be 'raise', 'interpolate' or 'ffill', got {fill!r}")
    _check_freq(freq)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}; use "
                        "from_array for numpy arrays")
    targets = [target] if isinstance(target, str) else list(target)
    if not targets:
        raise ValueError("at least one target column is needed")
    cols = [time, *targets, *past_covariates, *future_covariates] + ([series] if series else [])
    roles = [("time", [time]), ("target", targets), ("series", [series] if series else []),
             ("past_covariates", past_covariates), ("future_covariates", future_covariates)]
    missing = [f"{kw}={c!r}" for kw, names in roles for c in names if c not in df.columns]
    if missing:  # each by its keyword, so the CLI can name the flag to change
        raise ValueError(f"{'column' if len(missing) == 1 else 'columns'} not in the data: "
                         f"{', '.join(missing)}; choose from its columns {list(df.columns)}")
    if len(df) == 0:
        raise ValueError("the data frame is empty; a series needs at least a few rows")
    for c in [*targets, *past_covariates, *future_covariates]:
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise TypeError(f"column {c!r} has dtype {df[c].dtype}, expected numbers; convert "
                            "or drop it")
    groups = df.groupby(series, sort=True) if series else [("0", df)]
    out = []
    for key, frame in groups:
        name = str(key[0] if isinstance(key, tuple) else key)
        frame, index, fr = _regularize(frame[cols].reset_index(drop=True), time, freq, fill,
                                       name)

        def block(names, what, frame=frame, name=name):
            arr = frame[list(names)].to_numpy(dtype=np.float64).reshape(len(frame), len(names))
            return _check_values(arr, what, name, fill)

        out.append(Series(name=name, time=index, target=block(targets, "target"),
                          past=block(past_covariates, "past covariates"),
                          future=block(future_covariates, "future covariates"), freq=fr,
                          target_names=tuple(targets), past_names=tuple(past_covariates),
                          future_names=tuple(future_covariates)))
    return out


def from_array(values, freq: str | None = None, start: Any = 0, past=None, future=None,
               fill: str = "raise") -> list[Series]:
    """Series from numpy arrays: ``values`` ``[T]``, ``[T, C]`` or ``[S, T, C]`` (S series of
    equal length); ``past`` / ``future`` covariates with the same leading shape. With ``freq``
    the time index is ``pandas.date_range(start, periods=T, freq=freq)``, else integer steps
    from ``start``."""
    pd = _pd()
    _check_freq(freq)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[None, :, None]
    elif v.ndim == 2:
        v = v[None]
    elif v.ndim != 3:
        raise ValueError(f"expected values of shape [T], [T, C] or [S, T, C], got {v.shape}")
    S, T, C = v.shape
    if T == 0:
        raise ValueError("the series is empty; pass at least a few time steps")

    def cov(a, what):
        if a is None:
            return np.zeros((S, T, 0))
        a = np.asarray(a, dtype=np.float64)
        a = a.reshape(1, T, -1) if a.ndim <= 2 and S == 1 else a
        if a.ndim == 2:
            a = a[..., None]
        if a.shape[:2] != (S, T):
            raise ValueError(f"{what} covariates must have shape [S, T, *] = [{S}, {T}, *] "
                             f"like the values, got {a.shape}")
        return a

    p, f = cov(past, "past"), cov(future, "future")
    if freq is None:
        index = pd.RangeIndex(int(start), int(start) + T)
    else:
        index = pd.date_range(start if start != 0 else "2000-01-01", periods=T, freq=freq)
    out = []
    for i in range(S):
        name = str(i)
        out.append(Series(name=name, time=index, target=_check_values(v[i], "target", name, fill),
                          past=_check_values(p[i], "past covariates", name, fill),
                          future=_check_values(f[i], "future covariates", name, fill),
                          freq=index.freqstr if freq else None,
                          target_names=tuple(f"y{j}" if C > 1 else "y" for j in range(C)),
                          past_names=tuple(f"past{j}" for j in range(p.shape[-1])),
                          future_names=tuple(f"future{j}" for j in range(f.shape[-1]))))
    return out


class SeriesTooShortError(ValueError):
    """A series has fewer steps than the requested windows need (a ``ValueError``)."""


def check_length(series: Sequence[Series], need: int, what: str,
                 fix: str = "use a shorter input_len or horizon, or a longer series") -> None:
    """Raise :class:`SeriesTooShortError` if any series is shorter than ``need`` steps, naming
    ``what`` needs them and the ``fix``."""
    for s in series:
        if len(s) < need:
            raise SeriesTooShortError(
                f"series {s.name!r} has {len(s)} steps but {what} needs at least {need}; "
                f"{fix}")


# -- calendar ------------------------------------------------------------------------------------

_CAL_PERIOD = {"hour": 24, "dayofweek": 7, "dayofmonth": 31, "dayofyear": 366, "month": 12,
               "quarter": 4}


def resolve_calendar(calendar: str | Sequence[str], freq: str | None) -> tuple[str, ...]:
    """Calendar features for ``calendar="auto"``: those that vary at ``freq``
    (hourly: hour and day of week; daily: day of week and day of year; weekly: day of year;
    monthly: month; quarterly: quarter; yearly or integer steps: none).

    >>> resolve_calendar("auto", "h"), resolve_calendar("auto", "MS")
    (('hour', 'dayofweek'), ('month',))
    """
    if calendar != "auto":
        bad = [c for c in calendar if c not in _CAL_PERIOD]
        if bad:
            raise ValueError(f"unknown calendar features {bad}; choose from {list(_CAL_PERIOD)}")
        return tuple(calendar)
    if freq is None:
        return ()
    pd = _pd()
    base = pd.tseries.frequencies.to_offset(freq).name.split("-")[0].upper()
    if base in ("H", "T", "MIN", "S"):
        return ("hour", "dayofweek")
    if base in ("D", "B", "C"):
        return ("dayofweek", "dayofyear")
    if base == "W":
        return ("dayofyear",)
    if base in ("M", "MS", "ME", "SM", "SMS", "BM", "BMS"):
        return ("month",)
    if base in ("Q", "QS", "QE", "BQ", "BQS"):
        return ("quarter",)
    return ()


#: per pandas frequency code (old and new spellings): (its word, the unit of a multiple,
#: steps per natural cycle: a year for weekly and coarser, a week for (business) daily)
_FREQ_SEASONS = {
    **dict.fromkeys(("Y", "YS", "YE", "BY", "BYS", "BYE", "A", "AS", "BA", "BAS"),
                    ("annual", "year", 1)),
    **dict.fromkeys(("Q", "QS", "QE", "BQ", "BQS", "BQE"), ("quarterly", "quarter", 4)),
    **dict.fromkeys(("M", "MS", "ME", "BM", "BMS", "BME", "CBMS", "CBME"),
                    ("monthly", "month", 12)),
    **dict.fromkeys(("SM", "SMS", "SME"), ("semi-monthly", "half-month", 24)),
    "W": ("weekly", "week", 52), "D": ("daily", "day", 7),
    **dict.fromkeys(("B", "C"), ("business-daily", "business day", 5)),
}
#: sub-daily codes: (unit, minutes per step); their cycle is a day
_FREQ_TICKS = {"H": ("hour", 60), "MIN": ("minute", 1), "T": ("minute", 1),
               "S": ("second", 1 / 60)}
#: the finest sub-daily step given a daily season (15 minutes: 96 steps a day)
_MAX_STEPS_PER_DAY = 96


def _freq_season(freq: str) -> tuple[int, str]:
    """``(season, word)`` of a pandas frequency (see :func:`season_for_freq`)."""
    _check_freq(freq)
    offset = _pd().tseries.frequencies.to_offset(freq)
    base, n = offset.name.split("-")[0].upper(), offset.n
    if base in _FREQ_SEASONS:
        word, unit, m = _FREQ_SEASONS[base]
        if n == 1:
            return m, word
        return (m // n if m % n == 0 else 1), f"every-{n}-{unit}s"
    if base in _FREQ_TICKS:
        unit, minutes = _FREQ_TICKS[base]
        per_day = 24 * 60 / (n * minutes)
        word = {("hour", 1): "hourly", ("minute", 30): "half-hourly"}.get((unit, n),
                                                                          f"every-{n}-{unit}s")
        if per_day.is_integer() and 2 <= per_day <= _MAX_STEPS_PER_DAY:
            return int(per_day), word
        return 1, word
    return 1, f"{offset.name}"


def season_for_freq(freq: str | None) -> int:
    """The natural seasonal period, in steps, of data at the pandas frequency ``freq``: a year
    of quarterly (4), monthly (12), semi-monthly (24) or weekly (52) steps; a week of daily (7)
    or business-daily (5) steps; a day of hourly (24), half-hourly (48) or any sub-daily step
    down to 15 minutes (96) that divides a day; a multiple of a step divides the cycle
    (``"3MS"``: 4). Annual, ``None`` (integer steps) and anything else: 1 (no season).

    >>> [season_for_freq(f) for f in ("QS-OCT", "MS", "W", "D", "h", "30min", "B", "YS")]
    [4, 12, 52, 7, 24, 48, 5, 1]
    >>> season_for_freq("3MS"), season_for_freq(None)
    (4, 1)
    """
    return 1 if freq is None else _freq_season(freq)[0]


def freq_kind(freq: str | None) -> str:
    """A word for the pandas frequency ``freq``, as :func:`season_for_freq` reads it.

    >>> freq_kind("QS-OCT"), freq_kind("30min"), freq_kind("2h"), freq_kind(None)
    ('quarterly', 'half-hourly', 'every-2-hours', 'integer-step')
    """
    return "integer-step" if freq is None else _freq_season(freq)[1]


def calendar_features(time, features: Sequence[str], holidays: Sequence[Any] = ()) -> np.ndarray:
    """Known-future covariates from a DatetimeIndex ``[T]``: a sine/cosine pair per feature
    (so December sits next to January) plus one 0/1 column when ``holidays`` (dates) are given
    (off by default). Returns ``[T, 2 * len(features) (+1)]``; ``[T, 0]`` for integer steps.

    >>> import pandas as pd
    >>> calendar_features(pd.date_range("2024-01-01", periods=3, freq="D"), ["dayofweek"]).shape
    (3, 2)
    """
    pd = _pd()
    cols = []
    if isinstance(time, pd.DatetimeIndex):
        for f in features:
            v = np.asarray(getattr(time, "dayofweek" if f == "dayofweek" else f), dtype=float)
            v = v - 1 if f in ("dayofmonth", "dayofyear", "month", "quarter") else v
            angle = 2 * np.pi * v / _CAL_PERIOD[f]
            cols += [np.sin(angle), np.cos(angle)]
        if len(holidays):
            days = pd.DatetimeIndex(pd.to_datetime(list(holidays))).normalize()
            cols.append(time.normalize().isin(days).astype(float))
    if not cols:
        return np.zeros((len(time), 0))
    return np.stack(cols, axis=1)


def future_index(time, n: int):
    """The ``n`` time stamps after the end of ``time`` (same freq, or integer steps)."""
    pd = _pd()
    if isinstance(time, pd.DatetimeIndex):
        return pd.date_range(time[-1], periods=n + 1, freq=time.freq)[1:]
    return pd.RangeIndex(time[-1] + 1, time[-1] + 1 + n)


# -- scaling -------------------------------------------------------------------------------------

class SeriesScaler:
    r"""Per-series, per-column standardization :math:`z = (y - \mu) / \sigma` with
    :math:`\mu, \sigma` computed on each series' training part only (no leakage from the
    validation or test steps). A constant training part has :math:`\sigma = 0`; it is scaled
    with :math:`\sigma = 1` instead (documented handling: the model then sees a flat zero
    line and forecasts are shifted back by :math:`\mu`).

    Attributes after :meth:`fit`: ``mean``, ``std``: ``[S, C]``.
    """

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, arrays: Sequence[np.ndarray] | Sequence[Series],
            train_end: Sequence[int] | None = None) -> SeriesScaler:
        """Fit on ``arrays[i][:train_end[i]]`` (``[T_i, C]`` arrays or Series targets)."""
        arrs = [a.target if isinstance(a, Series) else np.asarray(a, dtype=np.float64)
                for a in arrays]
        ends = train_end or [len(a) for a in arrs]
        means, stds = [], []
        for a, e in zip(arrs, ends):
            a = a.reshape(len(a), -1)[:e]
            if len(a) == 0:
                raise ValueError("cannot fit a scaler on an empty training part; give the "
                                 "series more training steps")
            means.append(a.mean(axis=0))
            sd = a.std(axis=0)
            stds.append(np.where(sd > 1e-12 * np.maximum(1.0, np.abs(a).max(axis=0)), sd, 1.0))
        self.mean, self.std = np.stack(means), np.stack(stds)
        return self

    def transform(self, i: int, values: np.ndarray) -> np.ndarray:
        """Scale series ``i``'s ``[T, C]`` values."""
        return (values - self.mean[i]) / self.std[i]

    def inverse_transform(self, i: int, values: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform` on ``[..., C]`` values of series ``i``."""
        return values * self.std[i] + self.mean[i]

    def state_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state_dict(cls, d: dict) -> SeriesScaler:
        sc = cls()
        sc.mean, sc.std = np.asarray(d["mean"]), np.asarray(d["std"])
        return sc


# -- windows -------------------------------------------------------------------------------------

class WindowDataset(Dataset):
    """Sliding windows over one or several (scaled) series.

    Item ``k`` is a dict of float32 tensors
    ``x [L, C + F]`` (past targets then past features), ``y [H, C]`` (the next ``horizon``
    targets), ``fut [H, K]`` (known-future features over the horizon, ``K`` may be 0) and
    ``series`` (the series number, a 0-d long tensor).

    Args:
        targets: per series, ``[T_i, C]`` arrays.
        input_len: ``L`` past steps fed to the model.
        horizon: ``H`` steps to forecast.
        past: per series ``[T_i, F]`` past features (``None``: none).
        future: per series ``[T_i, K]`` known-future features (``None``: none). They are also
            appended to the past features, so ``F`` includes ``K``.
        stride: steps between window origins.
        end: per series, windows' targets stay before this step (e.g. the training cut);
            ``None`` = the series end.
        start: per series, the first window origin (its first target step) is at least this.
    """

    def __init__(self, targets: Sequence[np.ndarray], input_len: int, horizon: int,
                 past: Sequence[np.ndarray] | None = None,
                 future: Sequence[np.ndarray] | None = None, stride: int = 1,
                 end: Sequence[int] | None = None, start: Sequence[int] | None = None) -> None:
        if input_len < 1 or horizon < 1 or stride < 1:
            raise ValueError("input_len, horizon and stride must be positive")
        self.input_len, self.horizon = input_len, horizon
        n = len(targets)
        self.targets = [torch.as_tensor(np.asarray(t).reshape(len(t), -1), dtype=torch.float32)
                        for t in targets]
        zero = [torch.zeros(len(t), 0) for t in self.targets]
        self.future = [torch.as_tensor(np.asarray(f), dtype=torch.float32) for f in future] \
            if future is not None else zero
        past_t = [torch.as_tensor(np.asarray(p), dtype=torch.float32) for p in past] \
            if past is not None else zero
        self.inputs = [torch.cat([t, p, f], dim=1)
                       for t, p, f in zip(self.targets, past_t, self.future)]
        self.index: list[tuple[int, int]] = []
        for i in range(n):
            hi = (end[i] if end is not None else len(self.targets[i])) - horizon
            lo = max(input_len, start[i] if start is not None else 0)
            self.index += [(i, o) for o in range(lo, hi + 1, stride)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i, o = self.index[k]
        L, H = self.input_len, self.horizon
        return {"x": self.inputs[i][o - L:o], "y": self.targets[i][o:o + H],
                "fut": self.future[i][o:o + H], "series": torch.tensor(i)}


def as_series(data, time: str | None = None, target: str | Sequence[str] | None = None,
              series: str | None = None, past_covariates: Sequence[str] = (),
              future_covariates: Sequence[str] = (), freq: str | None = None,
              fill: str = "raise") -> list[Series]:
    """Accept a list of :class:`Series`, a pandas DataFrame (``time`` and ``target`` needed) or
    a numpy array (see :func:`from_array`) and return validated series."""
    if isinstance(data, Series):
        return [data]
    if isinstance(data, (list, tuple)) and data and all(isinstance(s, Series) for s in data):
        return list(data)
    pd = _pd()
    if isinstance(data, pd.DataFrame):
        if time is None or target is None:
            raise ValueError("a DataFrame needs time= and target= column names, e.g. "
                             "fit(df, time='date', target='sales')")
        return from_dataframe(data, time, target, series, past_covariates, future_covariates,
                              freq, fill)
    if isinstance(data, pd.Series):
        return from_array(data.to_numpy(), freq=freq, fill=fill)
    if isinstance(data, (np.ndarray, list, tuple)):
        return from_array(data, freq=freq, fill=fill)
    raise TypeError(f"expected a DataFrame, numpy array or list of Series, got "
                    f"{type(data).__name__}")
