"""UCR/UEA time-series classification data sets bundled with ``sktime`` (no download).

sktime ships a few archives in ``sktime/datasets/data/<Name>/<Name>_{TRAIN,TEST}.ts``, with the
official train/test splits: ``JapaneseVowels`` (12 channels, lengths 7-29, 9 speakers),
``GunPoint`` (1 channel, length 150, 2 classes), ``BasicMotions`` (6 channels, 100 steps,
4 classes), ``ArrowHead`` (1 channel, 251 steps, 3 classes), ``ItalyPowerDemand``, ``OSULeaf``,
``ACSF1``, ``PLAID`` (unequal lengths), ``UnitTest``. Regression archives it also ships
(``Tecator``, ``Covid3Month``: ``@targetLabel true``) are not listed and are refused.
Series may differ in length; each is returned as a float tensor ``[T_i, C]``.

>>> train = load_ucr("GunPoint", "train")
>>> len(train.series), train.series[0].shape, train.classes
(50, torch.Size([150, 1]), ['1', '2'])
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["UCRData", "bundled_ucr_names", "downsample", "load_ucr", "standardize"]


@dataclass
class UCRData:
    """One split: ``series`` (list of ``[T_i, C]`` float tensors), integer ``labels [N]`` and
    the class names in label order."""

    series: list[Tensor]
    labels: Tensor
    classes: list[str]

    @property
    def num_channels(self) -> int:
        return int(self.series[0].shape[1])


def _data_dir() -> str:
    try:
        import sktime
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the UCR/UEA data sets come with sktime; install it with "
                          "`pip install rnnkit[data]` (or `pip install sktime`)") from err
    return os.path.join(os.path.dirname(sktime.__file__), "datasets", "data")


def _is_classification(path: str) -> bool:
    """Whether a .ts file's header says it holds class labels (not a regression target)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            low = line.strip().lower()
            if low.startswith("@targetlabel"):
                return low.split()[1:2] != ["true"]
            if low.startswith("@data"):
                return True
    return True


def bundled_ucr_names() -> list[str]:
    """Names of the classification archives sktime bundles (those with a _TRAIN.ts file whose
    header does not say ``@targetLabel true``: regression archives such as Tecator are left
    out)."""
    root = _data_dir()
    out = []
    for n in os.listdir(root):
        path = os.path.join(root, n, f"{n}_TRAIN.ts")
        if os.path.isfile(path) and _is_classification(path):
            out.append(n)
    return sorted(out)


def load_ucr(name: str, split: str = "train", classes: list[str] | None = None,
             root: str | os.PathLike | None = None) -> UCRData:
    """Load ``split`` ("train" or "test") of the archive ``name``: by default one sktime
    bundles, or the one in ``root/name/`` (``name_TRAIN.ts``, ``.arff``, ``.tsv``, ``.csv``
    or ``.txt``, read with :func:`rnnkit.series.files.read_series_file`); a regression
    archive (Tecator, ...) is refused.

    Pass the training split's ``classes`` when loading the test split so labels agree (by
    default the labels the split holds, in natural order).
    """
    from ..series.files import SERIES_EXTENSIONS, natural_key, read_series_file

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = os.path.join(_data_dir() if root is None else os.fspath(root), name)
    paths = [os.path.join(folder, f"{name}_{split.upper()}{ext}") for ext in SERIES_EXTENSIONS]
    path = next((q for q in paths if os.path.isfile(q)), None)
    if path is None and root is None:
        raise FileNotFoundError(f"sktime bundles no data set {name!r}; available: "
                                f"{', '.join(bundled_ucr_names())}")
    if path is None:
        raise FileNotFoundError(f"no {name}_{split.upper()} file in {folder} (looked for "
                                f"{', '.join(SERIES_EXTENSIONS)}); give the folder that holds "
                                f"one folder per archive")
    data = read_series_file(path, f"{name} {split}: ")
    if data.labels is None:
        raise ValueError(f"{name} {split} has no class labels (@classLabel false)")
    series = [torch.from_numpy(s) for s in data.series]  # [T_i, C]
    names = sorted(set(data.labels), key=natural_key) if classes is None else list(classes)
    index = {c: k for k, c in enumerate(names)}
    unknown = sorted(set(data.labels) - set(index))
    if unknown:
        raise ValueError(f"{name} {split} has classes {unknown} not in the given classes "
                         f"{names}; pass the training split's classes")
    labels = torch.tensor([index[v] for v in data.labels], dtype=torch.long)
    return UCRData(series, labels, names)


def standardize(series: list[Tensor], stats: tuple[Tensor, Tensor] | None = None,
                ) -> tuple[list[Tensor], tuple[Tensor, Tensor]]:
    """Scale every channel to zero mean, unit variance using ``stats`` (default: computed
    over all steps of ``series``; pass the training stats for the test split)."""
    if stats is None:
        allv = torch.cat(series, 0)
        stats = (allv.mean(0), allv.std(0).clamp_min(1e-8))
    mean, std = stats
    return [(s - mean) / std for s in series], stats


def downsample(series: list[Tensor], factor: int) -> list[Tensor]:
    """Average non-overlapping windows of ``factor`` steps: ``[T, C] -> [ceil(T / f), C]``.

    Shorter sequences are easier for an RNN to learn from (fewer steps to backpropagate
    through); use it for long, smooth series such as GunPoint (T = 150).

    >>> downsample([torch.arange(5.0)[:, None]], 2)[0].flatten().tolist()
    [0.5, 2.5, 4.0]
    """
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    if factor == 1:
        return list(series)
    out = []
    for s in series:
        T = s.shape[0]
        pad = (-T) % factor
        full = torch.cat([s, s[-1:].expand(pad, -1)], 0) if pad else s
        sums = full.reshape(-1, factor, s.shape[1]).sum(1)
        counts = torch.full((sums.shape[0], 1), float(factor))
        if pad:
            sums[-1] -= pad * s[-1]
            counts[-1] = factor - pad
        out.append(sums / counts)
    return out
