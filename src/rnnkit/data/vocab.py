"""One vocabulary protocol (:class:`Vocabulary`) and a word- or character-level vocabulary with
size limits built on HuggingFace ``tokenizers`` (:class:`Vocab`).

Every vocabulary in rnnkit (the language model's :class:`~rnnkit.data.text.CharTokenizer` /
:class:`~rnnkit.data.text.WordTokenizer`, this :class:`Vocab`, and the pretrained
:class:`~rnnkit.data.pretrained.WordPieceVocab`) implements :class:`Vocabulary`: its special
ids are attributes, ``encode`` gives a list of ids, ``to_dict`` a JSON-able description that
:func:`vocabulary_from_dict` turns back into the right class.

:class:`Vocab`: words are split on whitespace (the sentence data sets here come pre-tokenised,
with spaces around punctuation), optionally lower-cased, and counted; the ``vocab_size`` most
frequent ones seen at least ``min_freq`` times get ids after the special tokens ``<pad>`` (0),
``<unk>`` (1), ``<bos>`` (2) and ``<eos>`` (3). Character level treats every character, spaces
included, as a token. Decoding is the inverse of encoding up to whitespace (and case when
``lowercase``).

>>> vocab = Vocab.build(["the cat sat", "the dog"], vocab_size=100)
>>> vocab.encode("the cat flew")
[4, 5, 1]
>>> vocab.decode(vocab.encode("the dog", eos=True))
'the dog'
>>> (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id)
(0, 1, 2, 3)
>>> vocabulary_from_dict(vocab.to_dict()).encode("dog") == vocab.encode("dog")
True
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["BOS", "EOS", "PAD", "SPECIALS", "UNK", "Vocab", "Vocabulary", "unknown_warnings",
           "vocabulary_from_dict", "vocabulary_from_json"]

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]


class Vocabulary(ABC):
    """What every rnnkit vocabulary offers (text <-> ids), so callers never guess ids.

    * ``pad_id``, ``unk_id``, ``bos_id``, ``eos_id``: the special ids, ``None`` where the
      vocabulary has no such token (``unk_id`` is never ``None``: unknown text maps to it);
    * ``len(vocab)`` / ``vocab.vocab_size``: the number of ids (the embedding table's rows);
    * ``encode(text) -> list[int]``, ``encode_batch(texts) -> list[list[int]]`` and
      ``decode(ids) -> str``;
    * ``to_dict()``: a JSON-able dict whose ``"kind"`` key names the class
      (``"char"``, ``"word"``, ``"vocab"``, ``"wordpiece"``); :func:`vocabulary_from_dict`
      rebuilds it, :meth:`to_json` / :func:`vocabulary_from_json` do the same via a string.
    """

    pad_id: int | None = None
    unk_id: int | None = None
    bos_id: int | None = None
    eos_id: int | None = None

    @abstractmethod
    def __len__(self) -> int:
        """Number of ids."""

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included (``len(self)``)."""
        return len(self)

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; unknown tokens become :attr:`unk_id`."""

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        """:meth:`encode` of every text."""
        return [self.encode(t) for t in texts]

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-able description with a ``"kind"`` key; :func:`vocabulary_from_dict` reads it."""

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string (what checkpoints store)."""
        return json.dumps(self.to_dict())

    def count_unknown(self, text: str) -> tuple[int, int]:
        """``(unknown, total)`` tokens of ``text``: how many map to :attr:`unk_id`."""
        ids = self.encode(text)
        return sum(i == self.unk_id for i in ids), len(ids)


def unknown_warnings(vocab: Vocabulary, texts: Sequence[str], names: Sequence[str],
                     max_share: float = 0.5, show: int = 3) -> list[str]:
    """Warnings for the texts a trained model is asked about whose tokens are mostly
    (``> max_share``) unknown to its ``vocab``: the model still answers, but the answer means
    little. One message per such text (named by ``names[i]``), at most ``show`` of them, then
    a count of the rest.

    >>> vocab = Vocab.build(["the cat sat"])
    >>> for line in unknown_warnings(vocab, ["the cat", "a dog barked"], ["1", "2"]):
    ...     print(line[:44])
    2: 3 of 3 words (100%) are unknown to the mo
    """
    unit = "words" if getattr(vocab, "level", None) == "word" else "tokens"
    flagged = []
    for text, name in zip(texts, names):
        unknown, total = vocab.count_unknown(text)
        if total and unknown / total > max_share:
            flagged.append(f"{name}: {unknown} of {total} {unit} ({unknown / total:.0%}) are "
                           f"unknown to the model's vocabulary; its output for it means little")
    if len(flagged) > show:
        flagged[show:] = [f"{len(flagged) - show} more of the {len(texts)} texts are mostly "
                          f"unknown {unit}"]
    return flagged


def vocabulary_from_dict(data: dict[str, Any]) -> Vocabulary:
    """Rebuild any :class:`Vocabulary` from its :meth:`~Vocabulary.to_dict` output, by its
    ``"kind"``: ``"char"`` / ``"word"`` (:mod:`rnnkit.data.text` tokenizers), ``"vocab"``
    (:class:`Vocab`) or ``"wordpiece"`` (:class:`~rnnkit.data.pretrained.WordPieceVocab`).
    Dicts written before the ``"kind"`` key (``{"level", "tokenizer"}``) still load."""
    if not isinstance(data, dict):
        raise ValueError(f"a vocabulary description is a dict, got {type(data).__name__}")
    kind = data.get("kind")
    if kind is None and "level" in data and "tokenizer" in data:  # written before "kind"
        kind = "wordpiece" if data["level"] == "wordpiece" else "vocab"
    if kind in ("char", "word"):
        from .text import tokenizer_from_dict

        return tokenizer_from_dict(data)
    if kind == "vocab":
        return Vocab.from_dict(data)
    if kind == "wordpiece":
        from .pretrained import WordPieceVocab

        return WordPieceVocab.from_dict(data)
    raise ValueError(f"unknown vocabulary kind {kind!r}; expected one of 'char', 'word', "
                     f"'vocab', 'wordpiece' (write it with vocab.to_dict())")


def vocabulary_from_json(text: str) -> Vocabulary:
    """:func:`vocabulary_from_dict` of a JSON string (:meth:`Vocabulary.to_json`)."""
    return vocabulary_from_dict(json.loads(text))


class Vocab(Vocabulary):
    """Token <-> id mapping; build it with :meth:`Vocab.build`, save it with :meth:`to_json`."""

    kind = "vocab"
    pad_id, unk_id, bos_id, eos_id = PAD, UNK, BOS, EOS

    def __init__(self, tokenizer, level: str = "word") -> None:
        self.tokenizer = tokenizer
        self.level = level
        self._itos = [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int | None = None, min_freq: int = 1,
              level: str = "word", lowercase: bool = False) -> Vocab:
        """Count tokens in ``texts`` and keep at most ``vocab_size`` (specials included)."""
        from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

        if level not in ("word", "char"):
            raise ValueError(f"level must be 'word' or 'char', got {level!r}")
        tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
        if lowercase:
            tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = (pre_tokenizers.WhitespaceSplit() if level == "word"
                             else pre_tokenizers.Split(Regex("."), behavior="isolated"))
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size or 10**9,
                                            min_frequency=min_freq, special_tokens=SPECIALS,
                                            show_progress=False)
        tok.train_from_iterator(texts, trainer=trainer)
        if tok.get_vocab_size() <= len(SPECIALS):
            raise ValueError("the texts contain no tokens to build a vocabulary from; check "
                             "that the data is not empty")
        return cls(tok, level)

    def __len__(self) -> int:
        return len(self._itos)

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        """Token ids of ``text`` (unknown tokens -> ``UNK``), optionally framed by BOS/EOS."""
        ids = self.tokenizer.encode(text).ids
        return ([BOS] if bos else []) + ids + ([EOS] if eos else [])

    def encode_batch(self, texts: list[str], bos: bool = False,
                     eos: bool = False) -> list[list[int]]:
        head, tail = ([BOS] if bos else []), ([EOS] if eos else [])
        return [head + e.ids + tail for e in self.tokenizer.encode_batch(texts)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, stopping at EOS and skipping PAD/BOS."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            out.append(self._itos[i] if 0 <= i < len(self._itos) else "<unk>")
        return (" " if self.level == "word" else "").join(out)

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the vocabulary (``"level"`` is also what older rnnkit
        versions read)."""
        return {"kind": self.kind, "level": self.level, "tokenizer": self.tokenizer.to_str()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocab:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_str(data["tokenizer"]), data["level"])

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        return cls.from_dict(json.loads(text))
