r"""A polyphonic frame model: the next piano-roll frame, one Bernoulli per pitch.

A piece is a sequence of frames :math:`v_0 \dots v_{T}`, :math:`v_t \in \{0, 1\}^P` (pitch
:math:`i` sounds in frame :math:`t`), with optional per-frame features :math:`f_t \in
\mathbb{R}^F` known in advance (beat position, fermata). The model reads frame :math:`t` with
the features of frame :math:`t + 1` (the next frame's beat position is known before its notes):

.. math::
    x_t &= W_{in} [v_t ; f_{t+1}] + b_{in} \\
    (y_t, s_t) &= \mathrm{RNN}(\mathrm{drop}(x_t), s_{t-1}) \\
    z_{t+1} &= W_o\, \mathrm{drop}(y_t) + b_o \in \mathbb{R}^P \\
    p(v_{t+1} \mid v_{\le t}, f_{\le t+1}) &= \prod_{i=1}^{P}
        \sigma(z_{t+1,i})^{v_{t+1,i}} \bigl(1 - \sigma(z_{t+1,i})\bigr)^{1 - v_{t+1,i}}

(pitches independent given the past: the RNN baseline of Boulanger-Lewandowski et al., 2012).
With ``output="nade"`` the pitches of a frame are modelled jointly, as in their RNN-NADE: a
NADE (Larochelle & Murray, 2011) whose biases are functions of the recurrent output
:math:`y_t` reads the pitches of frame :math:`t + 1` from low to high,

.. math::
    a_{t+1,i} &= W_c\, y_t + c + \textstyle\sum_{j < i} w_j\, v_{t+1,j} \in \mathbb{R}^{N},
    \qquad u_{t+1,i} = \sigma(a_{t+1,i}) \\
    p(v_{t+1,i} = 1 \mid v_{t+1,<i}, v_{\le t}) &= \sigma(z_{t+1,i}), \qquad
    z_{t+1,i} = (W_o\, \mathrm{drop}(y_t) + b_o)_i + \langle V_i, u_{t+1,i} \rangle

(``N = nade_hidden``), so a chord's notes inform each other; the loss below is unchanged with
these conditional logits, and it is still the exact negative log-likelihood. Predicting a
frame (for accuracy and at temperature 0) then decides the pitches one after another, each
on when its conditional probability exceeds 0.5.
The loss is the negative log-likelihood per frame in nats, summed over pitches and averaged
over the predicted frames :math:`v_1 \dots v_{L_b - 1}` of every sequence :math:`b`:

.. math::
    \ell_{t+1} = \sum_{i=1}^{P} \mathrm{softplus}(z_{t+1,i}) - v_{t+1,i}\, z_{t+1,i},
    \qquad \mathcal{L} = \frac{\sum_b \sum_{t=1}^{L_b - 1} \ell_t}{\sum_b (L_b - 1)}

Frame-level accuracy (Bay, Ehmann & Downie, 2009), with predictions
:math:`\hat v_{t,i} = [\sigma(z_{t,i}) > 0.5]` and the counts summed over all scored frames:
:math:`\mathrm{Acc} = \frac{TP}{TP + FP + FN}` (1 when there is nothing to find and nothing is
predicted).

Shapes: a training batch is ``{"frames": [B, T + 1, P], "features": [B, T + 1, F] (only when
F > 0), "lengths": [B]}`` (lengths count frames, at least 2 each; frames past a length are
padding and never read); logits ``[B, T, P]``.

>>> model = FrameModel(FrameModelConfig(n_pitches=6, hidden_size=8, embed_size=8))
>>> frames = (torch.rand(2, 5, 6) < 0.3).float()
>>> out = model.loss({"frames": frames, "lengths": torch.tensor([5, 3])})
>>> out.weight  # predicted frames: 4 + 2
6
>>> model.sample(frames[0, :2], steps=3, seed=0).shape
torch.Size([5, 6])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cells import State, available_cells
from ..checks import choice, non_negative_ints, positive_ints, probabilities
from ..recurrent import Recurrent
from ..train.protocol import LossOutput
from .models import MusicModel, check_features, check_lengths, shape_of

__all__ = ["FrameModel", "FrameModelConfig", "frame_accuracy"]


@dataclass
class FrameModelConfig:
    """Architecture of a :class:`FrameModel`.

    Attributes:
        n_pitches: pitches ``P`` of a frame (46 for MIDI 36..81).
        n_features: per-frame features ``F`` (0: none).
        cell: any registered cell (``"gru"``, ``"lstm"``, ...).
        embed_size: width ``E`` of the linear input projection of ``[v_t; f_{t+1}]``.
        hidden_size: recurrent state size ``H``.
        num_layers: stacked recurrent layers.
        dropout: on the projected input, between layers and before the output layer.
        backend: :class:`~rnnkit.Recurrent` backend (``"auto"`` picks the fastest).
        output: ``"independent"`` (one Bernoulli per pitch) or ``"nade"`` (the pitches of a
            frame jointly, low to high; see the module docstring).
        nade_hidden: ``N``, the NADE's hidden units (``output="nade"`` only).
    """

    n_pitches: int
    n_features: int = 0
    cell: str = "gru"
    embed_size: int = 128
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.2
    backend: str = "auto"
    output: str = "independent"
    nade_hidden: int = 64

    def __post_init__(self) -> None:
        positive_ints(n_pitches=self.n_pitches, embed_size=self.embed_size,
                      hidden_size=self.hidden_size, num_layers=self.num_layers,
                      nade_hidden=self.nade_hidden)
        choice("output", self.output, ("independent", "nade"))
        non_negative_ints(n_features=self.n_features)
        probabilities(dropout=self.dropout)
        choice("cell", self.cell, available_cells())


def frame_accuracy(tp: float, fp: float, fn: float) -> float:
    """Bay et al.'s frame-level accuracy ``TP / (TP + FP + FN)`` of counts summed over frames
    (1.0 when all three are 0: silence predicted as silence).

    >>> frame_accuracy(3, 1, 0)
    0.75
    """
    total = tp + fp + fn
    return 1.0 if total == 0 else float(tp) / float(total)


class FrameModel(MusicModel):
    """Next-frame model over piano-roll frames; see the module docstring for the equations.

    Args:
        config: the architecture (:class:`FrameModelConfig`).
    """

    KIND, VERSION, TASK, CONFIG = "rnnkit.music_frames", 1, "music_frames", FrameModelConfig
    #: what the loss weight counts (the trainer's compute record)
    item_name = "frames"

    def __init__(self, config: FrameModelConfig) -> None:
        super().__init__()
        self.config = c = config
        self.in_proj = nn.Linear(c.n_pitches + c.n_features, c.embed_size)
        self.rnn = Recurrent(c.cell, c.embed_size, c.hidden_size, num_layers=c.num_layers,
                             dropout=c.dropout, backend=c.backend)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(self.rnn.output_size, c.n_pitches)
        if c.output == "nade":
            N = c.nade_hidden
            self.nade_c = nn.Linear(self.rnn.output_size, N)      # W_c y + c
            self.nade_w = nn.Parameter(torch.randn(c.n_pitches, N) * 0.05)  # w_j: [P, N]
            self.nade_v = nn.Parameter(torch.randn(c.n_pitches, N) * 0.05)  # V_i: [P, N]

    # -- the model ---------------------------------------------------------------------------
    def forward(self, frames: Tensor, features: Tensor | None = None,
                state: State | None = None, lengths: Tensor | None = None,
                targets: Tensor | None = None) -> tuple[Tensor, State]:
        """Logits of the next frames.

        Args:
            frames: the frames read, ``v_0 .. v_{T-1}``: ``[B, T, P]`` in {0, 1}.
            features: the features of the frames *predicted*, ``f_1 .. f_T``: ``[B, T, F]``
                (required when ``n_features > 0``; a batch's ``features[:, 1:]``).
            state: recurrent state to start from (``None``: zeros).
            lengths: ``[B]`` frames read per sequence (``None``: all ``T``).
            targets: ``output="nade"``: the frames predicted, ``v_1 .. v_T`` ``[B, T, P]``
                (each pitch's logit is conditioned on the lower pitches of its frame).

        Returns:
            ``(logits [B, T, P], state)``: ``logits[:, t]`` scores frame ``t + 1``; the state
            is each sequence's after its last frame read.
        """
        frames = self._check_frames(frames, "frames")
        B, T, _ = frames.shape
        features = check_features(features, self.config.n_features, B, T, self.dtype,
                                  self.device)
        if lengths is not None:
            lengths = check_lengths(lengths, B, T)
        y, state = self.rnn(self._embed(frames, features), state, lengths)
        return self._logits(y, targets), state

    @property
    def nade(self) -> bool:
        return self.config.output == "nade"

    def _logits(self, y: Tensor, targets: Tensor | None) -> Tensor:
        """Recurrent outputs ``y [..., H]`` -> logits ``[..., P]``: independent, or the NADE's
        conditional logits given ``targets [..., P]`` (module docstring)."""
        z = self.head(self.drop(y))
        if not self.nade:
            return z
        if targets is None:
            raise ValueError("a NADE frame model scores frames given their notes: pass "
                             "targets= (the frames predicted), or use sample()")
        contrib = targets.to(z.dtype)[..., None] * self.nade_w  # [..., P, N]
        a = self.nade_c(y)[..., None, :] + torch.cumsum(contrib, -2) - contrib  # j < i only
        return z + (torch.sigmoid(a) * self.nade_v).sum(-1)

    def _decide(self, y: Tensor, temperature: float = 0.0,
                generator: torch.Generator | None = None) -> Tensor:
        """Frames from recurrent outputs ``y [N, H]`` -> ``[N, P]`` in {0, 1}: independent
        pitches (threshold at 0.5, or Bernoulli draws at ``temperature``), or the NADE's
        pitches one after another, each conditioned on those decided below it."""
        z = self.head(self.drop(y)).float()
        if not self.nade:
            if temperature == 0:
                return (z > 0).to(y.dtype)
            return torch.bernoulli(torch.sigmoid(z / temperature), generator=generator) \
                .to(y.dtype)
        a = self.nade_c(y).float()  # [N, hidden]
        out = torch.zeros_like(z)
        for i in range(z.shape[-1]):
            zi = z[:, i] + (torch.sigmoid(a) * self.nade_v[i].float()).sum(-1)
            if temperature == 0:
                on = (zi > 0).float()
            else:
                on = torch.bernoulli(torch.sigmoid(zi / temperature), generator=generator)
            out[:, i] = on
            a = a + on[:, None] * self.nade_w[i].float()
        return out.to(y.dtype)

    def _embed(self, frames: Tensor, features: Tensor | None) -> Tensor:
        x = frames if features is None else torch.cat([frames, features], -1)
        return self.drop(self.in_proj(x))

    def _step(self, frame: Tensor, features: Tensor | None, state: State | None
              ) -> tuple[Tensor, State]:
        """One frame: ``frame [N, P]``, features of the next frame ``[N, F]`` ->
        ``(recurrent output [N, H] for the next frame, state)``; checked inputs, one
        recurrent step."""
        y, state = self.rnn.step(self._embed(frame, features), state)
        return y, state

    def _split(self, batch: Any) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
        """A batch -> ``(inputs [B, T, P], targets [B, T, P], next features, lengths - 1)``."""
        if not isinstance(batch, dict) or "frames" not in batch:
            raise TypeError(f"a FrameModel batch is a dict {{'frames': [B, T + 1, P], "
                            f"'features': [B, T + 1, F] (optional), 'lengths': [B]}}, got "
                            f"{sorted(batch) if isinstance(batch, dict) else type(batch).__name__}")
        frames = self._check_frames(batch["frames"], "batch['frames']")
        B, T1, _ = frames.shape
        if T1 < 2:
            raise ValueError(f"batch['frames'] has {T1} frame(s) per sequence; at least 2 are "
                             f"needed (one to read, one to predict)")
        lengths = check_lengths(batch.get("lengths"), B, T1, minimum=2)
        features = check_features(batch.get("features"), self.config.n_features, B, T1,
                                  self.dtype, self.device)
        next_features = features[:, 1:] if features is not None else None
        return frames[:, :-1], frames[:, 1:], next_features, lengths - 1

    def _scores(self, batch: Any, state: State | None = None
                ) -> tuple[Tensor, Tensor, Tensor, Tensor, State]:
        """``(nats per frame [B, T], scored mask [B, T], logits, targets, state)``."""
        inputs, targets, features, n = self._split(batch)
        logits, state = self(inputs, features, state, n, targets=targets)
        nats = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)
        mask = torch.arange(inputs.shape[1], device=logits.device)[None, :] < \
            n.to(logits.device)[:, None]
        return nats, mask, logits, targets, state

    def loss(self, batch: Any, state: State | None = None) -> LossOutput:
        """Mean negative log-likelihood per predicted frame (nats, summed over pitches) of a
        batch ``{"frames", "features" (optional), "lengths"}``; metric ``frame_accuracy``
        (exact within the batch; the trainer's batch-weighted mean of it approximates the
        corpus value that :meth:`evaluate` gives). Returns the final recurrent state (for
        streams of chunks; the trainer drops it for independent pieces)."""
        nats, mask, logits, targets, state = self._scores(batch, state)
        count = int(mask.sum())
        loss = (nats * mask).sum() / count
        with torch.no_grad():
            tp, fp, fn = _counts(self._predicted(batch, logits), targets, mask)
        return LossOutput(loss, state, {"frame_accuracy": frame_accuracy(tp, fp, fn)}, count)

    def _predicted(self, batch: Any, logits: Tensor) -> Tensor:
        """The predicted frames ``[B, T, P]`` in {0, 1} (independent: logits above 0; NADE:
        decided pitch by pitch from the recurrent outputs, not from the true lower notes)."""
        if not self.nade:
            return (logits > 0).to(logits.dtype)
        inputs, _, features, n = self._split(batch)
        y, _ = self.rnn(self._embed(inputs, features), None, n)
        B, T, H = y.shape
        return self._decide(y.reshape(B * T, H)).reshape(B, T, -1)

    # -- evaluation --------------------------------------------------------------------------
    def frame_nll(self, frames: Tensor, features: Tensor | None = None,
                  lengths: Tensor | None = None) -> tuple[float, int]:
        """``(total negative log-likelihood in nats, frames scored)`` of whole pieces
        ``frames [B, T + 1, P]`` (or one piece ``[T + 1, P]``): every frame after the first of
        each piece, in eval mode, summed in float64. ``total / frames`` is the loss."""
        out = self.evaluate(frames, features, lengths)
        return out["nats"], out["frames"]

    def evaluate(self, frames: Tensor, features: Tensor | None = None,
                 lengths: Tensor | None = None) -> dict[str, Any]:
        """Exact scores of whole pieces (as :meth:`frame_nll`): ``nats`` (total),
        ``frames`` (scored), ``nll_per_frame``, ``frame_accuracy`` (Bay et al., counts summed
        over every scored frame) and the counts ``tp``, ``fp``, ``fn``."""
        if isinstance(frames, Tensor) and frames.dim() == 2:
            frames = frames.unsqueeze(0)
            features = features.unsqueeze(0) if isinstance(features, Tensor) else features
            if lengths is not None:
                lengths = torch.as_tensor(lengths).reshape(1)
        batch = {"frames": frames, "lengths": lengths}
        if features is not None:
            batch["features"] = features
        with self.evaluating():
            nats, mask, logits, targets, _ = self._scores(batch)
            total = float((nats.double() * mask).sum())
            count = int(mask.sum())
            tp, fp, fn = _counts(self._predicted(batch, logits), targets, mask)
        return {"nats": total, "frames": count, "nll_per_frame": total / count,
                "frame_accuracy": frame_accuracy(tp, fp, fn), "tp": tp, "fp": fp, "fn": fn}

    # -- generation --------------------------------------------------------------------------
    def sample(self, prime: Tensor, steps: int, temperature: float = 1.0,
               features: Tensor | None = None, seed: int | None = None,
               max_voices: int | None = None) -> Tensor:
        r"""Continue ``prime [T0, P]`` (``T0 >= 1``) by ``steps`` frames: ``[T0 + steps, P]``.

        Each new frame draws every pitch independently,
        :math:`v_{t,i} \sim \mathrm{Bernoulli}(\sigma(z_{t,i} / \tau))`; ``temperature``
        :math:`\tau = 0` thresholds instead (:math:`v_{t,i} = [z_{t,i} > 0]`, i.e.
        probability above 0.5). The prime is read in one call, then each frame costs one
        recurrent step (the state is carried).

        Args:
            features: ``[T0 + steps, F]``, the features of every frame, prime included
                (required when ``n_features > 0``).
            seed: makes the draws reproducible (a private generator; the global RNG is
                untouched).
            max_voices: at most this many pitches per new frame: of those drawn, the most
                probable are kept.
        """
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or \
                not 0 <= temperature < float("inf"):
            raise ValueError(f"temperature must be a finite number >= 0 (0 = threshold at "
                             f"0.5), got {temperature!r}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
        if max_voices is not None:
            positive_ints(max_voices=max_voices)
        if not isinstance(prime, Tensor) or prime.dim() != 2:
            raise ValueError(f"prime must be frames of shape [T0, {self.config.n_pitches}], got "
                             f"{shape_of(prime)}; for a batch, sample each piece in turn")
        prime = self._check_frames(prime.unsqueeze(0), "prime")[0]  # [T0, P]
        T0, total = prime.shape[0], prime.shape[0] + steps
        if features is not None and isinstance(features, Tensor) and features.dim() == 2:
            features = features.unsqueeze(0)
        features = check_features(features, self.config.n_features, 1, total, self.dtype,
                                  self.device)
        feats = features[0] if features is not None else None  # [T0 + steps, F]
        out = [prime]
        if steps == 0:
            return prime.clone()
        generator = None
        if seed is not None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(int(seed))
        with self.evaluating():
            y, state = self.rnn(self._embed(prime[None], feats[None, 1: T0 + 1]
                                            if feats is not None else None))
            y = y[:, -1]  # [1, H]: predicts frame T0
            for t in range(T0, total):
                frame = self._draw(y, temperature, generator, max_voices)  # [1, P]
                out.append(frame)
                if t + 1 < total:
                    y, state = self._step(frame, feats[None, t + 1]
                                          if feats is not None else None, state)
        return torch.cat(out, 0)

    def _draw(self, y: Tensor, temperature: float, generator: torch.Generator | None,
              max_voices: int | None) -> Tensor:
        """One frame from the recurrent output ``y [1, H]`` -> ``[1, P]`` in {0, 1}."""
        on = self._decide(y, temperature, generator).bool()
        if max_voices is not None and int(on.sum()) > max_voices:
            z = self._logits(y, on.to(y.dtype)).float()
            keep = z.masked_fill(~on, float("-inf")).topk(max_voices, -1).indices
            on = torch.zeros_like(on).scatter_(-1, keep, True)
        return on.to(self.dtype)

    # -- checks ------------------------------------------------------------------------------
    def _check_frames(self, frames: Any, what: str) -> Tensor:
        P = self.config.n_pitches
        if not isinstance(frames, Tensor) or frames.dim() != 3 or frames.shape[-1] != P:
            raise ValueError(f"expected {what} of shape [B, T, {P}] (multi-hot piano-roll "
                             f"frames over the model's {P} pitches), got {shape_of(frames)}")
        if frames.shape[0] == 0 or frames.shape[1] == 0:
            raise ValueError(f"{what} is empty (shape {list(frames.shape)}); give at least one "
                             f"sequence of at least one frame")
        if frames.dtype == torch.bool:
            frames = frames.to(self.dtype)
        if not frames.is_floating_point():
            raise TypeError(f"{what} must be a float tensor of 0s and 1s, got {frames.dtype}; "
                            f"convert it with .float()")
        if bool(torch.isnan(frames).any()):
            raise ValueError(f"{what} contains NaN; piano-roll frames hold 0 or 1 per pitch")
        if not bool(((frames == 0) | (frames == 1)).all()):
            bad = frames[(frames != 0) & (frames != 1)][0].item()
            raise ValueError(f"{what} must hold only 0 and 1 (multi-hot frames), found "
                             f"{bad!r}; binarise it, e.g. (frames > 0).float()")
        return frames.to(device=self.device, dtype=self.dtype)


def _counts(logits: Tensor, targets: Tensor, mask: Tensor) -> tuple[int, int, int]:
    """``(TP, FP, FN)`` of ``logits > 0`` against ``targets`` over the frames in ``mask``."""
    pred, gold = logits > 0, targets > 0.5
    m = mask[..., None]
    tp = int((pred & gold & m).sum())
    fp = int((pred & ~gold & m).sum())
    fn = int((~pred & gold & m).sum())
    return tp, fp, fn
