"""Text-line images for recognition: real English lines, rendered in real fonts, split three ways.

**Text.** Jane Austen's *Lady Susan* (Project Gutenberg etext), the English sample music21
ships for its language detector (``music21/languageExcerpts/trainingData/en.txt``, ~23,000
words; installed with the ``music`` extra, no download). :func:`text_lines` cuts it, in reading
order, into lines of 3-8 words and at most 40 characters, written in :data:`ALPHABET`
(printable ASCII: letters, digits, punctuation, space; curly quotes and dashes are mapped to
ASCII, accents stripped, anything else dropped, the same way everywhere by
:func:`normalize_text`). :func:`split_lines` puts each distinct line in ``train``, ``valid``
or ``test`` by a hash of its text, so a line stays in its part whatever else the corpus holds.
Any other text works too: ``text_lines(text=open(...).read())``.

**Fonts** (``make vision-data``: Debian font packages, found by file name under
:data:`FONT_DIRS`, see :func:`find_fonts`), in three disjoint groups (:data:`FONT_GROUPS`):

* ``train`` (:data:`TRAIN_FONTS`): DejaVu Sans/Serif/Mono (with oblique, italic, bold),
  Liberation Sans/Serif/Mono, Lato, Cantarell, EB Garamond, Inconsolata, and the
  handwriting-style dkg handwriting and Dancing Script;
* ``print`` (:data:`HELDOUT_PRINT`), test only: FreeSans, FreeSerif, FreeMono, Linux Libertine,
  Linux Biolinum, Comic Neue;
* ``handwriting`` (:data:`HELDOUT_HANDWRITING`), test only: Kristi, Femke Klaver, Breip.

Humor Sans (installed too) is in no group: its lower-case letters are small capitals, so the
case of a rendered line cannot be read from the image.

**Rendering** (:func:`render_line`, deterministic from its seed): the text is drawn at 48 px
as an ink mask (optionally thickened, ``stroke``), sheared (slant) and rotated a little,
scaled to a random capture height (16-56 px, :data:`CAPTURE_SIZES`: small and large print),
put on a background of random grey level with a linear illumination ramp in a random ink
level, blurred, given Gaussian noise, then normalised by :func:`normalize_line`: contrast
stretched (ink 0, paper 255), cropped to the ink with a margin, and resized to ``height``
pixels keeping the aspect (times a random horizontal stretch when augmenting). ``read`` puts
every user image through the same :func:`normalize_line`, so training and use see the same
kind of input.

>>> lines = text_lines()
>>> len(lines) > 3000, all(3 <= len(s.split()) <= 8 and len(s) <= 40 for s in lines)
(True, True)
>>> parts = split_lines(lines)
>>> sorted(parts), not set(parts["train"]) & set(parts["test"])
(['test', 'train', 'valid'], True)
>>> img = render_line("The world must judge", find_fonts(["DejaVuSans"])["DejaVuSans"], seed=3)
>>> img.dtype.name, img.shape[0], img.shape[1] > 100
('uint8', 32, True)
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
import os
import string
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ALPHABET", "CAPTURE_SIZES", "FONT_DIRS", "FONT_GROUPS", "HELDOUT_HANDWRITING",
           "HELDOUT_PRINT", "TRAIN_FONTS", "FontError", "Style", "TextLineDataset",
           "corpus_text", "find_fonts", "font_charset", "normalize_line", "normalize_text",
           "render_line", "split_lines", "text_lines"]

#: the characters a line may hold: space, then printable ASCII (95 in all)
ALPHABET = " " + string.ascii_letters + string.digits + string.punctuation

#: where fonts are looked for (``RNNKIT_FONT_DIRS``, ``os.pathsep``-separated, adds more)
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")

#: training fonts: file name stems (print, then handwriting-style)
TRAIN_FONTS = (
    "DejaVuSans", "DejaVuSans-Oblique", "DejaVuSans-Bold", "DejaVuSansCondensed",
    "DejaVuSerif", "DejaVuSerif-Italic", "DejaVuSerif-Bold", "DejaVuSansMono",
    "LiberationSans-Regular", "LiberationSans-Italic", "LiberationSans-Bold",
    "LiberationSerif-Regular", "LiberationSerif-Italic", "LiberationSerif-Bold",
    "LiberationMono-Regular", "Lato-Regular", "Lato-Italic", "Lato-Bold", "Lato-Light",
    "Cantarell-Regular", "Cantarell-Bold", "EBGaramond12-Regular", "EBGaramond12-Italic",
    "Inconsolata",
    "dkg", "dkgIt", "DancingScript-Regular", "DancingScript-Bold",
)
#: print fonts never trained on (test only)
HELDOUT_PRINT = ("FreeSans", "FreeSansOblique", "FreeSerif", "FreeSerifItalic", "FreeMono",
                 "LinLibertine_R", "LinLibertine_RB", "LinBiolinum_R", "ComicNeue-Regular",
                 "ComicNeue-Italic")
#: handwriting-style fonts never trained on (test only)
HELDOUT_HANDWRITING = ("Kristi", "femkeklaver", "Breip")
FONT_GROUPS = {"train": TRAIN_FONTS, "print": HELDOUT_PRINT, "handwriting": HELDOUT_HANDWRITING}

FONT_FIX = "run `make vision-data` (Debian font packages; fc-list shows what is installed)"
CORPUS_FILE = ("languageExcerpts", "trainingData", "en.txt")  # under the music21 package
RENDER_SIZE = 48  # px: drawn large, then scaled down to the line height
#: the range of capture heights (px, log-uniform) of augmented lines: small print upscaled to
#: the model's height is blocky and soft, large print is downscaled (:class:`Style`)
CAPTURE_SIZES = (16, 56)
_TRANSLATE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                            "\u2013": "-", "\u2014": "--", "\u2026": "...", "\u00a0": " "})


class FontError(FileNotFoundError):
    """Fonts or text a line set needs are missing; the message names the step that installs
    them."""


# -- text ---------------------------------------------------------------------------------------
def corpus_text() -> str:
    """The text of Jane Austen's *Lady Susan* as music21 ships it (Gutenberg header and footer
    lines dropped)."""
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        raise FontError('the text-line corpus (Jane Austen\'s "Lady Susan") ships with music21: '
                        'pip install "rnnkit[music]", or pass your own text')
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*CORPUS_FILE)
    if not path.is_file():
        raise FontError(f"{path} is missing; reinstall music21 (pip install --force-reinstall "
                        f"music21) or pass your own text")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(s for s in lines if "Gutenberg" not in s and "Etext" not in s)


def normalize_text(text: str) -> str:
    """``text`` in :data:`ALPHABET`: typographic quotes/dashes to ASCII, accents stripped,
    other characters dropped, whitespace runs to one space.

    >>> normalize_text("“Café”\\u2014naïve  ü€ x")
    '"Cafe"--naive u x'
    """
    text = unicodedata.normalize("NFKD", text.translate(_TRANSLATE))
    keep = set(ALPHABET)
    return " ".join("".join(ch if ch in keep else (" " if ch.isspace() else "")
                            for ch in text).split())


def text_lines(text: str | None = None, min_words: int = 3, max_words: int = 8,
               max_chars: int = 40, seed: int = 0) -> list[str]:
    """Cut ``text`` (default: :func:`corpus_text`) in reading order into lines of
    ``min_words``..``max_words`` words (each line's target drawn from ``seed``) and at most
    ``max_chars`` characters; shorter leftovers and words longer than ``max_chars`` are
    dropped. Distinct lines, in order of first appearance."""
    if not 1 <= min_words <= max_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    words = normalize_text(corpus_text() if text is None else text).split()
    rng = np.random.default_rng(seed)
    out: list[str] = []
    i = 0
    while i < len(words):
        want = int(rng.integers(min_words, max_words + 1))
        line: list[str] = []
        while i < len(words) and len(line) < want:
            if len(words[i]) > max_chars:
                i += 1
                break
            if len(" ".join([*line, words[i]])) > max_chars:
                break
            line.append(words[i])
            i += 1
        if len(line) >= min_words:
            out.append(" ".join(line))
    return list(dict.fromkeys(out))


def split_lines(lines: Iterable[str], fractions: Sequence[float] = (0.8, 0.1, 0.1),
                ) -> dict[str, list[str]]:
    """``{"train", "valid", "test"}`` lists: each distinct line goes to the part its SHA-1
    hash falls in (``fractions`` of the unit interval), independent of the other lines."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not math.isclose(
            sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions must be three shares (train, valid, test) summing to 1, "
                         f"got {tuple(fractions)}")
    cut1, cut2 = fractions[0], fractions[0] + fractions[1]
    parts: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for line in dict.fromkeys(lines):
        u = int.from_bytes(hashlib.sha1(line.encode()).digest()[:8], "big") / 2 ** 64
        parts["train" if u < cut1 else "valid" if u < cut2 else "test"].append(line)
    return parts


