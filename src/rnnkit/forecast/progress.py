"""Forecast fits that survive Ctrl-C: the ES-RNN's training loop and a combination's members
kept in a progress file (:class:`~rnnkit.train.resumable.FitProgress`, kind
``rnnkit.forecast.progress``).

What is kept, by key (``prefix`` is ``key/`` of a combination nested in another, e.g. the seeds
of an ES-RNN ensemble inside ``--model comb``; empty for the outermost fit):

* ``{prefix}val/{member}``: a combination member's per-series validation MASE;
* ``{prefix}val/{member}/w{k}`` and ``{prefix}fit/{member}``: a member fitted for validation
  window ``k`` or on all the data (its saved state, so a resumed fit reloads it);
* ``{key}#loop``: an ES-RNN stopped in the middle of its training (weights, optimizer, random
  generators, validation curve; :meth:`rnnkit.forecast.esrnn.ESRNN.fit`).

A fit given a path (``fit(..., progress="run.progress")``) opens the file, continues from it
when it exists (the same data and settings, else
:class:`~rnnkit.train.resumable.ProgressMismatch`), and on SIGINT or SIGTERM finishes the step in
flight, saves, and raises :class:`~rnnkit.train.TrainingInterrupted` naming the file. Calling
the same fit again with the same file continues it and gives the same model, to the bit, as a
fit that was never stopped (same machine, rnnkit, torch and thread count). A signal that comes
after the last training step lets the fit finish and return. The file is the caller's to
delete once the model is saved (``rnnkit forecast train`` does).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..data.timeseries import Series
from ..train.resumable import FitProgress, Stopped, fingerprint

__all__ = ["KIND", "fitting", "series_fingerprint"]

KIND, VERSION = "rnnkit.forecast.progress", 1


def series_fingerprint(series: Sequence[Series]) -> str:
    """sha256 of the series in order: names, frequency, time stamps, and the float64 values of
    targets and covariates with their column names."""
    def item(s: Series) -> tuple[list, list[np.ndarray]]:
        arrays = [np.asarray(v, dtype=np.float64) for v in (s.target, s.past, s.future)]
        return ([s.name, s.freq, [str(t) for t in s.time], list(s.target_names),
                 list(s.past_names), list(s.future_names), [a.shape for a in arrays]], arrays)

    return fingerprint(item(s) for s in series)


@contextlib.contextmanager
def fitting(progress: str | os.PathLike | FitProgress | None, config: dict[str, Any],
            series: Sequence[Series]) -> Iterator[FitProgress | None]:
    """The progress a fit writes to: ``None`` (none), a :class:`FitProgress` given by an outer
    fit (used as it is; the outer fit reports a stop), or a path: a progress of this fit's
    ``config`` and ``series``, entered here, whose stop raises
    :class:`~rnnkit.train.TrainingInterrupted`."""
    if progress is None or isinstance(progress, FitProgress):
        yield progress
        return
    config = json.loads(json.dumps(config, default=str))  # as the file will hold it
    run = FitProgress(progress, config, series_fingerprint(series), KIND, VERSION)
    try:
        with run:
            yield run
    except (Stopped, KeyboardInterrupt):  # KeyboardInterrupt: a second Ctrl-C
        raise run.interrupted() from None
