r"""Attention over a sequence of keys: additive (Bahdanau) and multiplicative (Luong).

Given a query :math:`q` and keys :math:`k_1..k_S` (with values :math:`v_s`, by default the keys),
every attention here computes a score per key, turns scores into weights with a softmax over the
valid (unmasked) keys, and returns the weighted sum of the values:

.. math::
    e_s = \mathrm{score}(q, k_s), \qquad
    \alpha_s = \frac{m_s \exp(e_s)}{\sum_{s'} m_{s'} \exp(e_{s'})}, \qquad
    c = \sum_s \alpha_s v_s

with the key padding mask :math:`m_s \in \{0, 1\}`. Masked keys get a score of
:math:`-\infty` before the softmax, so their weight is exactly zero (not merely small) and the
weights of every query sum to one. The score functions:

* ``"additive"`` (Bahdanau et al., 2015, eq. 6):
  :math:`e_s = w^\top \tanh(W_q q + W_k k_s + b)`;
* ``"dot"`` (Luong et al., 2015, eq. 8): :math:`e_s = q^\top k_s` (needs ``Q = K``),
  optionally scaled by :math:`1/\sqrt{K}`;
* ``"general"`` (Luong et al., 2015, eq. 8): :math:`e_s = q^\top W_a k_s`.

Shapes (batch first):
    * ``query``: ``[B, Q]`` (one query per sequence) or ``[B, T, Q]`` (``T`` queries each);
    * ``keys``: ``[B, S, K]``; ``values``: ``[B, S, V]`` (default: the keys, ``V = K``);
    * ``mask``: ``[B, S]`` booleans, ``True`` at valid keys (see :func:`lengths_to_mask`);
    * returns ``context [B, V]`` and ``weights [B, S]`` (or ``[B, T, V]``, ``[B, T, S]``).

>>> att = AdditiveAttention(query_size=4, key_size=6)
>>> keys = torch.randn(2, 5, 6)
>>> mask = lengths_to_mask([5, 3], 5)
>>> context, weights = att(torch.randn(2, 4), keys, mask=mask)
>>> tuple(context.shape), tuple(weights.shape)
((2, 6), (2, 5))
>>> weights[1, 3:].tolist()
[0.0, 0.0]
>>> torch.allclose(weights.sum(-1), torch.ones(2))
True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = [
    "ATTENTION_KINDS",
    "AdditiveAttention",
    "Attention",
    "DotAttention",
    "GeneralAttention",
    "lengths_to_mask",
    "make_attention",
    "masked_softmax",
]

ATTENTION_KINDS = ("additive", "dot", "general")


def lengths_to_mask(lengths: Tensor | list[int], max_len: int | None = None,
                    device: torch.device | str | None = None) -> Tensor:
    """Boolean key padding mask ``[B, S]``, ``True`` at the first ``lengths[b]`` positions.

    >>> lengths_to_mask([3, 1], 4).int().tolist()
    [[1, 1, 1, 0], [1, 0, 0, 0]]
    """
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.dim() != 1 or lengths.is_floating_point():
        raise ValueError(f"lengths must be a 1-d integer tensor [B], got {lengths.dtype} of "
                         f"shape {list(lengths.shape)}")
    if max_len is None:
        S = int(lengths.max())
    else:  # a size traced for ONNX export stays symbolic (int() would freeze the example's)
        S = max_len if torch.jit.is_tracing() else int(max_len)
    return torch.arange(S, device=lengths.device)[None, :] < lengths[:, None]


def masked_softmax(scores: Tensor, mask: Tensor | None, dim: int = -1) -> Tensor:
    r"""Softmax of ``scores`` over ``dim`` where ``mask`` is true; exactly zero elsewhere.

    ``mask`` must broadcast to ``scores``, and every slice must keep at least one position
    (an all-masked slice has no distribution; :class:`Attention` rejects it at the boundary).

    >>> masked_softmax(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([True, True, False]))
    tensor([0.2689, 0.7311, 0.0000])
    """
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=dim)


class Attention(nn.Module):
    """Base class: validates inputs once, then ``score`` -> masked softmax -> weighted sum.

    Subclasses implement :meth:`score` (``query [B, T, Q]``, ``keys [B, S, K]`` ->
    ``scores [B, T, S]``). ``forward`` accepts a single query ``[B, Q]`` as well.
    """

    query_size: int
    key_size: int

    def score(self, query: Tensor, keys: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, query: Tensor, keys: Tensor, values: Tensor | None = None,
                mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(context, weights)``; see the module docstring for the shapes."""
        self._check(query, keys, values, mask)
        single = query.dim() == 2
        q = query.unsqueeze(1) if single else query  # [B, T, Q]
        scores = self.score(q, keys)  # [B, T, S]
        weights = masked_softmax(scores, None if mask is None else mask[:, None, :])
        context = torch.bmm(weights, keys if values is None else values)  # [B, T, V]
        if single:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights

    def _check(self, query: Tensor, keys: Tensor, values: Tensor | None,
               mask: Tensor | None) -> None:
        if keys.dim() != 3 or keys.shape[-1] != self.key_size:
            raise ValueError(f"expected keys of shape [B, S, {self.key_size}], "
                             f"got {list(keys.shape)}")
        B, S = keys.shape[:2]
        if S == 0:
            raise ValueError("there are no keys to attend to (S = 0); give at least one")
        if query.dim() not in (2, 3) or query.shape[0] != B or query.shape[-1] != self.query_size:
            raise ValueError(f"expected query of shape [{B}, {self.query_size}] or "
                             f"[{B}, T, {self.query_size}] to match keys {list(keys.shape)}, "
                             f"got {list(query.shape)}")
        if values is not None and (values.dim() != 3 or values.shape[:2] != keys.shape[:2]):
            raise ValueError(f"expected values of shape [{B}, {S}, V] to match the keys, "
                             f"got {list(values.shape)}")
        if mask is not None:
            if mask.dtype != torch.bool:
                raise TypeError(f"mask must be boolean (True = valid key), got {mask.dtype}; "
                                f"build one with rnnkit.attention.lengths_to_mask(lengths, S)")
            if tuple(mask.shape) != (B, S):
                raise ValueError(f"expected mask of shape [{B}, {S}] (one flag per key), "
                                 f"got {list(mask.shape)}")
            if not bool(mask.any(-1).all()):
                raise ValueError("a row of the mask hides every key, so its attention has no "
                                 "distribution; every sequence needs at least one valid key")


