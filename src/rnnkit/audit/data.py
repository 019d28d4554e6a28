"""Bias audits of data: who a text corpus mentions and with what, and how well a series covers
each period (the engine of ``rnnkit audit data FILE``).

:func:`audit_text` counts, for each identity word list of :mod:`rnnkit.audit.terms` and each of
its groups, the texts that mention the group, their labels against the corpus-wide label shares
(with 95% Wilson intervals), the share of positive and negative words in them against the corpus
(VADER lexicon) and their lengths. A text that mentions two groups of one list counts for both
and again in the list's ``both`` row. These are co-occurrence statistics of the data, not
evidence about a model: they show what a model trained on the data could pick up.

:func:`audit_series` reports, per year / month / weekday (or any key), how many points a series
has, how many are missing, its first and last timestamp and, given predictions, the mean
absolute error and the mean signed error there.

>>> audit = audit_text(["he is good", "she is bad", "it is fine"], [1, 0, 1], lexicon=None)
>>> [(g.group, g.texts) for g in audit.groups if g.list == "gender"]
[('male', 1), ('female', 1), ('both', 0)]
"""

from __future__ import annotations

import functools
import importlib.util
import math
import numbers
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .probes import _jsonable, wilson_interval
from .terms import DEFAULT_LISTS, TermList, _as_lists, tokenize

__all__ = ["NEGATIVE_MAX", "POSITIVE_MIN", "GroupStats", "LabelRate", "SegmentStats",
           "SeriesDataAudit", "TextDataAudit", "audit_series", "audit_text",
           "load_vader_lexicon", "wilson_interval"]

#: VADER words with a mean rating >= this count as positive (ratings run from -4 to +4)
POSITIVE_MIN = 1.0
#: VADER words with a mean rating <= this count as negative
NEGATIVE_MAX = -1.0

_INSTALL = "pip install 'rnnkit[audit]'"


@functools.lru_cache(maxsize=1)
def load_vader_lexicon() -> dict[str, float]:
    """Word -> mean valence (-4 .. +4) from ``vader_lexicon.txt`` of the ``vaderSentiment``
    package (Hutto & Gilbert 2014), keeping only entries that are one word token (no
    emoticons); ``ImportError`` naming ``pip install 'rnnkit[audit]'`` if it is not installed."""
    spec = importlib.util.find_spec("vaderSentiment")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the VADER sentiment lexicon comes with the vaderSentiment package, "
                          f"which is not installed: {_INSTALL} (or pip install vaderSentiment), "
                          f"or pass lexicon=None to skip the sentiment co-occurrence")
    path = os.path.join(list(spec.submodule_search_locations)[0], "vader_lexicon.txt")
    if not os.path.isfile(path):
        raise ImportError(f"vaderSentiment is installed but {path} is missing; reinstall it "
                          f"({_INSTALL}) or pass lexicon=None")
    out: dict[str, float] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.strip().split("\t")
            if len(parts) < 2 or len(tokenize(parts[0])) != 1 or tokenize(parts[0])[0] != parts[0]:
                continue
            try:
                out[parts[0].lower()] = float(parts[1])  # later duplicates win, as in VADER
            except ValueError:
                continue
    return out


# --- results ---------------------------------------------------------------------------------

@dataclass
class LabelRate:
    """How often texts of one group carry ``label``: ``count`` of the group's ``n`` texts,
    ``rate`` = count / n with its Wilson interval [``low``, ``high``], ``overall`` = the label's
    share of the whole corpus, ``ratio`` = rate / overall, and ``flagged`` when the interval
    excludes ``overall``."""

    label: Any
    count: int
    n: int
    rate: float
    low: float
    high: float
    overall: float
    ratio: float
    flagged: bool


