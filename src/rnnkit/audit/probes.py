r"""Counterfactual probes and robustness scans of trained models, model-agnostic.

Every function here takes a plain callable, so it works with any model:

* text: ``predict_proba(list[str]) -> [N, C]`` class probabilities (numpy or torch), e.g.
  :meth:`rnnkit.text.classifier.TextClassifier.predict_proba`;
* series: ``predict(array [N, T, F]) -> [N, ...]`` (forecasts, anomaly scores, or labels /
  class probabilities of a series classifier).

:func:`counterfactual_probe` asks "does the answer change when only *this* changes?" (a name,
a pronoun, a dialect marker: ``transform`` decides), :func:`robustness_scan` asks the same of
edits that should never matter (a typo, case, punctuation, whitespace, number formats), and
:func:`series_robustness` of small noise, level shifts and interpolated gaps in time series.

Statistics, shared by all reports (``alpha`` = 0.05 gives 95 % intervals):

* **Wilson score interval** of a rate :math:`\hat p = k / n` with
  :math:`z = \Phi^{-1}(1 - \alpha / 2)`:

  .. math::
      \frac{\hat p + \frac{z^2}{2n}}{1 + \frac{z^2}{n}} \pm
      \frac{z}{1 + \frac{z^2}{n}} \sqrt{\frac{\hat p (1 - \hat p)}{n} + \frac{z^2}{4 n^2}}

  (unlike :math:`\hat p \pm z \sqrt{\hat p(1-\hat p)/n}` it stays inside [0, 1] and is not
  empty at :math:`k = 0`).
* **Percentile bootstrap**: draw ``n_boot`` resamples of the ``n`` rows with replacement
  (``numpy.random.default_rng(seed)``), compute the statistic (a mean) on each, and report the
  :math:`\alpha/2` and :math:`1 - \alpha/2` quantiles of those ``n_boot`` values.

>>> [round(v, 4) for v in wilson_interval(0, 10)]  # no flips in 10 tries: up to 28 %
[0.0, 0.2775]
>>> probs = lambda texts: [[0.2, 0.8] if "good" in t else [0.9, 0.1] for t in texts]
>>> swap = lambda t: t.replace("good", "bad") if "good" in t else None
>>> r = counterfactual_probe(probs, ["a good film", "a dull film"], swap, n_boot=100)
>>> r.n_applicable, r.n_flipped, r.flip_rate
(1, 1, 1.0)
"""

from __future__ import annotations

import contextlib
import math
import re
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = ["SERIES_PERTURBATIONS", "TEXT_PERTURBATIONS", "PerturbationResult", "ProbeReport",
           "RobustnessReport", "bootstrap_mean_ci", "counterfactual_probe", "gaussian_noise",
           "level_shift", "lowercase", "missing_interpolated", "numbers", "punctuation",
           "robustness_scan", "series_robustness", "titlecase", "typo", "uppercase",
           "whitespace", "wilson_interval"]

TextPerturbation = Callable[[str, np.random.Generator], "str | None"]
SeriesPerturbation = Callable[[np.ndarray, np.random.Generator], "np.ndarray | None"]

_NAN = float("nan")


# ----------------------------------------------------------------------------- statistics

def wilson_interval(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    r"""Wilson score interval ``(low, high)`` of the rate ``k / n`` at level ``1 - alpha``
    (formula in the module docstring); ``(nan, nan)`` when ``n == 0``."""
    if n <= 0:
        return (_NAN, _NAN)
    if not 0 <= k <= n:
        raise ValueError(f"wilson_interval needs 0 <= k <= n, got k={k}, n={n}")
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, center - half)
    high = 1.0 if k == n else min(1.0, center + half)
    return (low, high)


def bootstrap_mean_ci(values: np.ndarray, n_boot: int = 1000, seed: int | np.random.Generator = 0,
                      alpha: float = 0.05) -> np.ndarray:
    """Percentile-bootstrap intervals of the column means of ``values`` (``[n]`` or ``[n, k]``):
    ``n_boot`` resamples of the ``n`` rows with replacement, the mean of each column in each,
    and the ``alpha/2``, ``1 - alpha/2`` quantiles of those means (NaN rows of a column are
    skipped in its mean). Returns ``[2]`` or ``[k, 2]`` (low, high); NaN when ``n == 0`` or
    ``n_boot == 0``. All columns share the same resamples."""
    v = np.asarray(values, dtype=np.float64)
    one = v.ndim == 1
    v = v.reshape(len(v), -1)
    n, k = v.shape
    if n == 0 or n_boot <= 0:
        out = np.full((k, 2), _NAN)
        return out[0] if one else out
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // max(1, n * k))  # bound the [chunk, n, k] gather
    means = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        with np.errstate(all="ignore"), _quiet():
            means.append(np.nanmean(v[idx], axis=1))
    m = np.concatenate(means)  # [n_boot, k]
    with _quiet():
        out = np.nanquantile(m, [alpha / 2, 1 - alpha / 2], axis=0).T
    return out[0] if one else out


