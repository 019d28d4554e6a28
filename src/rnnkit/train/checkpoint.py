"""Checkpoints that load with ``torch.load(weights_only=True)`` and resume exactly.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (nothing that needs
pickle to run code on load). Besides the model, optimizer and scheduler it stores everything a
run needs to continue as if never stopped: the random-number-generator states (Python, NumPy,
torch, CUDA; at the checkpoint and at the start of its epoch, to replay the data order), the
position in the data (epoch and batches done in it) and the recurrent state carried between
truncated-BPTT chunks. Writes go through rnnkit's one atomic writer (:mod:`rnnkit.saving`), so
a crash never leaves a half-written ``last.pt``; :func:`rnnkit.load` rebuilds the application a
checkpoint was written for (its ``extra_state["task"]``).

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
>>> save_checkpoint({"format": FORMAT, "model": {"w": torch.ones(2)}, "step": 3}, path)
>>> load_checkpoint(path)["step"]
3
"""

from __future__ import annotations

import importlib
import io
import os
import random
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..saving import atomic_write_bytes, read_torch_file, wrong_file_hint

__all__ = [
    "FORMAT",
    "atomic_write_bytes",
    "decode_tree",
    "encode_tree",
    "get_rng_state",
    "load_checkpoint",
    "task_state",
    "read_torch_file",
    "save_checkpoint",
    "set_rng_state",
]

FORMAT = "rnnkit.train/1"
REQUIRED = ("format", "model")


def save_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``checkpoint`` to ``path`` atomically (the one writer,
    :func:`rnnkit.saving.atomic_write_bytes`)."""
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    atomic_write_bytes(buf.getvalue(), path)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by the trainer, safely (``weights_only=True``).

    Returns a dict with ``model`` (state dict), ``optimizer``, ``scheduler``, ``config`` (the
    :class:`~rnnkit.train.TrainConfig` fields), ``extra_state`` (what the application saved,
    e.g. its model config and vocabulary), ``step``, ``epoch``, ``metrics`` and the
    resume-only entries (RNG states, data position).
    """
    path = os.fspath(path)
    ckpt = read_torch_file(path, map_location, "the trainer writes last.pt and best.pt into "
                                               "its out_dir")
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED):
        hint = wrong_file_hint(ckpt, path)
        raise ValueError(f"{path!r} is not an rnnkit trainer checkpoint{hint}" + (
            "" if hint else f" (expected a dict with keys {', '.join(REQUIRED)}); give the "
            f"best.pt or last.pt of a training run"))
    if ckpt["format"] != FORMAT:
        raise ValueError(f"{path!r} has checkpoint format {ckpt['format']!r}, this rnnkit "
                         f"reads {FORMAT!r}; load it with the rnnkit version that wrote it")
    return ckpt


def task_state(checkpoint: dict[str, Any], task: str, what: str, command: str,
               where: str = "this checkpoint") -> dict[str, Any]:
    """The application's ``extra_state`` of a trainer checkpoint written for ``task``; another
    task raises an error naming what the checkpoint is and the ``command`` that trains a
    ``what``."""
    extra = checkpoint.get("extra_state") if isinstance(checkpoint, dict) else None
    extra = extra if isinstance(extra, dict) else {}
    if extra.get("task") != task:
        raise ValueError(f"{where} is not a {what} checkpoint (task {extra.get('task')!r}); "
                         f"train one with `{command}`")
    return extra


# -- random number generators -------------------------------------------------------------
def get_rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) RNG states, as tensors and primitives only.

    ``generator``: a data loader's own ``torch.Generator``, saved alongside.
    """
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(mt), gauss],
        "numpy": [kind, torch.from_numpy(np.asarray(keys).astype(np.int64)), int(pos),
                  int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": generator.get_state() if generator is not None else None,
    }
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore what :func:`get_rng_state` returned."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and state.get("generator") is not None:
        generator.set_state(state["generator"])


# -- recurrent state (tensors, tuples, named tuples) ---------------------------------------
def encode_tree(obj: Any) -> Any:
    """Make a (nested) state storable with ``weights_only=True``: named tuples become
    ``{"__namedtuple__": "module:Name", "fields": [...]}`` and tuples ``{"__tuple__": [...]}``.

    >>> from rnnkit.cells import LSTMState
    >>> s = LSTMState(torch.zeros(1), torch.ones(1))
    >>> type(decode_tree(encode_tree(s))).__name__
    'LSTMState'
    """
    if obj is None or isinstance(obj, (Tensor, int, float, str, bool)):
        return obj.detach().cpu() if isinstance(obj, Tensor) else obj
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        cls = type(obj)
        return {"__namedtuple__": f"{cls.__module__}:{cls.__qualname__}",
                "fields": [encode_tree(v) for v in obj]}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode_tree(v) for v in obj]}
    if isinstance(obj, list):
        return [encode_tree(v) for v in obj]
    if isinstance(obj, dict):
        return {k: encode_tree(v) for k, v in obj.items()}
    raise TypeError(f"cannot store a recurrent state containing {type(obj).__name__}; "
                    f"return tensors, tuples, lists or dicts of tensors as the model's state")


def decode_tree(obj: Any, device: Any = None) -> Any:
    """Inverse of :func:`encode_tree`, moving tensors to ``device``."""
    if isinstance(obj, Tensor):
        return obj.to(device) if device is not None else obj
    if isinstance(obj, list):
        return [decode_tree(v, device) for v in obj]
    if isinstance(obj, dict):
        if "__tuple__" in obj:
            return tuple(decode_tree(v, device) for v in obj["__tuple__"])
        if "__namedtuple__" in obj:
            module, _, name = obj["__namedtuple__"].partition(":")
            cls: Any = importlib.import_module(module)
            for part in name.split("."):
                cls = getattr(cls, part)
            if not (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")):
                raise ValueError(f"checkpoint state names {obj['__namedtuple__']!r}, which is "
                                 f"not a named tuple; the checkpoint is corrupt")
            return cls(*(decode_tree(v, device) for v in obj["fields"]))
        return {k: decode_tree(v, device) for k, v in obj.items()}
    return obj