@dataclass
class GroupStats:
    """One group of one list (``group`` is ``"both"`` for texts naming two or more groups):
    ``texts`` mentioning it and ``per_1000`` texts, ``mentions`` (term occurrences) and the
    ``top_terms``, the token ``length`` summary of those texts (mean, median, p10, p90), the
    ``labels`` (one :class:`LabelRate` per label; empty without labels or texts) and the share
    of positive / negative lexicon words among their tokens with the ratio to the corpus share
    (``None`` without a lexicon or texts)."""

    list: str
    group: str
    texts: int
    per_1000: float
    mentions: int
    top_terms: list[tuple[str, int]]
    length: dict[str, float] | None
    labels: list[LabelRate] = field(default_factory=list)
    positive_share: float | None = None
    negative_share: float | None = None
    positive_ratio: float | None = None
    negative_ratio: float | None = None


@dataclass
class TextDataAudit:
    """The result of :func:`audit_text`: corpus size (``n_texts``, ``n_tokens`` word tokens,
    their ``length`` summary), ``label_counts`` (label, count, share; empty without labels),
    the corpus ``positive_share`` / ``negative_share`` of lexicon words, ``lists`` (name,
    groups, source, texts mentioning any group) and one :class:`GroupStats` per list and group
    in ``groups``."""

    n_texts: int
    n_tokens: int
    length: dict[str, float]
    label_counts: list[dict[str, Any]]
    lexicon: str | None
    positive_share: float | None
    negative_share: float | None
    lists: list[dict[str, Any]]
    groups: list[GroupStats]
    ambiguous: dict[str, list[str]] = field(default_factory=dict)

    def group(self, list_name: str, group: str) -> GroupStats:
        """The :class:`GroupStats` of ``group`` in list ``list_name`` (``KeyError`` if none)."""
        for g in self.groups:
            if g.list == list_name and g.group == group:
                return g
        raise KeyError(f"no group {group!r} in list {list_name!r}")

    def flagged(self) -> list[tuple[str, str, LabelRate]]:
        """``(list, group, LabelRate)`` for every label rate whose 95% interval excludes the
        corpus share of that label (no correction for the number of comparisons)."""
        return [(g.list, g.group, r) for g in self.groups for r in g.labels if r.flagged]

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-able data (``json.dumps`` works on it)."""
        return _jsonable(asdict(self))

    def to_markdown(self) -> str:
        """A readable report: corpus summary, then per list a table of groups and one of
        label rates, then the flagged rates."""
        out = [f"# Data audit: {self.n_texts:,} texts, {self.n_tokens:,} word tokens", ""]
        out.append(f"Word tokens per text: {_fmt_len(self.length)} (mean / median / p10-p90).")
        if self.label_counts:
            out.append("Labels: " + ", ".join(f"`{c['label']}` {c['count']:,} "
                                             f"({100 * c['share']:.1f}%)"
                                             for c in self.label_counts) + ".")
        if self.lexicon and self.positive_share is not None:
            out.append(f"Sentiment words ({self.lexicon}): {100 * self.positive_share:.2f}% "
                       f"of word tokens positive, {100 * self.negative_share:.2f}% negative.")
        for meta in self.lists:
            name = meta["name"]
            rows = [g for g in self.groups if g.list == name]
            amb = set(self.ambiguous.get(name, ()))
            out += ["", f"## {name}: {' / '.join(meta['groups'])}",
                    f"{meta['texts_any']:,} texts mention a group. Source: {meta['source']}.", "",
                    "| group | texts | per 1,000 | length | positive words | negative words "
                    "| top terms |", "|---|--:|--:|---|--:|--:|---|"]
            for g in rows:
                terms = ", ".join(f"{t}{'*' if t in amb else ''} {n}" for t, n in g.top_terms)
                pos = _fmt_share(g.positive_share, g.positive_ratio)
                neg = _fmt_share(g.negative_share, g.negative_ratio)
                out.append(f"| {g.group} | {g.texts:,} | {g.per_1000:.1f} | "
                           f"{_fmt_len(g.length)} | {pos} | {neg} | {terms} |")
            if self.label_counts and any(g.labels for g in rows):
                out += ["", "| group | label | P(label \\| group) [95% CI] | P(label) | ratio "
                        "| flag |", "|---|---|---|--:|--:|---|"]
                for g in rows:
                    for r in g.labels:
                        out.append(f"| {g.group} | `{r.label}` | {r.rate:.3f} [{r.low:.3f}, "
                                   f"{r.high:.3f}] (n={r.n:,}) | {r.overall:.3f} | "
                                   f"{r.ratio:.2f} | {'**flag**' if r.flagged else ''} |")
            if any(t in amb for g in rows for t, _ in g.top_terms):
                out.append("")
                out.append("\\* also a common word; its counts include that use.")
        flags = self.flagged()
        out += ["", "## Flags", ""]
        if not self.label_counts:
            out.append("No labels given; no label co-occurrence computed.")
        elif not flags:
            out.append("No group's label rate differs from the corpus rate (95% Wilson "
                       "intervals).")
        else:
            out.append("Label rates whose 95% Wilson interval excludes the corpus rate (no "
                       "multiple-comparison correction):")
            for lst, grp, r in flags:
                out.append(f"- {lst}/{grp}: P({r.label}) = {r.rate:.3f} [{r.low:.3f}, "
                           f"{r.high:.3f}] vs {r.overall:.3f} overall (x{r.ratio:.2f}, "
                           f"n={r.n:,})")
        return "\n".join(out) + "\n"


def _fmt_len(length: Mapping[str, float] | None) -> str:
    if not length:
        return "-"
    return (f"{length['mean']:.1f} / {length['median']:g} / "
            f"{length['p10']:g}-{length['p90']:g}")


def _fmt_share(share: float | None, ratio: float | None) -> str:
    if share is None:
        return "-"
    return f"{100 * share:.2f}%" + (f" (x{ratio:.2f})" if ratio is not None else "")


# --- input checks ----------------------------------------------------------------------------

def _as_texts(texts: Iterable[str]) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise ValueError("texts must be a sequence of strings, got a single "
                         f"{type(texts).__name__}; wrap it in a list: audit_text([text])")
    values = getattr(texts, "values", texts)  # pandas Series -> its array
    try:
        out = list(values)
    except TypeError:
        raise ValueError(f"texts must be a sequence of strings, got {type(texts).__name__}"
                         ) from None
    if not out:
        raise ValueError("texts is empty: there is nothing to audit; pass at least one text")
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise ValueError(f"texts[{i}] is {type(t).__name__} ({t!r:.40}), not str: every "
                             f"text must be a string; drop or fill missing ones first (e.g. "
                             f"series.dropna() or series.fillna(''))")
    return out


def _as_labels(labels: Iterable[Any], n: int) -> list[Any]:
    if isinstance(labels, (str, bytes)):
        raise ValueError("labels must be a sequence with one label per text, got a single str")
    values = getattr(labels, "values", labels)
    out = [x.item() if isinstance(x, np.generic) else x for x in values]
    if len(out) != n:
        raise ValueError(f"labels has {len(out)} entries but texts has {n}: pass exactly one "
                         f"label per text (same order)")
    for i, y in enumerate(out):
        if y is None or (isinstance(y, float) and math.isnan(y)):
            raise ValueError(f"labels[{i}] is missing ({y!r}); drop those texts or give them a "
                             f"label")
        try:
            hash(y)
        except TypeError:
            raise ValueError(f"labels[{i}] is {type(y).__name__}, which cannot be a label; "
                             f"use ints or strings") from None
    return out


def _sort_key(x: Any) -> tuple[int, Any]:
    return (0, x) if isinstance(x, numbers.Real) else (1, str(x))


def _length_summary(lengths: Sequence[int]) -> dict[str, float] | None:
    if len(lengths) == 0:
        return None
    a = np.asarray(lengths, dtype=float)
    p10, med, p90 = np.percentile(a, [10, 50, 90])
    return {"mean": float(a.mean()), "median": float(med), "p10": float(p10),
            "p90": float(p90)}


# --- the text audit --------------------------------------------------------------------------

def audit_text(texts: Iterable[str], labels: Iterable[Any] | None = None,
               lists: TermList | Iterable[TermList] = DEFAULT_LISTS,
               lexicon: str | Mapping[str, float] | None = "vader",
               top: int = 10) -> TextDataAudit:
    """Audit a text corpus for identity-group mentions and what they co-occur with; returns a
    :class:`TextDataAudit` (``to_dict()``, ``to_markdown()``).

    ``texts``: strings (list, array, pandas Series); ``labels``: one hashable label per text, or
    ``None``. ``lists``: the :class:`~rnnkit.audit.terms.TermList` s to count (default
    :data:`~rnnkit.audit.terms.DEFAULT_LISTS`). Tokens are :func:`~rnnkit.audit.terms.tokenize`
    words, matched case-insensitively. Per list and group it reports the texts mentioning the
    group (and their rate per 1,000 texts), its ``top`` terms, their token lengths, for each
    label ``P(label | group)`` with a 95% Wilson interval against the corpus ``P(label)``
    (flagged when the interval excludes it), and the share of positive and negative words
    among the group's tokens against the corpus share. A text mentioning two groups of a list
    counts for each and in the list's ``both`` row.

    ``lexicon``: ``"vader"`` (the lexicon of the ``vaderSentiment`` package, a word is positive
    if its mean rating is >= 1, negative if <= -1; words only, negation and context ignored), a
    ``{word: score}`` mapping judged by the same thresholds, or ``None`` to skip. Raises
    ``ValueError`` for empty input, non-string texts or labels of the wrong length, and
    ``ImportError`` (``pip install 'rnnkit[audit]'``) when the VADER lexicon is asked for but
    not installed.

    >>> a = audit_text(["his film", "her film", "her book"], ["a", "b", "b"], lexicon=None)
    >>> r = a.group("gender", "female").labels[1]
    >>> r.label, r.count, r.n, round(r.overall, 3)
    ('b', 2, 2, 0.667)
    """
    texts = _as_texts(texts)
    n = len(texts)
    ys = _as_labels(labels, n) if labels is not None else None
    lists = _as_lists(lists)
    if top < 0:
        raise ValueError(f"top must be >= 0, got {top}")
    lex_name: str | None
    if lexicon is None:
        lex: Mapping[str, float] | None = None
        lex_name = None
    elif isinstance(lexicon, str):
        if lexicon.lower() != "vader":
            raise ValueError(f"unknown lexicon {lexicon!r}: use 'vader', a {{word: score}} "
                             f"mapping or None")
        lex = load_vader_lexicon()
        lex_name = "VADER lexicon"
    elif isinstance(lexicon, Mapping):
        lex = {str(k).lower(): float(v) for k, v in lexicon.items()}
        lex_name = "custom lexicon"
    else:
        raise ValueError(f"lexicon must be 'vader', a {{word: score}} mapping or None, got "
                         f"{type(lexicon).__name__}")
    positive = {w for w, s in lex.items() if s >= POSITIVE_MIN} if lex is not None else set()
    negative = {w for w, s in lex.items() if s <= NEGATIVE_MAX} if lex is not None else set()
    if lex is not None:
        lex_name += (f": {len(positive):,} positive (score >= {POSITIVE_MIN:g}) and "
                     f"{len(negative):,} negative (<= {NEGATIVE_MAX:g}) words")

    # one lookup for all lists: lower-cased term -> [(list, group, canonical term)]
    index: dict[str, list[tuple[str, str, str]]] = {}
    for t in lists:
        for low, g in t.vocabulary.items():
            index.setdefault(low, []).append((t.name, g, t.canonical(low)))

    lengths = np.zeros(n, dtype=np.int64)
    pos = np.zeros(n, dtype=np.int64)
    neg = np.zeros(n, dtype=np.int64)
    # list -> group -> [text indices]; list -> group -> Counter(term); "both" per list
    members: dict[str, dict[str, list[int]]] = {
        t.name: {g: [] for g in (*t.groups, "both")} for t in lists}
    term_counts: dict[str, dict[str, Counter[str]]] = {
        t.name: {g: Counter() for g in (*t.groups, "both")} for t in lists}
    for i, text in enumerate(texts):
        toks = [w.lower() for w in tokenize(text)]
        lengths[i] = len(toks)
        if lex is not None:
            pos[i] = sum(w in positive for w in toks)
            neg[i] = sum(w in negative for w in toks)
        seen: dict[str, Counter[tuple[str, str]]] = {}
        for w in toks:
            for lst, g, term in index.get(w, ()):
                seen.setdefault(lst, Counter())[(g, term)] += 1
        for lst, c in seen.items():
            groups = {g for g, _ in c}
            for (g, term), k in c.items():
                term_counts[lst][g][term] += k
            for g in groups:
                members[lst][g].append(i)
            if len(groups) >= 2:
                members[lst]["both"].append(i)
                for (_, term), k in c.items():
                    term_counts[lst]["both"][term] += k

    n_tokens = int(lengths.sum())
    tot_pos = int(pos.sum())
    tot_neg = int(neg.sum())
    pos_share = tot_pos / n_tokens if lex is not None and n_tokens else None
    neg_share = tot_neg / n_tokens if lex is not None and n_tokens else None

    label_counts: list[dict[str, Any]] = []
    label_array: np.ndarray | None = None
    if ys is not None:
        counts = Counter(ys)
        order = sorted(counts, key=_sort_key)
        label_counts = [{"label": y, "count": counts[y], "share": counts[y] / n} for y in order]
        code = {y: j for j, y in enumerate(order)}
        label_array = np.array([code[y] for y in ys], dtype=np.int64)

    groups_out: list[GroupStats] = []
    meta: list[dict[str, Any]] = []
    for t in lists:
        any_idx = set().union(*(members[t.name][g] for g in t.groups))
        meta.append({"name": t.name, "groups": list(t.groups), "source": t.source,
                     "swappable": t.swappable, "texts_any": len(any_idx)})
        for g in (*t.groups, "both"):
            idx = np.asarray(members[t.name][g], dtype=np.int64)
            k = len(idx)
            c = term_counts[t.name][g]
            stats = GroupStats(list=t.name, group=g, texts=k, per_1000=1000 * k / n,
                               mentions=sum(c.values()),
                               top_terms=sorted(c.items(), key=lambda x: (-x[1], x[0]))[:top],
                               length=_length_summary(lengths[idx]))
            if k and label_array is not None:
                sub = np.bincount(label_array[idx], minlength=len(label_counts))
                for j, lc in enumerate(label_counts):
                    lo, hi = wilson_interval(int(sub[j]), k)
                    rate = int(sub[j]) / k
                    overall = lc["share"]
                    stats.labels.append(LabelRate(
                        label=lc["label"], count=int(sub[j]), n=k, rate=rate, low=lo, high=hi,
                        overall=overall, ratio=rate / overall,
                        flagged=bool(overall < lo or overall > hi)))
            if k and lex is not None:
                toks = int(lengths[idx].sum())
                if toks:
                    stats.positive_share = int(pos[idx].sum()) / toks
                    stats.negative_share = int(neg[idx].sum()) / toks
                    if pos_share:
                        stats.positive_ratio = stats.positive_share / pos_share
                    if neg_share:
                        stats.negative_ratio = stats.negative_share / neg_share
            groups_out.append(stats)

    ambiguous = {t.name: sorted(t.canonical(a) for a in t.ambiguous) for t in lists
                 if t.ambiguous}
    return TextDataAudit(n_texts=n, n_tokens=n_tokens, length=_length_summary(lengths) or {},
                         label_counts=label_counts, lexicon=lex_name, positive_share=pos_share,
                         negative_share=neg_share, lists=meta, groups=groups_out,
                         ambiguous=ambiguous)


# --- the series audit ------------------------------------------------------------------------

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass
class SegmentStats:
    """One segment of a series: ``count`` points, ``missing`` of them NaN (``missing_share``),
    the ``first`` and ``last`` timestamp (index value) in it, and with predictions the mean
    absolute error ``mae`` and the mean signed error ``bias`` (prediction - value; > 0 means
    over-prediction) over the ``n_scored`` points where both are finite."""

    segment: Any
    count: int
    missing: int
    missing_share: float
    first: Any
    last: Any
    n_scored: int = 0
    mae: float | None = None
    bias: float | None = None


@dataclass
class SeriesDataAudit:
    """The result of :func:`audit_series`: ``segments_by`` (what a segment is), the totals
    ``n``, ``n_missing`` (NaN values) and ``n_unsegmented`` (points without a timestamp or
    segment key, left out of the segments), the overall ``first`` / ``last`` timestamp,
    overall ``mae`` / ``bias`` with predictions, and one :class:`SegmentStats` per segment in
    order."""

    segments_by: str
    n: int
    n_missing: int
    n_unsegmented: int
    first: Any
    last: Any
    segments: list[SegmentStats]
    has_predictions: bool = False
    n_scored: int = 0
    mae: float | None = None
    bias: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-able data (timestamps as ISO strings)."""
        return _jsonable(asdict(self))

    def to_markdown(self) -> str:
        """A table with one row per segment, after a one-line summary."""
        out = [f"# Series audit by {self.segments_by}: {self.n:,} points, {self.n_missing:,} "
               f"missing ({100 * self.n_missing / self.n:.1f}%)", ""]
        out.append(f"From {_ts(self.first)} to {_ts(self.last)}"
                   + (f"; {self.n_unsegmented:,} points without a segment."
                      if self.n_unsegmented else "."))
        if self.has_predictions and self.mae is not None:
            out.append(f"Overall MAE {self.mae:.4g}, bias (prediction - value) {self.bias:+.4g} "
                       f"over {self.n_scored:,} points.")
        head = "| segment | points | missing | first | last |"
        rule = "|---|--:|--:|---|---|"
        if self.has_predictions:
            head += " MAE | bias |"
            rule += "--:|--:|"
        out += ["", head, rule]
        for s in self.segments:
            row = (f"| {s.segment} | {s.count:,} | {s.missing:,} ({100 * s.missing_share:.1f}%) "
                   f"| {_ts(s.first)} | {_ts(s.last)} |")
            if self.has_predictions:
                row += (f" {s.mae:.4g} | {s.bias:+.4g} |" if s.mae is not None else " - | - |")
            out.append(row)
        return "\n".join(out) + "\n"


