r"""Object counts from an encoder's feature grid, and the caption constraints they give.

**ObjectCounter** (a density counter): each grid cell ``i`` gets a non-negative amount of
every class ``k``, and a class' count is their sum,

.. math::
    d_{ik} = \mathrm{softplus}(W_2\, \mathrm{ReLU}(W_1 \hat f_i + b_1) + b_2 - 3)_k, \qquad
    \hat n_k = \textstyle\sum_i d_{ik},

with :math:`\hat f_i` the standardised features (1 x 1 convolutions: every cell is judged on
its own features, so counts add up over objects that were never seen together), trained with
the smooth-L1 loss to the true counts. ``predict`` rounds to ``0 .. max_count``.

**CountConstraint** turns predicted counts into decoding constraints (constrained decoding
from a tagger's output, as in Anderson et al. 2017's constrained beam search for novel
objects, reduced to the lexical checks this grammar needs). With ``remaining[k]`` the count of
class ``k`` not yet named and ``pending`` the last number word's value since the last noun:

* a noun of class ``k`` may be written only if ``remaining[k] > 0`` and (no number word is
  pending, or ``pending == remaining[k]``); writing it sets ``remaining[k] = 0``;
* a number word ``n`` only if some class still has ``n`` objects; the articles "a" / "an"
  are never refused ("a picture of ...", "on a white background") and are pending as 1 only
  while some class still has one object;
* ``<eos>`` only once every class is named.

Shapes: ``features [B, C, h, w]`` -> ``counts [B, K]``; constraint state ``remaining [N, K]``,
``pending [N]``.

>>> torch.manual_seed(0) and None
>>> counter = ObjectCounter(feature_size=8, n_classes=3, hidden_size=5)
>>> counter(torch.randn(2, 8, 4, 4)).shape
torch.Size([2, 3])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..train.protocol import LossOutput
from .cnn import StandardisedFeatures

__all__ = ["CountConstraint", "ObjectCounter"]


class ObjectCounter(StandardisedFeatures):
    """Per-class object counts from a feature grid (see the module docstring).

    Args:
        feature_size: encoder channels ``C``.
        n_classes: ``K``.
        hidden_size: width of the per-cell layer.
        dropout: on the standardised features in training.
        max_count: largest count :meth:`predict` returns.
    """

    def __init__(self, feature_size: int, n_classes: int, hidden_size: int = 256,
                 dropout: float = 0.2, max_count: int = 4) -> None:
        super().__init__()
        for name, v in (("feature_size", feature_size), ("n_classes", n_classes),
                        ("hidden_size", hidden_size), ("max_count", max_count)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.n_classes, self.max_count = n_classes, max_count
        self._init_stats(feature_size)
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Conv2d(feature_size, hidden_size, 1),
                                 nn.ReLU(), nn.Conv2d(hidden_size, n_classes, 1))

    def density(self, features: Tensor) -> Tensor:
        """``[B, C, h, w]`` -> ``d [B, K, h, w]`` (amount of each class in each cell)."""
        return F.softplus(self.net(self.standardise(features)) - 3.0)

    def forward(self, features: Tensor) -> Tensor:
        """``[B, C, h, w]`` -> expected counts ``[B, K]``."""
        return self.density(features).sum((2, 3))

    @torch.no_grad()
    def predict(self, features: Tensor) -> Tensor:
        """``[B, C, h, w]`` -> counts ``[B, K]`` (long, rounded to ``0 .. max_count``)."""
        was = self.training
        self.eval()
        out = self(features).round().clamp(0, self.max_count).long()
        self.train(was)
        return out

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        """Trainer protocol: ``batch = (features [B, C, h, w], counts [B, K])``."""
        features, counts = batch
        pred = self(features)
        loss = F.smooth_l1_loss(pred, counts.float())
        exact = (pred.detach().round() == counts).all(1).float().mean()
        return LossOutput(loss, None, {"exact": exact}, len(features))


class CountConstraint:
    """Decoding constraints from predicted counts (see the module docstring).

    Args:
        word_class: each vocabulary word's class (``-1``: not a class noun).
        word_number: each word's number value (``0``: not a number word).
        article: number words that are also articles ("a"): never refused.
        eos: the end token's id.
    """

    def __init__(self, word_class: Sequence[int], word_number: Sequence[int],
                 article: Sequence[int] = (), eos: int = 2) -> None:
        self.word_class = torch.as_tensor(list(word_class), dtype=torch.long)
        self.word_number = torch.as_tensor(list(word_number), dtype=torch.long)
        if self.word_class.shape != self.word_number.shape:
            raise ValueError("word_class and word_number must have one entry per word")
        self.article = torch.zeros(len(self.word_class), dtype=torch.bool)
        self.article[list(article)] = True
        self.eos = eos
        self.nouns = (self.word_class >= 0).nonzero().squeeze(1)
        k = int(self.word_class.max()) + 1 if len(self.nouns) else 0
        #: [K'] classes with at least one noun word (the others can never be named)
        self.has_noun = torch.zeros(k, dtype=torch.bool)
        self.has_noun[self.word_class[self.nouns]] = True
        self.numbers = ((self.word_number > 0) & ~self.article).nonzero().squeeze(1)

    def nameable(self, counts: Tensor) -> Tensor:
        """``counts [B, K]`` with the classes no word can name set to 0 (a class the
        training captions never named would otherwise keep ``<eos>`` refused forever)."""
        keep = torch.zeros(counts.shape[-1], dtype=torch.bool)
        n = min(len(self.has_noun), counts.shape[-1])
        keep[:n] = self.has_noun[:n]
        return counts * keep.to(counts.device)

    def init_state(self, counts: Tensor) -> dict[str, Tensor]:
        """Predicted ``counts [B, K]`` -> the state entries ``remaining``, ``pending``."""
        return {"remaining": counts.long().clone(),
                "pending": counts.new_zeros(counts.shape[0], dtype=torch.long)}

    def update(self, tokens: Tensor, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """The words just written (``tokens [N]``) -> the new ``remaining``, ``pending``."""
        wc, wn = self.word_class.to(tokens.device), self.word_number.to(tokens.device)
        cls, num = wc[tokens], wn[tokens]
        article = self.article.to(tokens.device)[tokens]
        one_left = (state["remaining"] == 1).any(1)
        num = torch.where(article & ~one_left, torch.zeros_like(num), num)
        remaining = state["remaining"].clone()
        named = cls >= 0
        rows = named.nonzero().squeeze(1)
        remaining[rows, cls[rows]] = 0
        pending = torch.where(named, torch.zeros_like(num),
                              torch.where(num > 0, num, state["pending"]))
        return {**state, "remaining": remaining, "pending": pending}

    def wrap(self, step_fn: Any) -> Any:
        """A decoding ``step_fn(tokens, state) -> (log_probs, state)`` under this constraint
        (the state must hold :meth:`init_state`'s entries): what :mod:`rnnkit.decoding`'s
        greedy and beam search take."""

        def constrained(tokens: Tensor, state: dict[str, Tensor]
                        ) -> tuple[Tensor, dict[str, Tensor]]:
            state = self.update(tokens, state)
            log_probs, state = step_fn(tokens, state)
            return self.mask(log_probs, state), state

        return constrained

    def mask(self, log_probs: Tensor, state: dict[str, Tensor]) -> Tensor:
        """Set the refused words of ``log_probs [N, V]`` to ``-inf``."""
        remaining, pending = state["remaining"], state["pending"]  # [N, K], [N]
        dev = log_probs.device
        nouns, numbers = self.nouns.to(dev), self.numbers.to(dev)
        left = remaining[:, self.word_class.to(dev)[nouns]]  # [N, Vn]
        ok = (left > 0) & ((pending[:, None] == 0) | (pending[:, None] == left))
        out = log_probs.clone()
        out[:, nouns] = out[:, nouns].masked_fill(~ok, float("-inf"))
        values = self.word_number.to(dev)[numbers]  # [Vm]
        has = (remaining[:, :, None] == values[None, None]).any(1)  # [N, Vm]
        out[:, numbers] = out[:, numbers].masked_fill(~has, float("-inf"))
        done = (remaining == 0).all(1)
        out[:, self.eos] = out[:, self.eos].masked_fill(~done, float("-inf"))
        return out