@contextlib.contextmanager
def _quiet():
    """Silence numpy's RuntimeWarnings (all-NaN slices, empty means) inside a block."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# ----------------------------------------------------------------------------- helpers

def _jsonable(x: Any) -> Any:
    """``x`` with numpy scalars / arrays made Python, tuples made lists and NaN / inf made
    ``None``, so :func:`json.dumps` writes strict JSON."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    if hasattr(x, "isoformat"):  # timestamps
        return x.isoformat()
    return str(x)


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return str(int(x))
    return f"{float(x):.{digits}f}"


def _fmt_ci(ci: Any, digits: int = 3) -> str:
    if ci is None:
        return ""
    lo, hi = ci
    if lo is None or (isinstance(lo, float) and math.isnan(lo)):
        return ""
    return f" [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"


def _md(text: Any, limit: int = 80) -> str:
    """A table cell: one line, ``|`` escaped, shortened to ``limit`` characters."""
    s = str(text).replace("\n", " ").replace("|", "\\|")
    return s if len(s) <= limit else s[:limit - 1] + "…"


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch; numpy has no bfloat16
        x = x.detach().cpu()
        x = (x.float() if x.dtype in _half_types() else x).numpy()
    return np.asarray(x)


def _half_types() -> tuple:
    import torch

    return (torch.bfloat16, torch.float16)


def _no_grad():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return contextlib.nullcontext()
    return torch.no_grad()


