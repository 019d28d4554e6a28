r"""Keras 3 ``ConvLSTM2D`` (torch backend): the ConvLSTM a user would pick instead, beside
rnnkit's, for ``benchmarks/vision_video.py``.

PyTorch has no ConvLSTM; Keras has ``keras.layers.ConvLSTM2D``. With ``KERAS_BACKEND=torch``
it runs on the same torch build, threads and tensors as rnnkit, so the two can be timed in one
process and trained under one budget. Two things here:

* :func:`layer_speed` — one layer each way, same shapes and **the same weights** (copied by
  :func:`copy_weights`; outputs and input gradients are checked equal before anything is
  timed): median time of a forward pass (no grad) and of forward + backward, interleaved, and
  their ratio. Keras reads ``[B, T, H, W, C]`` (channels last, its default), rnnkit ``[B, T,
  C, H, W]``; each gets its own layout, untimed.
* :class:`KerasPredictor` — rnnkit's encoder-forecaster (:class:`~rnnkit.vision.video.
  NextFramePredictor`: ``p x p`` patches, ``L`` ConvLSTM encoder layers whose final states
  start ``L`` forecaster layers reading a zero map, a 1 x 1 convolution over the forecaster
  outputs of every layer, the per-pixel cross-entropy) built from Keras layers and trained the
  way Keras users train: ``model.compile(Adam(lr, global_clipnorm=1.0), BinaryCrossentropy)``
  and ``model.fit`` on fresh moving-digit batches of the training digits (the same stream),
  validating on the same sequences after every 50 batches, stopped by a wall-clock callback.
  The optimisation is rnnkit's Trainer default (Adam = AdamW without weight decay, epsilon
  1e-8, the global gradient norm clipped to 1, a constant learning rate); the head's bias
  starts at logit(0.05) in both. The initial weights are each library's own: Keras's Glorot
  uniform kernels, orthogonal recurrent kernels and zero biases with the forget gate's at 1
  (``unit_forget_bias``), rnnkit's uniform(+-1/sqrt(H k^2)) weights and biases with +1 on
  the forget gate.

Needs ``keras`` (the ``bench`` extra); ``import_keras`` says how to get it.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from rnnkit import Recurrent
from rnnkit.vision.moving_digits import MovingDigitsBatches, moving_digits
from rnnkit.vision.video import VideoConfig, check_frames

__all__ = ["KerasPredictor", "copy_weights", "import_keras", "layer_speed"]


def import_keras() -> Any:
    """``keras`` on the torch backend, or an error naming the fix."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as exc:
        raise ImportError("Keras is not installed; pip install -c constraints.txt -e "
                          "'.[bench]' (or pip install keras)") from exc
    if keras.backend.backend() != "torch":
        raise RuntimeError(f"Keras runs on its {keras.backend.backend()!r} backend; set "
                           f"KERAS_BACKEND=torch before anything imports keras")
    return keras


def copy_weights(rnn: Recurrent, layer: Any) -> None:
    """Give a built Keras ``ConvLSTM2D`` the weights of a one-layer ``Recurrent("convlstm")``.

    rnnkit: ``weight_ih [4H, C, k, k]``, ``weight_hh [4H, H, k, k]``, ``bias_ih [4H]``, gates
    ``i, f, g, o``; Keras: ``kernel [k, k, C, 4H]``, ``recurrent_kernel [k, k, H, 4H]``,
    ``bias [4H]``, gates ``i, f, c, o`` (the same order). Both convolve by cross-correlation
    with 'same' padding and use sigmoid gates and tanh."""
    (cell,) = rnn.cells
    if cell.peephole or cell.bias_ih is None:
        raise ValueError("Keras ConvLSTM2D has no peepholes and needs a bias: copy from "
                         "Recurrent('convlstm', ..., peephole=False, bias=True)")
    layer.set_weights([cell.weight_ih.detach().permute(2, 3, 1, 0).numpy(),
                       cell.weight_hh.detach().permute(2, 3, 1, 0).numpy(),
                       cell.bias_ih.detach().numpy()])


def layer_speed(shapes: list[dict[str, int]], *, repeats: int = 15,
                seed: int = 0) -> list[dict[str, Any]]:
    """Per shape ``{batch, steps, channels, hidden, size, kernel}``: median milliseconds of
    rnnkit's ``Recurrent("convlstm")`` and Keras's ``ConvLSTM2D`` (same weights; outputs and
    input gradients checked equal to 1e-4 first) for inference (no grad) and forward +
    backward of the summed outputs, timed alternately ``repeats`` times after one warm-up
    each."""
    keras = import_keras()
    return [_speed_row(keras, shape, repeats, seed) for shape in shapes]


