"""The text wing's settings, torch-free so that ``rnnkit --help`` and config parsing never
import torch: the language model's architecture (:class:`LanguageModelConfig`), how samples
are drawn (:class:`SampleConfig`), the main job's settings (:class:`DemoConfig`), the
classifier's (:class:`ClassifierConfig`) and the encoder-decoder's (:class:`Seq2SeqConfig`).
The modules that use them (:mod:`~rnnkit.text.language_model`, :mod:`~rnnkit.text.generation`,
:mod:`~rnnkit.text.classifier`, :mod:`~rnnkit.text.seq2seq`) re-export these names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from ..checks import check_sampling, choice, positive_ints, probabilities
from ..data.vocab import EOS

if TYPE_CHECKING:  # pragma: no cover - for annotations only
    from .language_model import LanguageModel

__all__ = ["POOLINGS", "ClassifierConfig", "DemoConfig", "LanguageModelConfig", "SampleConfig",
           "Seq2SeqConfig"]

#: How a classifier turns its outputs into one vector.
POOLINGS = ("last", "mean", "max", "attention")


@dataclass
class LanguageModelConfig:
    """Architecture of a :class:`LanguageModel` (the ``[model]`` table of a TOML config).

    Attributes:
        vocab_size: number of token ids ``V`` (set from the tokenizer when training).
        cell: any registered cell (``"lstm"``, ``"gru"``, ``"elman"``, ...).
        embed_size: embedding width ``D_e``.
        hidden_size: recurrent state size ``H``.
        num_layers: stacked recurrent layers ``L``.
        dropout: dropout on the embeddings, between layers and before the output layer.
        tie_weights: share the embedding matrix with the output layer (needs
            ``embed_size == hidden_size``).
        backend: :class:`~rnnkit.Recurrent` backend (``"auto"`` picks the fastest).
    """

    vocab_size: int = 0
    cell: str = "lstm"
    embed_size: int = 64
    hidden_size: int = 512
    num_layers: int = 2
    dropout: float = 0.0
    tie_weights: bool = False
    backend: str = "auto"

    def __post_init__(self) -> None:
        positive_ints(embed_size=self.embed_size, hidden_size=self.hidden_size,
                      num_layers=self.num_layers)
        probabilities(dropout=self.dropout)
        if self.tie_weights and self.embed_size != self.hidden_size:
            raise ValueError(
                f"tie_weights needs embed_size == hidden_size, got {self.embed_size} and "
                f"{self.hidden_size}; set embed_size = hidden_size or turn tie_weights off")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LanguageModelConfig:
        """Build from a dict (e.g. a checkpoint's ``extra_state``), rejecting unknown keys."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown language-model option(s) {sorted(unknown)}; "
                             f"valid: {sorted(names)}")
        return cls(**data)


@dataclass
class SampleConfig:
    """How samples are drawn (the ``[sample]`` table; also ``rnnkit generate``'s options).

    Attributes:
        prime: the text the model continues.
        length: tokens to generate.
        temperature: softmax temperature, a finite number >= 0: 0 = greedy (always the most
            likely token), 1 = the model's own distribution, higher = more random.
        top_k, top_p: optional top-k / nucleus cuts.
        seed: seed of the sampler (``None``: fresh randomness).
        every_s: while training, print a sample at most this often (seconds; ``0`` = at every
            evaluation only).
    """

    prime: str = "\n"
    length: int = 300
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = 0
    every_s: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.length, int) or self.length < 0:
            raise ValueError(f"length must be a non-negative integer, got {self.length!r}")
        check_sampling(self.temperature, self.top_k, self.top_p)  # now, not at the 1st sample

    def draw(self, model: LanguageModel, stream: Callable[[str], Any] | None = None) -> str:
        """A sample from ``model`` with these settings."""
        return model.generate(self.prime, self.length, self.temperature, self.top_k,
                              self.top_p, self.seed, stream=stream)