def _predict_texts(predict_proba: Callable, texts: list[str], batch_size: int) -> np.ndarray:
    """``predict_proba`` over ``texts`` in chunks of ``batch_size``: ``[N, C]`` float64."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    parts = []
    with _no_grad():
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            p = _to_numpy(predict_proba(chunk)).astype(np.float64)
            if p.ndim != 2 or p.shape[0] != len(chunk):
                raise ValueError(f"predict_proba must return class probabilities of shape "
                                 f"[N, C] for N texts; for {len(chunk)} texts it returned "
                                 f"shape {list(p.shape)} (wrap a label predictor as one-hot "
                                 f"probabilities)")
            parts.append(p)
    return np.concatenate(parts) if parts else np.zeros((0, 0))


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise ValueError("texts must be a list of strings, got one string; wrap it: [text]")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"texts must all be strings; entry {bad[0]} is "
                         f"{type(texts[bad[0]]).__name__}")
    return texts


def _class_names(labels: Sequence[Any] | None, n_classes: int) -> list[Any]:
    if labels is None:
        return list(range(n_classes))
    labels = list(labels)
    if len(labels) != n_classes:
        raise ValueError(f"labels names the classes (columns of predict_proba): got "
                         f"{len(labels)} names for {n_classes} columns")
    return labels


def _edited(texts: list[str], edit: Callable[[str], str | None],
            what: str) -> tuple[list[int], list[str]]:
    """``(indices, edited texts)`` of the texts ``edit`` changes (``None`` or the same text:
    not applicable)."""
    idx, out = [], []
    for i, t in enumerate(texts):
        e = edit(t)
        if e is not None and not isinstance(e, str):
            raise ValueError(f"{what} must return a string or None, got {type(e).__name__} "
                             f"for text {i}")
        if e is not None and e != t:
            idx.append(i)
            out.append(e)
    return idx, out


def _check_common(alpha: float, n_boot: int) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1) (0.05 gives 95 % intervals), got {alpha!r}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0 (0 skips the bootstrap), got {n_boot!r}")


# ----------------------------------------------------------------------------- counterfactuals

class Report:
    """Base of the audit reports (dataclasses): ``to_dict()`` gives every field as JSON-able
    Python (numpy scalars made Python, NaN -> ``None``, tuples -> lists)."""

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass
class ProbeReport(Report):
    """What :func:`counterfactual_probe` found.

    Attributes:
        n_total: texts given.
        n_applicable: texts the transform changed (``None`` or the same text: skipped).
        n_flipped: applicable texts whose predicted class (argmax) changed.
        flip_rate: ``n_flipped / n_applicable`` (NaN when nothing was applicable).
        flip_ci_wilson: Wilson interval of the flip rate.
        flip_ci_bootstrap: percentile-bootstrap interval of the flip rate.
        shifts: ``"predicted_class"`` (probability of the originally predicted class,
            counterfactual minus original) and, for 2 classes, ``"class_1"`` (probability of
            class 1); each ``{"mean", "mean_ci", "mean_abs", "mean_abs_ci"}`` (signed and
            absolute mean shift with bootstrap intervals).
        worst: up to ``worst`` examples with the largest absolute shift of the predicted
            class: ``index``, ``text``, ``counterfactual``, ``prediction``,
            ``counterfactual_prediction``, ``p``, ``p_counterfactual``, ``shift``.
        classes: class names (``labels``, or column numbers).
        alpha, n_boot, seed: the settings.
    """

    n_total: int
    n_applicable: int
    n_flipped: int
    flip_rate: float
    flip_ci_wilson: tuple[float, float]
    flip_ci_bootstrap: tuple[float, float]
    shifts: dict[str, dict[str, Any]]
    worst: list[dict[str, Any]]
    classes: list[Any]
    alpha: float
    n_boot: int
    seed: int

    def to_markdown(self) -> str:
        """A short Markdown summary and a table of the worst examples."""
        level = f"{100 * (1 - self.alpha):g} %"
        lines = ["## Counterfactual probe", ""]
        if self.n_applicable == 0:
            lines.append(f"The transform applied to none of the {self.n_total} texts.")
            return "\n".join(lines) + "\n"
        lines += [f"- applicable: {self.n_applicable} of {self.n_total} texts",
                  f"- flipped predictions: {self.n_flipped} ({_fmt(self.flip_rate)}; "
                  f"{level} Wilson{_fmt_ci(self.flip_ci_wilson)}, "
                  f"bootstrap{_fmt_ci(self.flip_ci_bootstrap)})"]
        for name, s in self.shifts.items():
            lines.append(f"- shift of p({name.replace('_', ' ')}): mean {_fmt(s['mean'])}"
                         f"{_fmt_ci(s['mean_ci'])}, mean |shift| {_fmt(s['mean_abs'])}"
                         f"{_fmt_ci(s['mean_abs_ci'])}")
        if self.worst:
            lines += ["", "| # | text | prediction | counterfactual | prediction | shift |",
                      "|---|---|---|---|---|---|"]
            for w in self.worst:
                lines.append(f"| {w['index']} | {_md(w['text'])} | {_md(w['prediction'])} "
                             f"({_fmt(w['p'])}) | {_md(w['counterfactual'])} | "
                             f"{_md(w['counterfactual_prediction'])} "
                             f"({_fmt(w['p_counterfactual'])}) | {_fmt(w['shift'])} |")
        return "\n".join(lines) + "\n"


def counterfactual_probe(predict_proba: Callable[[list[str]], Any], texts: Sequence[str],
                         transform: Callable[[str], str | None], *,
                         labels: Sequence[Any] | None = None, n_boot: int = 1000, seed: int = 0,
                         worst: int = 5, alpha: float = 0.05, batch_size: int = 256,
                         ) -> ProbeReport:
    r"""Compare a model's answers on ``texts`` and on their counterfactuals ``transform(text)``.

    ``transform`` returns the edited text, or ``None`` (or the text unchanged) where it does
    not apply; those texts are skipped. For each of the ``n`` applicable texts with original
    probabilities :math:`p` and counterfactual ones :math:`p'`, :math:`k = \arg\max p`:

    * flipped: :math:`\arg\max p' \ne k`; the flip rate is flipped / ``n`` with a Wilson and a
      percentile-bootstrap interval;
    * shift of the predicted class: :math:`p'_k - p_k` (signed and absolute mean, bootstrap
      intervals), and for two classes also :math:`p'_1 - p_1`.

    ``predict_proba`` is called on chunks of ``batch_size`` texts (originals and
    counterfactuals together) under ``torch.no_grad()``; ``labels`` names its columns in the
    report. Returns a :class:`ProbeReport` (flip rate NaN when nothing was applicable).
    """
    texts = _check_texts(texts)
    _check_common(alpha, n_boot)
    idx, cfs = _edited(texts, transform, "transform")
    m = len(idx)
    if m == 0:
        return ProbeReport(len(texts), 0, 0, _NAN, (_NAN, _NAN), (_NAN, _NAN), {}, [],
                           list(labels) if labels is not None else [], alpha, n_boot, seed)
    probs = _predict_texts(predict_proba, [texts[i] for i in idx] + cfs, batch_size)
    p0, p1 = probs[:m], probs[m:]
    classes = _class_names(labels, p0.shape[1])
    k0, k1 = p0.argmax(1), p1.argmax(1)
    rows = np.arange(m)
    flips = k0 != k1
    shift = p1[rows, k0] - p0[rows, k0]
    cols = [flips.astype(float), shift, np.abs(shift)]
    if p0.shape[1] == 2:
        s1 = p1[:, 1] - p0[:, 1]
        cols += [s1, np.abs(s1)]
    values = np.stack(cols, 1)
    ci = bootstrap_mean_ci(values, n_boot, seed, alpha)
    means = values.mean(0)
    shifts = {"predicted_class": {"mean": means[1], "mean_ci": tuple(ci[1]),
                                  "mean_abs": means[2], "mean_abs_ci": tuple(ci[2])}}
    if p0.shape[1] == 2:
        shifts["class_1"] = {"mean": means[3], "mean_ci": tuple(ci[3]),
                             "mean_abs": means[4], "mean_abs_ci": tuple(ci[4])}
    order = np.argsort(-np.abs(shift), kind="stable")[:max(0, worst)]
    worst_rows = [{"index": idx[j], "text": texts[idx[j]], "counterfactual": cfs[j],
                   "prediction": classes[k0[j]], "counterfactual_prediction": classes[k1[j]],
                   "p": p0[j, k0[j]], "p_counterfactual": p1[j, k0[j]], "shift": shift[j]}
                  for j in order]
    n_flip = int(flips.sum())
    return ProbeReport(len(texts), m, n_flip, n_flip / m, wilson_interval(n_flip, m, alpha),
                       tuple(ci[0]), _jsonable(shifts), _jsonable(worst_rows), classes, alpha,
                       n_boot, seed)


# ----------------------------------------------------------------------------- text edits

_WORD4 = re.compile(r"(?<!\w)[^\W\d_]{4,}(?!\w)")


def typo(text: str, rng: np.random.Generator) -> str | None:
    """One typo in one word of at least 4 letters (chosen by ``rng``): swap two adjacent,
    different letters or delete one letter. ``None`` when no such word exists."""
    words = list(_WORD4.finditer(text))
    if not words:
        return None
    m = words[int(rng.integers(len(words)))]
    w = m.group(0)
    swaps = [i for i in range(len(w) - 1) if w[i] != w[i + 1]]
    if swaps and rng.random() < 0.5:
        i = swaps[int(rng.integers(len(swaps)))]
        new = w[:i] + w[i + 1] + w[i] + w[i + 2:]
    else:
        i = int(rng.integers(len(w)))
        new = w[:i] + w[i + 1:]
    return text[:m.start()] + new + text[m.end():]


def _changed(text: str, new: str) -> str | None:
    return new if new != text else None


def lowercase(text: str, rng: np.random.Generator) -> str | None:
    """The text lower-cased (``None`` when it already is)."""
    return _changed(text, text.lower())


def uppercase(text: str, rng: np.random.Generator) -> str | None:
    """The text upper-cased (``None`` when it already is)."""
    return _changed(text, text.upper())


def _cap(token: str) -> str:
    for i, ch in enumerate(token):
        if ch.isalpha():
            return token[:i] + ch.upper() + token[i + 1:].lower()
    return token


def titlecase(text: str, rng: np.random.Generator) -> str | None:
    """Title case: each whitespace-separated token's first letter upper-cased, the rest of the
    token lower-cased (``"don't"`` -> ``"Don't"``, unlike :meth:`str.title`)."""
    return _changed(text, re.sub(r"\S+", lambda m: _cap(m.group(0)), text))


_TRAILING = re.compile(r"\s*[.!?;:,]+\s*$")
_HAS_WORD = re.compile(r"\w")


def punctuation(text: str, rng: np.random.Generator) -> str | None:
    """One of these edits (``rng`` picks among those that change the text): drop the trailing
    punctuation (``"... office ."`` -> ``"... office"``) or, without any, add a final ``"."``;
    remove every punctuation-only token (``"well , fine ."`` -> ``"well fine"``; the kept
    tokens are joined by single spaces). ``None`` for blank text."""
    if not text.strip():
        return None
    options = [_TRAILING.sub("", text) if _TRAILING.search(text) else text.rstrip() + "."]
    tokens = text.split()
    kept = [t for t in tokens if _HAS_WORD.search(t)]
    if kept and len(kept) < len(tokens):
        options.append(" ".join(kept))
    options = [o for o in options if o != text and o.strip()]
    if not options:
        return None
    return options[int(rng.integers(len(options)))]


def whitespace(text: str, rng: np.random.Generator) -> str | None:
    """Every single space between two words doubled, plus a leading and a trailing space
    (``"a b"`` -> ``" a  b "``). ``None`` for blank text."""
    if not text.strip():
        return None
    return " " + re.sub(r"(?<=\S) (?=\S)", "  ", text) + " "


_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                 "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                 "seventeen", "eighteen", "nineteen", "twenty")
_NUMBER = re.compile(r"(?<![\w.,-])(?:(\d{1,3}(?:,\d{3})+)|(\d+)|("
                     + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
                     + r"))(?![\w-]|[.,]\d)", re.IGNORECASE)


def _number_repl(m: re.Match) -> str:
    if m.group(1):
        return m.group(1).replace(",", "")
    if m.group(2):
        digits = m.group(2)
        if len(digits) > 1 and digits[0] == "0":  # "007", "01": a code, not a quantity
            return digits
        value = int(digits)
        if value <= 20:
            return _NUMBER_WORDS[value]
        return f"{value:,}" if len(digits) >= 4 else digits
    return str(_NUMBER_WORDS.index(m.group(3).lower()))


def numbers(text: str, rng: np.random.Generator) -> str | None:
    """Every whole number rewritten in its other format: digits <-> words for 0-20
    (``"3"`` <-> ``"three"``, any case in, lower case out) and thousands separators
    (``"1,000"`` <-> ``"1000"``, numbers of 4+ digits). Decimals, hyphenated forms
    (``"twenty-one"``), negative numbers and leading zeros are left alone, so applying it twice
    gives the text back (up to the case of number words). ``None`` when the text has no such
    number."""
    return _changed(text, _NUMBER.sub(_number_repl, text))


#: text edits that should not change a classifier's answer: ``name -> f(text, rng)``, each
#: returning the edited text or ``None`` (not applicable). Add your own:
#: ``robustness_scan(f, texts, {**TEXT_PERTURBATIONS, "mine": my_edit})``.
TEXT_PERTURBATIONS: dict[str, TextPerturbation] = {
    "typo": typo, "lowercase": lowercase, "uppercase": uppercase, "titlecase": titlecase,
    "punctuation": punctuation, "whitespace": whitespace, "numbers": numbers,
}


# ----------------------------------------------------------------------------- robustness

@dataclass
class PerturbationResult:
    """One perturbation's outcome in a :class:`RobustnessReport`.

    Attributes:
        name: the perturbation's key.
        n_applicable: inputs it applied to.
        n_changed: of those, inputs whose answer changed: predicted class (argmax / label)
            for classifiers; relative output change above ``tolerance`` for regressors.
        changed_rate: ``n_changed / n_applicable`` (NaN when none applied).
        changed_ci: its Wilson interval.
        mean_change: mean absolute shift of the originally predicted class's probability
            (classifiers with probabilities), or mean relative output change (regressors);
            NaN for label-only classifiers.
        mean_change_ci: its percentile-bootstrap interval.
        examples: the inputs that changed most (text: ``index``, ``text``, ``perturbed``,
            ``prediction``, ``perturbed_prediction``, ``shift``; series: ``index``, ``change``
            and, for classifiers, the predictions), largest change first.
    """

    name: str
    n_applicable: int
    n_changed: int
    changed_rate: float
    changed_ci: tuple[float, float]
    mean_change: float
    mean_change_ci: tuple[float, float]
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RobustnessReport(Report):
    """What :func:`robustness_scan` or :func:`series_robustness` found.

    Attributes:
        kind: ``"text"``, ``"series-classification"`` or ``"series-regression"``.
        n_total: inputs given.
        results: one :class:`PerturbationResult` per perturbation, in the given order.
        change: what ``mean_change`` measures, in words.
        tolerance: relative change above which a regressor's output counts as changed
            (``None`` for classifiers).
        alpha, n_boot, seed: the settings.
    """

    kind: str
    n_total: int
    results: dict[str, PerturbationResult]
    change: str
    tolerance: float | None
    alpha: float
    n_boot: int
    seed: int

    def to_markdown(self) -> str:
        """A Markdown table (one row per perturbation) and the examples that changed."""
        level = f"{100 * (1 - self.alpha):g} %"
        what = ("changed predictions" if self.tolerance is None else
                f"outputs changed by > {self.tolerance:g} (relative)")
        lines = [f"## Robustness scan ({self.kind}, {self.n_total} inputs)", "",
                 f"| perturbation | applicable | {what} | rate [{level} Wilson] | "
                 f"{_md(self.change, 200)} [bootstrap] |", "|---|---|---|---|---|"]
        for r in self.results.values():
            lines.append(f"| {r.name} | {r.n_applicable} | {r.n_changed} | "
                         f"{_fmt(r.changed_rate)}{_fmt_ci(r.changed_ci)} | "
                         f"{_fmt(r.mean_change, 4)}{_fmt_ci(r.mean_change_ci, 4)} |")
        for r in self.results.values():
            if not r.examples:
                continue
            lines += ["", f"### {r.name}", ""]
            for e in r.examples:
                if "text" in e:
                    lines.append(f"- [{e['index']}] {_md(e['text'])!r} -> "
                                 f"{_md(e['perturbed'])!r}: {_md(e['prediction'])} -> "
                                 f"{_md(e['perturbed_prediction'])}")
                else:
                    extra = (f": {_md(e['prediction'])} -> {_md(e['perturbed_prediction'])}"
                             if "prediction" in e else "")
                    lines.append(f"- window {e['index']}: change {_fmt(e['change'], 4)}{extra}")
        return "\n".join(lines) + "\n"


def _stream_seed(seed: int, name: str) -> np.random.Generator:
    """A generator per (seed, perturbation name), independent of the other perturbations."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def robustness_scan(predict_proba: Callable[[list[str]], Any], texts: Sequence[str],
                    perturbations: Mapping[str, TextPerturbation] = TEXT_PERTURBATIONS, *,
                    seed: int = 0, labels: Sequence[Any] | None = None, n_boot: int = 1000,
                    alpha: float = 0.05, examples: int = 5, batch_size: int = 256,
                    ) -> RobustnessReport:
    """Scan a text classifier with edits that should not change its answer.

    Each perturbation ``f(text, rng) -> str | None`` runs on every text with its own generator
    ``numpy.random.default_rng([seed, crc32(name)])`` (so adding a perturbation leaves the
    others' edits unchanged); ``None`` or an unchanged text means "not applicable". For the
    applicable texts the report gives the rate of changed predictions (argmax) with a Wilson
    interval, the mean absolute shift of the originally predicted class's probability with a
    bootstrap interval, and up to ``examples`` texts whose prediction changed (largest shift
    first). ``predict_proba`` runs in chunks of ``batch_size``. Returns a
    :class:`RobustnessReport` of kind ``"text"``.
    """
    texts = _check_texts(texts)
    _check_common(alpha, n_boot)
    if not perturbations:
        raise ValueError("no perturbations given; pass e.g. TEXT_PERTURBATIONS")
    edits: dict[str, tuple[list[int], list[str]]] = {}
    for name, f in perturbations.items():
        rng = _stream_seed(seed, name)
        edits[name] = _edited(texts, lambda t, f=f, rng=rng: f(t, rng), f"perturbation {name!r}")
    flat = [e for _, new in edits.values() for e in new]
    probs = _predict_texts(predict_proba, texts + flat, batch_size)
    base, rest = probs[:len(texts)], probs[len(texts):]
    classes = _class_names(labels, base.shape[1]) if len(texts) else []
    results, offset = {}, 0
    for name, (idx, new) in edits.items():
        m = len(idx)
        p1 = rest[offset:offset + m]
        offset += m
        if m == 0:
            results[name] = PerturbationResult(name, 0, 0, _NAN, (_NAN, _NAN), _NAN,
                                               (_NAN, _NAN))
            continue
        p0 = base[idx]
        k0, k1 = p0.argmax(1), p1.argmax(1)
        shift = np.abs(p1[np.arange(m), k0] - p0[np.arange(m), k0])
        changed = k0 != k1
        broke = np.flatnonzero(changed)
        broke = broke[np.argsort(-shift[broke], kind="stable")][:max(0, examples)]
        ex = [{"index": idx[j], "text": texts[idx[j]], "perturbed": new[j],
               "prediction": classes[k0[j]], "perturbed_prediction": classes[k1[j]],
               "shift": shift[j]} for j in broke]
        n_changed = int(changed.sum())
        results[name] = PerturbationResult(
            name, m, n_changed, n_changed / m, wilson_interval(n_changed, m, alpha),
            float(shift.mean()), tuple(bootstrap_mean_ci(shift, n_boot, seed, alpha)),
            _jsonable(ex))
    return RobustnessReport("text", len(texts), results,
                            "mean |shift| of p(predicted class)", None, alpha, n_boot, seed)