def _speed_row(keras: Any, shape: dict[str, int], repeats: int, seed: int) -> dict[str, Any]:
    """One row of :func:`layer_speed`."""
    B, T, C, H, S, k = (shape[n] for n in ("batch", "steps", "channels", "hidden", "size",
                                           "kernel"))
    torch.manual_seed(seed)
    ours = Recurrent("convlstm", C, H, kernel_size=k)
    theirs = keras.layers.ConvLSTM2D(H, k, padding="same", return_sequences=True)
    x = torch.rand(B, T, C, S, S)
    x_last = x.permute(0, 1, 3, 4, 2).contiguous()  # Keras: channels last
    theirs.build(tuple(x_last.shape))
    copy_weights(ours, theirs)
    with torch.no_grad():
        a, _ = ours(x)
        b = theirs(x_last).permute(0, 1, 4, 2, 3)
    err = float((a - b).abs().max())
    if err > 1e-4:
        raise AssertionError(f"rnnkit and Keras ConvLSTMs differ by {err:.2e} with the "
                             f"same weights at {shape}: the weight copy is wrong")

    def infer_ours() -> None:
        with torch.no_grad():
            ours(x)

    def infer_theirs() -> None:
        with torch.no_grad():
            theirs(x_last)

    xg, xg_last = x.clone().requires_grad_(), x_last.clone().requires_grad_()

    def train_ours() -> None:
        ours(xg)[0].sum().backward()

    def train_theirs() -> None:
        theirs(xg_last).sum().backward()

    train_ours()
    train_theirs()
    grad_err = float((xg.grad - xg_last.grad.permute(0, 1, 4, 2, 3)).abs().max())
    if grad_err > 1e-4:
        raise AssertionError(f"rnnkit and Keras ConvLSTMs' input gradients differ by "
                             f"{grad_err:.2e} with the same weights at {shape}")
    row: dict[str, Any] = {**shape, "max_abs_diff": err, "max_grad_diff": grad_err}
    for mode, (f_ours, f_theirs) in {"inference": (infer_ours, infer_theirs),
                                     "train": (train_ours, train_theirs)}.items():
        times: dict[str, list[float]] = {"rnnkit": [], "keras": []}
        for i in range(repeats + 1):
            for name, fn in (("rnnkit", f_ours), ("keras", f_theirs)):
                t0 = time.perf_counter()
                fn()
                if i:  # the first round warms up
                    times[name].append(time.perf_counter() - t0)
        med = {n: statistics.median(v) * 1e3 for n, v in times.items()}
        row[mode] = {"rnnkit_ms": med["rnnkit"], "keras_ms": med["keras"],
                     "keras_over_rnnkit": med["keras"] / med["rnnkit"]}
    return row


