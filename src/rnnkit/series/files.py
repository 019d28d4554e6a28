"""Readers for time-series classification files: one labelled series per record.

Three layouts, chosen by the file's extension:

* ``.ts`` (sktime / UEA): ``@`` header lines, then ``@data`` and one case per line, the
  channels separated by ``:`` and the values of a channel by ``,``; with ``@classLabel true``
  the last ``:`` field is the class. Channels and cases may differ in length; ``?`` or ``NaN``
  is a missing value. Files with ``@targetLabel true`` (regression archives) are refused.
* ``.arff`` (Weka, UEA): numeric attributes (one per step) and the class as the last
  (nominal) attribute; multivariate UEA files hold one relational attribute (the channels as
  rows) and the class.
* ``.tsv``, ``.csv``, ``.txt`` (UCR 2018 archive): one series per row, the label in the first
  column and the values after it (tab, comma, or whitespace separated); a header row is skipped.

Every reader returns a :class:`SeriesData`: ``series`` (a list of float32 arrays ``[T_i, C]``),
``labels`` (one string per series, or ``None`` for unlabelled files) and the class names.
Trailing missing values are the UCR archive's padding of shorter series and are trimmed per
series (the series keeps its own length ``T_i``); a missing value anywhere else is an error.
The readers use numpy (and scipy for ARFF) only, not torch.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "tiny.ts")
>>> _ = open(path, "w").write("@problemName tiny\\n@classLabel true a b\\n@data\\n"
...                           "1,2,3:4,5,6:a\\n7,8:9,10:b\\n")
>>> data = read_series_file(path)
>>> [s.shape for s in data.series], data.labels, data.classes
([(3, 2), (2, 2)], ['a', 'b'], ['a', 'b'])
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SERIES_EXTENSIONS", "SeriesData", "is_series_file", "label_name", "natural_key",
           "read_arff", "read_series_file", "read_table", "read_ts"]

#: file extensions read as series classification data (anything else is text)
SERIES_EXTENSIONS = (".ts", ".arff", ".tsv", ".csv", ".txt")
_MISSING = {"?", "nan", "NaN", "NAN", ""}


@dataclass
class SeriesData:
    """Series read from one file.

    Attributes:
        series: ``N`` float32 arrays ``[T_i, C]`` (steps by channels).
        labels: the class of each series as written in the file, or ``None`` (unlabelled).
        classes: the class names, from the header (``.ts``, ``.arff``) or sorted naturally.
        name: the problem name (the file's ``@problemName`` or its base name).
    """

    series: list[np.ndarray]
    labels: list[str] | None
    classes: list[str] = field(default_factory=list)
    name: str = ""

    @property
    def num_channels(self) -> int:
        return int(self.series[0].shape[1])


def natural_key(s: str) -> tuple:
    """Sort key putting numeric labels in numeric order (``"2" < "10"``), then the others."""
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


def is_series_file(path: str) -> bool:
    """Whether ``path`` looks like a series file by its extension and first line: ``.ts`` and
    ``.arff`` always; ``.tsv/.csv/.txt`` when every field after the label of the first data
    row is a number (a series), not text (label<TAB>text lines; a header row is skipped)."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".ts", ".arff"):
        return True
    if ext not in (".tsv", ".csv", ".txt") or not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f):
            fields = _split(line, ext)
            if len(fields) < 2:
                continue
            if all(_number(x) is not None for x in fields[1:]) and \
                    any(x.strip() not in _MISSING for x in fields[1:]):
                return True
            if i > 0:  # a header row, then a text row
                return False
    return False


def read_series_file(path: str | os.PathLike, where: str = "") -> SeriesData:
    """Read ``path`` by its extension (``.ts``, ``.arff``, ``.tsv``, ``.csv``, ``.txt``).
    ``where`` prefixes error messages (a CLI passes ``"--data PATH: "``)."""
    path = os.fspath(path)
    where = where or f"{path}: "
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{where}no such file; check the path")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".ts":
        data = read_ts(path, where)
    elif ext == ".arff":
        data = read_arff(path, where)
    elif ext in (".tsv", ".csv", ".txt"):
        data = read_table(path, where)
    else:
        raise ValueError(f"{where}unknown series file type {ext!r}; give a .ts, .arff, .tsv "
                         f"or .csv file")
    if not data.series:
        raise ValueError(f"{where}holds no series; is the file truncated?")
    channels = {s.shape[1] for s in data.series}
    if len(channels) > 1:
        raise ValueError(f"{where}series have different numbers of channels "
                         f"({sorted(channels)}); every series needs the same channels")
    return data


