r"""Next-frame video prediction: the encoder-forecaster ConvLSTM of Shi et al. 2015 (§3.2), its
baselines, and the per-frame metrics (MSE, SSIM) it is judged by.

:class:`NextFramePredictor` reads ``T_in`` frames ``[B, T_in, 1, S, S]`` and predicts the next
``T_out``. The frames are first cut into ``p x p`` patches stacked on the channel axis
(space-to-depth, the paper's 4 x 4 patches: 64 x 64 x 1 -> 16 x 16 x 16), so the recurrence
runs at a sixteenth of the pixels:

.. math::
    \begin{aligned}
    (H^{(l)}_T, C^{(l)}_T) &= \mathrm{Encoder}^{(l)}(X^{(l)}_{1..T_{in}}) \\
    Y^{(l)}_{1..T_{out}} &= \mathrm{Forecaster}^{(l)}(Z^{(l)}_{1..T_{out}};
        \text{state} = (H^{(l)}_T, C^{(l)}_T)) \\
    \hat X_{T_{in}+k} &= \sigma\big(\mathrm{depth\_to\_space}(W_{1\times1} *
        [Y^{(1)}_k; \dots; Y^{(L)}_k])\big)
    \end{aligned}

with :math:`X^{(1)}` the patch frames, :math:`X^{(l+1)}` the outputs of encoder layer
:math:`l`, the forecaster's first layer reading no input (:math:`Z^{(1)} = 0`, one channel: the
runner needs an input, and a zero map only adds the input bias) and
:math:`Z^{(l+1)} = Y^{(l)}`. Each layer is a one-layer :class:`~rnnkit.Recurrent` over the
registered ``"convlstm"`` cell; the forecaster's layer ``l`` starts from the final state of
the encoder's layer ``l`` (the state is *copied*, the weights are not shared). Training
minimises the pixel-wise cross-entropy (``loss="bce"``, the paper's) or the MSE, plus
``ssim_weight`` :math:`\times (1 - \overline{\mathrm{SSIM}}(\hat X, X))` over the predicted
frames when that weight is not 0 (:func:`ssim`, differentiable).

The per-pixel baseline is the same network with ``cell="lstm"``: every patch position is an
independent sequence through ``Recurrent("lstm", ...)`` (weights shared by all positions), so
it sees no neighbour. :func:`copy_last` repeats the last seen frame; :func:`blank_frame`
predicts empty (black) frames, the guess that keeps every background window perfect: on
digits over black, SSIM and MSE score it above copying after a frame or two, so a model that
beats copy-last but not the blank frame has learnt to erase, not to predict.

>>> net = NextFramePredictor(VideoConfig(hidden_size=8, num_layers=1))
>>> tuple(net.predict(torch.rand(2, 10, 1, 64, 64)).shape)
(2, 10, 1, 64, 64)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..recurrent import Recurrent
from ..saving import ConfigModel
from ..train.protocol import LossOutput
from .video_config import VideoConfig

__all__ = ["NextFramePredictor", "VideoConfig", "blank_frame", "check_frames", "copy_last",
           "evaluate",
           "fit_predictor", "frame_metrics", "parameter_count", "ssim"]

def check_frames(frames: Any, size: int, name: str = "frames") -> Tensor:
    """``frames`` as a batch ``float [B, T, 1, S, S]`` in ``[0, 1]``, or an error naming the
    problem and the fix (wrong rank, colour or alpha channels, size, dtype, NaN, range)."""
    if not isinstance(frames, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [B, T, 1, {size}, {size}], got "
                        f"{type(frames).__name__}")
    shape = list(frames.shape)
    if frames.dim() != 5:
        raise ValueError(f"{name} must have shape [B, T, 1, {size}, {size}] (a batch of "
                         f"grayscale frame sequences), got {shape}; one sequence needs "
                         f"frames.unsqueeze(0)")
    if 0 in shape[:2]:
        raise ValueError(f"{name} {shape} is empty; give at least one sequence of one frame")
    if shape[2] != 1:
        fix = {3: "RGB: convert with frames.mean(2, keepdim=True)",
               4: "RGBA: drop alpha and average the colours, frames[:, :, :3].mean(2, "
                  "keepdim=True)"}.get(shape[2], "give one grayscale channel")
        raise ValueError(f"{name} must be grayscale [B, T, 1, {size}, {size}], got "
                         f"{shape[2]} channels ({fix})")
    if shape[3:] != [size, size]:
        raise ValueError(f"{name} must be {size} x {size} pixels (the model's size), got "
                         f"{shape[3]} x {shape[4]}; resize the frames to {size} x {size}")
    if not frames.is_floating_point():
        if frames.dtype == torch.uint8:
            raise TypeError(f"{name} are uint8; scale them to [0, 1] with frames.float() / 255")
        raise TypeError(f"{name} must be floating point in [0, 1], got {frames.dtype}")
    if not bool(torch.isfinite(frames).all()):
        raise ValueError(f"{name} contain NaN or infinite values; clean them first")
    lo, hi = float(frames.min()), float(frames.max())
    if lo < 0 or hi > 1:
        raise ValueError(f"{name} must lie in [0, 1] (intensities), got values from {lo:g} to "
                         f"{hi:g}; divide 0-255 images by 255")
    return frames


class NextFramePredictor(ConfigModel, nn.Module):
    """Encoder-forecaster next-frame predictor (see the module docstring for the equations).

    Shapes: :meth:`forward` ``[B, T_in, 1, S, S] -> logits [B, T_out, 1, S, S]``;
    :meth:`predict` gives probabilities (intensities in ``[0, 1]``); :meth:`loss` takes a
    batch ``[B, >= T_in + T_out, 1, S, S]`` of whole sequences (the Trainer's protocol).
    Parameters: the ``Recurrent`` layers ``encoder.l`` and ``forecaster.l`` and the 1 x 1
    output convolution ``head`` (``[p^2, L * hidden, 1, 1]``), in the cells' and torch's
    default initializations except for two biases (:meth:`_init_biases`).
    """

    KIND: ClassVar[str] = "rnnkit.video_predictor"
    VERSION: ClassVar[int] = 1
    TASK: ClassVar[str] = "video_predictor"
    CONFIG: ClassVar[type] = VideoConfig
    MAKE: ClassVar[str] = "it is not a video predictor (make one with `rnnkit vision video train`)"
    item_name = "sequences"

    def __init__(self, config: VideoConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config if config is not None else VideoConfig()
        if not isinstance(cfg, VideoConfig):
            raise TypeError(f"config must be a VideoConfig, got {type(cfg).__name__}")
        p2 = cfg.patch ** 2
        opts = {"kernel_size": cfg.kernel_size} if cfg.cell == "convlstm" else {}
        self.encoder = nn.ModuleList(
            Recurrent(cfg.cell, p2 if layer == 0 else cfg.hidden_size, cfg.hidden_size, **opts)
            for layer in range(cfg.num_layers))
        self.forecaster = nn.ModuleList(
            Recurrent(cfg.cell, 1 if layer == 0 else cfg.hidden_size, cfg.hidden_size, **opts)
            for layer in range(cfg.num_layers))
        self.head = nn.Conv2d(cfg.num_layers * cfg.hidden_size, p2, 1)
        self._init_biases()

    @torch.no_grad()
    def _init_biases(self) -> None:
        """Forget-gate biases +1 (Jozefowicz et al. 2015: remember by default) and the head's
        bias at logit(0.05), the mean intensity of moving-digit frames: without them
        training first sits on the "predict the mean grey" plateau for hundreds of steps
        (measured: a 4 x 4 square moving 4 px per frame, 200 steps, next-frame MSE 0.0154
        -> 0.0008; copy-last 0.031)."""
        H = self.config.hidden_size
        for rnn in (*self.encoder, *self.forecaster):
            for cell in rnn.cells:
                cell.bias_ih[H:2 * H] += 1.0  # gate order i, f, g, o
        self.head.bias.fill_(math.log(0.05 / 0.95))

    # -- the network -------------------------------------------------------------------------
    def _layer(self, rnn: Recurrent, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """``x [B, T, C, h, w]`` through one layer -> ``out [B, T, hidden, h, w]``: directly
        for ConvLSTM, one sequence per patch position (``[B h w, T, C]``) for the LSTM."""
        if self.config.cell == "convlstm":
            return rnn(x, state)
        B, T, C, h, w = x.shape
        seq = x.permute(0, 3, 4, 1, 2).reshape(B * h * w, T, C)  # [B h w, T, C]
        out, state = rnn(seq, state)
        return out.reshape(B, h, w, T, -1).permute(0, 3, 4, 1, 2), state

    def forward(self, frames: Tensor) -> Tensor:
        """``frames [B, T_in, 1, S, S]`` (validated by :meth:`predict`) -> logits of the next
        ``T_out`` frames ``[B, T_out, 1, S, S]``."""
        cfg = self.config
        B, T = frames.shape[:2]
        x = F.pixel_unshuffle(frames.flatten(0, 1), cfg.patch)  # [B T, p^2, S/p, S/p]
        x = x.unflatten(0, (B, T))  # [B, T, p^2, h, w]
        states = []
        for rnn in self.encoder:
            x, state = self._layer(rnn, x, None)
            states.append(state)
        h, w = x.shape[-2:]
        z = x.new_zeros(B, cfg.output_frames, 1, h, w)  # the forecaster reads no input
        outs = []
        for rnn, state in zip(self.forecaster, states):
            z, _ = self._layer(rnn, z, state)  # [B, T_out, hidden, h, w]
            outs.append(z)
        y = torch.cat(outs, dim=2).flatten(0, 1)  # [B T_out, L hidden, h, w]
        logits = F.pixel_shuffle(self.head(y), cfg.patch)  # [B T_out, 1, S, S]
        return logits.unflatten(0, (B, cfg.output_frames))

    @torch.no_grad()
    def predict(self, frames: Tensor, batch_size: int = 64) -> Tensor:
        """Probabilities of the next ``T_out`` frames ``[B, T_out, 1, S, S]`` after
        ``frames [B, T, 1, S, S]`` (any ``T >= 1``; the model was trained on ``T_in``)."""
        frames = check_frames(frames, self.config.size)
        param = next(self.parameters())
        was = self.training
        self.eval()
        try:
            parts = [torch.sigmoid(self(chunk.to(param))).to(frames.dtype)
                     for chunk in frames.split(batch_size)]
        finally:
            self.train(was)
        return torch.cat(parts)

    def loss(self, batch: Tensor, state: Any = None) -> LossOutput:
        """Trainer protocol: ``batch [B, T, 1, S, S]`` with ``T >= T_in + T_out``; the first
        ``T_in`` frames are seen, the next ``T_out`` predicted. Metric ``mse`` of the
        probabilities, per pixel; ``ssim`` (mean over the predicted frames) when the loss has
        an SSIM term."""
        cfg = self.config
        need = cfg.input_frames + cfg.output_frames
        if batch.dim() != 5 or batch.shape[1] < need:
            raise ValueError(f"a training batch must be [B, T >= {need}, 1, S, S] (input_frames "
                             f"+ output_frames), got {list(batch.shape)}")
        x, y = batch[:, :cfg.input_frames], batch[:, cfg.input_frames:need]
        logits = self(x)
        prob = torch.sigmoid(logits)
        mse = F.mse_loss(prob, y)
        loss = F.binary_cross_entropy_with_logits(logits, y) if cfg.loss == "bce" else mse
        metrics = {"mse": mse.detach()}
        if cfg.ssim_weight:
            sim = ssim(prob, y).mean()
            loss = loss + cfg.ssim_weight * (1 - sim)
            metrics["ssim"] = sim.detach()
        return LossOutput(loss, None, metrics, batch.shape[0])


# -- baselines ---------------------------------------------------------------------------------
def copy_last(frames: Tensor, output_frames: int = 10) -> Tensor:
    """The last seen frame, repeated: ``[B, T, 1, S, S] -> [B, output_frames, 1, S, S]``."""
    return frames[:, -1:].expand(-1, output_frames, *frames.shape[2:]).clone()


def blank_frame(frames: Tensor, output_frames: int = 10) -> Tensor:
    """Empty (all-zero, black) frames: ``[B, T, 1, S, S] -> [B, output_frames, 1, S, S]``."""
    return frames.new_zeros(frames.shape[0], output_frames, *frames.shape[2:])


# -- metrics -----------------------------------------------------------------------------------
def _gaussian_window(size: int, sigma: float, dtype: torch.dtype) -> Tensor:
    """``[1, 1, size, size]`` normalised 2-D Gaussian (outer product of 1-D ones)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g).to(dtype)[None, None]


