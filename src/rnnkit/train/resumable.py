"""The finished units of a fit that is a list of independent, seeded pieces of training, kept
in a file so that an interrupted fit continues where it stopped.

A unit is one piece whose result depends only on the data, the settings and its own seed: a
fold of a cross-validation, one network of an ensemble, one member of a forecast combination.
A fit that reloads the finished units and trains the rest gives the same result, to the bit,
as one that was never stopped, on the same rnnkit and torch and with the same number of threads
(another thread count may change float rounding, not the method). The file records the rnnkit
and torch versions and is refused by others, whose training may differ. A unit may also keep
the state of its own loop under a key of its choosing (the ES-RNN does, so that a stop in the
middle of its training loses nothing; :mod:`rnnkit.forecast.esrnn`).

:class:`FitProgress` writes the file atomically (the whole file, after every :meth:`~FitProgress.
put`). While a fit with a progress file runs, Ctrl-C or SIGTERM only set a flag; the fit checks
it after every optimizer step (:meth:`~FitProgress.check`, :meth:`~FitProgress.requested`), saves
what it has and raises :class:`Stopped`, which :meth:`~FitProgress.interrupted` turns into
:class:`~rnnkit.train.TrainingInterrupted` saying what was kept. The file records a fingerprint
of the data and the settings: a fit given other data or other settings refuses it with
:class:`ProgressMismatch`, naming what changed, rather than mix two runs. Each user of the class
tags its files with a kind of its own (``rnnkit.series_classifier.progress``,
``rnnkit.forecast.progress``), so one fit never reads another's.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from ..saving import read_state, write_state
from .interrupt import StopSignals, TrainingInterrupted

__all__ = ["FitProgress", "ProgressMismatch", "Stopped", "fingerprint"]


class ProgressMismatch(ValueError):
    """A progress file written by a fit of other data or other settings.

    Attributes:
        path: the file.
        changed: setting name -> ``(value in the file, value now)``.
        data_changed: the data differ (other series, values or labels).
        runtime: ``"rnnkit"`` / ``"torch"`` -> ``(version in the file, version now)``, for
            those that differ.
    """

    def __init__(self, path: str, changed: dict[str, tuple[Any, Any]], data_changed: bool,
                 runtime: dict[str, tuple[Any, Any]] | None = None) -> None:
        self.path, self.changed, self.data_changed = path, changed, data_changed
        self.runtime = runtime or {}
        what = [f"{k} was {old!r}, now {new!r}" for k, (old, new) in changed.items()]
        what += ["the data differ (other series, values or labels)"] if data_changed else []
        what += [f"written by {k} {old}, this is {new}" for k, (old, new) in
                 self.runtime.items()]
        super().__init__(f"{path} holds the progress of another fit ({'; '.join(what)}); fit "
                         f"again with the same data and settings to continue it, or delete the "
                         f"file to start over")


def runtime() -> dict[str, str]:
    """The versions whose training a progress file is bound to."""
    from .. import __version__

    return {"rnnkit": str(__version__), "torch": str(torch.__version__)}


def fingerprint(items: Iterable[tuple[Any, Sequence[np.ndarray]]]) -> str:
    """sha256 of a fit's data: for each item, its JSON label (names, shapes, times) and the bytes
    of its arrays in their own dtype (the caller picks the precision that matters), in order."""
    h = hashlib.sha256()
    for label, arrays in items:
        h.update(json.dumps(label, default=str).encode())
        for a in arrays:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class Stopped(Exception):
    """Raised inside a unit when a stop signal came; :meth:`FitProgress.interrupted` turns it
    into :class:`~rnnkit.train.TrainingInterrupted` once the finished units are saved."""


class FitProgress:
    """The finished units of one fit, by key, mirrored to ``path`` (``None``: kept in memory
    only, and signals are not caught).

    Use as a context manager around the fit: inside it, SIGINT/SIGTERM set a flag that
    :meth:`check` (called after every optimizer step) turns into a stop.
    """

    def __init__(self, path: str | os.PathLike | None, config: dict[str, Any],
                 data: str, kind: str, version: int = 1) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.kind, self.version = kind, version
        self.config, self.data = dict(config), data
        self.units: dict[str, Any] = {}
        self.resumed = 0  # units read from the file
        self._signals: StopSignals | None = None
        self.received: str | None = None  # the signal that stopped the fit
        if self.path is not None and os.path.exists(self.path):
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        blob = read_state(self.path, self.kind, version=self.version)
        try:
            config, data, units = dict(blob["config"]), str(blob["data"]), dict(blob["units"])
            versions = dict(blob["runtime"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{self.path} is a damaged progress file (its config, data or "
                             f"units are missing); delete it to start the fit over") from None
        changed = {k: (config.get(k), v) for k, v in self.config.items() if config.get(k) != v}
        now = runtime()
        moved = {k: (versions.get(k), v) for k, v in now.items() if versions.get(k) != v}
        if changed or data != self.data or moved:
            raise ProgressMismatch(self.path, changed, data != self.data, moved)
        self.units, self.resumed = units, len(units)

    def __enter__(self) -> FitProgress:
        if self.path is not None:
            self._signals = StopSignals().__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._signals is not None:
            self._signals.__exit__(*exc)
            self._signals = None

    def get(self, key: str) -> Any:
        """The result of a finished unit, or ``None``."""
        return self.units.get(key)

    def put(self, key: str, value: Any) -> None:
        """Record a finished unit (and write the file), then stop if a signal came (count the
        unit as done before: it is saved)."""
        self.units[key] = value
        if self.path is not None:
            write_state({"config": self.config, "data": self.data, "units": self.units,
                         "runtime": runtime()}, self.path, self.kind, self.version)
        self.check()

    def drop(self, keys: Sequence[str]) -> None:
        """Forget units whose result now lives in a larger one (a candidate's folds, once its
        cross-validation is summarised); written with the next :meth:`put`."""
        for k in keys:
            self.units.pop(k, None)

    def requested(self) -> bool:
        """Whether SIGINT or SIGTERM came (the caller saves its state, then :meth:`check`)."""
        return self._signals is not None and self._signals.received is not None

    def check(self) -> None:
        """Raise :class:`Stopped` when SIGINT or SIGTERM came."""
        if self._signals is not None and self._signals.received:
            self.received = self._signals.received
            raise Stopped

    def finished(self) -> int:
        """Training runs saved: a unit holds one, a summary of folds (``"runs"``) several."""
        return sum(int(v.get("runs", 1)) if isinstance(v, dict) else 1
                   for v in self.units.values())

    def interrupted(self, total: int | None = None) -> TrainingInterrupted:
        """The error to raise after :class:`Stopped` (or a second Ctrl-C): ``step`` is the
        finished units saved; the message counts them ``of up to total`` training runs, or
        (``total`` ``None``) names the units that kept their own loop (``"KEY#loop"``)."""
        assert self.path is not None
        self.received = self.received or "SIGINT"
        saved = self.path if os.path.exists(self.path) else None  # none finished: no file
        if total is not None:
            done = self.finished()
            what = (f"interrupted with {done} of up to {total} training runs of the fit "
                    f"finished; " + (f"they are saved in {saved}" if saved else "nothing saved"))
        else:
            done = sum(1 for k in self.units if "#" not in k)
            flight = [k.split("#")[0] for k in self.units if k.endswith("#loop")]
            loops = f" and the training loop of {', '.join(flight)}" if flight else ""
            what = ("interrupted; " + (f"{done} finished part(s) of the fit{loops} saved in "
                                       f"{saved}" if saved else
                                       "nothing finished yet, nothing saved"))
        err = TrainingInterrupted(done, saved, self.received)
        err.args = (f"{self.received}: {what}",)
        return err