# -- fonts --------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _installed_fonts() -> dict[str, str]:
    """File name stem -> path of every .ttf/.otf under :data:`FONT_DIRS` (first found wins)."""
    dirs = list(FONT_DIRS) + [d for d in os.environ.get("RNNKIT_FONT_DIRS", "").split(
        os.pathsep) if d]
    found: dict[str, str] = {}
    for d in dirs:
        root = Path(os.path.expanduser(d))
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.suffix.lower() in (".ttf", ".otf") and p.is_file():
                    found.setdefault(p.stem, str(p))
    return found


def find_fonts(names: Iterable[str] | str) -> dict[str, str]:
    """``{name: path}`` for font file stems (``"DejaVuSans"``) or a group name of
    :data:`FONT_GROUPS` (``"train"``, ``"print"``, ``"handwriting"``); a missing font is an
    error naming ``make vision-data``."""
    if isinstance(names, str):
        if names not in FONT_GROUPS:
            raise ValueError(f"unknown font group {names!r}; use one of {sorted(FONT_GROUPS)} "
                             f"or a list of font file names")
        names = FONT_GROUPS[names]
    names = list(names)
    installed = _installed_fonts()
    missing = [n for n in names if n not in installed]
    if missing:
        raise FontError(f"font(s) not found: {', '.join(missing)}; {FONT_FIX}")
    return {n: installed[n] for n in names}


