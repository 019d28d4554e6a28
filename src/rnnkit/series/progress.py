"""What a :meth:`SeriesClassifier.fit <rnnkit.series.classifier.SeriesClassifier.fit>` has
finished, kept in a file so that an interrupted fit continues where it stopped.

A fit is a list of independent, seeded training runs ("units"): one per fold of every
candidate recipe's cross-validation (its held-out ``(accuracy, loss)`` per epoch and its
held-out probabilities ``[E, n_fold, K]``), then one per refit network (its ``state_dict``).
Each unit's result depends only on the data, the settings and its own seed, so a fit that
reloads the finished units and trains the rest gives the same networks, to the bit, as one
that was never stopped (tested), on the same rnnkit and torch and with the same number of
threads (another thread count may change float rounding, not the method). The file records
the rnnkit and torch versions and is refused by others, whose training may differ.

The whole file is rewritten after every unit. It holds the held-out probabilities of the
finished folds of the candidate in flight (``4 E n_fold K`` bytes each), those of every
finished candidate at its chosen epoch (``4 N K`` bytes), and the networks refit so far.

:class:`FitProgress` is :class:`rnnkit.train.resumable.FitProgress` with this file kind: it
writes the file atomically after every finished unit, stops the fit on Ctrl-C or SIGTERM after
the optimizer step in flight (the unit in flight is dropped) and refuses a file of other data or
settings with :class:`ProgressMismatch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..train.resumable import FitProgress as _FitProgress
from ..train.resumable import ProgressMismatch
from ..train.resumable import fingerprint as _fingerprint

__all__ = ["FitProgress", "ProgressMismatch", "fingerprint"]

KIND, VERSION = "rnnkit.series_classifier.progress", 1


class FitProgress(_FitProgress):
    """:class:`rnnkit.train.resumable.FitProgress` with files tagged as a series-classifier
    fit's (:data:`KIND`)."""

    def __init__(self, path: Any, config: dict[str, Any], data: str) -> None:
        super().__init__(path, config, data, KIND, VERSION)


def fingerprint(series: Sequence[Tensor], labels: Sequence[str]) -> str:
    """sha256 of the series (shapes and float32 values) and their labels, in order."""
    return _fingerprint(([list(s.shape), y], [s.detach().to(torch.float32).numpy()])
                        for s, y in zip(series, labels))
