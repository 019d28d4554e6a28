r"""Group metrics of a model's predictions, through :class:`fairlearn.metrics.MetricFrame`.

:func:`group_metrics` splits the rows by a sensitive feature (``groups``) and reports, per
group and overall, for a binary task with ``positive`` the label that counts as "selected"
(:math:`\hat y` prediction, :math:`y` truth, :math:`+` = ``positive``):

* ``accuracy`` :math:`P(\hat y = y)`, ``error_rate`` :math:`1 -` accuracy;
* ``selection_rate`` :math:`P(\hat y = +)` (demographic parity compares these);
* ``false_positive_rate`` :math:`P(\hat y = + \mid y \ne +)` and ``false_negative_rate``
  :math:`P(\hat y \ne + \mid y = +)` (equalized odds compares these); NaN in a group without
  negatives (positives), where fairlearn would report 0;
* with ``scores`` (the model's score of ``positive``): ``mean_score`` and ``roc_auc`` (NaN in a
  group with one class only).

With more than two labels and no ``positive``: accuracy, error rate and a
``selection_rate[c]`` :math:`P(\hat y = c)` per class ``c``; with ``positive`` given as well,
the binary metrics treat it one-vs-rest. Between the groups, ``difference`` is
:math:`\max_g m_g - \min_g m_g` and ``ratio`` :math:`\min_g m_g / \max_g m_g`
(``MetricFrame.difference()`` / ``ratio()`` with ``method="between_groups"``).

**Confidence intervals** (percentile bootstrap): each of ``n_boot`` replicates resamples the
rows of every group with replacement, keeping the group sizes (``numpy.random.default_rng(seed)``),
and recomputes every metric per group, overall, and their difference and ratio; the interval is
the :math:`\alpha/2` and :math:`1-\alpha/2` quantiles of the replicate values (replicates where
a metric is undefined, e.g. no negatives drawn, are skipped). With two groups the difference's
interval is that of the *signed* gap (the group with the larger value minus the other, in every
replicate), so it holds 0 when the data do not show a gap. With more groups it is the interval
of max minus min, which is biased upwards and can sit above a true difference of 0: read it as
"how large could the gap be", and compare groups with enough rows.

fairlearn is an optional dependency: ``pip install 'rnnkit[audit]'``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .probes import Report, _fmt, _fmt_ci, _jsonable, _md, _quiet

__all__ = ["GroupReport", "group_metrics"]

_NAN = float("nan")


@dataclass
class GroupReport(Report):
    """What :func:`group_metrics` found. Metric values are floats (NaN where undefined);
    intervals are ``(low, high)`` (``None`` without a bootstrap).

    Attributes:
        metrics: the metric names, in table order.
        groups: the group names (``str`` of the values), sorted.
        counts: rows per group.
        n_unassigned: rows left out because their group was ``None``, NaN or blank.
        by_group: ``{group: {metric: value}}``.
        overall: ``{metric: value}`` over all assigned rows.
        difference: ``{metric: max - min over groups}``.
        ratio: ``{metric: min / max over groups}``.
        ci: ``{group: {metric: (low, high)}}``; ``overall_ci``, ``difference_ci``,
            ``ratio_ci``: ``{metric: (low, high)}``.
        positive: the positive label (``None`` for multi-class metrics).
        classes: the labels seen in ``y_true`` and ``y_pred``.
        alpha, n_boot, seed: the settings.
    """

    metrics: list[str]
    groups: list[str]
    counts: dict[str, int]
    n_unassigned: int
    by_group: dict[str, dict[str, float]]
    overall: dict[str, float]
    difference: dict[str, float]
    ratio: dict[str, float]
    ci: dict[str, dict[str, tuple[float, float]]] | None
    overall_ci: dict[str, tuple[float, float]] | None
    difference_ci: dict[str, tuple[float, float]] | None
    ratio_ci: dict[str, tuple[float, float]] | None
    positive: Any
    classes: list[Any]
    alpha: float
    n_boot: int
    seed: int

    def to_markdown(self) -> str:
        """A Markdown table: one row per metric; a column per group, overall, difference and
        ratio, each value with its bootstrap interval in brackets."""
        level = f"{100 * (1 - self.alpha):g} %"
        head = [f"{_md(g, 30)} (n={self.counts[g]})" for g in self.groups]
        lines = ["## Group metrics", "",
                 f"Positive label: {_md(self.positive)}." if self.positive is not None
                 else "Multi-class labels (no positive label).",
                 f"Intervals: {level} percentile bootstrap, {self.n_boot} resamples within "
                 f"each group." if self.ci else "No bootstrap intervals (n_boot=0).",
                 *([f"{self.n_unassigned} rows without a group were left out."]
                   if self.n_unassigned else []),
                 "", "| metric | " + " | ".join(head) + " | overall | difference | ratio |",
                 "|---" * (len(head) + 4) + "|"]

        def ci(table, *keys):
            if table is None:
                return ""
            for k in keys:
                table = table[k]
            return _fmt_ci(table)

        for m in self.metrics:
            cells = [f"{_fmt(self.by_group[g][m])}{ci(self.ci, g, m)}" for g in self.groups]
            cells += [f"{_fmt(self.overall[m])}{ci(self.overall_ci, m)}",
                      f"{_fmt(self.difference[m])}{ci(self.difference_ci, m)}",
                      f"{_fmt(self.ratio[m])}{ci(self.ratio_ci, m)}"]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- metric functions
# module-level so MetricFrame gets plain, picklable callables


def _error_rate(y_true, y_pred) -> float:
    return float(np.mean(np.asarray(y_true) != np.asarray(y_pred)))


def _accuracy(y_true, y_pred) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def _fpr(y_true, y_pred, *, positive) -> float:
    from fairlearn.metrics import false_positive_rate

    yt, yp = np.asarray(y_true) == positive, np.asarray(y_pred) == positive
    if not (~yt).any():  # no negatives: undefined (fairlearn would say 0)
        return _NAN
    return float(false_positive_rate(yt, yp, pos_label=True))


def _fnr(y_true, y_pred, *, positive) -> float:
    from fairlearn.metrics import false_negative_rate

    yt, yp = np.asarray(y_true) == positive, np.asarray(y_pred) == positive
    if not yt.any():
        return _NAN
    return float(false_negative_rate(yt, yp, pos_label=True))


def _mean_score(y_true, y_pred, scores) -> float:
    return float(np.mean(scores))


def _roc_auc(y_true, y_pred, scores, *, positive) -> float:
    from sklearn.metrics import roc_auc_score

    yt = np.asarray(y_true) == positive
    if yt.all() or not yt.any():
        return _NAN
    return float(roc_auc_score(yt, np.asarray(scores, dtype=np.float64)))


# ----------------------------------------------------------------------------- input checks

def _as_list(name: str, values: Any) -> list[Any]:
    if values is None:
        raise ValueError(f"{name} is None; pass one value per row")
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    if isinstance(values, np.ndarray):
        return values.reshape(-1).tolist() if values.ndim else [values.item()]
    if isinstance(values, str):
        raise ValueError(f"{name} must be a sequence with one value per row, got one string")
    try:
        return list(values.tolist() if hasattr(values, "tolist") else values)
    except TypeError:
        raise ValueError(f"{name} must be a sequence with one value per row, got "
                         f"{type(values).__name__}") from None


def _unassigned(g: Any) -> bool:
    return (g is None or (isinstance(g, str) and not g.strip())
            or (isinstance(g, float) and math.isnan(g)))


def group_metrics(y_true: Sequence[Any], y_pred: Sequence[Any], groups: Sequence[Any], *,
                  positive: Any = None, scores: Sequence[float] | None = None,
                  n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> GroupReport:
    """Per-group classification metrics of ``y_pred`` against ``y_true`` with fairlearn's
    :class:`~fairlearn.metrics.MetricFrame`, plus stratified bootstrap intervals (definitions
    in the module docstring).

    ``groups`` holds each row's sensitive-feature value (strings, ints, ...); rows whose group
    is ``None``, NaN or blank are left out and counted in ``n_unassigned``. Labels may be ints,
    bools or strings; for two labels that are not 0/1 (or -1/1) name the positive one
    (``positive="approved"``). ``scores`` (optional, binary only) is the model's score of the
    positive label. ``n_boot=0`` skips the bootstrap. Returns a :class:`GroupReport`.

    Raises ValueError for empty input, lengths that differ, fewer than two groups, or an
    unclear positive label; ImportError without fairlearn.
    """
    try:
        from fairlearn.metrics import MetricFrame, count, selection_rate
    except ImportError as e:
        raise ImportError("group_metrics needs fairlearn: pip install 'rnnkit[audit]'") from e

    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1) (0.05 gives 95 % intervals), got {alpha!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0 (0 skips the bootstrap), got "
                         f"{n_boot!r}")
    yt_all, yp_all, g_all = (_as_list("y_true", y_true), _as_list("y_pred", y_pred),
                             _as_list("groups", groups))
    sc_all = None if scores is None else _as_list("scores", scores)
    lengths = {"y_true": len(yt_all), "y_pred": len(yp_all), "groups": len(g_all)}
    if sc_all is not None:
        lengths["scores"] = len(sc_all)
    if len(set(lengths.values())) > 1:
        raise ValueError("y_true, y_pred, groups (and scores) need one entry per row, got "
                         + ", ".join(f"{k}: {v}" for k, v in lengths.items())
                         + "; pass aligned arrays of the same rows")
    if not yt_all:
        raise ValueError("no rows: y_true, y_pred and groups are empty; pass the predictions "
                         "of an evaluation set")
    keep = [i for i, g in enumerate(g_all) if not _unassigned(g)]
    n_unassigned = len(g_all) - len(keep)
    if not keep:
        raise ValueError(f"none of the {len(g_all)} rows has a group (all None / NaN / blank); "
                         f"fill the groups column")
    names = [str(g_all[i]) for i in keep]
    group_names = sorted(set(names))
    if len(group_names) < 2:
        raise ValueError(f"only one group ({group_names[0]!r}) among the {len(keep)} rows with a "
                         f"group ({n_unassigned} unassigned): group metrics compare two or "
                         f"more groups; check that groups is the sensitive-feature column")
    yt = np.asarray([yt_all[i] for i in keep])
    yp = np.asarray([yp_all[i] for i in keep])
    sens = np.asarray(names)
    try:
        classes = sorted(set(yt.tolist()) | set(yp.tolist()))
    except TypeError:
        raise ValueError("y_true and y_pred mix label types (e.g. ints and strings); encode "
                         "both the same way") from None

    if positive is None and len(classes) <= 2:
        if set(classes) <= {0, 1} or set(classes) <= {-1, 1}:
            positive = 1
        else:
            raise ValueError(f"binary labels {classes}: pass positive=<the label that counts "
                             f"as selected>, e.g. positive={classes[-1]!r}")
    if positive is not None:
        positive = positive.item() if isinstance(positive, np.generic) else positive
        if positive not in classes and len(classes) > 1:  # one label seen: it may be absent
            raise ValueError(f"positive={positive!r} is not one of the labels {classes}; "
                             f"pass one of them")

    fns: dict[str, Any] = {"count": count, "accuracy": _accuracy, "error_rate": _error_rate}
    if positive is not None:
        fns["selection_rate"] = partial(selection_rate, pos_label=positive)
        fns["false_positive_rate"] = partial(_fpr, positive=positive)
        fns["false_negative_rate"] = partial(_fnr, positive=positive)
    if len(classes) > 2:
        for c in classes:
            fns[f"selection_rate[{c}]"] = partial(selection_rate, pos_label=c)
    sample_params = None
    sc = None
    if sc_all is not None:
        if positive is None:
            raise ValueError("scores are the model's scores of the positive label: pass "
                             "positive= too (or drop scores for multi-class metrics)")
        sc = np.asarray([sc_all[i] for i in keep], dtype=np.float64)
        fns["mean_score"] = _mean_score
        fns["roc_auc"] = partial(_roc_auc, positive=positive)
        sample_params = {"mean_score": {"scores": sc}, "roc_auc": {"scores": sc}}

    with _quiet():
        mf = MetricFrame(metrics=fns, y_true=yt, y_pred=yp, sensitive_features=sens,
                         sample_params=sample_params)
        by = mf.by_group
        diff = mf.difference(method="between_groups")
        ratio = mf.ratio(method="between_groups")
    metrics = [m for m in fns if m != "count"]
    counts = {str(g): int(by.loc[g, "count"]) for g in by.index}
    by_group = {str(g): {m: float(by.loc[g, m]) for m in metrics} for g in by.index}
    overall = {m: float(mf.overall[m]) for m in metrics}
    difference = {m: float(diff[m]) for m in metrics}
    ratios = {m: float(ratio[m]) for m in metrics}

    cis = overall_ci = diff_ci = ratio_ci = None
    if n_boot > 0:
        cis, overall_ci, diff_ci, ratio_ci = _bootstrap(
            yt, yp, sc, sens, group_names, metrics, positive, classes, n_boot, seed, alpha)
    return GroupReport(metrics, group_names, counts, n_unassigned, by_group, overall,
                       difference, ratios, cis, overall_ci, diff_ci, ratio_ci,
                       _jsonable(positive), _jsonable(classes), alpha, int(n_boot), seed)


# ----------------------------------------------------------------------------- bootstrap

def _replicates(ind: dict[str, np.ndarray], idx: np.ndarray, metrics: list[str]
                ) -> dict[str, np.ndarray]:
    """Every metric on each row of the index matrix ``idx [b, m]`` (one resample per row),
    from the per-row indicator arrays in ``ind``: ``[b]`` per metric."""
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = ind["correct"][idx].mean(1)
        out["accuracy"], out["error_rate"] = acc, 1 - acc
        if "selection_rate" in metrics:
            sel, pos = ind["selected"][idx], ind["positive"][idx]
            out["selection_rate"] = sel.mean(1)
            n_pos = pos.sum(1)
            out["false_positive_rate"] = (sel & ~pos).sum(1) / (idx.shape[1] - n_pos)
            out["false_negative_rate"] = (~sel & pos).sum(1) / n_pos
        for m in metrics:
            if m.startswith("selection_rate["):
                out[m] = ind[m][idx].mean(1)
        if "mean_score" in metrics:
            from scipy.stats import rankdata

            s, pos = ind["scores"][idx], ind["positive"][idx]
            out["mean_score"] = s.mean(1)
            n1 = pos.sum(1)
            n0 = idx.shape[1] - n1
            ranks = rankdata(s, axis=1)  # ties get their average rank, as in roc_auc_score
            out["roc_auc"] = ((ranks * pos).sum(1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    return out


def _bootstrap(yt, yp, sc, sens, group_names, metrics, positive, classes, n_boot, seed, alpha):
    """Stratified percentile bootstrap (module docstring): intervals per group, overall, of
    the difference and of the ratio."""
    ind = {"correct": yt == yp}
    if positive is not None:
        ind["selected"], ind["positive"] = yp == positive, yt == positive
    for m in metrics:
        if m.startswith("selection_rate["):
            ind[m] = yp == classes[[f"selection_rate[{c}]" for c in classes].index(m)]
    if sc is not None:
        ind["scores"] = sc
    rows = {g: np.flatnonzero(sens == g) for g in group_names}
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // len(yt))
    reps: dict[str, dict[str, list[np.ndarray]]] = {g: {m: [] for m in metrics}
                                                    for g in [*group_names, None]}
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        picks = {g: r[rng.integers(0, len(r), size=(b, len(r)))] for g, r in rows.items()}
        picks[None] = np.concatenate(list(picks.values()), axis=1)  # overall: all groups
        for g, idx in picks.items():
            for m, v in _replicates(ind, idx, metrics).items():
                reps[g][m].append(v)
    q = [alpha / 2, 1 - alpha / 2]

    def interval(v: np.ndarray) -> tuple[float, float]:
        if np.isnan(v).all():
            return (_NAN, _NAN)
        lo, hi = np.nanquantile(v, q)
        return (float(lo), float(hi))

    cis = {g: {} for g in group_names}
    overall_ci, diff_ci, ratio_ci = {}, {}, {}
    with _quiet(), np.errstate(invalid="ignore", divide="ignore"):
        for m in metrics:
            per_group = np.stack([np.concatenate(reps[g][m]) for g in group_names])  # [G, B]
            for g, v in zip(group_names, per_group):
                cis[g][m] = interval(v)
            overall_ci[m] = interval(np.concatenate(reps[None][m]))
            hi, lo = np.nanmax(per_group, 0), np.nanmin(per_group, 0)
            if len(group_names) == 2:  # the signed gap, larger group minus smaller: may hold 0
                a, b = per_group if np.nanmean(per_group[0]) >= np.nanmean(per_group[1]) \
                    else per_group[::-1]
                diff_ci[m] = interval(a - b)
            else:
                diff_ci[m] = interval(hi - lo)
            ratio_ci[m] = interval(np.where(hi > 0, lo / np.where(hi > 0, hi, 1), _NAN))
    return cis, overall_ci, diff_ci, ratio_ci
