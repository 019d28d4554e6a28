"""Moving digits, SSIM, the next-frame predictor (shapes, save/load, a task it must learn)
and the ``rnnkit vision video`` commands."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from rnnkit.vision.moving_digits import MovingDigitsBatches, digit_split, moving_digits
from rnnkit.vision.video import (
    NextFramePredictor,
    VideoConfig,
    blank_frame,
    copy_last,
    frame_metrics,
    ssim,
)


# -- data ------------------------------------------------------------------------------------
def test_moving_digits_is_deterministic_and_split_by_digit():
    a = moving_digits(3, split="train", seed=4)
    assert a.shape == (3, 20, 1, 64, 64) and a.dtype == torch.float32
    assert torch.equal(a, moving_digits(3, split="train", seed=4))
    assert not torch.equal(a, moving_digits(3, split="train", seed=5))
    train, test = digit_split("train"), digit_split("test")
    assert len(train) + len(test) == 5000 and 800 < len(test) < 1200
    # no held-out digit image is a training digit image
    train_keys = {d.tobytes() for d in train}
    assert not any(d.tobytes() in train_keys for d in test)


def test_moving_digits_frames_are_digits_that_move_and_bounce():
    from rnnkit.vision.moving_digits import _trajectories

    corners = _trajectories(np.random.default_rng(0), 200, 20, 36)  # [200, 20, 2]
    assert corners.min() >= 0 and corners.max() <= 36  # the digit stays on the canvas
    step = np.diff(corners, axis=1)
    speed = np.linalg.norm(step, axis=2)
    assert np.median(speed) > 2 and speed.max() <= 6  # 2-5 px per frame, rounded
    flips = (np.sign(step[:, 1:]) * np.sign(step[:, :-1]) < 0).any(axis=(1, 2))
    assert flips.mean() > 0.5  # most sequences bounce off a wall at least once
    x = moving_digits(4, seed=1, digits=1)[:, :, 0]  # [4, 20, 64, 64]
    pool = digit_split("train")
    for seq in x:
        ink = (seq > 0).sum(dim=(1, 2))
        assert (ink == ink[0]).all()  # one whole digit in every frame, never clipped
        assert any(int(ink[0]) == int((p > 0).sum()) for p in pool)
        assert float(seq.max()) <= 1.0


def test_batches_replay_from_generator_state():
    data = MovingDigitsBatches(2, 3, seed=7, frames=4)
    state = data.generator.get_state()
    first = list(data)
    assert len(first) == 3 and first[0].shape == (2, 4, 1, 64, 64)
    data.generator.set_state(state)
    assert all(torch.equal(a, b) for a, b in zip(first, data))
    assert not torch.equal(first[0], next(iter(data)))  # a new epoch draws new sequences


def test_moving_digits_bad_arguments():
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        moving_digits(1, split="valid")
    with pytest.raises(ValueError, match="size must be an integer >= 28"):
        moving_digits(1, size=20)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        moving_digits(0)


# -- SSIM ------------------------------------------------------------------------------------
def _ssim_brute(x: np.ndarray, y: np.ndarray, win: int = 11, sigma: float = 1.5,
                fg: float | None = None) -> float:
    """Wang et al.'s formula window by window, float64, no convolution (``fg``: only the
    windows where either local mean is at least ``fg``; 1 if there are none)."""
    r = np.arange(win) - (win - 1) / 2
    g = np.exp(-r ** 2 / (2 * sigma ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    vals = []
    for i in range(x.shape[0] - win + 1):
        for j in range(x.shape[1] - win + 1):
            a, b = x[i:i + win, j:j + win], y[i:i + win, j:j + win]
            ma, mb = (w * a).sum(), (w * b).sum()
            va = (w * (a - ma) ** 2).sum()
            vb = (w * (b - mb) ** 2).sum()
            cov = (w * (a - ma) * (b - mb)).sum()
            if fg is not None and ma < fg and mb < fg:
                continue
            vals.append((2 * ma * mb + c1) * (2 * cov + c2)
                        / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(vals)) if vals else 1.0


def test_ssim_equals_brute_force_float64():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 13, 15, generator=g, dtype=torch.float64)
    y = (x + 0.2 * torch.randn(3, 13, 15, generator=g, dtype=torch.float64)).clamp(0, 1)
    got = ssim(x, y)
    want = [_ssim_brute(a.numpy(), b.numpy()) for a, b in zip(x, y)]
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-10,
                               atol=1e-12)
    torch.testing.assert_close(ssim(x, x), torch.ones(3, dtype=torch.float64))
    assert float(ssim(x, 1 - x).max()) < 0.5  # inverted images are not similar


def test_foreground_ssim_equals_brute_force_and_sees_through_blank_frames():
    g = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))
    # a blob of "ink" on black, as a moving digit: most windows are empty
    x = torch.zeros(4, 40, 44, dtype=torch.float64)
    for i in range(4):
        r, c = (int(v) for v in torch.randint(0, 34, (2,), generator=g))
        x[i, r:r + 6, c:c + 5] = torch.rand(6, 5, generator=g, dtype=torch.float64) * 0.5 + 0.5
    y = (x.roll(2, -1) + 0.1 * torch.rand(4, 40, 44, generator=g, dtype=torch.float64))
    y = y.clamp(0, 1) * (torch.rand(4, 1, 1, generator=g, dtype=torch.float64) > 0.2)
    x[0] = 0.0
    y[0] = 0.0  # nothing to predict, nothing predicted: 1
    got = ssim(x, y, foreground=0.05)
    want = [_ssim_brute(a.numpy(), b.numpy(), fg=0.05) for a, b in zip(x, y)]
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-10,
                               atol=1e-12)
    assert float(got[0]) == 1.0
    blank = torch.zeros_like(x[1:])
    assert (ssim(blank, x[1:]) > 0.5).all()  # plain SSIM rewards the empty background
    assert (ssim(blank, x[1:], foreground=0.05) < 0.05).all()  # over the ink it does not


def test_ssim_and_metrics_bad_inputs():
    with pytest.raises(ValueError, match="at least 11 x 11"):
        ssim(torch.rand(5, 5), torch.rand(5, 5))
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.rand(12, 12), torch.rand(12, 13))
    with pytest.raises(ValueError, match="differ"):
        frame_metrics(torch.rand(1, 2, 1, 12, 12), torch.rand(1, 3, 1, 12, 12))


def test_frame_metrics_per_frame():
    g = torch.Generator().manual_seed(1)
    truth = torch.rand(2, 3, 1, 16, 16, generator=g)
    pred = truth.clone()
    pred[:, 2] = 1 - pred[:, 2]
    m = frame_metrics(pred, truth)
    assert m["mse"][0] == 0 and m["mse"][2] > 0.1
    assert math.isclose(m["ssim"][0], 1.0) and m["ssim"][2] < 0.5


def test_ssim_gradient_float64_gradcheck():
    # the loss's SSIM term back-propagates through the Gaussian-window statistics
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 12, 13, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 12, 13, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: ssim(a, y), (x,))


# -- the predictor ---------------------------------------------------------------------------
def _small(cell: str = "convlstm") -> NextFramePredictor:
    torch.manual_seed(0)
    return NextFramePredictor(VideoConfig(cell=cell, hidden_size=4, num_layers=2, size=32,
                                          input_frames=3, output_frames=2))


@pytest.mark.parametrize("cell", ["convlstm", "lstm"])
def test_predictor_shapes_and_save_load(cell, tmp_path):
    import rnnkit

    net = _small(cell)
    x = torch.rand(2, 3, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    p = net.predict(x)
    assert p.shape == (2, 2, 1, 32, 32) and 0 <= float(p.min()) and float(p.max()) <= 1
    path = tmp_path / "video.pt"
    net.save(path)
    back = rnnkit.load(path)
    assert isinstance(back, NextFramePredictor) and back.config == net.config
    torch.testing.assert_close(back.predict(x), p)
    from rnnkit.saving import file_kind

    assert file_kind(path) == ("rnnkit.video_predictor", 1)


def test_per_pixel_lstm_sees_no_neighbour():
    """The baseline is per patch: changing one patch's input changes only its own output."""
    net = _small("lstm")
    x = torch.rand(1, 3, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    y = x.clone()
    y[..., :4, :4] = torch.rand(1, 3, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    a, b = net.predict(x), net.predict(y)
    assert not torch.allclose(a[..., :4, :4], b[..., :4, :4])
    torch.testing.assert_close(a[..., 4:, :], b[..., 4:, :])
    torch.testing.assert_close(a[..., :4, 4:], b[..., :4, 4:])
    conv = _small("convlstm")
    assert not torch.allclose(conv.predict(x)[..., 4:8, :4], conv.predict(y)[..., 4:8, :4])


def test_predictor_bad_frames_name_the_fix():
    net = _small()
    g = torch.Generator().manual_seed(5)
    with pytest.raises(ValueError, match="RGB: convert with"):
        net.predict(torch.rand(1, 3, 3, 32, 32, generator=g))
    with pytest.raises(ValueError, match="RGBA"):
        net.predict(torch.rand(1, 3, 4, 32, 32, generator=g))
    with pytest.raises(ValueError, match="must be 32 x 32 pixels.*resize"):
        net.predict(torch.rand(1, 3, 1, 8, 8, generator=g))
    with pytest.raises(ValueError, match="unsqueeze"):
        net.predict(torch.rand(3, 1, 32, 32, generator=g))
    with pytest.raises(TypeError, match="/ 255"):
        net.predict((torch.rand(1, 3, 1, 32, 32, generator=g) * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="divide 0-255 images by 255"):
        net.predict(torch.rand(1, 3, 1, 32, 32, generator=g) * 255)
    bad = torch.rand(1, 3, 1, 32, 32, generator=g)
    bad[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        net.predict(bad)
    with pytest.raises(ValueError, match="empty"):
        net.predict(torch.rand(0, 3, 1, 32, 32))
    with pytest.raises(ValueError, match="multiple of patch"):
        VideoConfig(size=30)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        VideoConfig(kernel_size=2)


def test_foreign_and_corrupt_checkpoints(tmp_path):
    from rnnkit.commands.vision_video import _load

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable rnnkit checkpoint"):
        _load(str(junk))
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a rnnkit.video_predictor"):
        _load(str(other))


def test_convlstm_predictor_learns_a_moving_square():
    """A task the model must learn: a 4 x 4 square moving 4 px right per frame; after a
    short training the ConvLSTM's next frame must beat copying the last frame clearly."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)

    def batch(n):
        x = torch.zeros(n, 5, 1, 32, 32)
        row = torch.randint(0, 28, (n,), generator=g)
        col = torch.randint(0, 8, (n,), generator=g)
        for i in range(n):
            for t in range(5):
                c = int(col[i]) + 4 * t
                x[i, t, 0, row[i]:row[i] + 4, c:c + 4] = 1.0
        return x

    net = NextFramePredictor(VideoConfig(hidden_size=8, num_layers=1, size=32,
                                         input_frames=3, output_frames=2))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(80):
        loss = net.loss(batch(16)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    test = batch(32)
    m = frame_metrics(net.predict(test[:, :3]), test[:, 3:])
    base = frame_metrics(copy_last(test[:, :3], 2), test[:, 3:])
    # predicting the mean grey gets half of copy-last's MSE (0.0154 vs 0.031) but an SSIM
    # near 0.2: both bounds need the motion
    assert m["mse"][0] < 0.3 * base["mse"][0] and m["mse"][1] < 0.3 * base["mse"][1]
    assert m["ssim"][0] > base["ssim"][0] + 0.05


# -- CLI ---------------------------------------------------------------------------------------
def _run_cli(argv: list[str]) -> int:
    """``rnnkit vision video ...`` through this command's own parser (the other vision
    actions are not needed)."""
    import argparse

    from rnnkit.commands import vision_video

    parser = argparse.ArgumentParser(prog="rnnkit vision")
    vision_video.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_train_predict_and_refusals(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["video", "train", "--out-dir", str(run), "--steps", "2",
            "--batch-size", "2", "--hidden", "4", "--layers", "1",
            "--data.batches_per_epoch", "2", "--data.valid_sequences", "2",
            "--data.test_sequences", "2", "--no-progress", "--train.compute", "false",
            "--train.plot", "false"]
    assert _run_cli(args) == 0
    assert (run / "best.pt").exists() and (run / "last.pt").exists()
    out = capsys.readouterr().out
    assert "held-out digits" in out and "copy_last" in out
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        _run_cli(args)  # the run exists: refused without --resume / --overwrite
    with pytest.raises(ValueError, match="--hidden 4, but --hidden 8"):
        _run_cli(["video", "train", "--out-dir", str(run), "--hidden", "8", "--resume"])
    png = tmp_path / "pred.png"
    predict = ["video", "predict", str(run / "best.pt"), "--out", str(png),
               "--sequences", "2", "--score-sequences", "2"]
    assert _run_cli(predict) == 0
    from PIL import Image

    img = Image.open(png)
    assert img.mode == "L" and img.size[0] > 600 and img.size[1] > 6 * 64
    before = os.path.getmtime(png)
    with pytest.raises(FileExistsError, match="--overwrite"):
        _run_cli(predict)
    assert os.path.getmtime(png) == before  # never overwritten
    with pytest.raises(ValueError, match="not a video predictor|not a rnnkit.video_predictor"):
        _run_cli(["video", "predict", str(run / "log.jsonl"), "--out", str(tmp_path / "x.png")])


def test_ssim_weight_adds_the_ssim_term_to_the_loss():
    torch.manual_seed(3)
    batch = torch.rand(2, 5, 1, 32, 32)
    plain = _small()
    cfg = VideoConfig(**{**plain.config.__dict__, "ssim_weight": 0.7})
    net = NextFramePredictor(cfg)
    net.load_state_dict(plain.state_dict())
    net.eval(), plain.eval()
    out = net.loss(batch)
    logits = net(batch[:, :3])
    y = batch[:, 3:5]
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    want = bce + 0.7 * (1 - ssim(torch.sigmoid(logits), y).mean())
    torch.testing.assert_close(out.loss, want)
    torch.testing.assert_close(plain.loss(batch).loss, bce)
    assert "ssim" in out.metrics and "ssim" not in plain.loss(batch).metrics
    out.loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    for bad in (-0.1, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match="ssim_weight must be a number >= 0"):
            VideoConfig(ssim_weight=bad)


def test_blank_frame_baseline_scores_the_background():
    # on digits over black, the blank guess's MSE is the truth's mean square and its SSIM is
    # high (every empty window is perfect): the floor the benchmark prints beside copy-last
    seqs = moving_digits(8, split="test", seed=4, frames=6, size=64)
    x, y = seqs[:, :3], seqs[:, 3:]
    blank = blank_frame(x, 3)
    assert blank.shape == y.shape and not blank.any()
    m = frame_metrics(blank, y)
    want = y.double().pow(2).mean(dim=(0, 2, 3, 4))
    assert m["mse"] == pytest.approx(want.tolist(), rel=1e-9)
    copy = frame_metrics(copy_last(x, 3), y)
    assert m["ssim"][2] > copy["ssim"][2]  # three frames on, erasing beats copying
