"""Vision: CNN + RNN hybrids (image captioning, text-line recognition, ConvLSTM video).

One module per concept, each imported on first use:

* :mod:`~rnnkit.vision.datasets`: real images that ship offline (MNIST digits, emoji
  pictograms).

Needs the ``vision`` extra (``pip install "rnnkit[vision]"``) and, for the fonts,
``make vision-data``.
"""

from __future__ import annotations

from .._lazy import lazy_names

_NAMES = {
    "mnist_digits": "datasets", "pictograms": "datasets", "VisionDataError": "datasets",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_names(__name__, _NAMES)
