r"""A language model over performance events (Oore et al., 2018, "This time with feeling").

A performance is a token sequence :math:`w_1 \dots w_N` over an event vocabulary (note-on and
note-off per pitch, time shifts, velocity changes; the data layer defines it) with three
special ids, ``PAD = 0``, ``BOS = 1``, ``EOS = 2``. The model is the text
:class:`~rnnkit.text.language_model.LanguageModel` on these ids, unchanged:

.. math::
    (y_t, s_t) = \mathrm{RNN}(E[w_t], s_{t-1}), \qquad
    p(w_{t+1} \mid w_{\le t}) = \mathrm{softmax}(W_o\, \mathrm{drop}(y_t) + b_o)

trained on the mean cross-entropy :math:`-\frac1N \sum_t \log p(w_{t+1} \mid w_{\le t})`
(nats per event) over every target that is not ``PAD``.

:class:`EventModel` wraps the language model (rather than copying it) and adds what the event
stream needs: batches of padded sequences with lengths, ``PAD`` targets never scored,
generation from a list of ids that stops at ``EOS`` and never emits ``PAD`` or ``BOS``, the
log-likelihood of a sequence, and its own file kind (``rnnkit.music_events``).

Shapes: tokens ``[B, T]`` (int64) -> logits ``[B, T, V]``; a batch is ``{"tokens": [B, T],
"lengths": [B]}`` (whole sequences, ``BOS .. EOS`` padded with ``PAD``), or a truncated-BPTT
chunk ``(x [B, T], y [B, T])`` as :class:`~rnnkit.train.BPTTStream` yields for the text model.

>>> model = EventModel(EventModelConfig(vocab_size=10, hidden_size=16, embed_size=8))
>>> tokens = torch.tensor([[BOS, 5, 6, 7, EOS], [BOS, 8, EOS, PAD, PAD]])
>>> out = model.loss({"tokens": tokens, "lengths": torch.tensor([5, 3])})
>>> out.weight  # scored targets: 4 + 2
6
>>> new = model.generate([BOS, 5], length=4, seed=0)
>>> len(new) <= 4 and all(3 <= t < 10 for t in new if t != EOS)
True
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cells import State, available_cells
from ..checks import choice
from ..decoding import generate_tokens
from ..text.language_model import IGNORE_INDEX, LanguageModel, LanguageModelConfig
from ..train.protocol import LossOutput
from .models import MusicModel, check_ids, check_lengths, shape_of

__all__ = ["BOS", "EOS", "EventModel", "EventModelConfig", "PAD"]

#: the special event ids (the rest of the vocabulary is the data layer's)
PAD, BOS, EOS = 0, 1, 2


@dataclass
class EventModelConfig:
    """Architecture of an :class:`EventModel` (the fields of the text
    :class:`~rnnkit.text.language_model.LanguageModelConfig`).

    Attributes:
        vocab_size: event ids ``V``, the 3 special ones included (``PAD``, ``BOS``, ``EOS``).
        cell: any registered cell (``"lstm"``, ``"gru"``, ...).
        embed_size: embedding width.
        hidden_size: recurrent state size.
        num_layers: stacked recurrent layers.
        dropout: on the embeddings, between layers and before the output layer.
        tie_weights: share the embedding with the output layer (needs
            ``embed_size == hidden_size``).
        backend: :class:`~rnnkit.Recurrent` backend (``"auto"`` picks the fastest).
    """

    vocab_size: int
    cell: str = "lstm"
    embed_size: int = 128
    hidden_size: int = 512
    num_layers: int = 2
    dropout: float = 0.2
    tie_weights: bool = False
    backend: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.vocab_size, bool) or not isinstance(self.vocab_size, int) or \
                self.vocab_size <= EOS + 1:
            raise ValueError(f"vocab_size must count PAD, BOS, EOS and at least one event "
                             f"(>= 4), got {self.vocab_size!r}")
        choice("cell", self.cell, available_cells())
        self.language_model_config()  # the language model's own checks

    def language_model_config(self) -> LanguageModelConfig:
        """The same architecture as a text language-model config."""
        return LanguageModelConfig(**asdict(self))


class EventModel(MusicModel):
    """Next-event model: a wrapped :class:`~rnnkit.text.language_model.LanguageModel`
    (``self.lm``); see the module docstring.

    Args:
        config: the architecture (:class:`EventModelConfig`).
    """

    KIND, VERSION, TASK, CONFIG = "rnnkit.music_events", 1, "music_events", EventModelConfig
    #: what the loss weight counts (the trainer's compute record)
    item_name = "events"

    def __init__(self, config: EventModelConfig) -> None:
        super().__init__()
        self.config = config
        self.lm = LanguageModel(config.language_model_config())

    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """``tokens [B, T]`` (ids in ``[0, V)``) -> ``(logits [B, T, V], state)``."""
        return self.lm(tokens, state)

    def loss(self, batch: Any, state: State | None = None) -> LossOutput:
        """Mean next-event cross-entropy (nats) over the targets that are not ``PAD``, with
        metrics ``bits_per_token`` and ``accuracy`` (per scored event) and the number of scored
        events as the weight.

        ``batch`` is ``{"tokens": [B, T], "lengths": [B]}`` (whole sequences; lengths count
        tokens, at least 2 each, and targets past them are not scored), or ``(x, y)`` /
        ``{"x": x, "y": y}`` chunks of a stream (``y`` is ``x`` shifted by one; targets equal
        to ``PAD`` or ``-100`` are not scored). The state is returned for streams; pieces in a
        dict batch start from zeros unless ``state`` is given.
        """
        x, y = self._split(batch)
        if not bool((y != IGNORE_INDEX).any()):
            raise ValueError("the batch has no target to score (all PAD or past the lengths); "
                             "give sequences of at least 2 tokens")
        return self.lm.loss((x, y), state)

    def _split(self, batch: Any) -> tuple[Tensor, Tensor]:
        """A batch -> ``(x [B, T], y [B, T])`` with unscored targets set to ``-100``."""
        V = self.config.vocab_size
        if isinstance(batch, dict) and "tokens" in batch:
            tokens = self._check_tokens(batch["tokens"], "batch['tokens']")
            B, T = tokens.shape
            if T < 2:
                raise ValueError(f"batch['tokens'] has {T} token(s) per sequence; at least 2 "
                                 f"are needed (BOS and one event)")
            n = check_lengths(batch.get("lengths"), B, T, minimum=2, unit="tokens") - 1
            x, y = tokens[:, :-1], tokens[:, 1:]
            past = torch.arange(T - 1)[None, :] >= n[:, None]  # [B, T - 1]
            y = y.masked_fill(past.to(y.device) | (y == PAD), IGNORE_INDEX)
            return x, y
        if isinstance(batch, dict) and "x" in batch and "y" in batch:
            batch = (batch["x"], batch["y"])
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            x, y = batch
            x = self._check_tokens(x, "x")
            if not isinstance(y, Tensor) or y.shape != x.shape:
                raise ValueError(f"targets y must have the shape of the inputs x "
                                 f"{list(x.shape)}, got {shape_of(y)}")
            scored = y != IGNORE_INDEX
            check_ids(y[scored], V, "target ids", "(-100 marks a target not to score)")
            return x, y.masked_fill(y == PAD, IGNORE_INDEX)
        raise TypeError(f"an EventModel batch is {{'tokens': [B, T], 'lengths': [B]}} or a "
                        f"stream chunk (x [B, T], y [B, T]), got "
                        f"{sorted(batch) if isinstance(batch, dict) else type(batch).__name__}")

    # -- scoring and generation --------------------------------------------------------------
    def log_likelihood(self, tokens: Sequence[int] | Tensor) -> tuple[float, int]:
        r"""``(log p(w_2 .. w_N | w_1), N - 1)`` of one sequence ``tokens`` (a list of ids or
        ``[N]``, ``N >= 2``, no ``PAD``): the summed log-probability in nats (<= 0; float64
        sum), in eval mode. ``-nats / n`` is the sequence's cross-entropy per event."""
        ids = self._as_ids(tokens, "tokens")
        if ids.numel() < 2:
            raise ValueError(f"tokens has {ids.numel()} id(s); at least 2 are needed to score "
                             f"one prediction (start with BOS)")
        if bool((ids == PAD).any()):
            raise ValueError("tokens contain PAD (0); strip the padding before scoring")
        with self.evaluating():
            logits, _ = self.lm(ids[None, :-1])
            logp = F.log_softmax(logits[0].double(), -1)
            total = float(logp.gather(1, ids[1:, None]).sum())
        return total, ids.numel() - 1

    def generate(self, prime: Sequence[int] | Tensor | None = None, length: int = 512,
                 temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, seed: int | None = None) -> list[int]:
        """Continue ``prime`` (ids; default ``[BOS]``) by at most ``length`` events and return
        the new ids (the prime not included), ending with ``EOS`` if the model emitted it.

        Sampling is :func:`~rnnkit.decoding.sample_logits` (``temperature=0``: greedy;
        ``top_k``, ``top_p`` cuts) through :func:`~rnnkit.decoding.generate_tokens`: the prime
        is read in one call, then each event costs one recurrent step. ``PAD`` and ``BOS`` are
        never produced. ``seed`` makes it reproducible.
        """
        ids = self._as_ids([BOS] if prime is None else prime, "prime")
        if ids.numel() == 0:
            raise ValueError("prime is empty; give at least one id, e.g. [BOS] (= [1])")
        if bool((ids == PAD).any()):
            raise ValueError("prime contains PAD (0); strip the padding")
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be an integer >= 0, got {length!r}")
        out: list[int] = []
        with self.evaluating():
            for tok in generate_tokens(self.lm, ids[None], length, temperature=temperature,
                                       top_k=top_k, top_p=top_p, seed=seed, banned=(PAD, BOS)):
                out.append(int(tok[0]))
                if out[-1] == EOS:
                    break
        return out

    # -- checks ------------------------------------------------------------------------------
    def _check_tokens(self, tokens: Any, what: str) -> Tensor:
        if not isinstance(tokens, Tensor) or tokens.dim() != 2:
            raise ValueError(f"expected {what} of shape [B, T] (event ids), got "
                             f"{shape_of(tokens)}")
        if tokens.numel() == 0:
            raise ValueError(f"{what} is empty (shape {list(tokens.shape)}); give at least one "
                             f"sequence of at least 2 tokens")
        check_ids(tokens, self.config.vocab_size, what,
                  f"the model's vocabulary has {self.config.vocab_size} event ids")
        return tokens.to(device=self.device, dtype=torch.long)

    def _as_ids(self, tokens: Any, what: str) -> Tensor:
        if isinstance(tokens, Tensor):
            if tokens.dim() != 1:
                raise ValueError(f"{what} must be one sequence of ids [N], got "
                                 f"{list(tokens.shape)}")
            ids = tokens
        else:
            items = list(tokens) if isinstance(tokens, (list, tuple, range)) else None
            if items is None or any(isinstance(i, bool) or not hasattr(i, "__index__")
                                    for i in items):
                raise TypeError(f"{what} must be a list of integer ids or a [N] tensor, got "
                                f"{tokens!r:.80}")
            ids = torch.tensor([operator.index(i) for i in items], dtype=torch.long)
        check_ids(ids, self.config.vocab_size, what,
                  f"the model's vocabulary has {self.config.vocab_size} event ids")
        return ids.to(device=self.device, dtype=torch.long)