# ----------------------------------------------------------------------------- series edits

def _window_scale(x: np.ndarray) -> np.ndarray:
    """Per window and feature ``[N, 1, F]``: the standard deviation over time, or where that
    is 0 (a flat window) the mean absolute value (0 for an all-zero window)."""
    std = x.std(axis=1, keepdims=True)
    return np.where(std > 0, std, np.abs(x).mean(axis=1, keepdims=True))


def gaussian_noise(x: np.ndarray, rng: np.random.Generator, scale: float = 0.01) -> np.ndarray:
    """``x + scale * s * N(0, 1)`` with ``s`` the window's own scale per feature (its standard
    deviation over time; the mean absolute value for a flat window)."""
    return x + scale * _window_scale(x) * rng.standard_normal(x.shape)


def level_shift(x: np.ndarray, rng: np.random.Generator, scale: float = 0.01) -> np.ndarray:
    """``x + scale * s``: every window moved up by ``scale`` of its own scale ``s`` (as in
    :func:`gaussian_noise`)."""
    return x + scale * _window_scale(x)


def missing_interpolated(x: np.ndarray, rng: np.random.Generator,
                         fraction: float = 0.05) -> np.ndarray | None:
    """Simulated gaps: in each window ``max(1, round(fraction * T))`` interior time steps
    (never the first or last, chosen by ``rng``) lose all their features (NaN), which are then
    filled by linear interpolation in time between the nearest kept steps
    (:func:`numpy.interp`), the usual repair of a gappy sensor stream. ``None`` when
    ``T < 3``."""
    n, t, f = x.shape
    if t < 3:
        return None
    k = min(t - 2, max(1, round(fraction * t)))
    out = x.astype(np.float64, copy=True)
    grid = np.arange(t)
    for i in range(n):
        gone = 1 + rng.choice(t - 2, size=k, replace=False)
        out[i, gone, :] = np.nan
        keep = np.setdiff1d(grid, gone)
        for j in range(f):
            out[i, gone, j] = np.interp(gone, keep, out[i, keep, j])
    return out.astype(x.dtype, copy=False)


