"""Text for language models: character and word tokenizers, corpus loading, and the demo corpus.

A tokenizer is a :class:`~rnnkit.data.vocab.Vocabulary`: it maps text to a list of ids
(:meth:`Tokenizer.encode`; :meth:`Tokenizer.encode_tensor` gives the 1-D ``LongTensor`` ``[N]``
a language model reads) and back. Its vocabulary is a plain list of strings, saved as JSON
beside (or inside) a model checkpoint, so a model can be rebuilt and used on new text. Symbols
never seen while building the vocabulary map to the unknown token ``<unk>`` (``unk_id`` 0)
instead of failing; there are no padding, begin or end tokens (``pad_id`` etc. are ``None``).

>>> tok = CharTokenizer.from_text("hello world")
>>> ids = tok.encode("hold")
>>> tok.decode(ids)
'hold'
>>> tok.encode_tensor("hold").tolist() == ids
True
>>> tok.decode(tok.encode("help!"))  # 'p' and '!' were never seen
'hel<unk><unk>'
>>> words = WordTokenizer.from_text("the cat sat on the mat .")
>>> words.decode(words.encode("the dog sat"))
'the <unk> sat'
"""

from __future__ import annotations

import json
import os
import re
import sysconfig
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch loads on use: the tokenizers serve the torch-free rnnkit.onnx
    from torch import Tensor

from ..checks import positive_ints
from .vocab import Vocabulary

__all__ = [
    "UNK",
    "CharTokenizer",
    "TextDataConfig",
    "Tokenizer",
    "WordTokenizer",
    "load_lines",
    "load_text",
    "split_tokens",
    "stdlib_corpus",
    "tokenizer_from_dict",
]

#: The unknown token; always id 0 of every vocabulary.
UNK = "<unk>"


@dataclass
class TextDataConfig:
    """How a text file becomes training data (the ``[data]`` table of a TOML config).

    Attributes:
        path: the UTF-8 (or Latin-1) text file to train on.
        level: ``"char"`` or ``"word"`` tokens.
        val_fraction: the last fraction of the stream held out for validation.
        batch_size: rows ``B`` of the truncated-BPTT stream.
        bptt: chunk length ``T`` (steps between state detaches).
        overlap: steps of the previous chunk re-read at the start of each chunk, so gradients
            reach ``bptt + overlap`` steps back (truncated BPTT with k2 > k1).
        max_vocab: keep only the most frequent symbols (others become ``<unk>``); ``None`` keeps
            all.
        min_count: drop symbols seen fewer times (word level mostly).
        lowercase: lowercase the text first.
    """

    path: str | None = None
    level: str = "char"
    val_fraction: float = 0.1
    batch_size: int = 32
    bptt: int = 128
    overlap: int = 0
    max_vocab: int | None = None
    min_count: int = 1
    lowercase: bool = False

    def __post_init__(self) -> None:
        if self.level not in ("char", "word"):
            raise ValueError(f"level must be 'char' or 'word', got {self.level!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")
        positive_ints(batch_size=self.batch_size, bptt=self.bptt, min_count=self.min_count)
        if not isinstance(self.overlap, int) or not 0 <= self.overlap < self.bptt:
            raise ValueError(f"overlap must be an integer in [0, bptt={self.bptt}), "
                             f"got {self.overlap!r}")
        if self.max_vocab is not None and self.max_vocab < 2:
            raise ValueError(f"max_vocab must be at least 2 (<unk> plus one symbol), "
                             f"got {self.max_vocab}")

    def build_tokenizer(self, text: str) -> Tokenizer:
        """A tokenizer of this config's ``level`` built from ``text``."""
        cls = CharTokenizer if self.level == "char" else WordTokenizer
        return cls.from_text(text, max_vocab=self.max_vocab, min_count=self.min_count,
                             lowercase=self.lowercase)


