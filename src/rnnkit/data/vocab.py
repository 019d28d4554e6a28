"""A word- or character-level vocabulary with size limits, built on HuggingFace ``tokenizers``.

Words are split on whitespace (the sentence data sets here come pre-tokenised, with spaces
around punctuation), optionally lower-cased, and counted; the ``vocab_size`` most frequent ones
seen at least ``min_freq`` times get ids after the special tokens ``<pad>`` (0), ``<unk>`` (1),
``<bos>`` (2) and ``<eos>`` (3). Character level treats every character, spaces included, as a
token. Decoding is the inverse of encoding up to whitespace (and case when ``lowercase``).

>>> vocab = Vocab.build(["the cat sat", "the dog"], vocab_size=100)
>>> vocab.encode("the cat flew")
[4, 5, 1]
>>> vocab.decode(vocab.encode("the dog", eos=True))
'the dog'
>>> Vocab.from_json(vocab.to_json()).encode("dog") == vocab.encode("dog")
True
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

__all__ = ["BOS", "EOS", "PAD", "SPECIALS", "UNK", "Vocab"]

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]


class Vocab:
    """Token <-> id mapping; build it with :meth:`Vocab.build`, save it with :meth:`to_json`."""

    def __init__(self, tokenizer: Tokenizer, level: str = "word") -> None:
        self.tokenizer = tokenizer
        self.level = level
        self._itos = [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int | None = None, min_freq: int = 1,
              level: str = "word", lowercase: bool = False) -> Vocab:
        """Count tokens in ``texts`` and keep at most ``vocab_size`` (specials included)."""
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

    def to_json(self) -> str:
        """A JSON string holding everything needed to rebuild the vocabulary."""
        return json.dumps({"level": self.level, "tokenizer": self.tokenizer.to_str()})

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        data = json.loads(text)
        return cls(Tokenizer.from_str(data["tokenizer"]), data["level"])