@functools.lru_cache(maxsize=64)
def _font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=64)
def font_charset(path: str) -> frozenset[str]:
    """The characters of :data:`ALPHABET` the font draws (a glyph with ink; space always)."""
    from fontTools.ttLib import TTFont

    cmap = TTFont(path, lazy=True, fontNumber=0)["cmap"].getBestCmap() or {}
    font = _font(path, RENDER_SIZE)
    return frozenset(" " + "".join(c for c in ALPHABET[1:] if ord(c) in cmap
                                   and font.getmask(c).getbbox() is not None))


# -- rendering ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Style:
    """One random rendering: ``stroke`` (extra ink width, px at 48 px), ``shear`` (x += shear *
    y), ``angle`` (degrees), ``paper``/``ink`` grey levels, ``ramp`` (illumination change
    across the line), ``blur`` (Gaussian radius at the captured size), ``noise`` (std of grey
    levels), ``margin`` (of the ink height, each side), ``stretch`` (horizontal scale),
    ``size`` (the height in px at which the line is captured, margins included: paper,
    blur and noise are applied at that resolution before :func:`normalize_line` scales it to
    the model's height, as a scan or screenshot of small or large print would be;
    ``None``: captured at the model's height)."""

    stroke: int = 0
    shear: float = 0.0
    angle: float = 0.0
    paper: float = 255.0
    ink: float = 0.0
    ramp: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    margin: float = 0.15
    stretch: float = 1.0
    size: int | None = None

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Style:
        paper = float(rng.uniform(160, 255))
        return cls(stroke=int(rng.random() < 0.25), shear=float(rng.uniform(-0.3, 0.3)),
                   angle=float(rng.uniform(-1.5, 1.5)), paper=paper,
                   ink=float(rng.uniform(0, paper - 100)), ramp=float(rng.uniform(-40, 40)),
                   blur=float(rng.uniform(0, 1.0)) * (rng.random() < 0.6),
                   noise=float(rng.uniform(0, 12)), margin=float(rng.uniform(0.05, 0.3)),
                   stretch=float(rng.uniform(0.85, 1.2)),
                   # drawn last: the other draws of a seed stay those of before sizes varied
                   size=int(round(math.exp(rng.uniform(*np.log(CAPTURE_SIZES))))))