class Tokenizer(Vocabulary):
    """Base class: a vocabulary (``itos``, id 0 = ``<unk>``) plus a way to split text.

    Subclasses define :meth:`split` (text -> symbols) and :meth:`join` (symbols -> text).
    Saved on its own with :meth:`save` (JSON tagged ``"format": "rnnkit.tokenizer/1"``) and
    read back by :meth:`load` or :func:`rnnkit.load`.
    """

    kind = "base"
    KIND = "rnnkit.tokenizer"
    VERSION = 1
    SAVES_ITSELF = True  # rnnkit.save calls self.save: a JSON file, not a torch one
    unk_id = 0

    def __init__(self, itos: Iterable[str], lowercase: bool = False) -> None:
        itos = list(itos)
        if not itos or itos[0] != UNK:
            itos = [UNK, *[s for s in itos if s != UNK]]
        if len(set(itos)) != len(itos):
            raise ValueError("the vocabulary has duplicate entries; each symbol must be unique")
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(itos)}
        self.lowercase = bool(lowercase)

    # -- the two methods a tokenizer defines ----------------------------------------------
    def split(self, text: str) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def join(self, symbols: list[str]) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- building --------------------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str, max_vocab: int | None = None, min_count: int = 1,
                  lowercase: bool = False) -> Tokenizer:
        """Build the vocabulary from ``text``: symbols by falling frequency (ties in first-seen
        order, so the result is deterministic), cut to ``max_vocab`` entries (``<unk>``
        included) and to symbols seen at least ``min_count`` times."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        probe = cls([UNK], lowercase=lowercase)
        symbols = probe.split(probe._normalize(text))
        if not symbols:
            raise ValueError("cannot build a vocabulary from empty text; give a non-empty corpus")
        counts = Counter(symbols)
        ranked = [s for s, c in counts.most_common() if c >= min_count and s != UNK]
        if max_vocab is not None:
            ranked = ranked[: max_vocab - 1]
        return cls([UNK, *ranked], lowercase=lowercase)

    # -- use -------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of ids, ``<unk>`` included."""
        return len(self.itos)

    def _normalize(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def encode(self, text: str) -> list[int]:
        """``text`` -> ids; unknown symbols become 0 (``<unk>``)."""
        if not isinstance(text, str):
            raise TypeError(f"encode() expects a str, got {type(text).__name__}")
        get = self.stoi.get
        return [get(s, 0) for s in self.split(self._normalize(text))]

    def encode_tensor(self, text: str) -> Tensor:
        """``text`` -> ids ``[N]`` (int64), what a language model reads."""
        import torch

        return torch.tensor(self.encode(text), dtype=torch.long)

    def decode(self, ids: Tensor | Iterable[int]) -> str:
        """ids ``[N]`` -> text."""
        if hasattr(ids, "dim") and hasattr(ids, "tolist"):  # a tensor
            if ids.dim() > 1:
                raise ValueError(f"decode() expects ids of shape [N], got {list(ids.shape)}; "
                                 f"decode each row separately")
            ids = ids.tolist()
        n = len(self.itos)
        out = []
        for i in ids:
            if not 0 <= int(i) < n:
                raise ValueError(f"id {int(i)} is outside the vocabulary [0, {n}); was the text "
                                 f"encoded with a different tokenizer?")
            out.append(self.itos[int(i)])
        return self.join(out)

    def coverage(self, text: str) -> float:
        """Fraction of ``text``'s symbols that are in the vocabulary (1.0 = no ``<unk>``)."""
        symbols = self.split(self._normalize(text))
        if not symbols:
            return 1.0
        return sum(s in self.stoi for s in symbols) / len(symbols)

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (what checkpoints store)."""
        return {"kind": self.kind, "itos": list(self.itos), "lowercase": self.lowercase}

    def state(self) -> dict[str, Any]:
        """:meth:`to_dict` (the savable-object interface of :mod:`rnnkit.saving`)."""
        return self.to_dict()

    @classmethod
    def from_state(cls, blob: dict[str, Any]) -> Tokenizer:
        """Rebuild from :meth:`state` or a saved file's dict (with or without its tag)."""
        return tokenizer_from_dict(blob)

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON tagged ``"format": "rnnkit.tokenizer/1"``,
        atomically (:func:`rnnkit.saving.atomic_write_text`)."""
        from ..saving import FORMAT_KEY, atomic_write_text, tag

        blob = {**self.to_dict(), FORMAT_KEY: tag(self.KIND, self.VERSION)}
        atomic_write_text(json.dumps(blob, ensure_ascii=False), path)

    @staticmethod
    def load(path: str | os.PathLike) -> Tokenizer:
        """Read a vocabulary written by :meth:`save` (or an untagged older one)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no vocabulary file at {path}; save one with "
                                    f"tokenizer.save(path) first")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not a valid vocabulary JSON file ({err}); "
                             f"re-create it with tokenizer.save(path)") from None
        return Tokenizer.from_state(data)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Tokenizer) and self.to_dict() == other.to_dict())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class CharTokenizer(Tokenizer):
    """One token per Unicode character.

    >>> CharTokenizer.from_text("abca").itos
    ['<unk>', 'a', 'b', 'c']
    """

    kind = "char"

    def split(self, text: str) -> list[str]:
        return list(text)

    def join(self, symbols: list[str]) -> str:
        return "".join(symbols)


