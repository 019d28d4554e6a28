"""Per-request warning capture for the playground, safe when requests run side by side.

The library reports recoverable trouble (unknown words, clipped audio, ...) with Python
warnings, and a response lists those its request raised (``warnings``). The server answers
requests from a thread pool, and :func:`warnings.catch_warnings` swaps process-wide state (the
filter list, ``showwarning`` and the function that records): two requests using it at once see
each other's warnings, and whichever leaves last restores a stale state (a recorder list that
swallows every later warning). So :func:`collected_warnings` does not use it:

* each request's list lives in a :class:`contextvars.ContextVar` (a worker thread's own
  context), so a warning lands in the list of the request whose code raised it;
* one hook, :func:`_hook`, replaces ``warnings._showwarnmsg`` (the function every shown
  warning passes through, which ``catch_warnings`` itself never swaps) while at least one
  request collects (a count, under a lock). A warning raised by a request's code goes to that
  request's list even while some other thread's ``catch_warnings(record=True)`` (e.g.
  ``load_audio``'s) is recording; any other warning goes on as before;
* while installed, ``warnings.defaultaction`` is ``"always"``, so a warning that an earlier
  request (or the start-up) already raised is reported again to every request that raises it;
  filters the user set (``-W``, ``PYTHONWARNINGS``) still apply first. Warnings raised outside
  any request meanwhile go on to the usual handler, each distinct one once (the default
  action);
* when the last request ends, the process's state is put back exactly as found (the hook,
  ``defaultaction``, and ``showwarning`` / ``_showwarnmsg_impl`` too, over whatever two
  overlapping third-party ``catch_warnings`` blocks may have left); the filter list is never
  touched.

Library calls that use ``catch_warnings`` themselves (``load_audio``, matplotlib's suppression
of its deprecations) run under :data:`STATE_LOCK`, one at a time, so they do not undo each
other. (A ``catch_warnings(record=True)`` inside a request records nothing: its warnings go
to the request.)
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

__all__ = ["STATE_LOCK", "collected_warnings"]

#: held around library calls that swap process-wide state themselves (pyplot's figures and
#: rcParams, ``load_audio``'s ``catch_warnings``): such calls run one at a time
STATE_LOCK = threading.RLock()

_CURRENT: ContextVar[list[str] | None] = ContextVar("rnnkit_serve_warnings", default=None)
_INSTALL_LOCK = threading.Lock()
#: how many requests are collecting now, and the process's warning state saved at install
_STATE: dict[str, Any] = {"users": 0, "saved": {}}
#: warnings raised outside requests while the hook is installed, already passed on
_SHOWN: set[tuple[Any, ...]] = set()
_MAX_SHOWN = 1000


def _hook(msg: warnings.WarningMessage) -> None:
    """``warnings._showwarnmsg`` while requests collect: into the current request's list, or
    (outside any request) on to the usual handler, once per distinct warning."""
    notes = _CURRENT.get()
    if notes is not None:
        notes.append(str(msg.message))
        return
    key = (str(msg.message), msg.category, msg.filename, msg.lineno)
    if key in _SHOWN:
        return
    if len(_SHOWN) >= _MAX_SHOWN:
        _SHOWN.clear()
    _SHOWN.add(key)
    _STATE["saved"]["showwarnmsg"](msg)


def _install() -> None:
    with _INSTALL_LOCK:
        _STATE["users"] += 1
        if _STATE["users"] > 1:
            return
        _STATE["saved"] = {"showwarnmsg": warnings._showwarnmsg,  # type: ignore[attr-defined]
                           "showwarning": warnings.showwarning,
                           "impl": warnings._showwarnmsg_impl,  # type: ignore[attr-defined]
                           "defaultaction": warnings.defaultaction}
        warnings._showwarnmsg = _hook  # type: ignore[attr-defined]
        warnings.defaultaction = "always"
        warnings._filters_mutated()  # type: ignore[attr-defined] # forget "already shown"


def _uninstall() -> None:
    with _INSTALL_LOCK:
        _STATE["users"] -= 1
        if _STATE["users"] > 0:
            return
        saved = _STATE["saved"]
        # no request runs now: put back the state found at install, also over whatever an
        # overlap of third-party catch_warnings blocks may have left
        warnings._showwarnmsg = saved["showwarnmsg"]  # type: ignore[attr-defined]
        warnings.showwarning = saved["showwarning"]
        warnings._showwarnmsg_impl = saved["impl"]  # type: ignore[attr-defined]
        warnings.defaultaction = saved["defaultaction"]
        warnings._filters_mutated()  # type: ignore[attr-defined]


@contextlib.contextmanager
def collected_warnings() -> Iterator[list[str]]:
    """Collect the warnings raised by this thread's code in the block; the yielded list is
    filled, distinct messages in order, when the block ends (also when it raises).

    >>> import warnings
    >>> with collected_warnings() as notes:
    ...     warnings.warn("the text is mostly unknown words")
    ...     warnings.warn("the text is mostly unknown words")
    >>> notes
    ['the text is mostly unknown words']
    """
    out: list[str] = []
    raw: list[str] = []
    token = _CURRENT.set(raw)
    _install()
    try:
        yield out
    finally:
        _uninstall()
        _CURRENT.reset(token)
        out.extend(dict.fromkeys(raw))
