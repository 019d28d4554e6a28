"""Text lines, fonts and rendering for the text-line reader (rnnkit.vision.textlines)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PIL")
pytest.importorskip("fontTools")

from rnnkit.vision import textlines as tl  # noqa: E402

try:
    FONTS = tl.find_fonts("train")
    HELD = {**tl.find_fonts("print"), **tl.find_fonts("handwriting")}
except tl.FontError as err:  # pragma: no cover - a machine without `make vision-data`
    pytest.skip(str(err), allow_module_level=True)


@pytest.fixture(scope="module")
def parts():
    return tl.split_lines(tl.text_lines())


def test_lines_are_real_text_of_three_to_eight_words_in_the_alphabet(parts):
    lines = tl.text_lines()
    assert len(lines) > 3000 and len(set(lines)) == len(lines)
    assert all(3 <= len(s.split()) <= 8 and len(s) <= 40 for s in lines)
    assert set("".join(lines)) <= set(tl.ALPHABET)
    assert any("Lady Susan" in s for s in lines)  # Austen's text, not a synthetic stand-in
    assert sum(map(len, parts.values())) == len(lines)


def test_split_is_by_line_hash_disjoint_and_independent_of_the_rest(parts):
    train, valid, test = (set(parts[k]) for k in ("train", "valid", "test"))
    assert not (train & valid or train & test or valid & test)
    assert 0.7 < len(train) / (len(train) + len(valid) + len(test)) < 0.9
    rng = np.random.default_rng()
    some = [parts["test"][i] for i in rng.choice(len(parts["test"]), 20, replace=False)]
    alone = tl.split_lines(some + ["a line that is new here"])
    assert set(some) <= set(alone["test"])  # a line's part does not depend on the others


def test_normalize_text_maps_typography_and_drops_the_rest():
    assert tl.normalize_text("\u201cOh\u201d\u2014she   said\u2026 caf\u00e9 \u20ac5") == \
        '"Oh"--she said... cafe 5'


def test_rendering_is_deterministic_from_the_seed():
    font = FONTS["LiberationSerif-Regular"]
    seed = int(np.random.default_rng().integers(1 << 30))
    a = tl.render_line("My dear brother", font, seed=seed)
    b = tl.render_line("My dear brother", font, seed=seed)
    c = tl.render_line("My dear brother", font, seed=seed + 1)
    assert a.dtype == np.uint8 and a.shape[0] == 32
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_the_rendered_image_is_the_label_drawn_by_pillow():
    """Reference: Pillow draws the text black on white, cropped to its ink and scaled to 32 px;
    the unaugmented rendering must be that picture (and not another line's)."""
    from PIL import Image, ImageDraw, ImageFont

    font = FONTS["DejaVuSans"]
    lines = tl.text_lines()
    rng = np.random.default_rng()
    text, other = (lines[i] for i in rng.choice(len(lines), 2, replace=False))

    def reference(s: str) -> np.ndarray:
        f = ImageFont.truetype(font, 48)
        l_, t, r, b = f.getbbox(s)
        img = Image.new("L", (r - l_ + 40, b - t + 40), 255)
        ImageDraw.Draw(img).text((20 - l_, 20 - t), s, font=f, fill=0)
        img = img.crop(Image.eval(img, lambda v: 255 - v).getbbox())
        w = round(img.width * 32 / img.height)
        return np.asarray(img.resize((w, 32), Image.BILINEAR), dtype=np.float32)

    ref = reference(text)

    def at_ref_size(img: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(img.astype(np.uint8)).resize((ref.shape[1], 32),
                                                                       Image.BILINEAR),
                          dtype=np.float32)

    ours = tl.render_line(text, font, augment=False)
    m = round(0.15 * 32 / 1.3)  # the margin: 0.15 of the ink height on each side
    inner = at_ref_size(ours[m:-m, m:-m])
    assert np.abs(inner - ref).mean() < 25
    assert np.abs(inner - at_ref_size(reference(other))).mean() > \
        np.abs(inner - ref).mean() + 10


def test_a_line_captured_small_is_softer_and_augmented_sizes_span_the_range():
    """Small print (captured at 16 px, scaled up to 32) has fewer sharp edges and more mid-grey
    pixels than the same line captured at 56 px; augmented lines draw capture sizes across
    :data:`CAPTURE_SIZES`."""
    lines = tl.text_lines()
    text = lines[int(np.random.default_rng().integers(len(lines)))]

    def edges_and_grey(size: int) -> tuple[float, float]:
        img = tl.render_line(text, FONTS["DejaVuSans"], style=tl.Style(size=size))
        g = img.astype(np.float32)
        return (float((np.abs(np.diff(g, axis=1)) > 128).mean()),
                float(((g > 64) & (g < 192)).mean()))

    (sharp_small, grey_small), (sharp_big, grey_big) = edges_and_grey(16), edges_and_grey(56)
    assert sharp_small < 0.5 * sharp_big and grey_small > 1.5 * grey_big
    lo, hi = tl.CAPTURE_SIZES
    sizes = [tl.Style.draw(np.random.default_rng(s)).size for s in range(200)]
    assert lo <= min(sizes) < lo + 3 and hi - 3 < max(sizes) <= hi


def test_dataset_items_are_reproducible_and_match_their_label(parts):
    ds = tl.TextLineDataset(parts["train"], FONTS, 50, seed=4)
    i = int(np.random.default_rng().integers(50))
    img, text, name = ds[i]
    line, font, seed = ds.spec(i)
    assert (text, name) == (line, font)
    assert np.array_equal(img, tl.render_line(text, FONTS[name], seed=seed))


def test_held_out_fonts_never_appear_in_training_batches(parts, monkeypatch):
    from rnnkit.vision import reader as rd

    assert not set(tl.TRAIN_FONTS) & set(tl.HELDOUT_PRINT + tl.HELDOUT_HANDWRITING)
    assert not set(tl.HELDOUT_PRINT) & set(tl.HELDOUT_HANDWRITING)
    used = []
    real = rd.render_line

    def spy(text, font, **kw):
        used.append(font)
        return real(text, font, **kw)

    monkeypatch.setattr(rd, "render_line", spy)
    reader = rd.TextLineReader(rd.ReaderConfig(channels=(4, 4, 4, 4), hidden_size=4,
                                               num_layers=1))
    batches = rd.RenderedBatches(parts["train"][:200], FONTS, 16, 6, seed=1,
                                 encode=reader.encode_text)
    for images, widths, targets, lengths in batches:
        assert images.shape[0] == 16 and int(widths.max()) == images.shape[-1]
        assert (reader.model.output_lengths(widths) >= lengths).all()
        for t, n in zip(targets, lengths):
            assert "".join(reader.alphabet[k] for k in t[:n]) in parts["train"][:200]
    assert len(used) == 6 * 16 and set(used) <= set(FONTS.values())
    assert not set(used) & set(HELD.values())
    assert len(set(used)) > 5  # many fonts, not one


def test_normalize_line_inverts_crops_and_refuses_non_lines():
    img = tl.render_line("sister, in the security", FONTS["DejaVuSerif"], augment=False)
    wide = np.pad(img, ((20, 20), (50, 50)), constant_values=255)
    again = tl.normalize_line(wide)
    assert again.shape[0] == 32 and abs(again.shape[1] - img.shape[1]) <= 3
    inverted = tl.normalize_line(255 - wide)
    assert np.abs(inverted.astype(int) - again.astype(int)).mean() < 2
    noisy = np.clip(wide + np.random.default_rng().normal(0, 8, wide.shape), 0, 255)
    assert abs(tl.normalize_line(noisy.astype(np.uint8)).shape[1] - img.shape[1]) <= 6
    with pytest.raises(ValueError, match="no text found"):
        tl.normalize_line(np.full((40, 100), 200, np.uint8))
    with pytest.raises(ValueError, match="not one horizontal line"):
        tl.normalize_line(np.ascontiguousarray(wide.T))
    with pytest.raises(ValueError, match="split it"):
        tl.normalize_line(np.tile(img, (1, 12)))


def test_missing_fonts_name_the_make_step():
    with pytest.raises(tl.FontError, match="make vision-data"):
        tl.find_fonts(["NoSuchFont-Regular"])
    with pytest.raises(ValueError, match="font group"):
        tl.find_fonts("script")
