"""Zoneout and variational recurrent dropout: options shared by the gated cells.

Both act on the recurrent state only, so they are written once here and mixed into a cell.

* **Zoneout** (Krueger et al., 2017, "Zoneout: regularizing RNNs by randomly preserving hidden
  activations"): during training each state unit keeps its previous value with probability
  ``p``,

  .. math:: s_t = m_t \\odot s_{t-1} + (1 - m_t) \\odot \\tilde s_t,
            \\qquad m_t \\sim \\mathrm{Bernoulli}(p) \\text{ per unit and step};

  at evaluation the mask is replaced by its expectation (paper, section 2):
  :math:`s_t = p\\, s_{t-1} + (1 - p)\\, \\tilde s_t`. Applied to every state tensor of the cell
  (``h`` and, for LSTMs, ``c``). ``p = 0`` is the plain cell.
* **Variational recurrent dropout** (Gal & Ghahramani, 2016, section 4): the previous hidden
  state that enters the recurrent projection is multiplied by one dropout mask per *sequence*
  (the same mask at every step), scaled by ``1 / (1 - q)``; identity at evaluation. The runner
  calls :meth:`Regularized.begin_sequence` before each sequence; the mask is drawn on the first
  step after it.

>>> from rnnkit.cells import get_cell
>>> cell = get_cell("layernorm_lstm")(4, 8, zoneout=0.1, recurrent_dropout=0.25)
>>> cell.zoneout, cell.recurrent_dropout
(0.1, 0.25)
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["Regularized"]


def _probability(name: str, p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), got {p!r}; "
                         f"use 0 to switch it off")
    return float(p)


class Regularized:
    """Mixin for cells: ``zoneout`` and ``recurrent_dropout`` options (see module docstring).

    A cell calls :meth:`_init_regularization` in ``__init__``, passes ``h_{t-1}`` through
    :meth:`drop_recurrent` before its recurrent projection, and each new state tensor through
    :meth:`zone`.
    """

    zoneout: float
    recurrent_dropout: float
    training: bool

    def _init_regularization(self, zoneout: float, recurrent_dropout: float) -> None:
        self.zoneout = _probability("zoneout", zoneout)
        self.recurrent_dropout = _probability("recurrent_dropout", recurrent_dropout)
        self._recurrent_mask: Tensor | None = None

    @property
    def stochastic(self) -> bool:
        """True when a forward pass draws random masks (training with an option on)."""
        return self.training and (self.zoneout > 0 or self.recurrent_dropout > 0)

    def begin_sequence(self) -> None:
        """Forget the recurrent-dropout mask: the next step draws a fresh one."""
        self._recurrent_mask = None

    def recurrent_mask(self, h: Tensor) -> Tensor | None:
        """The variational mask for ``h [B, H]`` (``None`` when off or evaluating)."""
        if not (self.training and self.recurrent_dropout):
            return None
        m = self._recurrent_mask
        if m is None or m.shape != h.shape or m.dtype != h.dtype or m.device != h.device:
            keep = 1.0 - self.recurrent_dropout
            m = torch.empty_like(h).bernoulli_(keep).div_(keep)
            self._recurrent_mask = m
        return m

    def drop_recurrent(self, h: Tensor) -> Tensor:
        """``h_{t-1}`` as seen by the recurrent weights: ``h * mask`` while training."""
        m = self.recurrent_mask(h)
        return h if m is None else h * m

    def zone(self, new: Tensor, old: Tensor) -> Tensor:
        """Zoneout of one state tensor: random preservation (training) or its expectation."""
        p = self.zoneout
        if not p:
            return new
        if self.training:
            keep_old = torch.rand_like(new) < p  # [B, H]
            return torch.where(keep_old, old, new)
        return new + p * (old - new)  # = p * old + (1 - p) * new