@dataclass
class DemoConfig:
    """``rnnkit demo``: a character LSTM on the Python standard library's own source.

    Attributes:
        out_dir: where the checkpoint, learning curves and samples go.
        max_time: training budget in seconds (wall clock).
        corpus_bytes: bytes of text to read: of the standard-library source (``None``: 2 MB),
            or of ``data`` (``None``: the whole file; a cap is stated in the output).
        hidden_size: LSTM state size.
        num_layers: stacked LSTM layers.
        embed_size: character embedding width.
        batch_size: rows of the truncated-BPTT stream.
        bptt: steps per chunk (between state detaches).
        lr: peak AdamW learning rate (cosine decay over the time budget, see
            :class:`TimeCosineLR`).
        eval_every: steps between validation passes (each prints a sample).
        sample_every_s: also print a sample at most this often between evaluations.
        threads: torch CPU threads (``0``: torch's default, or 1 when the machine is
            already busy; an explicit number always wins).
        seed: seed of training and sampling.
        data: a text file to train on instead of the standard library.
        progress: show the progress bar.
    """

    out_dir: str = "runs/demo"
    max_time: float = 180.0
    corpus_bytes: int | None = None
    hidden_size: int = 256
    num_layers: int = 1
    embed_size: int = 64
    batch_size: int = 16
    bptt: int = 64
    lr: float = 4e-3
    eval_every: int = 500
    sample_every_s: float = 30.0
    threads: int = 0
    seed: int = 0
    data: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        from ..checks import non_negative_ints, positive_ints

        positive_ints(hidden_size=self.hidden_size, num_layers=self.num_layers,
                      embed_size=self.embed_size, batch_size=self.batch_size, bptt=self.bptt,
                      eval_every=self.eval_every)
        non_negative_ints(threads=self.threads)
        if self.corpus_bytes is not None:
            positive_ints(corpus_bytes=self.corpus_bytes)
        for name in ("max_time", "lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not self.out_dir:
            raise ValueError("out_dir is empty; give a folder for the demo's outputs")

    @classmethod
    def quick(cls, **overrides: Any) -> DemoConfig:
        """A ~30-second version (small model, small corpus) for tests and a first look."""
        base = dict(max_time=25.0, corpus_bytes=200_000, hidden_size=96, embed_size=32,
                    batch_size=16, bptt=64, eval_every=150, sample_every_s=10.0)
        base.update(overrides)
        return cls(**base)


@dataclass
class ClassifierConfig:
    """Configuration of :class:`SequenceClassifier` (the ``[model]`` table of
    ``rnnkit classify train``).

    Give ``vocab_size`` for token input (ids, ``padding_idx`` = 0) or ``input_size`` for
    feature input ``[B, T, input_size]``.

    Attributes:
        num_classes: number of classes, at least 2 (set from the labels when training).
        vocab_size: number of token ids (set from the vocabulary when training).
        input_size: width of float feature input (instead of vocab_size).
        embed_size: token embedding width.
        hidden_size: recurrent state size per direction.
        num_layers: stacked recurrent layers.
        cell: any registered cell ("lstm", "gru", "elman", ...).
        bidirectional: read each text in both directions (the pooled vector doubles).
        pooling: how the outputs become one vector: "last", "mean", "max" or "attention".
        dropout: dropout on the pooled vector (and between stacked layers).
        embed_dropout: dropout on the embeddings / input features.
        backend: :class:`~rnnkit.Recurrent` backend ("auto" picks the fastest).
    """

    num_classes: int = 2
    vocab_size: int | None = None
    input_size: int | None = None
    embed_size: int = 128
    hidden_size: int = 128
    num_layers: int = 1
    cell: str = "lstm"
    bidirectional: bool = True
    pooling: str = "max"
    dropout: float = 0.3
    embed_dropout: float = 0.0
    backend: str = "auto"

    def __post_init__(self) -> None:
        if (self.vocab_size is None) == (self.input_size is None):
            raise ValueError("give exactly one of vocab_size (token input) or input_size "
                             "(feature input)")
        choice("pooling", self.pooling, POOLINGS)
        positive_ints(embed_size=self.embed_size, hidden_size=self.hidden_size,
                      num_layers=self.num_layers)
        probabilities(dropout=self.dropout, embed_dropout=self.embed_dropout)
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")


@dataclass
class Seq2SeqConfig:
    """Configuration of :class:`Seq2Seq` (the ``[model]`` table of ``rnnkit translate
    train``). The decoder's width is ``2 * hidden_size`` (the width of the bidirectional
    memory), so dot attention applies without a projection.

    Attributes:
        src_vocab_size, tgt_vocab_size: source and target token ids, the 4 special tokens
            included (set from the vocabularies when training).
        embed_size: source and target embedding width.
        hidden_size: encoder state size per direction (the decoder's is twice this).
        enc_layers: stacked layers of the bidirectional encoder.
        dec_layers: stacked layers of the decoder.
        cell: any registered cell ("lstm", "gru", "elman", ...).
        attention: "general", "dot", "additive" or "none" (the fixed-vector bottleneck).
        input_feeding: feed the previous attentional state into the decoder (Luong).
        teacher_forcing: probability of feeding the reference previous token while training
            (else the model's own prediction).
        dropout: dropout on the embeddings, between stacked layers and before the output.
        backend: :class:`~rnnkit.Recurrent` backend ("auto" picks the fastest).
    """

    src_vocab_size: int
    tgt_vocab_size: int
    embed_size: int = 64
    hidden_size: int = 128
    enc_layers: int = 1
    dec_layers: int = 1
    cell: str = "lstm"
    attention: str = "general"
    input_feeding: bool = False
    teacher_forcing: float = 1.0
    dropout: float = 0.1
    backend: str = "auto"

    def __post_init__(self) -> None:
        from ..attention import ATTENTION_KINDS  # torch; a config is built just before use

        if self.attention not in (*ATTENTION_KINDS, "none"):
            raise ValueError(f"unknown attention={self.attention!r}; choose one of "
                             f"{', '.join(ATTENTION_KINDS)} or 'none'")
        if not 0.0 <= self.teacher_forcing <= 1.0:  # NaN fails too
            raise ValueError(f"teacher_forcing is a probability in [0, 1] (1: always feed the "
                             f"reference token), got {self.teacher_forcing}")
        for name in ("embed_size", "hidden_size", "enc_layers", "dec_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("src_vocab_size", "tgt_vocab_size"):
            if getattr(self, name) <= EOS + 1:
                raise ValueError(f"{name} must count the 4 special tokens plus at least one "
                                 f"word, got {getattr(self, name)}")
