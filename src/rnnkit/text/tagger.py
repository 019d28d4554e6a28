r"""Sequence tagging (many-to-many): one label per time step.

.. math::
    h_{1..T} = \mathrm{Recurrent}(\mathrm{Embed}(x_{1..T})), \qquad
    p(y_t \mid x) = \mathrm{softmax}(W \, \mathrm{dropout}(h_t) + b)

With ``bidirectional=True`` (the default) each :math:`h_t` has read the whole sequence, so a
tag may depend on both past and future steps. The loss averages cross-entropy over the valid
steps only (``t <= T_b``, and labels not equal to ``ignore_index``).

Shapes: tokens ``[B, T]`` (long) or features ``[B, T, F]``; ``lengths [B]``; labels ``[B, T]``;
logits ``[B, T, C]``. A batch for :meth:`SequenceTagger.loss` is ``(x, lengths, y)`` or a dict.

>>> model = SequenceTagger(TaggerConfig(num_tags=4, vocab_size=20, embed_size=8,
...                                     hidden_size=8))
>>> x, lengths = torch.randint(1, 20, (2, 6)), torch.tensor([6, 3])
>>> tags = model.predict(x, lengths)
>>> tuple(tags.shape), tags[1, 3:].tolist()
((2, 6), [-100, -100, -100])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import lengths_to_mask
from ..train.protocol import LossOutput
from .classifier import build_encoder, encode_sequence, unpack_batch

__all__ = ["SequenceTagger", "TaggerConfig"]


@dataclass
class TaggerConfig:
    """Configuration of :class:`SequenceTagger` (``vocab_size`` or ``input_size``)."""

    num_tags: int = 2
    vocab_size: int | None = None
    input_size: int | None = None
    embed_size: int = 64
    hidden_size: int = 128
    num_layers: int = 1
    cell: str = "lstm"
    bidirectional: bool = True
    dropout: float = 0.2
    ignore_index: int = -100
    backend: str = "auto"

    def __post_init__(self) -> None:
        if (self.vocab_size is None) == (self.input_size is None):
            raise ValueError("give exactly one of vocab_size (token input) or input_size "
                             "(feature input)")
        if self.num_tags < 2:
            raise ValueError(f"num_tags must be >= 2, got {self.num_tags}")


class SequenceTagger(nn.Module):
    """Per-step RNN classifier; see the module docstring."""

    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embed, self.rnn = build_encoder(c)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(self.rnn.output_size, c.num_tags)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Tag logits ``[B, T, C]``."""
        out, _, _ = encode_sequence(self.embed, self.rnn, x, lengths, nn.Identity())
        return self.head(self.drop(out))

    @torch.no_grad()
    def predict(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Most probable tag per step ``[B, T]``; ``ignore_index`` at padded steps."""
        was = self.training
        self.eval()
        try:
            tags = self(x, lengths).argmax(-1)
        finally:
            self.train(was)
        if lengths is not None:
            mask = lengths_to_mask(torch.as_tensor(lengths), x.shape[1], device=x.device)
            tags = tags.masked_fill(~mask, self.config.ignore_index)
        return tags

    def loss(self, batch, state=None) -> LossOutput:
        """Mean cross-entropy over valid steps; metrics: per-step ``accuracy``."""
        x, lengths, y = unpack_batch(batch)
        logits = self(x, lengths)  # [B, T, C]
        if tuple(y.shape) != tuple(logits.shape[:2]):
            raise ValueError(f"expected labels of shape {list(logits.shape[:2])} (one per "
                             f"step), got {list(y.shape)}")
        y = y.long()
        if lengths is not None:
            mask = lengths_to_mask(torch.as_tensor(lengths), y.shape[1], device=y.device)
            y = y.masked_fill(~mask, self.config.ignore_index)
        valid = y != self.config.ignore_index
        n = int(valid.sum())
        if n == 0:
            raise ValueError("the batch has no labelled steps; check lengths and labels")
        if int(y[valid].min()) < 0 or int(y[valid].max()) >= self.config.num_tags:
            raise ValueError(f"tags must lie in [0, {self.config.num_tags}) or equal "
                             f"ignore_index={self.config.ignore_index}")
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(),
                               ignore_index=self.config.ignore_index)
        acc = (logits.argmax(-1) == y)[valid].float().mean()
        return LossOutput(loss, None, {"accuracy": acc.detach()}, n)
