"""The settings of next-frame video prediction, as plain dataclasses (no torch import, so the
CLI can build its flags from them at start-up).

>>> VideoConfig(patch=5)
Traceback (most recent call last):
...
ValueError: size (64) must be a multiple of patch (5); e.g. patch 4 for 64 x 64 frames
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["VideoConfig", "VideoDataConfig"]

CELLS = ("convlstm", "lstm")
LOSSES = ("bce", "mse")


@dataclass
class VideoConfig:
    """The next-frame predictor's shape.

    Attributes:
        cell: ``"convlstm"`` (the model) or ``"lstm"`` (the per-patch baseline: no spatial
            context).
        patch: side ``p`` of the space-to-depth patches (``size`` must be a multiple).
        hidden_size: channels of each ConvLSTM layer (units of each LSTM layer).
        num_layers: layers of the encoder and of the forecaster.
        kernel_size: odd kernel of the ConvLSTM convolutions (``"convlstm"`` only).
        input_frames: frames seen (``T_in``).
        output_frames: frames predicted (``T_out``).
        size: frame side ``S`` in pixels (square, grayscale frames).
        loss: ``"bce"`` (pixel-wise cross-entropy, Shi et al.) or ``"mse"``.
        ssim_weight: ``w >= 0``: add ``w * (1 - SSIM)`` of the predicted frames to the loss
            (0: the paper's loss alone). A pixel loss spends the digits' uncertain future
            as a faint smear over the background, which SSIM (a structure measure) counts
            against every window it touches; the term trades a little MSE for sharper,
            cleaner frames.
    """

    cell: str = "convlstm"
    patch: int = 4
    hidden_size: int = 32
    num_layers: int = 2
    kernel_size: int = 3
    input_frames: int = 10
    output_frames: int = 10
    size: int = 64
    loss: str = "bce"
    ssim_weight: float = 0.0

    def __post_init__(self) -> None:
        for name, choices in (("cell", CELLS), ("loss", LOSSES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, "
                                 f"got {getattr(self, name)!r}")
        for name in ("patch", "hidden_size", "num_layers", "kernel_size", "input_frames",
                     "output_frames", "size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        w = self.ssim_weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w < float("inf"):
            raise ValueError(f"ssim_weight must be a number >= 0 (0: no SSIM term), got {w!r}")
        self.ssim_weight = float(w)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd ('same' padding keeps the maps' size), "
                             f"got {self.kernel_size}; e.g. kernel_size 3 or 5")
        if self.size % self.patch:
            raise ValueError(f"size ({self.size}) must be a multiple of patch ({self.patch}); "
                             f"e.g. patch 4 for 64 x 64 frames")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VideoConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown VideoConfig field(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(known))}")
        return cls(**values)


@dataclass
class VideoDataConfig:
    """The moving-digit sequences a video predictor trains on
    (:mod:`rnnkit.vision.moving_digits`: training digits only).

    Attributes:
        batch_size: sequences per training batch.
        batches_per_epoch: batches between two validations (each batch is new sequences).
        valid_sequences: sequences of training digits that choose ``best.pt``.
        test_sequences: sequences of held-out digits scored at the end (reported, never
            used for a choice).
    """

    batch_size: int = 16
    batches_per_epoch: int = 100
    valid_sequences: int = 64
    test_sequences: int = 128

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{f.name} must be a positive integer, got {value!r}")
