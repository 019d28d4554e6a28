"""Image input: any file Pillow reads, a PIL image or an array -> RGB float tensors in [0, 1].

* :func:`load_image`: one image -> ``float32 [3, H, W]`` in [0, 1]. Grayscale is replicated
  to three channels; transparency (RGBA, LA, PA, palette or colour-key transparency) is
  composited on white, ``rgb = a * rgb + (1 - a)``; 16-bit images keep their precision
  (divided by 65535); other modes (CMYK, YCbCr, 1-bit, ...) go through Pillow's RGB
  conversion.
* :func:`resize_keep_aspect`: ``[3, H, W]`` -> the largest size that fits a box, aspect kept.
* :func:`letterbox`: resize to fit, then pad with white, centred, to exactly the box.
* :func:`to_batch`: a list of images -> ``[B, 3, H, W]``, letterboxed (default) or
  stretched.

Resizing is bilinear with antialiasing (``F.interpolate(..., antialias=True)``), on the float
tensor. Bad input raises :class:`ImageError` (a ValueError) naming the file or array and the
fix: not an image or corrupt, smaller than ``MIN_SIDE`` pixels, more than ``MAX_PIXELS``
pixels (checked from the header before decoding: a decompression-bomb guard), NaN or values
outside [0, 1] in float arrays, wrong shapes.

>>> import numpy as np
>>> load_image(np.zeros((20, 30), dtype=np.uint8)).shape
torch.Size([3, 20, 30])
>>> to_batch([torch.rand(3, 20, 40), torch.rand(3, 50, 10)], 32).shape
torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["MAX_PIXELS", "MIN_SIDE", "ImageError", "letterbox", "load_image",
           "resize_keep_aspect", "to_batch"]

#: smallest accepted height and width, in pixels
MIN_SIDE = 8
#: largest accepted image (width x height); above it, resize the image first
MAX_PIXELS = 50_000_000
_16BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class ImageError(ValueError):
    """An input is not a usable image; the message names it and says what to do."""


def _readable_formats() -> str:
    from PIL import Image

    Image.init()
    return ", ".join(sorted(Image.OPEN))


def _open_file(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise FileNotFoundError(f"image file {path} does not exist")
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image file")
    try:
        img = Image.open(path)
    except UnidentifiedImageError as e:
        raise ImageError(f"{path} is not a readable image; Pillow reads: "
                         f"{_readable_formats()}") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path} is not a readable image ({e}); Pillow reads: "
                         f"{_readable_formats()}") from e
    _check_size(img.size[1], img.size[0], str(path))  # from the header, before decoding
    try:
        img.load()
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path} is too large to decode safely ({e}); resize it first") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path} is corrupt or truncated: Pillow could not decode it ({e})") \
            from e
    return img


def _check_size(height: int, width: int, what: str) -> None:
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ImageError(f"{what} is {width} x {height} pixels; images must be at least "
                         f"{MIN_SIDE} x {MIN_SIDE}: upscale it first")
    if height * width > MAX_PIXELS:
        raise ImageError(f"{what} is {width} x {height} = {height * width / 1e6:.0f} megapixels,"
                         f" over the {MAX_PIXELS / 1e6:.0f}-megapixel limit (a guard against "
                         f"decompression bombs); resize it first")


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """``[H, W, 4]`` float in [0, 1] -> ``[H, W, 3]``: ``a * rgb + (1 - a) * 1``."""
    alpha = rgba[..., 3:]
    return rgba[..., :3] * alpha + (1.0 - alpha)


def _from_pil(img: Any, what: str) -> np.ndarray:
    """A decoded PIL image -> float32 ``[H, W, 3]`` in [0, 1]."""
    _check_size(img.size[1], img.size[0], what)
    mode = img.mode
    if mode in _16BIT_MODES:
        gray = np.asarray(img).astype(np.float32)
        gray = np.clip(gray / 65535.0, 0.0, 1.0)  # "I": how Pillow opens 16-bit PNGs
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        return _from_array(np.asarray(img), what)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        return _composite_on_white(rgba)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def _from_array(arr: np.ndarray, what: str) -> np.ndarray:
    """``[H, W]``, ``[H, W, 1|2|3|4]`` (gray, gray+alpha, RGB, RGBA) -> float32 [H, W, 3]."""
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
        raise ImageError(f"{what} has shape {list(arr.shape)}; expected [H, W] (grayscale) or "
                         f"[H, W, C] with C = 1, 2 (gray + alpha), 3 (RGB) or 4 (RGBA)")
    if arr.size == 0:
        raise ImageError(f"{what} is empty (shape {list(arr.shape)})")
    _check_size(arr.shape[0], arr.shape[1], what)
    if arr.dtype == np.bool_:
        x = arr.astype(np.float32)
    elif arr.dtype == np.uint8:
        x = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        x = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        x = arr.astype(np.float32)
        if not np.isfinite(x).all():
            raise ImageError(f"{what} contains NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise ImageError(f"{what} has float values in [{lo:.3g}, {hi:.3g}]; float images "
                             f"must be in [0, 1] (divide 0-255 data by 255)")
    else:
        raise ImageError(f"{what} has dtype {arr.dtype}; use uint8 (0-255), uint16 "
                         f"(0-65535), bool or float in [0, 1]")
    if x.ndim == 2:
        x = x[..., None]
    channels = x.shape[2]
    if channels == 1:
        return np.repeat(x, 3, axis=2)
    if channels == 2:  # gray + alpha
        return _composite_on_white(np.concatenate([np.repeat(x[..., :1], 3, axis=2),
                                                   x[..., 1:]], axis=2))
    if channels == 4:
        return _composite_on_white(x)
    return x


def load_image(image: str | os.PathLike | Any, *,
               size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """One image -> ``float32 [3, H, W]`` RGB in [0, 1].

    Args:
        image: a file path (any format Pillow reads), a ``PIL.Image.Image``, a numpy array
            ``[H, W]`` / ``[H, W, C]`` (C = 1, 2, 3, 4; uint8, uint16, bool or float in
            [0, 1]) or a torch tensor ``[C, H, W]`` / ``[H, W]`` (channels first, same rules).
        size: None keeps the image's size; an int resizes so the longer side is ``size``
            (aspect kept, :func:`resize_keep_aspect`); ``(H, W)`` letterboxes to exactly
            that size (:func:`letterbox`).

    >>> from PIL import Image
    >>> load_image(Image.new("LA", (40, 20), (0, 0)), size=10)[:, 0, 0].tolist()  # clear
    [1.0, 1.0, 1.0]
    """
    from PIL import Image

    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        with _open_file(path) as img:
            arr = _from_pil(img, str(path))
    elif isinstance(image, Image.Image):
        arr = _from_pil(image, f"the {image.mode} image")
    elif isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.dim() == 3:
            t = t.permute(1, 2, 0)  # [C, H, W] -> [H, W, C]
        arr = _from_array(t.numpy(), f"the tensor of shape {list(image.shape)}")
    elif isinstance(image, np.ndarray):
        arr = _from_array(image, f"the array of shape {list(image.shape)}")
    else:
        raise TypeError(f"expected an image path, a PIL image, a numpy array or a tensor, got "
                        f"{type(image).__name__}")
    out = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float()  # [3, H, W]
    if size is None:
        return out
    if isinstance(size, int):
        return resize_keep_aspect(out, size)
    return letterbox(out, size)


def _box(size: int | Sequence[int]) -> tuple[int, int]:
    box = (size, size) if isinstance(size, int) else tuple(size)
    if len(box) != 2 or not all(isinstance(s, int) and s >= 1 for s in box):
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}")
    return box  # type: ignore[return-value]


def _check_tensor(image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
        shape = list(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ImageError(f"expected an image tensor [3, H, W] (see load_image), got {shape}")
    if not image.is_floating_point():
        raise ImageError(f"expected a float image in [0, 1], got dtype {image.dtype}; use "
                         f"load_image")
    if image.shape[1] == 0 or image.shape[2] == 0:
        raise ImageError(f"the image is empty ({list(image.shape)})")


def resize_keep_aspect(image: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """``[3, H, W]`` -> ``[3, H', W']``, the largest size with the same aspect ratio (rounded,
    at least 1 pixel) that fits in ``size x size`` (an int) or ``(height, width)``. Scales up
    as well as down.

    >>> resize_keep_aspect(torch.rand(3, 100, 50), 40).shape
    torch.Size([3, 40, 20])
    """
    _check_tensor(image)
    box_h, box_w = _box(size)
    h, w = image.shape[1:]
    scale = min(box_h / h, box_w / w)
    new = (min(box_h, max(1, round(h * scale))), min(box_w, max(1, round(w * scale))))
    if new == (h, w):
        return image.clone()
    out = F.interpolate(image[None], size=new, mode="bilinear", align_corners=False,
                        antialias=True)[0]
    return out.clamp_(0.0, 1.0)  # bilinear cannot overshoot much; keep the [0, 1] contract


def letterbox(image: torch.Tensor, size: int | tuple[int, int], *,
              fill: float = 1.0) -> torch.Tensor:
    """``[3, H, W]`` -> ``[3, size_h, size_w]``: resized to fit (aspect kept), centred, the
    rest filled with ``fill`` (1.0 = white, as transparent pixels are)."""
    box_h, box_w = _box(size)
    fitted = resize_keep_aspect(image, (box_h, box_w))
    h, w = fitted.shape[1:]
    out = fitted.new_full((3, box_h, box_w), fill)
    top, left = (box_h - h) // 2, (box_w - w) // 2
    out[:, top:top + h, left:left + w] = fitted
    return out


def to_batch(images: Sequence[Any], size: int | tuple[int, int], *,
             mode: str = "letterbox") -> torch.Tensor:
    """Images (anything :func:`load_image` takes, or ``[3, H, W]`` tensors) -> ``float32
    [B, 3, size_h, size_w]``. ``mode="letterbox"`` keeps the aspect ratio and pads with
    white; ``"stretch"`` resizes each image to exactly the size (distorting it)."""
    if mode not in ("letterbox", "stretch"):
        raise ValueError(f"mode must be 'letterbox' or 'stretch', got {mode!r}")
    if isinstance(images, (str, os.PathLike, np.ndarray, torch.Tensor)) or len(images) == 0:
        raise ImageError("to_batch takes a non-empty list of images (for one image, pass "
                         "[image])")
    box = _box(size)
    out = []
    for image in images:
        t = load_image(image)
        if mode == "letterbox":
            out.append(letterbox(t, box))
        else:
            out.append(F.interpolate(t[None], size=box, mode="bilinear", align_corners=False,
                                     antialias=True)[0].clamp_(0.0, 1.0))
    return torch.stack(out)