def _ink_mask(text: str, path: str, style: Style):
    """The text as an 'L' mask (255 = ink) at :data:`RENDER_SIZE`, slanted and rotated."""
    from PIL import Image, ImageDraw

    font = _font(path, RENDER_SIZE)
    left, top, right, bottom = font.getbbox(text, stroke_width=style.stroke)
    pad = RENDER_SIZE
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).text((pad - left, pad - top), text, font=font, fill=255,
                              stroke_width=style.stroke, stroke_fill=255)
    if style.shear:  # x_in = x_out + shear * (y_out - h/2): slant about the middle
        mask = mask.transform((w, h), Image.AFFINE, (1, style.shear, -style.shear * h / 2,
                                                     0, 1, 0), resample=Image.BILINEAR)
    if style.angle:
        mask = mask.rotate(style.angle, resample=Image.BILINEAR, expand=True)
    return mask


def render_line(text: str, font: str, *, seed: int = 0, height: int = 32,
                augment: bool = True, style: Style | None = None) -> np.ndarray:
    """``text`` drawn in the font file ``font`` -> ``uint8 [height, W]`` (dark ink on light
    paper), normalised by :func:`normalize_line`. ``augment``: a random :class:`Style` from
    ``seed`` (the same seed gives the same image); otherwise black on white, upright.
    ``style``: this :class:`Style` instead (``seed`` then only draws the noise)."""
    from PIL import Image, ImageFilter

    if not text.strip():
        raise ValueError("cannot render an empty line; give some text")
    rng = np.random.default_rng(seed)
    if style is None:
        style = Style.draw(rng) if augment else Style()
    mask = _ink_mask(text, font, style)
    left, top, right, bottom = mask.getbbox()
    m = round(style.margin * (bottom - top))
    mask = mask.crop((left - m, top - m, right + m, bottom + m))  # outside: no ink
    w, h = mask.size
    size = style.size or height
    width = max(1, round(w * size / h * style.stretch))
    ink = np.asarray(mask.resize((width, size), Image.BILINEAR), dtype=np.float32) / 255
    paper = style.paper + style.ramp * np.linspace(-0.5, 0.5, width, dtype=np.float32)[None]
    gray = np.clip(paper + (style.ink - paper) * ink, 0, 255)
    if style.blur:
        gray = np.asarray(Image.fromarray(gray.astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(style.blur)), dtype=np.float32)
    if style.noise:
        gray = gray + rng.normal(0, style.noise, gray.shape).astype(np.float32)
    gray = np.clip(gray, 0, 255).astype(np.uint8)
    return normalize_line(gray, height, margin=style.margin)


def _ink(g: np.ndarray) -> np.ndarray:
    """Ink pixels of a contrast-stretched image (below mid-grey) that have at least two ink
    neighbours in their 3 x 3 window: isolated noise pixels are not ink."""
    dark = (g < 128).astype(np.int16)
    p = np.pad(dark, 1)
    h, w = dark.shape
    around = sum(p[i:i + h, j:j + w] for i in range(3) for j in range(3)) - dark
    return (dark > 0) & (around >= 2)