class AdditiveAttention(Attention):
    r"""Bahdanau (additive, "concat") attention:
    :math:`e_s = w^\top \tanh(W_q q + W_k k_s + b)`.

    Args:
        query_size: ``Q``; key_size: ``K``; attn_size: hidden width ``A`` of the scorer
        (default ``K``).

    Parameters: ``query_proj.weight [A, Q]``, ``key_proj.weight [A, K]``, ``key_proj.bias [A]``,
    ``v.weight [1, A]``; PyTorch's default ``Linear`` initialization.

    Keys can be projected once per sequence with :meth:`project_keys` and passed as
    ``keys_proj`` to :meth:`score`, which a decoder does at every step.
    """

    def __init__(self, query_size: int, key_size: int, attn_size: int | None = None) -> None:
        super().__init__()
        self.query_size, self.key_size = query_size, key_size
        attn_size = attn_size or key_size
        self.query_proj = nn.Linear(query_size, attn_size, bias=False)
        self.key_proj = nn.Linear(key_size, attn_size)
        self.v = nn.Linear(attn_size, 1, bias=False)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        # [B, T, 1, A] + [B, 1, S, A] -> tanh -> [B, T, S, 1] -> [B, T, S]
        hidden = torch.tanh(self.query_proj(query)[:, :, None] + self.key_proj(keys)[:, None])
        return self.v(hidden).squeeze(-1)


class DotAttention(Attention):
    r"""Luong dot attention: :math:`e_s = q^\top k_s`, or :math:`q^\top k_s / \sqrt{K}` with
    ``scaled=True``. No parameters; needs ``Q = K``."""

    def __init__(self, query_size: int, key_size: int | None = None,
                 scaled: bool = False) -> None:
        super().__init__()
        key_size = query_size if key_size is None else key_size
        if key_size != query_size:
            raise ValueError(f"dot attention needs query_size == key_size, got {query_size} and "
                             f"{key_size}; use 'general' or 'additive' attention instead")
        self.query_size = self.key_size = query_size
        self.scale = 1.0 / math.sqrt(query_size) if scaled else 1.0

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(query, keys.transpose(1, 2)) * self.scale  # [B, T, S]


class GeneralAttention(Attention):
    r"""Luong general (bilinear) attention: :math:`e_s = q^\top W_a k_s`.

    Parameters: ``weight [Q, K]`` (as ``nn.Linear(K, Q, bias=False)``)."""

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__()
        self.query_size, self.key_size = query_size, key_size
        self.proj = nn.Linear(key_size, query_size, bias=False)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(query, self.proj(keys).transpose(1, 2))  # [B, T, S]


def make_attention(kind: str, query_size: int, key_size: int) -> Attention:
    """Build attention by name: ``"additive"``, ``"dot"`` or ``"general"``.

    >>> type(make_attention("general", 8, 16)).__name__
    'GeneralAttention'
    """
    if kind == "additive":
        return AdditiveAttention(query_size, key_size)
    if kind == "dot":
        return DotAttention(query_size, key_size)
    if kind == "general":
        return GeneralAttention(query_size, key_size)
    raise ValueError(f"unknown attention {kind!r}; choose one of {', '.join(ATTENTION_KINDS)}")
