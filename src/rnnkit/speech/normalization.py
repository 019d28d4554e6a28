r"""What happens to log-mel frames ``[B, T, F]`` after extraction: per-utterance and global
(training-set) normalisation, and SpecAugment masks for training. Pure torch; padded frames
(past ``lengths``) are never used for statistics and never masked.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["FeatureStats", "normalize_utterance", "spec_augment"]


def _valid_mask(feats: Tensor, lengths: Tensor | None) -> Tensor:
    """``[B, T, 1]`` bool, True on frames ``t < lengths[b]``."""
    B, T = feats.shape[0], feats.shape[1]
    if lengths is None:
        return torch.ones(B, T, 1, dtype=torch.bool, device=feats.device)
    lengths = torch.as_tensor(lengths, device=feats.device)
    if lengths.shape != (B,):
        raise ValueError(f"lengths must be [B] = [{B}], got shape {tuple(lengths.shape)}")
    if (lengths < 0).any() or (lengths > T).any():
        raise ValueError(f"lengths must be in [0, T={T}], got {lengths.tolist()}; pass frame "
                         "counts (LogMel.num_frames(sample_lengths)), not sample counts")
    return (torch.arange(T, device=feats.device)[None, :] < lengths[:, None])[..., None]


def _check_feats(feats: Tensor) -> Tensor:
    if feats.dim() == 2:
        return feats[None]
    if feats.dim() != 3:
        raise ValueError(f"features must be [B, T, F] or [T, F], got shape {tuple(feats.shape)}")
    return feats


def normalize_utterance(feats: Tensor, lengths: Tensor | None = None,
                        eps: float = 1e-5) -> Tensor:
    r"""Per-utterance, per-feature mean/variance normalisation (CMVN) over valid frames.

    .. math::
        \hat F_{bt} = \frac{F_{bt} - \mu_b}{\max(\sigma_b, \varepsilon)}, \quad
        \mu_b = \frac{1}{L_b}\sum_{t < L_b} F_{bt}, \quad
        \sigma_b^2 = \frac{1}{L_b}\sum_{t < L_b} (F_{bt} - \mu_b)^2

    ``feats`` ``[B, T, F]`` (or ``[T, F]``), ``lengths`` ``[B]`` frames (default: all ``T``).
    Padding frames (:math:`t \ge L_b`) come out 0. Needs the whole utterance: for streaming use
    :class:`FeatureStats`.
    """
    x = _check_feats(feats)
    mask = _valid_mask(x, lengths).to(x.dtype)                      # [B, T, 1]
    count = mask.sum(dim=1, keepdim=True).clamp_min(1.0)            # [B, 1, 1]
    mean = (x * mask).sum(dim=1, keepdim=True) / count
    centred = (x - mean) * mask
    # second pass: removes the rounding error of the first mean, which matters when the spread
    # is tiny next to the mean (a short, nearly constant utterance in float32)
    centred = (centred - centred.sum(dim=1, keepdim=True) / count) * mask
    var = centred.square().sum(dim=1, keepdim=True) / count
    out = centred / var.sqrt().clamp_min(eps)
    return out if feats.dim() == 3 else out[0]


class FeatureStats:
    r"""Global per-feature mean and standard deviation over a training set, for normalising
    without looking at the rest of an utterance (streaming-safe: each frame is normalised on
    its own, :math:`\hat F_t = (F_t - \mu) / \sigma`).

    Accumulated in float64 with Chan et al.'s parallel update (count, mean, sum of squared
    deviations :math:`M_2`), so batches can come in any order and accumulators from several
    workers :meth:`merge`. ``std`` is the population standard deviation
    :math:`\sqrt{M_2 / n}`, floored at ``eps``.

    >>> import torch
    >>> stats = FeatureStats()
    >>> _ = stats.update(torch.tensor([[[1.0], [3.0], [99.0]]]), lengths=torch.tensor([2]))
    >>> stats.mean, stats.std
    (tensor([2.]), tensor([1.]))
    >>> FeatureStats.from_state(stats.state()).normalize(torch.tensor([[3.0]]))
    tensor([[1.]])
    """

    def __init__(self, eps: float = 1e-5) -> None:
        self.eps = eps
        self.count = 0
        self._mean: Tensor | None = None     # float64 [F]
        self._m2: Tensor | None = None       # float64 [F]

    def update(self, feats: Tensor, lengths: Tensor | None = None) -> FeatureStats:
        """Add the valid frames of ``feats`` ``[B, T, F]`` (or ``[T, F]``); ``lengths`` ``[B]``
        in frames (default: all)."""
        x = _check_feats(feats).detach()
        mask = _valid_mask(x, lengths)[..., 0]
        frames = x[mask].to(device="cpu", dtype=torch.float64)          # [n, F]
        if self._mean is not None and frames.shape[-1] != self._mean.shape[0]:
            raise ValueError(f"features have {frames.shape[-1]} dims but earlier batches had "
                             f"{self._mean.shape[0]}; use one FeatureStats per feature type")
        n = frames.shape[0]
        if n == 0:
            return self
        if not torch.isfinite(frames).all():
            raise ValueError("features contain NaN/inf; check the audio (check_audio) and that "
                             "LogMel's eps > 0")
        mean = frames.mean(dim=0)
        m2 = (frames - mean).square().sum(dim=0)
        self._combine(n, mean, m2)
        return self

    def _combine(self, n: int, mean: Tensor, m2: Tensor) -> None:
        if self._mean is None or self._m2 is None:
            self.count, self._mean, self._m2 = n, mean.clone(), m2.clone()
            return
        total = self.count + n
        delta = mean - self._mean
        self._mean = self._mean + delta * (n / total)
        self._m2 = self._m2 + m2 + delta.square() * (self.count * n / total)
        self.count = total

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Fold in another accumulator (e.g. from another data-loader worker)."""
        if other._mean is not None and other._m2 is not None:
            self._combine(other.count, other._mean, other._m2)
        return self

    def _need(self) -> tuple[Tensor, Tensor]:
        if self._mean is None or self._m2 is None:
            raise RuntimeError("FeatureStats has seen no frames; call update(feats, lengths) on "
                               "the training set first")
        return self._mean, self._m2

    @property
    def mean(self) -> Tensor:
        """``[F]`` float32."""
        return self._need()[0].to(torch.float32)

    @property
    def std(self) -> Tensor:
        """``[F]`` float32, population std floored at ``eps``."""
        _, m2 = self._need()
        return (m2 / self.count).sqrt().clamp_min(self.eps).to(torch.float32)

    def normalize(self, feats: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(feats - mean) / std`` on ``[..., F]``; with ``lengths`` (and ``[B, T, F]``
        input) padding frames are set to 0."""
        mean, std = self.mean.to(feats), self.std.to(feats)
        out = (feats - mean) / std
        if lengths is not None:
            out = out * _valid_mask(_check_feats(out), lengths).to(out.dtype)
            out = out if feats.dim() == 3 else out[0]
        return out

    def state(self) -> dict[str, Any]:
        """Plain, JSON-serialisable state (``count``, ``mean``, ``m2``, ``eps``)."""
        mean, m2 = self._need()
        return {"count": self.count, "mean": mean.tolist(), "m2": m2.tolist(), "eps": self.eps}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureStats:
        """Rebuild from :meth:`state`."""
        try:
            stats = cls(eps=float(state.get("eps", 1e-5)))
            stats.count = int(state["count"])
            stats._mean = torch.tensor(state["mean"], dtype=torch.float64)
            stats._m2 = torch.tensor(state["m2"], dtype=torch.float64)
        except KeyError as err:
            raise ValueError(f"FeatureStats state is missing {err}; pass what state() returned")\
                from err
        return stats


def spec_augment(feats: Tensor, lengths: Tensor | None = None, freq_masks: int = 2,
                 freq_width: int = 15, time_masks: int = 2, time_width: float | int = 0.05,
                 generator: torch.Generator | None = None, mask_value: float = 0.0) -> Tensor:
    r"""SpecAugment's frequency and time masking (Park et al., 2019), without time warping.

    For each utterance :math:`b`, independently:

    - ``freq_masks`` times: width :math:`f \sim U\{0, \dots, \text{freq\_width}\}`, start
      :math:`f_0 \sim U\{0, \dots, F - f\}`; channels :math:`[f_0, f_0 + f)` are masked;
    - ``time_masks`` times: width :math:`t \sim U\{0, \dots, T_b\}`, start
      :math:`t_0 \sim U\{0, \dots, L_b - t\}`; frames :math:`[t_0, t_0 + t)` are masked, where
      :math:`L_b` is the valid length and :math:`T_b = \lfloor \text{time\_width} \cdot L_b
      \rfloor` for a float ``time_width`` (a fraction of the length, Park et al.'s upper
      bound :math:`p`), or :math:`\min(\text{time\_width}, L_b)` frames for an int.

    Masked entries are set to ``mask_value`` (0), which is the mean once features are
    normalised (:func:`normalize_utterance` / :class:`FeatureStats`): apply it after
    normalisation. Frames at or past ``lengths[b]`` are never touched. ``feats`` ``[B, T, F]``
    (or ``[T, F]``) is not modified; a masked copy is returned. All randomness comes from
    ``generator``, so a seeded generator gives the same masks.
    """
    x = _check_feats(feats)
    B, T, F = x.shape
    valid = _valid_mask(x, lengths)[..., 0]                                   # [B, T]
    lens = valid.sum(dim=1).to(torch.float64).cpu()                           # [B]
    if freq_masks < 0 or time_masks < 0 or freq_width < 0 or time_width < 0:
        raise ValueError("mask counts and widths must be >= 0")
    if isinstance(time_width, float) and time_width > 1.0:
        raise ValueError(f"a float time_width is a fraction of the length and must be <= 1, got "
                         f"{time_width}; pass an int for a width in frames")
    dev = generator.device if generator is not None else torch.device("cpu")

    def draw(n: int) -> Tensor:
        return torch.rand(B, n, generator=generator, dtype=torch.float64, device=dev).cpu()

    def spans(n: int, max_width: Tensor, size: Tensor) -> tuple[Tensor, Tensor]:
        """``n`` masks per row: widths in [0, max_width], starts in [0, size - width]."""
        width = torch.minimum((draw(n) * (max_width[:, None] + 1)).floor(), max_width[:, None])
        room = size[:, None] - width
        start = torch.minimum((draw(n) * (room + 1)).floor(), room)
        return start.long().to(x.device), (start + width).long().to(x.device)

    mask = torch.zeros(B, T, F, dtype=torch.bool, device=x.device)
    if freq_masks:
        f_max = torch.full((B,), float(min(freq_width, F)), dtype=torch.float64)
        lo, hi = spans(freq_masks, f_max, torch.full((B,), float(F), dtype=torch.float64))
        ch = torch.arange(F, device=x.device)
        fmask = ((ch >= lo[..., None]) & (ch < hi[..., None])).any(dim=1)     # [B, F]
        mask |= fmask[:, None, :]
    if time_masks:
        if isinstance(time_width, float):
            t_max = (time_width * lens).floor()
        else:
            t_max = torch.minimum(torch.full_like(lens, float(time_width)), lens)
        lo, hi = spans(time_masks, t_max, lens)
        fr = torch.arange(T, device=x.device)
        tmask = ((fr >= lo[..., None]) & (fr < hi[..., None])).any(dim=1)     # [B, T]
        mask |= tmask[:, :, None]
    mask &= valid[:, :, None]
    out = x.masked_fill(mask, mask_value)
    return out if feats.dim() == 3 else out[0]