# -- missing values ------------------------------------------------------------------------------
def _trim(values: np.ndarray, where: str) -> np.ndarray:
    """``[T, C]`` without its trailing all-missing steps (UCR's padding); a missing value left
    inside the series is an error."""
    bad = np.isnan(values)
    rows = np.nonzero(~bad.all(1))[0]
    if rows.size == 0:
        raise ValueError(f"{where}the series holds only missing values; remove it")
    values = values[: rows[-1] + 1]
    if np.isnan(values).any() or np.isinf(values).any():
        t, c = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(f"{where}missing or infinite value at step {t + 1}, channel {c + 1} "
                         f"(only trailing missing values, the padding of shorter series, are "
                         f"accepted); fill or interpolate it first")
    return values


def _number(text: str) -> float | None:
    text = text.strip()
    if text in _MISSING:
        return float("nan")
    try:
        return float(text)
    except ValueError:
        return None


def _floats(fields: list[str], where: str) -> np.ndarray:
    out = np.empty(len(fields), dtype=np.float64)
    for i, f in enumerate(fields):
        v = _number(f)
        if v is None:
            raise ValueError(f"{where}value {i + 1} is {f.strip()!r}, not a number")
        out[i] = v
    return out


# -- .ts ------------------------------------------------------------------------------------------
def read_ts(path: str, where: str = "") -> SeriesData:
    """Read a sktime/UEA ``.ts`` file (see the module docstring)."""
    where = where or f"{path}: "
    header: dict[str, str] = {}
    series: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith(("#", "%")):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise ValueError(f"{where}line {lineno}: expected an @ header line or "
                                     f"@data before the series, got {line[:40]!r}; is this a "
                                     f".ts file?")
                key, _, value = line[1:].partition(" ")
                key = key.lower()
                if key == "data":
                    in_data = True
                    _check_ts_header(header, where)
                else:
                    header[key] = value.strip()
                continue
            at = f"{where}line {lineno}: "
            if "(" in line:
                raise ValueError(f"{at}time-stamped values '(t, v)' are not supported; write "
                                 f"the values of each channel as v1,v2,...")
            fields = line.split(":")
            labelled = header.get("classlabel", "false").split()[0].lower() == "true"
            if labelled:
                if len(fields) < 2:
                    raise ValueError(f"{at}expected channel values and a class label after "
                                     f"':' (@classLabel true)")
                labels.append(fields[-1].strip())
                fields = fields[:-1]
            chans = [_floats(ch.split(","), f"{at}channel {c + 1}: ")
                     for c, ch in enumerate(fields)]
            if series and len(chans) != series[0].shape[1]:
                raise ValueError(f"{at}{len(chans)} channels, but the first series has "
                                 f"{series[0].shape[1]}; every series needs the same channels")
            T = max(len(c) for c in chans)  # channels of one case may differ: pad with NaN
            block = np.full((T, len(chans)), np.nan)
            for c, ch in enumerate(chans):
                block[: len(ch), c] = ch
            series.append(_trim(block, at).astype(np.float32))
    if not in_data:
        raise ValueError(f"{where}no @data line; is this a .ts file (sktime/UEA format)?")
    classes = header.get("classlabel", "").split()[1:]
    if labels:
        unknown = sorted(set(labels) - set(classes), key=natural_key) if classes else []
        if unknown:
            raise ValueError(f"{where}labels {unknown} are not among the @classLabel classes "
                             f"{classes}; fix the header or the labels")
        classes = classes or sorted(set(labels), key=natural_key)
    name = header.get("problemname") or os.path.splitext(os.path.basename(path))[0]
    return SeriesData(series, labels or None, classes, name)


def _check_ts_header(header: dict[str, str], where: str) -> None:
    if header.get("targetlabel", "false").split()[:1] == ["true"]:
        name = header.get("problemname", "this file")
        raise ValueError(f"{where}{name} is a regression archive (@targetlabel true); rnnkit "
                         f"classify needs class labels")
    if header.get("timestamps", "false").lower() == "true":
        raise ValueError(f"{where}time-stamped .ts files (@timeStamps true) are not supported; "
                         f"write the values of each channel as v1,v2,...")