# words, or single punctuation marks; whitespace is a separator only
_WORD_RE = re.compile(r"\w+(?:'\w+)?|[^\w\s]", re.UNICODE)


class WordTokenizer(Tokenizer):
    """Words and single punctuation marks (whitespace separates, and decoding re-inserts a
    single space between tokens).

    >>> WordTokenizer.from_text("It's late, isn't it?").split("It's late, isn't it?")
    ["It's", 'late', ',', "isn't", 'it', '?']
    """

    kind = "word"

    def split(self, text: str) -> list[str]:
        return _WORD_RE.findall(text)

    def join(self, symbols: list[str]) -> str:
        return " ".join(symbols)


_KINDS: dict[str, type[Tokenizer]] = {"char": CharTokenizer, "word": WordTokenizer}


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from :meth:`Tokenizer.to_dict` output."""
    if not isinstance(data, dict) or "itos" not in data or "kind" not in data:
        raise ValueError("a tokenizer description needs 'kind' and 'itos' keys; "
                         "write it with tokenizer.to_dict()")
    kind = data["kind"]
    if kind not in _KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; expected one of {sorted(_KINDS)}")
    itos = data["itos"]
    if not isinstance(itos, list) or not all(isinstance(s, str) for s in itos):
        raise ValueError("the vocabulary 'itos' must be a list of strings")
    return _KINDS[kind](itos, lowercase=bool(data.get("lowercase", False)))


def load_text(path: str | os.PathLike, max_bytes: int | None = None) -> str:
    """Read a text file as UTF-8, falling back to Latin-1 for legacy files.

    Raises a clear error for a missing, empty or binary file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"text file {path} does not exist; check the path "
                                f"(relative paths start at {Path.cwd()})")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give a single text file")
    raw = path.read_bytes()
    if max_bytes is not None:
        raw = raw[:max_bytes]
    if not raw.strip():
        raise ValueError(f"text file {path} is empty; give a file with some text")
    if b"\x00" in raw[:65536]:
        raise ValueError(f"{path} looks binary (it contains NUL bytes); give a plain text file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def load_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a text file read by :func:`load_text`, split at ``\n``, ``\r\n`` and
    ``\r`` only (``str.splitlines`` would also cut at ``\x85``, which Latin-1 makes of a
    cp1252 ellipsis, and at ``\x0c``, ``\u2028`` ...); line numbers are list index + 1."""
    return load_text(path).replace("\r\n", "\n").replace("\r", "\n").split("\n")


def split_tokens(ids: Tensor, val_fraction: float, min_len: int = 2) -> tuple[Tensor, Tensor]:
    """Split a token stream ``[N]`` into the first ``1 - val_fraction`` (train) and the rest
    (validation), both at least ``min_len`` tokens long.

    >>> import torch
    >>> train, val = split_tokens(torch.arange(10), 0.2)
    >>> train.tolist(), val.tolist()
    ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    n = ids.numel()
    n_val = int(round(n * val_fraction))
    if n - n_val < min_len or (val_fraction > 0 and n_val < min_len):
        raise ValueError(f"the text is too short: {n} tokens cannot be split into train and "
                         f"validation parts of at least {min_len} tokens each; give more text "
                         f"or a smaller --bptt / --batch-size")
    return ids[: n - n_val], ids[n - n_val:]


def stdlib_corpus(max_bytes: int = 3_000_000) -> str:
    """The demo corpus: the running interpreter's own standard-library ``.py`` files.

    Real text nobody on this project wrote, present on every Python install, so the demo needs
    no download. Files are read in sorted path order (deterministic), skipping test suites
    and generated tables, until ``max_bytes`` characters are collected.

    >>> text = stdlib_corpus(max_bytes=20_000)
    >>> len(text) <= 20_000 and "def " in text
    True
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise FileNotFoundError(f"the standard library was not found at {root}; pass a text "
                                f"file with --data instead")
    # test suites, third-party code, and machine-made tables (codec maps, help-text dumps)
    skip = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__",
            "encodings", "pydoc_data"}
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]  # prune: never walk third-party code
        files += [Path(folder, n) for n in names if n.endswith(".py")]
    files.sort()
    parts: list[str] = []
    total = 0
    for p in files:
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        text = text.replace("\t", "    ")
        parts.append(text)
        total += len(text)
        if total >= max_bytes:
            break
    if not parts:
        raise FileNotFoundError(f"no readable .py files under {root}; pass --data FILE instead")
    return "\n".join(parts)[:max_bytes]
