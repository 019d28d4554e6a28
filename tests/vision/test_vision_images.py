"""load_image / resize / letterbox / to_batch: every Pillow mode we promise, checked pixel by
pixel against the numbers written to fresh random files, and every bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from rnnkit.vision import images as im  # noqa: E402
from rnnkit.vision.images import (  # noqa: E402
    ImageError,
    letterbox,
    load_image,
    resize_keep_aspect,
    to_batch,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(int(torch.randint(0, 2**31, ()).item()))


def _hwc(t: torch.Tensor) -> np.ndarray:
    assert t.dtype == torch.float32 and t.dim() == 3 and t.shape[0] == 3
    return t.permute(1, 2, 0).numpy()


def test_rgb_png_round_trip(tmp_path, rng):
    arr = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    Image.fromarray(arr, "RGB").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    np.testing.assert_allclose(_hwc(out), arr / 255.0, atol=1e-6)
    assert load_image(str(tmp_path / "a.png")).shape == (3, 23, 31)  # str paths too


def test_grayscale_is_replicated(tmp_path, rng):
    arr = rng.integers(0, 256, (17, 12), dtype=np.uint8)
    Image.fromarray(arr, "L").save(tmp_path / "g.png")
    out = _hwc(load_image(tmp_path / "g.png"))
    for c in range(3):
        np.testing.assert_allclose(out[..., c], arr / 255.0, atol=1e-6)
    np.testing.assert_allclose(_hwc(load_image(arr[..., None])), out)  # [H, W, 1] array


def test_rgba_is_composited_on_white(tmp_path, rng):
    arr = rng.integers(0, 256, (20, 20, 4), dtype=np.uint8)
    Image.fromarray(arr, "RGBA").save(tmp_path / "t.png")
    a = arr[..., 3:] / 255.0
    expected = arr[..., :3] / 255.0 * a + (1 - a)
    np.testing.assert_allclose(_hwc(load_image(tmp_path / "t.png")), expected, atol=1e-6)
    np.testing.assert_allclose(_hwc(load_image(arr)), expected, atol=1e-6)  # array path


def test_la_and_gray_alpha_arrays(tmp_path, rng):
    arr = rng.integers(0, 256, (12, 14, 2), dtype=np.uint8)
    Image.fromarray(arr, "LA").save(tmp_path / "la.png")
    a = arr[..., 1] / 255.0
    expected = arr[..., 0] / 255.0 * a + (1 - a)
    out = _hwc(load_image(tmp_path / "la.png"))
    np.testing.assert_allclose(out, np.repeat(expected[..., None], 3, 2), atol=1e-6)
    np.testing.assert_allclose(_hwc(load_image(arr)), out, atol=1e-6)


def test_palette_with_transparency(tmp_path, rng):
    idx = rng.integers(0, 4, (10, 16), dtype=np.uint8)
    palette = rng.integers(0, 256, (4, 3), dtype=np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette(palette.flatten().tolist())
    img.info["transparency"] = 2  # palette entry 2 is fully transparent
    img.save(tmp_path / "p.png", transparency=2)
    out = _hwc(load_image(tmp_path / "p.png"))
    expected = palette[idx] / 255.0
    expected[idx == 2] = 1.0
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_16_bit_grayscale_keeps_precision(tmp_path, rng):
    arr = rng.integers(0, 65536, (40, 30), dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    out = _hwc(load_image(tmp_path / "d.png"))
    np.testing.assert_allclose(out[..., 0], arr / 65535.0, atol=1e-6)
    assert len(np.unique(out)) > 256  # more levels than 8 bits could hold
    np.testing.assert_allclose(_hwc(load_image(arr)), out, atol=1e-6)


def test_other_modes_and_jpeg(tmp_path, rng):
    arr = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    cmyk = Image.fromarray(arr, "RGB").convert("CMYK")
    np.testing.assert_allclose(_hwc(load_image(cmyk)), np.asarray(cmyk.convert("RGB")) / 255,
                               atol=1e-6)
    bits = Image.fromarray(arr[..., 0] > 127).convert("1")
    np.testing.assert_array_equal(_hwc(load_image(bits))[..., 0], arr[..., 0] > 127)
    yy, xx = np.mgrid[0:32, 0:32] / 32.0  # smooth, so JPEG keeps it close
    smooth = (np.stack([yy, xx, (yy + xx) / 2], 2) * 255).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "j.jpg", quality=95)
    assert np.abs(_hwc(load_image(tmp_path / "j.jpg")) - smooth / 255).mean() < 0.02


def test_float_bool_and_tensor_inputs(rng):
    x = rng.random((10, 11, 3)).astype(np.float64)
    np.testing.assert_allclose(_hwc(load_image(x)), x, atol=1e-6)
    t = torch.from_numpy(x).permute(2, 0, 1)
    np.testing.assert_allclose(_hwc(load_image(t)), x, atol=1e-6)  # [C, H, W] tensor
    b = rng.random((9, 9)) > 0.5
    np.testing.assert_array_equal(_hwc(load_image(b))[..., 1], b)


def test_size_argument_resizes_or_letterboxes(rng):
    x = rng.random((40, 100, 3)).astype(np.float32)
    assert load_image(x, size=50).shape == (3, 20, 50)
    boxed = load_image(x, size=(64, 64))
    assert boxed.shape == (3, 64, 64)
    assert torch.all(boxed[:, :10] == 1.0) and torch.all(boxed[:, -10:] == 1.0)  # white bars


def test_resize_keep_aspect_against_pillow():
    """Antialiased bilinear resizing == Pillow's BILINEAR resize of each channel (a 32-bit
    float "F" image), down and up."""
    x = torch.rand(3, 40, 60)
    for box, shape in ((20, (13, 20)), ((20, 30), (20, 30)), (120, (80, 120))):
        out = resize_keep_aspect(x, box)
        assert out.shape == (3, *shape)
        ref = np.stack([np.asarray(Image.fromarray(c.numpy(), "F").resize(
            shape[::-1], Image.BILINEAR)) for c in x])
        np.testing.assert_allclose(out.numpy(), np.clip(ref, 0, 1), atol=2e-3)
    y = resize_keep_aspect(x, (40, 60))
    assert torch.equal(y, x) and y is not x


def test_letterbox_centres_and_keeps_content():
    x = torch.rand(3, 10, 20)
    out = letterbox(x, 20)
    assert out.shape == (3, 20, 20)
    torch.testing.assert_close(out[:, 5:15], x)
    assert torch.all(out[:, :5] == 1) and torch.all(out[:, 15:] == 1)
    assert torch.all(letterbox(x, (20, 20), fill=0.0)[:, :5] == 0)


def test_to_batch_mixes_sources(tmp_path, rng):
    arr = rng.integers(0, 256, (30, 10), dtype=np.uint8)
    Image.fromarray(arr, "L").save(tmp_path / "g.png")
    batch = to_batch([tmp_path / "g.png", torch.rand(3, 50, 50),
                      Image.new("RGBA", (12, 40), (255, 0, 0, 128))], 32)
    assert batch.shape == (3, 3, 32, 32) and batch.dtype == torch.float32
    assert 0 <= batch.min() and batch.max() <= 1
    stretched = to_batch([torch.rand(3, 20, 80)], (16, 16), mode="stretch")
    assert stretched.shape == (1, 3, 16, 16)
    with pytest.raises(ImageError, match="non-empty list"):
        to_batch([], 32)
    with pytest.raises(ImageError, match=r"pass \[image\]"):
        to_batch(torch.rand(3, 32, 32), 32)
    with pytest.raises(ValueError, match="mode must be"):
        to_batch([torch.rand(3, 32, 32)], 32, mode="crop")
    with pytest.raises(ValueError, match="size must be"):
        to_batch([torch.rand(3, 32, 32)], 0)


# --- bad inputs -------------------------------------------------------------------------

def test_not_an_image_file(tmp_path, rng):
    bad = tmp_path / "notes.png"
    bad.write_bytes(rng.bytes(500))
    with pytest.raises(ImageError, match=r"notes\.png is not a readable image.*PNG"):
        load_image(bad)
    text = tmp_path / "readme.txt"
    text.write_text("hello")
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(text)


def test_truncated_file(tmp_path, rng):
    arr = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.png is corrupt or truncated"):
        load_image(tmp_path / "cut.png")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_too_small_images(tmp_path, rng):
    Image.fromarray(rng.integers(0, 256, (5, 40), dtype=np.uint8)).save(tmp_path / "s.png")
    with pytest.raises(ImageError, match=r"s\.png is 40 x 5 pixels.*at least 8 x 8"):
        load_image(tmp_path / "s.png")
    with pytest.raises(ImageError, match="at least 8 x 8"):
        load_image(rng.random((7, 7)))


def test_huge_image_refused_from_the_header(tmp_path, monkeypatch):
    """A 60-megapixel PNG is refused before it is decoded (limit lowered instead of writing
    one: the check reads the header size)."""
    Image.new("L", (300, 200)).save(tmp_path / "big.png")
    monkeypatch.setattr(im, "MAX_PIXELS", 50_000)
    decoded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1) or real_load(self))
    with pytest.raises(ImageError, match="megapixel limit.*resize it first"):
        load_image(tmp_path / "big.png")
    assert not decoded
    with pytest.raises(ImageError, match="megapixel"):
        load_image(np.zeros((300, 200), np.uint8))


@pytest.mark.parametrize("arr,match", [
    (np.full((10, 10, 3), np.nan, np.float32), "NaN"),
    (np.random.rand(10, 10) * 255, r"float values in \[0, 255\]|float values in \[.*\]; "),
    (np.zeros((10, 10, 5), np.uint8), r"shape \[10, 10, 5\]"),
    (np.zeros((2, 10, 10, 3), np.uint8), r"shape \[2, 10, 10, 3\]"),
    (np.zeros((0, 10), np.uint8), "empty|at least"),
    (np.zeros((10, 10), np.int64), "dtype int64"),
    (np.zeros((10, 10), np.complex64), "dtype complex64"),
])
def test_bad_arrays(arr, match):
    with pytest.raises(ImageError, match=match):
        load_image(arr)


def test_bad_types_and_tensors():
    with pytest.raises(TypeError, match="expected an image path"):
        load_image(12)
    with pytest.raises(ImageError, match=r"\[3, H, W\]"):
        resize_keep_aspect(torch.rand(1, 10, 10), 5)
    with pytest.raises(ImageError, match="dtype torch.uint8"):
        resize_keep_aspect(torch.zeros(3, 10, 10, dtype=torch.uint8), 5)
