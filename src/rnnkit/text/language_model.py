r"""A recurrent language model: embedding -> :class:`~rnnkit.Recurrent` -> linear.

For a token stream :math:`w_1 \dots w_N` it models
:math:`p(w_{t+1} \mid w_{\le t}) = \mathrm{softmax}(W_o\, \mathrm{drop}(y_t) + b_o)` with
:math:`(y_t, s_t) = \mathrm{RNN}(E[w_t], s_{t-1})`, and is trained to minimise the mean
cross-entropy :math:`-\frac1N \sum_t \log p(w_{t+1} \mid w_{\le t})` (nats per token).
Perplexity is :math:`e^{\text{loss}}`; bits per token is :math:`\text{loss} / \ln 2`.

Legend: :math:`E \in \mathbb{R}^{V \times D_e}` the embedding, :math:`W_o \in
\mathbb{R}^{V \times O}` the output layer (tied to :math:`E` when ``tie_weights`` and
:math:`O = D_e`), :math:`V` the vocabulary size.

Shapes: tokens ``[B, T]`` (int64) -> logits ``[B, T, V]``; state as :class:`~rnnkit.Recurrent`
(``[L, B, H]`` or ``LSTMState``).

>>> from rnnkit.data.text import CharTokenizer
>>> tok = CharTokenizer.from_text("to be or not to be")
>>> lm = LanguageModel(LanguageModelConfig(vocab_size=len(tok), hidden_size=16,
...                                        embed_size=8), tokenizer=tok)
>>> logits, state = lm(tok.encode_tensor("to be").unsqueeze(0))
>>> tuple(logits.shape)
(1, 5, 8)
>>> [t for t, p in lm.predict_next("to b", k=3)].__len__()
3
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cells import State
from ..data.text import Tokenizer, tokenizer_from_dict
from ..decoding import generate_tokens
from ..recurrent import Recurrent
from ..train.protocol import LossOutput
from .config import LanguageModelConfig

__all__ = [
    "LanguageModel",
    "LanguageModelConfig",
    "bits_per_token",
    "load_language_model",
    "perplexity",
]

LN2 = math.log(2.0)
#: Target id that is not scored (``F.cross_entropy``'s default; BPTTStream's overlap marker).
IGNORE_INDEX = -100


def perplexity(loss: float) -> float:
    """Perplexity ``exp(loss)`` of a mean cross-entropy in nats.

    >>> round(perplexity(math.log(65)), 6)
    65.0
    """
    return math.exp(min(float(loss), 700.0))  # avoid OverflowError on a diverged model


def bits_per_token(loss: float) -> float:
    """Bits per token (bits per character for a character model): ``loss / ln 2``.

    >>> bits_per_token(math.log(2))
    1.0
    """
    return float(loss) / LN2


class LanguageModel(nn.Module):
    """Embedding -> Recurrent -> linear next-token model; see the module docstring.

    Args:
        config: the architecture; ``config.vocab_size`` must be set (``len(tokenizer)``).
        tokenizer: optional; needed only for the text-level helpers (:meth:`generate`,
            :meth:`predict_next`), and saved with the model by the applications.
    """

    def __init__(self, config: LanguageModelConfig, tokenizer: Tokenizer | None = None) -> None:
        super().__init__()
        if config.vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2, got {config.vocab_size}; set it "
                             f"to len(tokenizer)")
        if tokenizer is not None and len(tokenizer) != config.vocab_size:
            raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but config.vocab_size "
                             f"is {config.vocab_size}; build the config with "
                             f"vocab_size=len(tokenizer)")
        self.config = config
        self.tokenizer = tokenizer
        self.embedding = nn.Embedding(config.vocab_size, config.embed_size)
        self.rnn = Recurrent(config.cell, config.embed_size, config.hidden_size,
                             num_layers=config.num_layers, dropout=config.dropout,
                             batch_first=True, backend=config.backend)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.rnn.output_size, config.vocab_size)
        if config.tie_weights:
            self.head.weight = self.embedding.weight  # [V, D_e] shared (Press & Wolf, 2017)

    # -- the model -------------------------------------------------------------------------
    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """``tokens [B, T]`` (int64 ids in ``[0, V)``) -> ``(logits [B, T, V], state)``."""
        self._check_tokens(tokens)
        x = self.drop(self.embedding(tokens))  # [B, T, D_e]
        y, state = self.rnn(x, state)  # [B, T, O]
        return self.head(self.drop(y)), state  # [B, T, V]

    def loss(self, batch: Any, state: State | None = None) -> LossOutput:
        """Mean next-token cross-entropy (nats) for the trainer.

        ``batch`` is ``(x [B, T], y [B, T])`` (a :class:`~rnnkit.train.BPTTStream` chunk: ``y``
        is ``x`` shifted by one), a dict with ``"x"`` and ``"y"``, or one tensor ``[B, T + 1]``
        of whole sequences (full BPTT). Targets equal to ``IGNORE_INDEX`` (-100) are not
        scored. The returned state is not detached: the trainer detaches it between chunks.
        """
        x, y = _split_batch(batch)
        scored = y != IGNORE_INDEX
        ys = y.masked_fill(~scored, 0)  # ignored targets count as a valid id
        lo, hi = (int(ys.min()), int(ys.max())) if ys.numel() else (0, 0)
        if lo < 0 or hi >= self.config.vocab_size:
            raise ValueError(f"target ids must lie in [0, {self.config.vocab_size}) or equal "
                             f"IGNORE_INDEX ({IGNORE_INDEX}), got values from {lo} to {hi}; "
                             f"was the text encoded with this model's tokenizer?")
        logits, state = self(x, state)  # [B, T, V]
        # targets equal to IGNORE_INDEX (-100: re-read overlap steps of truncated BPTT) are
        # skipped, as F.cross_entropy does by default
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                               ignore_index=IGNORE_INDEX)
        with torch.no_grad():
            count = int(scored.sum())
            acc = ((logits.argmax(-1) == y) & scored).sum() / max(count, 1)
        metrics = {"bits_per_token": loss.detach() / LN2, "accuracy": acc}
        return LossOutput(loss, state, metrics, count)

    def _check_tokens(self, tokens: Tensor) -> None:
        if not isinstance(tokens, Tensor):
            raise TypeError(f"tokens must be a LongTensor [B, T], got {type(tokens).__name__}")
        if tokens.dim() != 2:
            raise ValueError(f"expected tokens of shape [B, T], got {list(tokens.shape)}; add a "
                             f"batch dimension with tokens.unsqueeze(0)")
        if tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"tokens must be integer ids (torch.long), got {tokens.dtype}; "
                            f"encode text with a tokenizer first")
        if tokens.numel() == 0:
            raise ValueError("tokens are empty (T = 0); give at least one token")
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= self.config.vocab_size:
            raise ValueError(f"token ids must lie in [0, {self.config.vocab_size}), got values "
                             f"from {lo} to {hi}; was the text encoded with this model's "
                             f"tokenizer?")

    # -- text-level helpers ----------------------------------------------------------------
    def _require_tokenizer(self) -> Tokenizer:
        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer; pass tokenizer= when building it "
                             "or load it with load_language_model(checkpoint)")
        return self.tokenizer

    def _encode_prime(self, text: str) -> Tensor:
        tok = self._require_tokenizer()
        ids = tok.encode_tensor(text)
        if ids.numel() == 0:
            raise ValueError("the priming text is empty (no tokens); give at least one "
                             "character, e.g. --prime \"\\n\"")
        return ids.unsqueeze(0).to(self.head.weight.device)  # [1, P]

    @torch.no_grad()
    def predict_next(self, text: str, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most likely next tokens after ``text``, with probabilities, best first."""
        tok = self._require_tokenizer()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        was_training = self.training
        self.eval()
        try:
            logits, _ = self(self._encode_prime(text))
        finally:
            self.train(was_training)
        probs = logits[0, -1].float().softmax(-1)  # [V]
        top = probs.topk(min(k, probs.numel()))
        return [(tok.itos[int(i)], float(p)) for p, i in zip(top.values, top.indices)]

    def generate(
        self,
        prime: str = "\n",
        length: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stream: Callable[[str], Any] | None = None,
    ) -> str:
        """Continue ``prime`` by ``length`` tokens and return the continuation (without the
        prime). ``temperature=0`` is greedy decoding; ``stream`` is called with each new piece
        of text as soon as it is sampled. ``<unk>`` is never sampled."""
        return "".join(self.stream_text(prime, length, temperature, top_k, top_p, seed,
                                        callback=stream))

    def stream_text(
        self,
        prime: str = "\n",
        length: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        callback: Callable[[str], Any] | None = None,
    ) -> Iterator[str]:
        """Like :meth:`generate` but yields the text piece by piece (one token each)."""
        tok = self._require_tokenizer()
        sep = " " if tok.kind == "word" else ""
        was_training = self.training
        self.eval()
        try:
            for i in generate_tokens(self, self._encode_prime(prime), length,
                                     temperature=temperature, top_k=top_k, top_p=top_p,
                                     seed=seed, banned=(tok.unk_id,)):
                piece = sep + tok.itos[int(i[0])]
                if callback is not None:
                    callback(piece)
                yield piece
        finally:
            self.train(was_training)

    #: Scoring protocol of :meth:`evaluate_tokens`: scored segments of this many tokens ...
    EVAL_SEGMENT = 2048
    #: ... each read after this many tokens of the text before it (not scored).
    EVAL_CONTEXT = 512

    @staticmethod
    def evaluation_batches(ids: Tensor, batch_size: int = 16, segment: int = EVAL_SEGMENT,
                           context: int = EVAL_CONTEXT,
                           spans: list[tuple[int, int]] | None = None,
                           ) -> list[tuple[Tensor, Tensor]]:
        """The stream ``ids [N]`` as batches ``(x [b, L], y [b, L])`` that score every
        prediction ``w_{t+1} | w_{<=t}`` exactly once, independently of ``batch_size``.

        The ``N - 1`` predictions are cut into segments of ``segment`` tokens; each segment is
        read after up to ``context`` tokens of the text right before it, whose targets are
        ``IGNORE_INDEX`` (so every scored token after the first segment has at least
        ``context`` tokens of history; the first starts from the text's start). Rows are
        right-padded (targets ``IGNORE_INDEX``), which a left-to-right model never sees.
        ``batch_size`` only says how many segments run side by side: the scores, and so the
        mean loss, are the same for every batch size. ``spans`` (``[(start, end)]`` prediction
        ranges: the targets ``ids[start + 1: end + 1]``) scores only those parts of the stream,
        each cut into segments the same way (a held-out block inside a text, read after the
        text before it).

        >>> xs = LanguageModel.evaluation_batches(torch.arange(10), batch_size=2, segment=4,
        ...                                       context=2)
        >>> x, y = xs[0]
        >>> x.tolist()
        [[0, 1, 2, 3, 0, 0], [2, 3, 4, 5, 6, 7]]
        >>> y.tolist()  # -100: context or padding, not scored
        [[1, 2, 3, 4, -100, -100], [-100, -100, 5, 6, 7, 8]]
        """
        for name, value in (("batch_size", batch_size), ("segment", segment)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(context, int) or context < 0:
            raise ValueError(f"context must be an integer >= 0, got {context!r}")
        n = ids.numel() - 1  # predictions
        rows = []
        for lo, hi in spans if spans is not None else [(0, n)]:
            if not 0 <= lo < hi <= n:
                raise ValueError(f"span ({lo}, {hi}) is not inside the {n} predictions")
            for s in range(lo, hi, segment):
                a, e = max(0, s - context), min(s + segment, hi)
                y = ids[a + 1: e + 1].clone()
                y[: s - a] = IGNORE_INDEX
                rows.append((ids[a:e], y))
        batches = []
        for i in range(0, len(rows), batch_size):
            group = rows[i: i + batch_size]
            width = max(len(x) for x, _ in group)
            x = ids.new_zeros(len(group), width)
            y = ids.new_full((len(group), width), IGNORE_INDEX)
            for r, (xr, yr) in enumerate(group):
                x[r, : len(xr)], y[r, : len(yr)] = xr, yr
            batches.append((x, y))
        return batches

    def evaluate_tokens(self, ids: Tensor, batch_size: int = 16, bptt: int = 256) -> dict:
        """Next-token loss over a whole stream ``ids [N]``: every token after the first is
        scored exactly once, as one stream read in segments (:meth:`evaluation_batches`:
        segments of :attr:`EVAL_SEGMENT` tokens, each after :attr:`EVAL_CONTEXT` tokens of
        the text before it). The result does not depend on ``batch_size`` (segments run side
        by side) or ``bptt`` (steps per forward call, state carried between them). Returns
        ``loss`` (nats/token), ``perplexity``, ``bits_per_token``, ``tokens`` (the number
        scored) and ``protocol`` (how the stream was split, in words).
        """
        if not isinstance(ids, Tensor) or ids.dim() != 1:
            raise ValueError(f"expected a token stream of shape [N], got {_shape(ids)}")
        if ids.numel() < 2:
            raise ValueError(f"the stream has {ids.numel()} token(s); at least 2 are needed to "
                             f"score one next-token prediction")
        for name, value in (("batch_size", batch_size), ("bptt", bptt)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        was_training = self.training
        self.eval()
        device = self.head.weight.device
        total, count = 0.0, 0
        try:
            with torch.no_grad():
                for x, y in self.evaluation_batches(ids.to(device), batch_size,
                                                     self.EVAL_SEGMENT, self.EVAL_CONTEXT):
                    state = None
                    for s in range(0, x.shape[1], bptt):
                        logits, state = self(x[:, s: s + bptt], state)
                        yt = y[:, s: s + bptt]
                        total += float(F.cross_entropy(logits.flatten(0, 1), yt.flatten(),
                                                       ignore_index=IGNORE_INDEX,
                                                       reduction="sum"))
                        count += int((yt != IGNORE_INDEX).sum())
        finally:
            self.train(was_training)
        loss = total / count
        return {"loss": loss, "perplexity": perplexity(loss),
                "bits_per_token": bits_per_token(loss), "tokens": count,
                "protocol": self.eval_protocol()}

    def eval_protocol(self) -> str:
        """How :meth:`evaluate_tokens` reads a text, in words (for reports)."""
        return (f"one stream scored in segments of {self.EVAL_SEGMENT} tokens, each read after "
                f"the {self.EVAL_CONTEXT} tokens before it (the same for every batch size)")

    def evaluate_text(self, text: str, batch_size: int = 16, bptt: int = 256) -> dict:
        """:meth:`evaluate_tokens` on ``text`` encoded with the model's tokenizer, plus
        ``unk_rate`` and ``bits_per_char`` (for a word model: total bits over the length of
        ``text``, so models of different tokenizations compare)."""
        tok = self._require_tokenizer()
        ids = tok.encode_tensor(text)
        result = self.evaluate_tokens(ids, batch_size, bptt)
        result["unk_rate"] = float((ids == tok.unk_id).float().mean()) if ids.numel() else 0.0
        if tok.kind == "char":
            result["bits_per_char"] = result["bits_per_token"]
        else:  # total bits spread over the text's characters (whitespace included)
            result["bits_per_char"] = result["loss"] * result["tokens"] / LN2 / len(text)
        return result

    # -- persistence -----------------------------------------------------------------------
    TASK = "language_model"

    def extra_state(self) -> dict[str, Any]:
        """JSON-able description saved in checkpoints to rebuild the model."""
        tok = self.tokenizer.to_dict() if self.tokenizer is not None else None
        return {"task": self.TASK, "config": asdict(self.config), "tokenizer": tok}

    @classmethod
    def from_extra_state(cls, extra: dict[str, Any]) -> LanguageModel:
        """Rebuild an (untrained) model from :meth:`extra_state` output (checkpoints written
        before the key was ``"config"`` hold ``"model_config"``)."""
        from ..train.checkpoint import task_state

        task_state({"extra_state": extra}, cls.TASK, "language-model", "rnnkit train text")
        tok = extra.get("tokenizer")
        config = extra["config"] if "config" in extra else extra["model_config"]
        return cls(LanguageModelConfig.from_dict(config),
                   tokenizer_from_dict(tok) if tok is not None else None)

    @classmethod
    def from_state(cls, checkpoint: dict[str, Any]) -> LanguageModel:
        """The trained model (eval mode) of a trainer checkpoint dict (what :func:`rnnkit.load`
        calls for ``task="language_model"``)."""
        model = cls.from_extra_state(checkpoint.get("extra_state") or {})
        model.load_state_dict(checkpoint["model"])
        return model.eval()


def load_language_model(path: str, map_location: str = "cpu") -> LanguageModel:
    """Load a language model and its tokenizer from a trainer checkpoint (``best.pt`` /
    ``last.pt``), read with ``weights_only=True``."""
    from ..saving import rebuild
    from ..train import load_checkpoint  # the trainer owns the checkpoint format

    return rebuild(LanguageModel, load_checkpoint(path, map_location=map_location), path)


def _split_batch(batch: Any) -> tuple[Tensor, Tensor]:
    if isinstance(batch, dict):
        if "x" not in batch or "y" not in batch:
            raise ValueError(f"a dict batch needs 'x' and 'y' keys, got {sorted(batch)}")
        return batch["x"], batch["y"]
    if isinstance(batch, (tuple, list)):
        if len(batch) != 2:
            raise ValueError(f"expected a batch (x [B, T], y [B, T]), got {len(batch)} items")
        x, y = batch
        if not isinstance(y, Tensor) or y.shape != x.shape:
            raise ValueError(f"targets must have the shape of the inputs [B, T], got "
                             f"{_shape(x)} and {_shape(y)}")
        return x, y
    if isinstance(batch, Tensor):
        if batch.dim() != 2 or batch.shape[1] < 2:
            raise ValueError(f"a tensor batch must be whole sequences [B, T + 1] with T >= 1, "
                             f"got {list(batch.shape)}")
        return batch[:, :-1], batch[:, 1:]
    raise TypeError(f"unsupported batch type {type(batch).__name__}; give (x, y), "
                    f"{{'x': x, 'y': y}} or a [B, T + 1] tensor")


def _shape(x: Any) -> str:
    return str(list(x.shape)) if isinstance(x, Tensor) else type(x).__name__
