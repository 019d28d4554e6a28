"""Movie-review sentence polarity (Pang & Lee, 2005, "sentence polarity dataset v1.0").

Two Latin-1 files of pre-tokenised, lower-cased sentences, one per line: ``rt-polarity.pos``
and ``rt-polarity.neg`` (5,331 each). The project keeps them in ``../shared/data`` (relative to
the project root). There is no official split; the literature reports 10-fold cross-validation
(Kim, 2014: CNN-rand 76.1%, CNN-non-static 81.5%). :func:`stratified_split` gives a fixed,
seeded, class-balanced split and :func:`stratified_folds` the folds.

>>> texts, labels = ["good", "fine", "bad", "awful"], [1, 1, 0, 0]
>>> train, test = stratified_split(labels, test_fraction=0.5, seed=0)
>>> sorted(labels[i] for i in test)
[0, 1]
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence

__all__ = ["DEFAULT_ROOT", "load_labelled_text", "load_rt_polarity", "stratified_folds",
           "stratified_split"]

DEFAULT_ROOT = os.path.join("..", "shared", "data")


def load_rt_polarity(root: str = DEFAULT_ROOT) -> tuple[list[str], list[int]]:
    """Sentences and labels (1 = positive, 0 = negative), positives first."""
    texts: list[str] = []
    labels: list[int] = []
    for name, label in (("rt-polarity.pos", 1), ("rt-polarity.neg", 0)):
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} not found: the movie-review polarity data (rt-polarity.pos / .neg, "
                f"Pang & Lee 2005) is expected in {root}; pass its folder as root")
        with open(path, encoding="latin-1") as f:
            lines = [line.strip() for line in f]
        lines = [line for line in lines if line]
        if not lines:
            raise ValueError(f"{path} holds no sentences; is the file truncated?")
        texts += lines
        labels += [label] * len(lines)
    return texts, labels


def stratified_folds(labels: Sequence[int], k: int = 10, seed: int = 0) -> list[list[int]]:
    """Split indices into ``k`` folds with the class balance of ``labels`` (seeded)."""
    if k < 2:
        raise ValueError(f"need at least 2 folds, got k={k}")
    rng = random.Random(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    for c in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == c]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            folds[j % k].append(i)
    return [sorted(f) for f in folds]


def stratified_split(labels: Sequence[int], test_fraction: float = 0.1,
                     seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices ``(train, test)`` with ``test_fraction`` of every class in ``test``."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    rng = random.Random(seed)
    train: list[int] = []
    test: list[int] = []
    for c in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == c]
        rng.shuffle(idx)
        n = max(1, round(len(idx) * test_fraction))
        test += idx[:n]
        train += idx[n:]
    return sorted(train), sorted(test)


def load_labelled_text(path: str) -> tuple[list[str], list[str]]:
    """Read ``label<TAB>text`` lines (UTF-8, else Latin-1; blank lines skipped) ->
    ``(texts, labels)``.

    A folder holding ``rt-polarity.pos`` / ``.neg`` is read as the polarity data set with
    labels ``"pos"`` / ``"neg"``.
    """
    if os.path.isdir(path):
        texts, ids = load_rt_polarity(path)
        return texts, ["pos" if i == 1 else "neg" for i in ids]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: give a label<TAB>text file or a folder "
                                f"with rt-polarity.pos / .neg")
    from .text import load_lines  # empty / binary files, UTF-8 with a Latin-1 fallback

    texts, labels = [], []
    for n, line in enumerate(load_lines(path), 1):
        if not line.strip():
            continue
        label, sep, text = line.partition("\t")
        if not sep or not text.strip() or not label.strip():
            raise ValueError(f"{path}:{n}: expected 'label<TAB>text', got {line[:60]!r}")
        labels.append(label.strip())
        texts.append(text.strip())
    if len(set(labels)) < 2:
        raise ValueError(f"{path} has {len(set(labels))} distinct label(s); a classifier "
                         f"needs at least 2")
    return texts, labels