def ssim(x: Tensor, y: Tensor, *, data_range: float = 1.0, window: int = 11,
         sigma: float = 1.5, foreground: float | None = None) -> Tensor:
    r"""Structural similarity (Wang et al. 2004) of each image pair, averaged over the map:

    .. math::
        \mathrm{SSIM}(x, y) = \mathrm{mean}_{\text{windows}}
        \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}
             {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)}

    with Gaussian-weighted local means, variances and covariance (window 11, :math:`\sigma =
    1.5`), :math:`C_1 = (0.01 L)^2`, :math:`C_2 = (0.03 L)^2`, :math:`L` = ``data_range``, over
    the windows that fit inside the image ('valid', as Wang's reference code).

    ``foreground=t`` averages only over the windows where either image has ink, a local mean
    :math:`\mu_x \ge t` or :math:`\mu_y \ge t` (1 where neither image has any): on digits
    over black, plain SSIM is mostly empty background, which a blank prediction scores as
    perfect; over the foreground, a blank prediction scores near 0.

    ``x, y [..., H, W]`` (same shape, ``H, W >= window``) -> ``[...]``.

    >>> img = torch.rand(2, 16, 16)
    >>> ssim(img, img)
    tensor([1., 1.])
    >>> digit = torch.zeros(1, 32, 32); digit[0, 10:20, 12:16] = 1.0
    >>> round(float(ssim(torch.zeros(1, 32, 32), digit)), 2), \
    ...     round(float(ssim(torch.zeros(1, 32, 32), digit, foreground=0.05)), 2)
    (0.55, 0.0)
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim needs images of the same shape, got {list(x.shape)} and "
                         f"{list(y.shape)}")
    if x.dim() < 2 or min(x.shape[-2:]) < window:
        raise ValueError(f"ssim needs images [..., H, W] of at least {window} x {window} "
                         f"pixels (its Gaussian window), got {list(x.shape)}")
    lead = x.shape[:-2]
    dtype = x.dtype if x.is_floating_point() else torch.float32
    a = x.reshape(-1, 1, *x.shape[-2:]).to(dtype)
    b = y.reshape(-1, 1, *y.shape[-2:]).to(dtype)
    w = _gaussian_window(window, sigma, dtype).to(a.device)
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    var_a = F.conv2d(a * a, w) - mu_a ** 2
    var_b = F.conv2d(b * b, w) - mu_b ** 2
    cov = F.conv2d(a * b, w) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    smap = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / \
        ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    if foreground is None:
        return smap.mean(dim=(1, 2, 3)).reshape(lead)
    ink = ((mu_a >= foreground) | (mu_b >= foreground)).to(dtype)
    n = ink.sum(dim=(1, 2, 3))
    out = (smap * ink).sum(dim=(1, 2, 3)) / n.clamp_min(1)
    return torch.where(n > 0, out, torch.ones_like(out)).reshape(lead)


#: local mean above which a window counts as ink for ``"fg_ssim"``
FOREGROUND = 0.05


def frame_metrics(pred: Tensor, truth: Tensor) -> dict[str, list[float]]:
    """Per predicted frame ``k = 1..T``, averaged over sequences: ``"mse"`` (per pixel),
    ``"ssim"`` and ``"fg_ssim"`` (SSIM over the windows with ink in the truth or the
    prediction, :data:`FOREGROUND`). ``pred, truth [B, T, 1, S, S]`` in ``[0, 1]``."""
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {list(pred.shape)} and truth {list(truth.shape)} differ "
                         f"in shape")
    mse = (pred.double() - truth.double()).pow(2).mean(dim=(2, 3, 4)).mean(0)  # [T]
    sim = ssim(pred.double(), truth.double()).mean(dim=(0, 2))  # [B, T, 1] -> [T]
    fg = ssim(pred.double(), truth.double(), foreground=FOREGROUND).mean(dim=(0, 2))
    return {"mse": mse.tolist(), "ssim": sim.tolist(), "fg_ssim": fg.tolist()}


def evaluate(predictors: dict[str, Callable[[Tensor], Tensor]], sequences: Iterable[Tensor],
             input_frames: int = 10, output_frames: int = 10) -> dict[str, dict[str, Any]]:
    """Per-frame MSE and SSIM of each predictor (``frames [B, T_in, 1, S, S] -> [B, T_out, 1,
    S, S]``) on batches of whole ``sequences``; weighted by batch size."""
    sums: dict[str, dict[str, Tensor]] = {}
    count = 0
    for batch in sequences:
        x = batch[:, :input_frames]
        y = batch[:, input_frames:input_frames + output_frames]
        n = batch.shape[0]
        count += n
        for name, fn in predictors.items():
            m = frame_metrics(fn(x), y)
            acc = sums.setdefault(name, {k: torch.zeros(output_frames, dtype=torch.float64)
                                         for k in m})
            for k, v in m.items():
                acc[k] += torch.tensor(v, dtype=torch.float64) * n
    if not count:
        raise ValueError("no sequences to evaluate on")
    return {name: {k: (v / count).tolist() for k, v in acc.items()}
            | {f"mean_{k}": float(v.sum() / count / output_frames) for k, v in acc.items()}
            for name, acc in sums.items()}


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fit_predictor(model: NextFramePredictor, train: Any, *, batch_size: int = 16,
                  batches_per_epoch: int = 100, valid_sequences: int = 64, seed: int = 0,
                  resume: bool = False, run: dict[str, Any] | None = None,
                  stats: dict[str, Any] | None = None) -> dict[str, float]:
    """Train ``model`` with the :class:`~rnnkit.train.Trainer` (``train``: a
    :class:`~rnnkit.train.TrainConfig`; ``max_steps`` / ``max_time`` bound it) on fresh
    moving-digit sequences of the *training* digits; ``best.pt`` is chosen on
    ``valid_sequences`` other sequences of training digits (the held-out test digits take
    no part in any choice). Returns the validation metrics of the weights kept; ``stats``, when
    given, receives ``"steps"``, the optimizer steps taken."""
    from ..train import Trainer
    from .moving_digits import MovingDigitsBatches, moving_digits

    cfg = model.config
    frames = cfg.input_frames + cfg.output_frames
    data = MovingDigitsBatches(batch_size, batches_per_epoch, split="train", seed=seed,
                               frames=frames, size=cfg.size)
    val = moving_digits(valid_sequences, split="train", seed=10 ** 9 + seed, frames=frames,
                        size=cfg.size).split(batch_size)
    extra = model.extra_state() | ({"run": run} if run else {})
    trainer = Trainer(model, train, data, val_data=list(val), extra_state=extra)
    trainer.fit(resume=resume)
    if stats is not None:
        stats["steps"] = trainer.step
    metrics = trainer.best_metrics()
    model.eval()
    return metrics
