r"""Decoding: turn next-token logits into tokens (greedy, temperature, top-k, top-p sampling)
and stream tokens from an autoregressive model. Beam search lives in
:mod:`rnnkit.decoding.beam`.

For logits :math:`z \in \mathbb{R}^V` and temperature :math:`\tau > 0`, sampling draws from
:math:`p_i \propto \exp(z_i / \tau)` after two optional cuts:

* **top-k** keeps the :math:`k` largest logits;
* **top-p** (nucleus, Holtzman et al., 2020) keeps the smallest set of most likely tokens whose
  probability mass reaches :math:`p` (the most likely token always stays).

:math:`\tau \to 0` is greedy decoding (``argmax``); ``temperature=0`` selects it exactly, and
so does a temperature so small that :math:`z / \tau` overflows (``inf`` or ``nan`` in a row: that
row is decoded greedily instead of failing).

Shapes: logits ``[B, V]`` -> token ids ``[B]`` (int64).

>>> logits = torch.tensor([[1.0, 3.0, 2.0]])
>>> greedy(logits).tolist()
[1]
>>> top_k_filter(logits, 2).tolist()
[[-inf, 3.0, 2.0]]
>>> sample_logits(logits, temperature=1.0, top_k=1).tolist()
[1]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from ..checks import check_sampling

__all__ = [
    "check_sampling",
    "generate_tokens",
    "greedy",
    "sample_logits",
    "top_k_filter",
    "top_p_filter",
]


def greedy(logits: Tensor) -> Tensor:
    """The most likely token of each row: ``[B, V] -> [B]``."""
    return logits.argmax(-1)


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Set all but the ``k`` largest logits of each row to ``-inf`` (``[B, V] -> [B, V]``)."""
    check_sampling(top_k=k)
    if k >= logits.shape[-1]:
        return logits
    kth = logits.topk(k, dim=-1).values[..., -1:]  # [B, 1]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filter: keep the most likely tokens whose cumulative probability first reaches
    ``p``; the rest become ``-inf`` (``[B, V] -> [B, V]``). The most likely token of a row is
    always kept, however small ``p`` is (a ``p`` that rounds to 0 in the logits' precision
    keeps just that token).

    >>> top_p_filter(torch.log(torch.tensor([[0.5, 0.3, 0.2]])), 0.7).isinf().tolist()
    [[False, False, True]]
    >>> top_p_filter(torch.log(torch.tensor([[0.5, 0.3, 0.2]])), 1e-46).isinf().tolist()
    [[False, True, True]]
    """
    check_sampling(top_p=p)
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # [B, V]
    probs = sorted_logits.softmax(-1)
    # mass of the tokens strictly before each one: drop a token once that mass reaches p
    before = probs.cumsum(-1) - probs
    drop_sorted = before >= p
    drop_sorted[..., 0] = False  # the top-ranked token stays, even when p rounds to 0
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def sample_logits(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    banned: Iterable[int] = (),
) -> Tensor:
    """Draw one token per row of ``logits [B, V]`` -> ``[B]``.

    Args:
        temperature: ``> 0`` scales the logits (lower = more conservative); ``0`` = greedy, as
            is a row whose scaled logits overflow (``inf``/``nan``, e.g. ``temperature=1e-45``).
        top_k, top_p: optional cuts (see the module docstring), applied after temperature.
        generator: a seeded ``torch.Generator`` for reproducible draws.
        banned: token ids never produced (e.g. ``<unk>``).
    """
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        raise ValueError(f"expected logits of shape [B, V], got "
                         f"{list(logits.shape) if isinstance(logits, Tensor) else logits!r}")
    check_sampling(temperature, top_k, top_p)
    logits = logits.float()
    banned = list(banned)
    if banned:
        if len(banned) >= logits.shape[-1]:
            raise ValueError("every token is banned; nothing is left to sample")
        logits = logits.clone()
        logits[:, banned] = float("-inf")
    if temperature == 0:
        return greedy(logits)
    scaled = logits / temperature
    overflow = (scaled.isnan() | scaled.isposinf()).any(-1)  # [B]: tau too small for float32
    if overflow.all():
        return greedy(logits)
    if overflow.any():  # those rows keep only their argmax: the draw is the greedy token
        top = torch.full_like(logits, float("-inf")).scatter_(-1, greedy(logits)[:, None], 0.0)
        scaled = torch.where(overflow[:, None], top, scaled)
    logits = scaled
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


AutoregressiveModel = Callable[[Tensor, Any], "tuple[Tensor, Any]"]


@torch.no_grad()
def generate_tokens(
    model: AutoregressiveModel,
    prime: Tensor,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    banned: Iterable[int] = (),
    state: Any = None,
) -> Iterator[Tensor]:
    """Stream ``length`` new tokens from an autoregressive model, one ``[B]`` tensor at a time.

    ``model(tokens [B, T], state) -> (logits [B, T, V], state)`` (e.g. a
    :class:`~rnnkit.text.language_model.LanguageModel`). The priming tokens ``prime [B, P]``
    (``P >= 1``) are read in one call; then each sampled token is fed back, carrying the
    recurrent state, so every step costs one time step.

    >>> from rnnkit.text.language_model import LanguageModel, LanguageModelConfig
    >>> lm = LanguageModel(LanguageModelConfig(vocab_size=10, hidden_size=8, embed_size=4))
    >>> out = list(generate_tokens(lm, torch.tensor([[1, 2, 3]]), 5, seed=0))
    >>> len(out), tuple(out[0].shape)
    (5, (1,))
    """
    if not isinstance(prime, Tensor) or prime.dim() != 2:
        raise ValueError(f"prime must be token ids of shape [B, P], got "
                         f"{list(prime.shape) if isinstance(prime, Tensor) else prime!r}")
    if prime.shape[1] == 0:
        raise ValueError("prime is empty (P = 0); give at least one token to start from")
    if not isinstance(length, int) or length < 0:
        raise ValueError(f"length must be a non-negative integer, got {length!r}")
    generator = None
    if seed is not None:
        generator = torch.Generator(device=prime.device)
        generator.manual_seed(int(seed))
    logits, state = model(prime, state)  # [B, P, V]
    for _ in range(length):
        token = sample_logits(logits[:, -1], temperature, top_k, top_p, generator, banned)
        yield token
        logits, state = model(token.unsqueeze(1), state)  # [B, 1, V]