class KerasPredictor:
    """rnnkit's encoder-forecaster (see the module docstring) as a Keras functional model
    reading patches ``[B, T_in, h, w, p^2]`` and giving logits ``[B, T_out, h, w, p^2]``;
    :meth:`predict` maps frames ``[B, T_in, 1, S, S]`` to probabilities ``[B, T_out, 1, S,
    S]`` as :meth:`~rnnkit.vision.video.NextFramePredictor.predict` does."""

    def __init__(self, config: VideoConfig, *, seed: int = 0) -> None:
        if config.cell != "convlstm":
            raise ValueError(f"the Keras peer is a ConvLSTM; got cell={config.cell!r}")
        if config.output_frames > config.input_frames:
            raise ValueError("the Keras peer builds its zero forecaster input from the input "
                             "frames: needs output_frames <= input_frames")
        keras = self.keras = import_keras()
        keras.utils.set_random_seed(seed)
        self.config = cfg = config
        p2, h = cfg.patch ** 2, cfg.size // cfg.patch
        layers = keras.layers
        frames = keras.Input((cfg.input_frames, h, h, p2))
        x, states = frames, []
        for layer in range(cfg.num_layers):
            x, h_t, c_t = layers.ConvLSTM2D(cfg.hidden_size, cfg.kernel_size, padding="same",
                                            return_sequences=True, return_state=True,
                                            name=f"encoder_{layer}")(x)
            states.append([h_t, c_t])
        out_frames = cfg.output_frames
        z = layers.Lambda(lambda t: keras.ops.zeros_like(t[:, :out_frames, :, :, :1]),
                          name="zero_input")(frames)  # the forecaster reads no input
        outs = []
        for layer in range(cfg.num_layers):
            z = layers.ConvLSTM2D(cfg.hidden_size, cfg.kernel_size, padding="same",
                                  return_sequences=True, name=f"forecaster_{layer}")(
                z, initial_state=states[layer])
            outs.append(z)
        y = layers.Concatenate(axis=-1)(outs) if len(outs) > 1 else outs[0]
        logit = math.log(0.05 / 0.95)  # as rnnkit's head: the mean intensity of the frames
        logits = layers.TimeDistributed(layers.Conv2D(
            p2, 1, bias_initializer=keras.initializers.Constant(logit)), name="head")(y)
        self.model = keras.Model(frames, logits)

    def copy_from(self, net: Any) -> KerasPredictor:
        """Take the weights of a :class:`~rnnkit.vision.video.NextFramePredictor` of the same
        configuration (each ConvLSTM layer by :func:`copy_weights`, the head's ``[p^2, L H, 1,
        1]`` kernel as Keras's ``[1, 1, L H, p^2]``): the two then predict the same frames,
        which is what shows this is rnnkit's network."""
        if vars(net.config) != vars(self.config):
            raise ValueError(f"configurations differ: {vars(net.config)} vs {vars(self.config)}")
        for part in ("encoder", "forecaster"):
            for layer, rnn in enumerate(getattr(net, part)):
                copy_weights(rnn, self.model.get_layer(f"{part}_{layer}"))
        head = self.model.get_layer("head").layer
        head.set_weights([net.head.weight.detach().permute(2, 3, 1, 0).numpy(),
                          net.head.bias.detach().numpy()])
        return self

    def to_patches(self, frames: torch.Tensor) -> np.ndarray:
        """``[B, T, 1, S, S] -> [B, T, S/p, S/p, p^2]`` (float32, channels last)."""
        B, T = frames.shape[:2]
        x = F.pixel_unshuffle(frames.flatten(0, 1), self.config.patch)
        return x.unflatten(0, (B, T)).permute(0, 1, 3, 4, 2).contiguous().float().numpy()

    def from_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`to_patches`: ``[B, T, h, w, p^2] -> [B, T, 1, S, S]``."""
        B, T = patches.shape[:2]
        x = patches.permute(0, 1, 4, 2, 3).flatten(0, 1)
        return F.pixel_shuffle(x, self.config.patch).unflatten(0, (B, T))

    def fit(self, *, budget: float, lr: float, batch_size: int, seed: int,
            valid_sequences: int) -> dict[str, Any]:
        """``model.fit`` on fresh training sequences (``MovingDigitsBatches``, the stream
        rnnkit's model trains on), validating after every 50 batches on ``valid_sequences``
        other sequences of training digits (as rnnkit's ``fit_predictor`` does), until
        ``budget`` seconds have passed; the last weights are kept. Returns
        ``{"train_seconds", "steps", "loss", "valid_loss"}`` (loss: mean of the last epoch)."""
        keras, cfg = self.keras, self.config
        n_in, need = cfg.input_frames, cfg.input_frames + cfg.output_frames
        data = MovingDigitsBatches(batch_size, 50, split="train", seed=seed, frames=need,
                                   size=cfg.size)

        def batches():
            while True:
                for batch in data:
                    yield self.to_patches(batch[:, :n_in]), self.to_patches(batch[:, n_in:need])

        class Budget(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.start, self.steps = time.perf_counter(), 0

            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                self.steps += 1
                if time.perf_counter() - self.start >= budget:
                    self.model.stop_training = True

        # global_clipnorm: rnnkit clips the global norm (Keras's clipnorm is per variable);
        # epsilon: torch's Adam default (Keras's is 1e-7)
        self.model.compile(optimizer=keras.optimizers.Adam(lr, global_clipnorm=1.0,
                                                           epsilon=1e-8),
                           loss=keras.losses.BinaryCrossentropy(from_logits=True))
        val = moving_digits(valid_sequences, split="train", seed=10 ** 9 + seed, frames=need,
                            size=cfg.size)  # the sequences rnnkit's fit_predictor validates on
        clock = Budget()
        hist = self.model.fit(batches(), steps_per_epoch=50, epochs=10 ** 6, verbose=0,
                              shuffle=False, callbacks=[clock], batch_size=batch_size,
                              validation_data=(self.to_patches(val[:, :n_in]),
                                               self.to_patches(val[:, n_in:need])))
        return {"train_seconds": round(time.perf_counter() - clock.start, 1),
                "steps": clock.steps, "loss": float(hist.history["loss"][-1]),
                "valid_loss": float(hist.history["val_loss"][-1])}

    @torch.no_grad()
    def predict(self, frames: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        frames = check_frames(frames, self.config.size)
        parts = []
        for chunk in frames.split(batch_size):
            logits = self.model(torch.from_numpy(self.to_patches(chunk)), training=False)
            parts.append(torch.sigmoid(self.from_patches(torch.as_tensor(logits).cpu())))
        return torch.cat(parts).to(frames.dtype)

    def parameters(self) -> int:
        return int(self.model.count_params())
