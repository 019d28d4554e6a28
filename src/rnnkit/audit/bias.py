"""Bias and robustness of a trained model: the engine of ``rnnkit audit model``.

The groups of sequence data live inside the tokens, so they are found there: a text belongs to
a group of a word list (:mod:`rnnkit.audit.terms`) when it mentions that group's terms and no
other group's (texts naming both, or neither, are left out of the slice metrics). Three
questions, each answered with confidence intervals:

* **Slices** (:func:`~rnnkit.audit.fairness.group_metrics`): is the model as accurate, and does
  it select the positive class as often, for every group? Groups come from a sensitive-feature
  column when one is given, else from the word lists.
* **Counterfactuals** (:func:`~rnnkit.audit.probes.counterfactual_probe`): swap only the
  identity terms of each text (he <-> she, John <-> Amy, Emily <-> Lakisha); how often does the
  answer flip, and how far does the score move? For a language model the swap is applied to
  the prompt, the continuations are sampled with the same seed, and a sentiment classifier
  scores them.
* **Robustness** (:func:`~rnnkit.audit.probes.robustness_scan`): typos, casing, punctuation,
  whitespace and number formats should not change an answer; how often do they?
* **Speech** (:func:`error_rates_by_group`): WER and CER per speaker group.

:func:`audit_classifier` returns the ``audit.json`` dict that model cards
(:mod:`rnnkit.audit.card`) render.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .terms import DEFAULT_LISTS, TermList, find_groups, swap

__all__ = ["SWAPPABLE", "audit_classifier", "continuation_scorer", "error_rates_by_group",
           "groups_in_texts", "robustness_entries", "swap_transform"]

#: the default lists probed by term swaps (the count-only religion list is left out)
SWAPPABLE = tuple(t for t in DEFAULT_LISTS if t.swappable)


def groups_in_texts(texts: Sequence[str], terms: TermList) -> list[str | None]:
    """The one group of ``terms`` each text mentions, ``None`` when it mentions none or more
    than one.

    >>> from rnnkit.audit.terms import GENDER
    >>> groups_in_texts(["she was there", "he and she", "a film"], GENDER)
    ['female', None, None]
    """
    out: list[str | None] = []
    for text in texts:
        found = find_groups(text, [terms]).get(terms.name, set())
        out.append(next(iter(found)) if len(found) == 1 else None)
    return out


def swap_transform(terms: TermList) -> Callable[[str], str | None]:
    """``text -> counterfactual text`` swapping ``terms``' pairs, ``None`` when the text has
    none of them."""

    def transform(text: str) -> str | None:
        new, n = swap(text, terms)
        return new if n else None

    return transform


def _slices(report: Any) -> dict[str, Any]:
    """A :class:`~rnnkit.audit.fairness.GroupReport` in the ``audit.json`` layout: per group
    ``{metric: value, metric_ci: [lo, hi], n}``, plus ``difference``/``ratio`` (with CIs)."""
    d = report.to_dict()
    by_group = {}
    for g in d["groups"]:
        row = {"n": d["counts"][g]}
        for m, v in d["by_group"][g].items():
            row[m] = v
            if d.get("ci"):
                row[f"{m}_ci"] = d["ci"][g].get(m)
        by_group[g] = row
    return {"by_group": by_group, "overall": d["overall"], "difference": d["difference"],
            "difference_ci": d.get("difference_ci"), "ratio": d["ratio"],
            "n_unassigned": d["n_unassigned"], "positive": d["positive"],
            "markdown": report.to_markdown()}


def _probe(report: Any) -> dict[str, Any]:
    d = report.to_dict()
    return {"n": d["n_total"], "n_applicable": d["n_applicable"], "flip_rate": d["flip_rate"],
            "flip_rate_ci": d["flip_ci_wilson"], "flip_rate_ci_bootstrap":
            d["flip_ci_bootstrap"], "shifts": d["shifts"], "worst": d["worst"],
            "markdown": report.to_markdown()}


def robustness_entries(report: Any) -> dict[str, Any]:
    """A :class:`~rnnkit.audit.probes.RobustnessReport` in the ``audit.json`` layout: per
    perturbation ``n_applicable``, ``change_rate`` with its Wilson ``change_rate_ci``, the mean
    change with its interval, and the examples that broke."""
    out = {}
    for name, r in report.to_dict()["results"].items():
        out[name] = {"n_applicable": r["n_applicable"], "change_rate": r["changed_rate"],
                     "change_rate_ci": r["changed_ci"], "mean_change": r["mean_change"],
                     "mean_change_ci": r["mean_change_ci"], "examples": r["examples"]}
    return out


def audit_classifier(predict_proba: Callable[[list[str]], Any], classes: Sequence[Any],
                     texts: Sequence[str], labels: Sequence[Any] | None = None, *,
                     groups: Sequence[Any] | None = None, group_name: str = "given",
                     lists: Sequence[TermList] = SWAPPABLE, positive: Any = None,
                     probes: bool = True, robustness: bool = True, n_boot: int = 1000,
                     seed: int = 0, progress: Callable[[str], Any] | None = None,
                     ) -> dict[str, Any]:
    """Audit a text classifier (``predict_proba(list[str]) -> [N, C]`` over ``classes``) on
    ``texts`` with true ``labels`` (slice metrics need them; probes and robustness do not).

    ``groups``: one sensitive-feature value per text (``None``: unknown), reported under
    ``group_name``; without it, every list in ``lists`` gives the groups its terms name.
    ``positive``: the class whose selection rate and error rates are reported (default: the
    second of two classes). Returns the ``audit.json`` dict: ``overall``, ``groups``,
    ``counterfactual``, ``robustness`` (each entry also has its ``markdown``).
    """
    import numpy as np

    from .fairness import group_metrics
    from .probes import _predict_texts, counterfactual_probe, robustness_scan

    texts = list(texts)
    if not texts:
        raise ValueError("no texts to audit; give the labelled test texts")
    classes = list(classes)
    say = progress or (lambda _msg: None)
    out: dict[str, Any] = {"n": len(texts), "classes": classes}
    if labels is not None:
        labels = [str(y) for y in labels]
        if len(labels) != len(texts):
            raise ValueError(f"{len(labels)} labels for {len(texts)} texts")
        unknown = sorted(set(labels) - {str(c) for c in classes})
        if unknown:
            raise ValueError(f"labels {unknown[:5]} are not classes of the model "
                             f"({classes}); audit it on data labelled with its classes")
        say("predicting")
        probs = _predict_texts(predict_proba, texts, 256)
        pred = [str(classes[i]) for i in np.asarray(probs).argmax(-1)]
        if positive is None and len(classes) == 2:
            positive = str(classes[1])
        out["overall"] = {"accuracy": float(np.mean([p == y for p, y in zip(pred, labels)]))}
        slices = {}
        sources = [(group_name, list(groups))] if groups is not None else \
            [(t.name, groups_in_texts(texts, t)) for t in lists]
        for name, column in sources:
            if len({g for g in column if g is not None}) < 2:
                continue  # fewer than two groups present: no comparison to make
            say(f"group metrics: {name}")
            report = group_metrics(labels, pred, column, positive=positive, n_boot=n_boot,
                                   seed=seed)
            slices[name] = _slices(report)
        out["groups"] = slices
    if probes:
        out["counterfactual"] = {}
        for t in lists:
            if not t.swappable:
                continue
            say(f"counterfactual probe: {t.name}")
            report = counterfactual_probe(predict_proba, texts, swap_transform(t),
                                          labels=classes, n_boot=n_boot, seed=seed)
            out["counterfactual"][t.name] = _probe(report)
    if robustness:
        say("robustness scan")
        report = robustness_scan(predict_proba, texts, seed=seed, labels=classes,
                                 n_boot=n_boot)
        out["robustness"] = robustness_entries(report)
        out["robustness_markdown"] = report.to_markdown()
    return out


def continuation_scorer(generate: Callable[[str], str],
                        score: Callable[[list[str]], Any]) -> Callable[[list[str]], Any]:
    """``predict_proba`` of a language model's continuations: each prompt is continued by
    ``generate`` (sample with a fixed seed, so a prompt and its counterfactual differ only by
    the swapped words) and ``score`` (a sentiment classifier's ``predict_proba``) reads the
    continuation. Counterfactual probes over it measure whether swapping identity terms in the
    prompt changes the sentiment of what the model writes."""

    def predict_proba(prompts: list[str]) -> Any:
        return score([generate(p) or " " for p in prompts])

    return predict_proba


def error_rates_by_group(references: Sequence[str], hypotheses: Sequence[str],
                         groups: Sequence[Any], *, n_boot: int = 1000, seed: int = 0,
                         alpha: float = 0.05) -> dict[str, Any]:
    r"""Word and character error rates of a recogniser per group of utterances (speaker, voice
    gender, ...), in the ``audit.json`` layout of :func:`audit_classifier`'s slices.

    A group's rate is corpus-level, as ``jiwer`` computes it over a list: the edit operations
    of all its utterances over all their reference words (characters),
    :math:`\mathrm{WER}_g = \sum_{u \in g} (S_u + D_u + I_u) / \sum_{u \in g} N_u`. Intervals:
    percentile bootstrap over the group's utterances (``n_boot`` resamples, seeded). The
    difference and ratio compare the worst and the best group. Utterances with an empty
    reference or group ``None`` are left out.

    >>> r = error_rates_by_group(["a b", "c d", "e f"], ["a b", "c x", "e f g"], ["m", "f", "f"],
    ...                          n_boot=0)
    >>> r["by_group"]["f"]["wer"], r["by_group"]["m"]["wer"], r["difference"]["wer"]
    (0.5, 0.0, 0.5)
    """
    import jiwer
    import numpy as np

    if not len(references) == len(hypotheses) == len(groups):
        raise ValueError(f"{len(references)} references, {len(hypotheses)} hypotheses and "
                         f"{len(groups)} groups: give one of each per utterance")
    counts: dict[Any, list[tuple[int, int, int, int]]] = {}
    for ref, hyp, g in zip(references, hypotheses, groups):
        if g is None or not str(ref).strip():
            continue
        w = jiwer.process_words(ref, hyp or "")
        c = jiwer.process_characters(ref, hyp or "")
        counts.setdefault(str(g), []).append((
            w.substitutions + w.deletions + w.insertions, w.substitutions + w.deletions + w.hits,
            c.substitutions + c.deletions + c.insertions, c.substitutions + c.deletions + c.hits))
    if len(counts) < 2:
        raise ValueError(f"error rates by group need at least two groups with transcripts, got "
                         f"{sorted(counts) or 'none'}")
    rng = np.random.default_rng(seed)
    by_group: dict[str, dict[str, Any]] = {}
    for g, rows in sorted(counts.items()):
        a = np.asarray(rows, dtype=np.float64)  # [n, 4]: word edits, words, char edits, chars
        row: dict[str, Any] = {"n": len(rows)}
        for k, name in ((0, "wer"), (2, "cer")):
            row[name] = float(a[:, k].sum() / max(a[:, k + 1].sum(), 1.0))
            if n_boot:
                idx = rng.integers(0, len(a), size=(n_boot, len(a)))
                boot = a[idx, k].sum(1) / np.maximum(a[idx, k + 1].sum(1), 1.0)
                row[f"{name}_ci"] = [float(np.quantile(boot, alpha / 2)),
                                     float(np.quantile(boot, 1 - alpha / 2))]
        by_group[g] = row
    every = np.asarray([r for rows in counts.values() for r in rows], dtype=np.float64)
    overall = {name: float(every[:, k].sum() / max(every[:, k + 1].sum(), 1.0))
               for k, name in ((0, "wer"), (2, "cer"))}
    difference, ratio = {}, {}
    for name in ("wer", "cer"):
        values = [r[name] for r in by_group.values()]
        difference[name] = max(values) - min(values)
        ratio[name] = min(values) / max(values) if max(values) > 0 else 1.0
    lines = ["| group | utterances | WER [95% CI] | CER [95% CI] |", "|---|--:|---|---|"]
    for g, r in by_group.items():
        cells = [f"{r[m]:.3f}" + (f" [{r[m + '_ci'][0]:.3f}, {r[m + '_ci'][1]:.3f}]"
                                  if f"{m}_ci" in r else "") for m in ("wer", "cer")]
        lines.append(f"| {g} | {r['n']} | {cells[0]} | {cells[1]} |")
    lines.append(f"| overall | {len(every)} | {overall['wer']:.3f} | {overall['cer']:.3f} |")
    lines.append(f"\nworst - best group: WER {difference['wer']:.3f}, CER "
                 f"{difference['cer']:.3f} (ratio best/worst: {ratio['wer']:.3f}, "
                 f"{ratio['cer']:.3f})")
    return {"by_group": by_group, "overall": overall, "difference": difference, "ratio": ratio,
            "markdown": "\n".join(lines)}