# -- .arff ----------------------------------------------------------------------------------------
def read_arff(path: str, where: str = "") -> SeriesData:
    """Read a Weka ``.arff`` file: numeric attributes then the class (univariate), or one
    relational attribute holding the channels as rows, then the class (UEA multivariate)."""
    from scipy.io import arff

    where = where or f"{path}: "
    try:
        rows, meta = arff.loadarff(path)
    except Exception as err:  # scipy raises several types for malformed files
        raise ValueError(f"{where}not a readable ARFF file ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''})") from None
    names = meta.names()
    types = meta.types()
    if types[-1] != "nominal":
        if types[-1] == "numeric" and any(n.lower() in ("target", "value") for n in names[-1:]):
            raise ValueError(f"{where}is a regression archive (numeric target); rnnkit classify "
                             f"needs class labels")
        raise ValueError(f"{where}the last attribute {names[-1]!r} is {types[-1]}, not a "
                         f"nominal class; rnnkit expects the class as the last attribute")
    classes = [str(c) for c in meta[names[-1]][1]]
    labels = [_text(r[names[-1]]) for r in rows]
    series = []
    for i, r in enumerate(rows):
        at = f"{where}case {i + 1}: "
        if types[0] == "relational":
            inner = r[names[0]]
            block = np.array([[float(v) for v in row] for row in inner], dtype=np.float64).T
        else:
            if any(t != "numeric" for t in types[:-1]):
                raise ValueError(f"{where}attributes before the class must be numeric (one per "
                                 f"step), got types {sorted(set(types[:-1]))}")
            block = np.array([float(r[n]) for n in names[:-1]], dtype=np.float64)[:, None]
        series.append(_trim(block, at).astype(np.float32))
    if "?" in labels:
        raise ValueError(f"{where}some cases have a missing class ('?'); label them or remove "
                         f"them")
    name = getattr(meta, "name", "") or os.path.splitext(os.path.basename(path))[0]
    return SeriesData(series, labels, classes, name)


def _text(v) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


# -- .tsv / .csv ----------------------------------------------------------------------------------
def _split(line: str, ext: str) -> list[str]:
    if ext == ".tsv":
        return line.rstrip("\r\n").split("\t")
    if ext == ".csv":
        return next(csv.reader([line]), [])
    return line.split()


def read_table(path: str, where: str = "") -> SeriesData:
    """Read one univariate series per row, the label first (UCR 2018 ``.tsv``; ``.csv``;
    whitespace-separated ``.txt``, the UCR 2015 layout, whose labels ``1.0000000e+00`` are
    read as ``1``). A first row whose values are not numbers is a header."""
    where = where or f"{path}: "
    ext = os.path.splitext(path)[1].lower()
    series, labels = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = [x.strip() for x in _split(line, ext)]
            at = f"{where}line {lineno}: "
            if len(fields) < 2:
                raise ValueError(f"{at}expected a label then the series' values, got "
                                 f"{line.strip()[:40]!r}")
            values = [_number(x) for x in fields[1:]]
            if any(v is None for v in values):
                if not series and lineno == 1:
                    continue  # a header row
                bad = next(x for x, v in zip(fields[1:], values) if v is None)
                raise ValueError(f"{at}value {bad!r} is not a number; series files hold a "
                                 f"label then numbers (label{_SEP[ext]}v1{_SEP[ext]}v2...)")
            labels.append(label_name(fields[0]))
            series.append(_trim(np.asarray(values, dtype=np.float64)[:, None], at)
                          .astype(np.float32))
    if labels and len(set(labels)) > max(20, len(labels) // 2):
        raise ValueError(f"{where}the first column has {len(set(labels))} different values in "
                         f"{len(labels)} rows, which looks like a series value, not a class "
                         f"label; put the label first (UCR layout: label{_SEP[ext]}v1"
                         f"{_SEP[ext]}v2...)")
    if any(lab in _MISSING for lab in labels):
        raise ValueError(f"{where}some rows have an empty or missing label in the first "
                         f"column; label them or remove them")
    classes = sorted(set(labels), key=natural_key)
    return SeriesData(series, labels or None, classes,
                      os.path.splitext(os.path.basename(path))[0])


_SEP = {".tsv": "<TAB>", ".csv": ",", ".txt": " "}


def label_name(text: str) -> str:
    """A class label as written, except a whole number written as a float (the UCR 2015
    archive's ``1.0000000e+00``), which becomes the integer (``1``).

    >>> [label_name(t) for t in ("1.0000000e+00", "-2.0", "2.5", "07", "yes")]
    ['1', '-2', '2.5', '07', 'yes']
    """
    try:
        v = float(text)
    except ValueError:
        return text
    if any(c in text for c in ".eE") and np.isfinite(v) and v == int(v):
        return str(int(v))
    return text
