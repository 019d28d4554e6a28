"""The video benchmark's peer (``benchmarks/video_keras.py``) against rnnkit: Keras 3's
``ConvLSTM2D`` with copied weights computes what ``Recurrent("convlstm")`` computes (an
implementation written independently of ours), and the Keras rebuild of
:class:`~rnnkit.vision.video.NextFramePredictor` is the same network (same predictions once it
holds the rnnkit model's weights), so the benchmark compares libraries, not architectures."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

from rnnkit import Recurrent
from rnnkit.vision.video import NextFramePredictor, VideoConfig

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported
pytest.importorskip("keras")  # the bench extra, which `make test` installs


@pytest.fixture(scope="module")
def peer():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "video_keras.py"
    spec = importlib.util.spec_from_file_location("video_keras_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.import_keras()
    return module


@pytest.mark.parametrize("channels,hidden,kernel", [(3, 5, 3), (2, 4, 5)])
def test_keras_convlstm2d_with_copied_weights_matches_ours(peer, channels, hidden, kernel):
    keras = peer.import_keras()
    ours = Recurrent("convlstm", channels, hidden, kernel_size=kernel)
    theirs = keras.layers.ConvLSTM2D(hidden, kernel, padding="same", return_sequences=True)
    x = torch.randn(2, 6, channels, 7, 9, requires_grad=True)
    x_last = x.detach().permute(0, 1, 3, 4, 2).contiguous().requires_grad_()
    theirs.build(tuple(x_last.shape))
    peer.copy_weights(ours, theirs)
    out, _ = ours(x)
    ref = theirs(x_last)
    torch.testing.assert_close(ref.permute(0, 1, 4, 2, 3), out, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(out)  # a random cotangent, not a sum: every output counts
    (out * weights).sum().backward()
    (ref * weights.permute(0, 1, 3, 4, 2)).sum().backward()
    torch.testing.assert_close(x_last.grad.permute(0, 1, 4, 2, 3), x.grad, atol=1e-5,
                               rtol=1e-5)


def test_copy_refuses_what_keras_cannot_hold(peer):
    keras = peer.import_keras()
    layer = keras.layers.ConvLSTM2D(4, 3, padding="same", return_sequences=True)
    layer.build((1, 2, 5, 5, 3))
    with pytest.raises(ValueError, match="no peepholes"):
        peer.copy_weights(Recurrent("convlstm", 3, 4, kernel_size=3, peephole=True), layer)


def test_the_keras_rebuild_is_rnnkits_network(peer):
    cfg = VideoConfig(cell="convlstm", hidden_size=4, num_layers=2, kernel_size=3, size=16)
    net = NextFramePredictor(cfg)
    with torch.no_grad():  # move every parameter off its initial value
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    keras_net = peer.KerasPredictor(cfg, seed=1)
    assert keras_net.parameters() == sum(p.numel() for p in net.parameters())
    frames = torch.rand(3, 10, 1, 16, 16)
    before = keras_net.predict(frames)
    keras_net.copy_from(net)
    after = keras_net.predict(frames)
    torch.testing.assert_close(after, net.predict(frames), atol=1e-5, rtol=1e-5)
    assert (before - after).abs().max() > 1e-3  # the copy changed what Keras predicts
