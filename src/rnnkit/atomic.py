"""Atomic file writes: a reader sees the old file or the new one, never a torn one.

The one writer every rnnkit file goes through (models, checkpoints, tokenizers, scores, ONNX
descriptions); plain Python, so torch-free code (:mod:`rnnkit.music.score`,
:mod:`rnnkit.onnx`) uses it too. :mod:`rnnkit.saving` re-exports both names.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
>>> atomic_write_text("hello", path); open(path).read()
'hello'
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Container
from typing import Any

__all__ = ["atomic_write_bytes", "atomic_write_text", "merge_json"]

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, flushed to
    disk, then ``os.replace`` (readers see the old file or the new one, never a torn one)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(text.encode("utf-8"), path)


def _no_nan(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {k: _no_nan(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_no_nan(x) for x in v]
    return v


def merge_json(path: str | os.PathLike, updates: dict[str, Any],
               nested: bool | Container[str] = False) -> dict[str, Any]:
    """Merge ``updates`` into the JSON object at ``path`` (created when missing) and write it
    back atomically: each key replaces the file's, except that a dict under a key in
    ``nested`` (or under any key, ``nested=True``) updates the file's dict one level down,
    so runs that each measured part of a table (other models, other series) add to it. NaN
    is written as ``null`` (valid JSON). Returns the merged object.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "r.json")
    >>> _ = merge_json(path, {"a": {"x": 1}, "b": 1})
    >>> merge_json(path, {"a": {"y": float("nan")}, "b": 2}, nested=True)
    {'a': {'x': 1, 'y': None}, 'b': 2}
    >>> merge_json(path, {"a": {"z": 3}})
    {'a': {'z': 3}, 'b': 2}
    """
    merged: dict[str, Any] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            merged = json.load(f)
    for key, value in _no_nan(updates).items():
        if ((nested is True or (nested and key in nested)) and isinstance(value, dict)
                and isinstance(merged.get(key), dict)):
            merged[key].update(value)
        else:
            merged[key] = value
    atomic_write_text(json.dumps(merged, indent=1, sort_keys=True, default=float), path)
    return merged
