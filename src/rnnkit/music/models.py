r"""The music models, and what they share: persistence and input checks.

Three models, each in its own module, all built on :class:`~rnnkit.Recurrent` (so any
registered cell, ``rnnkit.available_cells()``, runs them) and all task models for the
:class:`~rnnkit.train.Trainer` (``loss(batch, state=None) -> LossOutput``):

* :class:`~rnnkit.music.frames.FrameModel`: polyphonic piano-roll frames ``[B, T, P]`` (multi-hot
  over ``P`` pitches), one independent Bernoulli per pitch of the next frame
  (Boulanger-Lewandowski et al., 2012, the RNN baseline);
* :class:`~rnnkit.music.events.EventModel`: a language model over Performance-RNN event
  tokens ``[B, T]`` (Oore et al., 2018), ``PAD = 0``, ``BOS = 1``, ``EOS = 2``;
* :class:`~rnnkit.music.harmonizer.Harmonizer`: four-part harmonisation: alto, tenor and bass
  voice tokens ``[B, T, 3]`` from the soprano ``[B, T]`` (a bidirectional encoder and an
  autoregressive decoder over frames, as in DeepBach's and BachBot's set-ups).

Each saves itself as a tagged rnnkit file (``rnnkit.music_frames``, ``rnnkit.music_events``,
``rnnkit.music_harmonizer``): ``rnnkit.save(model, path)`` and ``rnnkit.load(path)``, or
``model.save(path)`` and ``FrameModel.load(path)``. The file holds the config and the weights
(``{"config": {...}, "state_dict": {...}}``); :meth:`MusicModel.from_state` also rebuilds a
model from a trainer checkpoint written with ``extra_state=model.extra_state()``.

The models are importable from here too (``from rnnkit.music.models import FrameModel``).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..saving import ConfigModel

#: where each model lives (imported on first use, so one model does not import the others)
_LAZY = {"FrameModel": "frames", "FrameModelConfig": "frames", "EventModel": "events",
         "EventModelConfig": "events", "Harmonizer": "harmonizer",
         "HarmonizerConfig": "harmonizer"}

__all__ = sorted(["MusicModel", *_LAZY])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__package__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class MusicModel(ConfigModel, nn.Module):
    """Base of the music models: save/load (:class:`~rnnkit.saving.ConfigModel`) and small
    helpers. A subclass sets ``KIND`` (the file kind), ``TASK`` (its name in a trainer
    checkpoint's ``extra_state``), ``CONFIG`` (its config dataclass) and takes the config as
    its only constructor argument."""

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    TASK: ClassVar[str] = ""
    CONFIG: ClassVar[type] = object

    config: Any

    # -- helpers -----------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the parameters are."""
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The floating-point type of the parameters."""
        return next(self.parameters()).dtype

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode (no dropout) and no autograd inside; the previous mode is restored."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)


# -- input checks (one message form for every model) ---------------------------------------------
def shape_of(x: Any) -> str:
    return str(list(x.shape)) if isinstance(x, Tensor) else type(x).__name__


def check_lengths(lengths: Any, B: int, T: int, minimum: int = 1,
                  unit: str = "frames") -> Tensor:
    """``lengths [B]`` as a CPU int64 tensor with values in ``[minimum, T]``; ``None`` means
    every sequence is ``T`` long."""
    if lengths is None:
        if T < minimum:
            raise ValueError(f"the sequences have {T} {unit}; at least {minimum} are needed")
        return torch.full((B,), T, dtype=torch.long)
    lengths = torch.as_tensor(lengths).detach().to("cpu")
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must be integers (one per sequence, counting {unit}), got "
                        f"{lengths.dtype}")
    if lengths.dim() != 1 or lengths.shape[0] != B:
        raise ValueError(f"lengths must have shape [{B}] (one per sequence), got "
                         f"{list(lengths.shape)}")
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < minimum or hi > T:
        raise ValueError(f"lengths count {unit} and must lie in [{minimum}, {T}] (the padded "
                         f"length), got values from {lo} to {hi}"
                         + (f"; drop sequences shorter than {minimum} {unit}"
                            if lo < minimum else ""))
    return lengths.long()


def check_features(features: Any, n_features: int, B: int, T: int, dtype: torch.dtype,
                   device: torch.device) -> Tensor | None:
    """Per-frame features ``[B, T, F]`` (``F = n_features``), floating point and finite, or
    ``None`` when the model takes none (giving them to such a model, or leaving them out of
    one that needs them, raises)."""
    if n_features == 0:
        if features is not None:
            width = features.shape[-1] if isinstance(features, Tensor) and features.dim() \
                else "F"
            raise ValueError(f"this model was built with n_features=0 but features of shape "
                             f"{shape_of(features)} were given; drop them or build the model "
                             f"with n_features={width}")
        return None
    if features is None:
        raise ValueError(f"this model was built with n_features={n_features}: give the "
                         f"per-frame features [B, T, {n_features}] (batch key 'features')")
    if not isinstance(features, Tensor) or list(features.shape) != [B, T, n_features]:
        raise ValueError(f"expected features of shape [{B}, {T}, {n_features}] (one row per "
                         f"frame), got {shape_of(features)}")
    if not features.is_floating_point():
        raise TypeError(f"features must be floating point, got {features.dtype}; convert "
                        f"them with features.float()")
    if not bool(torch.isfinite(features).all()):
        raise ValueError("features contain NaN or infinite values; clean or impute them first")
    return features.to(device=device, dtype=dtype)


def check_ids(ids: Tensor, vocab_size: int, what: str, hint: str = "") -> None:
    """Integer ids in ``[0, vocab_size)``."""
    if ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise TypeError(f"{what} must be integer ids (torch.long), got {ids.dtype}"
                        + (f"; {hint}" if hint else ""))
    if ids.numel():
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= vocab_size:
            raise ValueError(f"{what} must lie in [0, {vocab_size}), got values from {lo} to "
                             f"{hi}" + (f"; {hint}" if hint else ""))
