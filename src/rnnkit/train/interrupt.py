"""Graceful stops on Ctrl-C and ``kill``: finish the step in flight, save, say how to resume.

While :class:`StopSignals` is active (the :class:`~rnnkit.train.Trainer` holds it during
``fit``), SIGINT and SIGTERM only set :attr:`StopSignals.received`; the trainer checks it after
every optimizer step, writes ``last.pt`` atomically and raises :class:`TrainingInterrupted`.
A second Ctrl-C raises :class:`KeyboardInterrupt` at once (the user insists). Outside the main
thread signal handlers cannot be installed, so there the context does nothing.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

__all__ = ["StopSignals", "TrainingInterrupted"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal after finishing a step.

    Attributes:
        step: optimizer steps done (the step ``last.pt`` holds).
        checkpoint: the ``last.pt`` written, or ``None`` when the run has no ``out_dir``.
        signal_name: ``"SIGINT"`` or ``"SIGTERM"``.
    """

    def __init__(self, step: int, checkpoint: str | None, signal_name: str) -> None:
        self.step, self.checkpoint, self.signal_name = step, checkpoint, signal_name
        where = f"saved {checkpoint}" if checkpoint else "nothing saved (no out_dir)"
        super().__init__(f"{signal_name}: interrupted at step {step}; {where}")


class StopSignals:
    """Context manager turning SIGINT/SIGTERM into a flag (:attr:`received`: the signal's
    name, or ``None``); restores the previous handlers on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without saving
        self.received = signal.Signals(signum).name

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()