def normalize_line(gray: np.ndarray, height: int = 32, *, margin: float = 0.15,
                   stretch: float = 1.0, max_aspect: float = 60.0) -> np.ndarray:
    """A grey image of one text line ``uint8 [h, w]`` -> ``uint8 [height, W]``: light text on
    a dark background is inverted (the median pixel is the paper), the contrast stretched (the
    0.2th percentile is ink 0, the median paper 255), the image cropped to its ink (pixels below
    the midpoint) plus ``margin`` times the ink height on each side, and resized to ``height``
    keeping the aspect (times ``stretch``).

    Raises ``ValueError`` naming the fix for an image with no ink (blank), one that is taller
    than wide after cropping (not a horizontal line), or wider than ``max_aspect`` heights
    (several lines' worth: split it).
    """
    from PIL import Image

    g = np.asarray(gray, dtype=np.float32)
    paper = float(np.median(g))
    if paper < 128:  # light text on a dark background
        g, paper = 255.0 - g, 255.0 - paper
    ink = float(np.percentile(g, 0.2))  # text may cover only a few percent of the image
    if paper - ink < 24:
        raise ValueError(f"no text found: the image is nearly uniform (contrast "
                         f"{paper - ink:.0f} of 255 grey levels); give an image of a line of "
                         f"text")
    g = np.clip((g - ink) / (paper - ink), 0, 1) * 255
    dark = _ink(g)
    if not dark.any():
        raise ValueError("no text found: no connected dark strokes in the image; give an "
                         "image of a line of text")
    rows, cols = np.flatnonzero(dark.any(1)), np.flatnonzero(dark.any(0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    m = int(round(margin * (bottom - top)))
    g = np.pad(g, m, constant_values=255)[top:bottom + 2 * m, left:right + 2 * m]
    h, w = g.shape
    if h > 1.5 * w:
        raise ValueError(f"the text in the image is {h} px tall and {w} px wide: not one "
                         f"horizontal line of text; crop one line (or rotate a vertical one)")
    width = max(1, round(w * height / h * stretch))
    if width > max_aspect * height:
        raise ValueError(f"the line is {w / h:.0f} times as wide as it is tall (at most "
                         f"{max_aspect:g}): more text than one line holds; split it into "
                         f"shorter pieces")
    out = Image.fromarray(g.astype(np.uint8)).resize((width, height), Image.BILINEAR)
    return np.asarray(out)


# -- a data set ---------------------------------------------------------------------------------
class TextLineDataset:
    """``n`` rendered lines (a ``torch`` map-style data set): item ``i`` is ``(image uint8
    [height, W], text, font name)``, the same for the same ``(seed, i)``; each item pairs a
    line drawn from ``lines`` with a font drawn from ``fonts`` (``{name: path}``) that draws
    every character of it. ``augment=False`` renders black on white, upright."""

    def __init__(self, lines: Sequence[str], fonts: dict[str, str], n: int | None = None, *,
                 seed: int = 0, height: int = 32, augment: bool = True) -> None:
        if not lines:
            raise ValueError("no text lines to render; give at least one line")
        if not fonts:
            raise ValueError(f"no fonts to render with; {FONT_FIX}")
        self.lines, self.fonts = list(lines), dict(fonts)
        self.names = sorted(self.fonts)
        self.n = len(self.lines) if n is None else int(n)
        self.seed, self.height, self.augment = seed, height, augment

    def __len__(self) -> int:
        return self.n

    def spec(self, i: int) -> tuple[str, str, int]:
        """``(line, font name, render seed)`` of item ``i``."""
        if not 0 <= i < self.n:
            raise IndexError(f"item {i} of a {self.n}-line set")
        rng = np.random.default_rng([self.seed, i])
        line = self.lines[i % len(self.lines)] if self.n == len(self.lines) else \
            self.lines[int(rng.integers(len(self.lines)))]
        names = [n for n in self.names if set(line) <= font_charset(self.fonts[n])]
        if not names:
            raise FontError(f"no font of {self.names} draws every character of {line!r}")
        return line, names[int(rng.integers(len(names)))], int(rng.integers(2 ** 31))

    def __getitem__(self, i: int) -> tuple[np.ndarray, str, str]:
        line, name, seed = self.spec(i)
        img = render_line(line, self.fonts[name], seed=seed, height=self.height,
                          augment=self.augment)
        return img, line, name