#: small edits of ``[N, T, F]`` windows that should barely move a forecaster's or scorer's
#: output: ``name -> f(windows, rng) -> windows | None``. Change their size with
#: :func:`functools.partial`, e.g. ``partial(gaussian_noise, scale=0.05)``.
SERIES_PERTURBATIONS: dict[str, SeriesPerturbation] = {
    "noise": gaussian_noise, "level_shift": level_shift, "missing": missing_interpolated,
}


def _detect_task(y: np.ndarray) -> str:
    if y.ndim == 1 and (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        return "classification"
    if y.ndim == 2 and y.shape[1] >= 2 and np.issubdtype(y.dtype, np.floating):
        if np.all((y >= 0) & (y <= 1)) and np.allclose(y.sum(1), 1.0, atol=1e-3):
            return "classification"
    return "regression"


def series_robustness(predict: Callable[[Any], Any], windows: Any, *,
                      perturbations: Mapping[str, SeriesPerturbation] = SERIES_PERTURBATIONS,
                      seed: int = 0, tolerance: float = 0.05, task: str = "auto",
                      n_boot: int = 1000, alpha: float = 0.05, worst: int = 5,
                      batch_size: int = 256) -> RobustnessReport:
    r"""Scan a series model with small edits of its input windows ``[N, T, F]``.

    ``predict(windows [n, T, F]) -> [n, ...]`` runs in chunks of ``batch_size`` windows (numpy
    arrays, or torch tensors of the input's dtype and device when ``windows`` is a tensor).
    Each perturbation ``f(windows, rng)`` gets the whole array and its own generator
    ``numpy.random.default_rng([seed, crc32(name)])``; ``None`` means "not applicable".

    ``task="auto"`` treats 1-D integer outputs (labels) and 2-D rows of probabilities (in
    [0, 1], summing to 1) as a classifier, anything else as a regressor:

    * regressor (forecasts, anomaly scores): per window the relative change
      :math:`c_i = \lVert y'_i - y_i \rVert_2 / \lVert y_i \rVert_2` over all output values
      (a window with :math:`y_i = 0` is divided by the mean norm over windows instead); the
      report gives the mean :math:`c_i` (bootstrap interval), the share of windows with
      :math:`c_i >` ``tolerance`` (Wilson interval) and the ``worst`` windows;
    * classifier: the share of changed predictions (label or argmax; Wilson interval), the
      mean absolute shift of the predicted class's probability (probabilities only) and the
      ``worst`` changed windows.

    Returns a :class:`RobustnessReport` of kind ``"series-regression"`` or
    ``"series-classification"``.
    """
    _check_common(alpha, n_boot)
    if task not in ("auto", "regression", "classification"):
        raise ValueError(f"task must be 'auto', 'regression' or 'classification', got {task!r}")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0 (a relative change), got {tolerance!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    like = windows if hasattr(windows, "detach") else None
    x = _to_numpy(windows)
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"windows must have shape [N, T, F] with N >= 1, got "
                         f"{list(x.shape)}; add a feature axis with x[..., None]")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("windows contain NaN or inf; fill gaps first (the 'missing' "
                         "perturbation simulates and interpolates its own)")

    def run(arr: np.ndarray) -> np.ndarray:
        parts = []
        with _no_grad():
            for s in range(0, len(arr), batch_size):
                chunk = arr[s:s + batch_size]
                if like is not None:
                    import torch

                    chunk = torch.as_tensor(chunk, dtype=like.dtype, device=like.device)
                y = _to_numpy(predict(chunk))
                if y.ndim == 0 or y.shape[0] != len(arr[s:s + batch_size]):
                    raise ValueError(f"predict must return one output per window ([N, ...]); "
                                     f"for {len(arr[s:s + batch_size])} windows it returned "
                                     f"shape {list(y.shape)}")
                parts.append(y)
        return np.concatenate(parts)

    y0 = run(x)
    kind = _detect_task(y0) if task == "auto" else task
    labels_only = kind == "classification" and y0.ndim == 1
    if kind == "classification" and not labels_only and y0.ndim != 2:
        raise ValueError(f"a series classifier must return labels [N] or probabilities "
                         f"[N, C]; got shape {list(y0.shape)}")
    n = len(x)
    if kind == "regression":
        flat0 = y0.reshape(n, -1).astype(np.float64)
        norm = np.linalg.norm(flat0, axis=1)
        fallback = norm.mean() if norm.mean() > 0 else 1.0
        denom = np.where(norm > 0, norm, fallback)
    results = {}
    for name, f in perturbations.items():
        xp = f(x.copy(), _stream_seed(seed, name))
        if xp is None:
            results[name] = PerturbationResult(name, 0, 0, _NAN, (_NAN, _NAN), _NAN,
                                               (_NAN, _NAN))
            continue
        xp = np.asarray(xp)
        if xp.shape != x.shape:
            raise ValueError(f"perturbation {name!r} must return windows of shape "
                             f"{list(x.shape)}, got {list(xp.shape)}")
        y1 = run(xp.astype(x.dtype, copy=False))
        if kind == "regression":
            change = np.linalg.norm(y1.reshape(n, -1) - flat0, axis=1) / denom
            changed = change > tolerance
            order = np.argsort(-change, kind="stable")[:max(0, worst)]
            ex = [{"index": int(i), "change": change[i]} for i in order]
            mean, ci = float(change.mean()), tuple(bootstrap_mean_ci(change, n_boot, seed,
                                                                     alpha))
        else:
            if labels_only:
                k0, k1 = y0, y1
                change = (k0 != k1).astype(float)
                mean, ci = _NAN, (_NAN, _NAN)
            else:
                k0, k1 = y0.argmax(1), y1.argmax(1)
                change = np.abs(y1[np.arange(n), k0] - y0[np.arange(n), k0])
                mean, ci = float(change.mean()), tuple(bootstrap_mean_ci(change, n_boot, seed,
                                                                         alpha))
            changed = k0 != k1
            broke = np.flatnonzero(changed)
            broke = broke[np.argsort(-change[broke], kind="stable")][:max(0, worst)]
            ex = [{"index": int(i), "change": change[i], "prediction": k0[i],
                   "perturbed_prediction": k1[i]} for i in broke]
        k = int(changed.sum())
        results[name] = PerturbationResult(name, n, k, k / n, wilson_interval(k, n, alpha),
                                           mean, ci, _jsonable(ex))
    measure = ("mean relative change of the output" if kind == "regression" else
               "(labels only: no probability shift)" if labels_only else
               "mean |shift| of p(predicted class)")
    return RobustnessReport(f"series-{kind}", n, results, measure,
                            tolerance if kind == "regression" else None, alpha, n_boot, seed)
