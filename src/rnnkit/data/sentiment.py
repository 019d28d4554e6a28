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
import warnings
from collections.abc import Sequence

__all__ = ["DEFAULT_ROOT", "HEADER_WORDS", "load_labelled_text", "load_rt_polarity",
           "read_tsv_columns", "stratified_folds", "stratified_split"]

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


def read_tsv_columns(path: str, layout: tuple[str, str]) -> list[tuple[int, str, str]]:
    """The non-blank lines of a two-column ``A<TAB>B`` file (UTF-8, else Latin-1) as
    ``(line number, a, b)``, stripped. ``layout`` names the columns (``("label", "text")``)
    for the errors: a line without a TAB, with an empty column or with more than one TAB
    (extra columns) is a ValueError naming its line number and the expected layout."""
    from .text import load_lines  # empty / binary files, UTF-8 with a Latin-1 fallback

    expected = f"'{layout[0]}<TAB>{layout[1]}'"
    rows = []
    for n, line in enumerate(load_lines(path), 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) > 2:
            raise ValueError(f"{path}:{n}: {len(cols)} tab-separated columns, expected 2 "
                             f"({expected}); remove the extra columns or the tabs inside the "
                             f"{layout[1]}")
        if len(cols) < 2 or not cols[0].strip() or not cols[1].strip():
            raise ValueError(f"{path}:{n}: expected {expected}, got {line[:60]!r}")
        rows.append((n, cols[0].strip(), cols[1].strip()))
    return rows


#: first-line words that make a ``label<TAB>text`` line a header (matched lower-cased)
HEADER_WORDS = frozenset({
    "label", "labels", "class", "category", "sentiment", "polarity", "target", "y", "tag",
    "topic", "intent", "text", "texts", "sentence", "review", "document", "content", "comment",
    "tweet", "message", "body", "title", "x", "utterance", "phrase"})


def load_labelled_text(path: str) -> tuple[list[str], list[str]]:
    """Read ``label<TAB>text`` lines (UTF-8, else Latin-1; blank lines skipped) ->
    ``(texts, labels)``.

    A header line is skipped with a :class:`UserWarning`: a first line whose label occurs
    nowhere else and one of whose columns is a column name (:data:`HEADER_WORDS`, e.g.
    ``label<TAB>text``, ``sentiment<TAB>review``). Columns that look swapped
    (``text<TAB>label``: most labels are several words, or over 20 lines with more distinct
    labels than half the lines) and lines with more than 2 columns are ValueErrors.

    A folder holding ``rt-polarity.pos`` / ``.neg`` is read as the polarity data set with
    labels ``"pos"`` / ``"neg"``.
    """
    if os.path.isdir(path):
        texts, ids = load_rt_polarity(path)
        return texts, ["pos" if i == 1 else "neg" for i in ids]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: give a label<TAB>text file or a folder "
                                f"with rt-polarity.pos / .neg")
    rows = read_tsv_columns(path, ("label", "text"))
    labels = [label for _, label, _ in rows]
    if len(rows) > 2 and labels.count(labels[0]) == 1 and \
            {labels[0].lower(), rows[0][2].lower()} & HEADER_WORDS:
        n, label, text = rows.pop(0)
        labels.pop(0)
        warnings.warn(f"{path}:{n}: skipped the header line '{label}<TAB>{text}'",
                      stacklevel=2)
    texts = [text for _, _, text in rows]
    wordy = sum(len(label.split()) > 1 for label in labels)
    distinct = len(set(labels))
    if wordy > len(labels) / 2 or (len(labels) > 20 and distinct > len(labels) / 2):
        raise ValueError(f"{path}: {distinct} distinct labels in {len(labels)} lines (first: "
                         f"{labels[0][:40]!r}); the columns look swapped: each line must be "
                         f"'label<TAB>text', the label first; swap the two columns")
    if distinct < 2:
        raise ValueError(f"{path} has {distinct} distinct label(s); a classifier "
                         f"needs at least 2")
    return texts, labels