def _ts(x: Any) -> str:
    return x.isoformat() if hasattr(x, "isoformat") else str(x)


def _numeric(x: Any, what: str) -> np.ndarray:
    values = getattr(x, "values", x)
    try:
        a = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers (NaN for missing); convert them first, e.g. "
                         f"pandas.to_numeric(x, errors='coerce')") from None
    if a.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {a.shape}; audit one "
                         f"column at a time")
    return a


def audit_series(values: Any, index: Any = None,
                 segments: str | Callable[[Any], Any] = "year",
                 predictions: Any = None) -> SeriesDataAudit:
    """Coverage of a series per segment, and prediction errors there; returns a
    :class:`SeriesDataAudit` (``to_dict()``, ``to_markdown()``).

    ``values``: numbers with NaN for missing (list, numpy array, pandas Series). ``index``: one
    timestamp per value; defaults to the Series' index. ``segments``: ``"year"`` (keys are
    years), ``"month"`` (``"YYYY-MM"``), ``"weekday"`` (``"Monday"`` .. ``"Sunday"``; these need
    timestamps; points with NaT are left out and counted in ``n_unsegmented``) or a function
    called on each index value that returns its segment key (``None`` leaves the point out).
    ``predictions``: one per value, or ``None``. Raises ``ValueError`` for empty or
    non-numeric input and lengths that differ.

    >>> import pandas as pd
    >>> s = pd.Series([1.0, None, 3.0], index=pd.to_datetime(["2020-05-01", "2020-06-01",
    ...                                                        "2021-01-01"]))
    >>> [(x.segment, x.count, x.missing) for x in audit_series(s).segments]
    [(2020, 2, 1), (2021, 1, 0)]
    """
    import pandas as pd

    v = _numeric(values, "values")
    n = len(v)
    if n == 0:
        raise ValueError("values is empty: there is nothing to audit; pass at least one value")
    if index is None:
        index = values.index if isinstance(values, pd.Series) else None
        if index is None:
            if not callable(segments):
                raise ValueError(f"segments={segments!r} needs timestamps: pass index= (one per "
                                 f"value) or a pandas Series with a DatetimeIndex")
            index = pd.RangeIndex(n)
    idx = pd.Index(getattr(index, "values", index) if not isinstance(index, pd.Index)
                   else index)
    if len(idx) != n:
        raise ValueError(f"index has {len(idx)} entries but values has {n}: pass one timestamp "
                         f"per value")
    p = None
    if predictions is not None:
        p = _numeric(predictions, "predictions")
        if len(p) != n:
            raise ValueError(f"predictions has {len(p)} entries but values has {n}: pass one "
                             f"prediction per value")

    if callable(segments):
        all_keys = [segments(x) for x in idx]
        valid = np.array([k is not None and not (isinstance(k, float) and math.isnan(k))
                          for k in all_keys], dtype=bool)
        keys = pd.Series([k for k, ok in zip(all_keys, valid) if ok], dtype=object)
        stamps = idx
        by = getattr(segments, "__name__", "function")
    else:
        if segments not in ("year", "month", "weekday"):
            raise ValueError(f"segments must be 'year', 'month', 'weekday' or a function of one "
                             f"index value, got {segments!r}")
        if idx.dtype.kind in "iufcb":
            raise ValueError(f"segments={segments!r} needs timestamps but the index holds "
                             f"{idx.dtype} numbers; pass index= with datetimes (e.g. "
                             f"pandas.to_datetime(...)) or segments=<function>")
        try:
            stamps = pd.DatetimeIndex(pd.to_datetime(idx))
        except (TypeError, ValueError) as e:
            raise ValueError(f"segments={segments!r} needs timestamps; the index could not be "
                             f"read as dates ({e}); pass index= with datetimes") from None
        valid = ~np.asarray(stamps.isna())
        ok = stamps[valid]
        if segments == "year":
            keys = pd.Series(np.asarray(ok.year, dtype=np.int64))
        elif segments == "month":
            keys = pd.Series([f"{y:04d}-{m:02d}" for y, m in zip(ok.year, ok.month)],
                             dtype=object)
        else:
            keys = pd.Series(np.asarray(ok.dayofweek, dtype=np.int64))
        by = segments

    missing = np.isnan(v)
    scored = ~missing & np.isfinite(p) & np.isfinite(v) if p is not None else None
    seg_rows = np.flatnonzero(valid)
    groups = {k: seg_rows[ix] for k, ix in keys.groupby(keys, sort=False).indices.items()}
    try:
        order = sorted(groups)
    except TypeError:
        order = list(groups)

    def errors(rows: np.ndarray) -> tuple[int, float | None, float | None]:
        if p is None:
            return 0, None, None
        rows = rows[scored[rows]]
        if len(rows) == 0:
            return 0, None, None
        d = p[rows] - v[rows]
        return len(rows), float(np.abs(d).mean()), float(d.mean())

    def bounds(rows: np.ndarray) -> tuple[Any, Any]:
        sub = stamps.take(rows)
        try:
            return sub.min(), sub.max()
        except TypeError:
            return sub[0], sub[-1]

    out: list[SegmentStats] = []
    for k in order:
        rows = groups[k]
        first, last = bounds(rows)
        n_sc, mae, bias = errors(rows)
        label = _WEEKDAYS[k] if by == "weekday" else (k.item() if isinstance(k, np.generic)
                                                       else k)
        out.append(SegmentStats(segment=label, count=len(rows), missing=int(missing[rows].sum()),
                                missing_share=float(missing[rows].mean()), first=first,
                                last=last, n_scored=n_sc, mae=mae, bias=bias))
    first, last = bounds(seg_rows) if len(seg_rows) else (None, None)
    n_sc, mae, bias = errors(np.arange(n))
    return SeriesDataAudit(segments_by=by, n=n, n_missing=int(missing.sum()),
                           n_unsegmented=int(n - valid.sum()), first=first, last=last,
                           segments=out, has_predictions=p is not None, n_scored=n_sc, mae=mae,
                           bias=bias)
