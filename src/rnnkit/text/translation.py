"""The translation application: a trained :class:`~rnnkit.text.seq2seq.Seq2Seq` with its
source and target vocabularies (:class:`Translator`, text in, text out), its training from
``(source, target)`` pairs (:func:`train_translator`), the pairs file reader and the attention
heatmap. The network itself is :mod:`rnnkit.text.seq2seq`.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from .seq2seq import Seq2Seq, Seq2SeqConfig

__all__ = ["Translator", "read_pairs_tsv", "save_attention_heatmap", "train_translator"]


def save_attention_heatmap(weights: Tensor, src_tokens: list[str], tgt_tokens: list[str],
                           path: str, title: str | None = None) -> str:
    """Draw attention ``weights [T, S]`` (rows: target tokens, columns: source tokens) to a PNG.

    Written atomically (:func:`rnnkit.saving.atomic_write_bytes`); returns ``path``.
    """

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = weights.detach().float().cpu().numpy()
    if w.shape != (len(tgt_tokens), len(src_tokens)):
        raise ValueError(f"weights have shape {list(w.shape)} but there are "
                         f"{len(tgt_tokens)} target and {len(src_tokens)} source tokens")
    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(src_tokens), 1 + 0.4 * len(tgt_tokens)))
    im = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(src_tokens)), src_tokens, rotation=60, ha="right")
    ax.set_yticks(range(len(tgt_tokens)), tgt_tokens)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.04)
    from ..saving import atomic_write_figure

    atomic_write_figure(fig, path, dpi=110, bbox_inches="tight")
    return path


class Translator:
    """A trained :class:`Seq2Seq` with its source and target vocabularies: text in, text out.
    Rebuilt from a trainer checkpoint by :meth:`from_checkpoint` or :func:`rnnkit.load`
    (config and vocabularies travel in the checkpoint's ``extra_state``).

    >>> from rnnkit.data.vocab import Vocab
    >>> sv, tv = Vocab.build(["one", "two"]), Vocab.build(["un", "deux"])
    >>> model = Seq2Seq(Seq2SeqConfig(len(sv), len(tv), embed_size=4, hidden_size=4))
    >>> out = Translator(model, sv, tv).translate(["one two"], beam_size=2, max_len=3)
    >>> len(out), type(out[0][0]).__name__, out[0][1] <= 0
    (1, 'str', True)
    """

    TASK = "translate"

    def __init__(self, model: Seq2Seq, src_vocab, tgt_vocab, max_len: int | None = None) -> None:
        """``max_len``: most target tokens to decode (default ``2 S + 10``, which suits word
        targets; character targets need the longest training target and some slack)."""
        self.model, self.src_vocab, self.tgt_vocab = model, src_vocab, tgt_vocab
        self.max_len = max_len

    def extra_state(self) -> dict:
        from dataclasses import asdict

        return {"task": self.TASK, "config": asdict(self.model.config),
                "src_vocab": self.src_vocab.to_json(), "tgt_vocab": self.tgt_vocab.to_json(),
                "max_len": self.max_len}

    @classmethod
    def from_state(cls, checkpoint: dict, where: str = "this checkpoint") -> Translator:
        """The trained translator (eval mode) of a trainer checkpoint dict (what
        :func:`rnnkit.load` calls for ``task="translate"``)."""
        from ..data.vocab import vocabulary_from_json
        from ..train.checkpoint import task_state

        extra = task_state(checkpoint, cls.TASK, "translation", "rnnkit translate train", where)
        model = Seq2Seq(Seq2SeqConfig(**extra["config"]))
        model.load_state_dict(checkpoint["model"])
        return cls(model.eval(), vocabulary_from_json(extra["src_vocab"]),
                   vocabulary_from_json(extra["tgt_vocab"]), extra.get("max_len"))

    @classmethod
    def from_checkpoint(cls, path: str) -> Translator:
        """Load ``best.pt`` / ``last.pt`` written by ``rnnkit translate train``."""
        from functools import partial

        from ..saving import rebuild
        from ..train import load_checkpoint

        return rebuild(partial(cls.from_state, where=str(path)), load_checkpoint(path), path)

    def encode(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        from ..data.batching import pad_sequences

        unk = self.src_vocab.unk_id
        ids = [seq or [unk] for seq in self.src_vocab.encode_batch(list(texts))]
        device = next(self.model.parameters()).device
        x, lengths = pad_sequences(ids, dtype=torch.long)
        return x.to(device), lengths.to(device)

    def translate(self, texts: list[str], beam_size: int = 5, max_len: int | None = None,
                  length_penalty: float = 1.0, batch_size: int = 256) -> list[tuple[str, float]]:
        """``(translation, score)`` per text: beam search (greedy if ``beam_size == 1``);
        the score is the length-normalised log-probability (summed for greedy)."""
        if isinstance(texts, str):
            texts = [texts]
        max_len = max_len or self.max_len
        out: list[tuple[str, float]] = []
        for start in range(0, len(texts), batch_size):
            x, lengths = self.encode(texts[start : start + batch_size])
            if beam_size == 1:
                res = self.model.greedy(x, lengths, max_len)
                toks, scores, lens = res.tokens, res.scores, res.lengths
            else:
                res = self.model.beam(x, lengths, beam_size, max_len, length_penalty)
                toks, scores, lens = res.tokens[:, 0], res.scores[:, 0], res.lengths[:, 0]
            for row, score, n in zip(toks.tolist(), scores.tolist(), lens.tolist()):
                out.append((self.tgt_vocab.decode(row[:n]), float(score)))
        return out


def train_translator(pairs: list[tuple[str, str]], config: Seq2SeqConfig | None = None,
                     train_config=None, val_fraction: float = 0.05, level: str = "word",
                     batch_size: int = 64, seed: int = 0,
                     resume: bool = False) -> tuple[Translator, dict]:
    """Fit a :class:`Translator` on ``(source, target)`` sentence pairs.

    Source text is split into words; the target into words or characters (``level``; use
    ``"char"`` for languages that write numbers as one compound word, like German). A random
    ``val_fraction`` of the pairs is held out for the trainer's evaluations (and best.pt).
    ``resume=True`` continues the run in ``train_config.out_dir`` from its ``last.pt``, with
    that checkpoint's vocabularies and model config (``config`` and ``level`` are then
    ignored). Returns the translator with the weights of ``best.pt`` and their validation metrics.
    The initial weights are drawn from ``seed``. Under ``torchrun`` every process calls it
    with the same pairs and settings and trains its share of each batch
    (:mod:`rnnkit.train.distributed`); only rank 0 writes files.
    """
    from dataclasses import replace

    from ..data.batching import pair_loader
    from ..data.vocab import Vocab
    from ..train import TrainConfig, Trainer

    if len(pairs) < 2:
        raise ValueError(f"need at least 2 sentence pairs to train, got {len(pairs)}")
    if not 0 <= val_fraction < 1:  # NaN fails too
        raise ValueError(f"val_fraction must be in [0, 1) (the share of the pairs held out for "
                         f"validation, e.g. 0.05), got {val_fraction}")
    train_config = train_config or TrainConfig()
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(len(pairs) * val_fraction))
    if n_val >= len(pairs):
        raise ValueError(f"val_fraction={val_fraction:g} holds out {n_val} of the {len(pairs)} "
                         f"pairs, leaving none to train on; lower val_fraction or give more "
                         f"pairs")
    val = [pairs[i] for i in order[:n_val]]
    train = [pairs[i] for i in order[n_val:]]
    if resume:  # the run's own vocabularies and architecture, whatever the flags say now
        if not train_config.out_dir:
            raise ValueError("resume=True needs train_config.out_dir, the folder with last.pt")
        saved = Translator.from_checkpoint(os.path.join(train_config.out_dir, "last.pt"))
        sv, tv, max_len = saved.src_vocab, saved.tgt_vocab, saved.max_len
        cfg = saved.model.config
    else:
        sv = Vocab.build([s for s, _ in train])
        tv = Vocab.build([t for _, t in train], level=level)
        cfg = replace(config or Seq2SeqConfig(len(sv), len(tv)), src_vocab_size=len(sv),
                      tgt_vocab_size=len(tv))
        longest = max(len(tv.encode(t)) for _, t in train)
        max_len = longest + longest // 2 + 5
    with torch.random.fork_rng(devices=[]):  # seed the initial weights; no side effect
        torch.manual_seed(seed)
        tr = Translator(Seq2Seq(cfg), sv, tv, max_len=max_len)
    model = tr.model

    def loader(ps, shuffle):
        src = [sv.encode(s) or [sv.unk_id] for s, _ in ps]
        tgt = [tv.encode(t, bos=True, eos=True) for _, t in ps]
        return pair_loader(src, tgt, batch_size=batch_size, shuffle=shuffle, seed=seed)

    trainer = Trainer(model, train_config, loader(train, True), loader(val, False),
                      extra_state={**tr.extra_state(), "run": {"data_config": {
                          "val_fraction": val_fraction, "level": level,
                          "batch_size": batch_size}}})
    trainer.fit(resume=resume)
    # the weights and score of best.pt (the final weights, scored, without a best.pt); under
    # torchrun rank 0 reads best.pt and every rank gets the same weights and metrics
    metrics = trainer.best_metrics()
    model.eval()
    return tr, metrics


def read_pairs_tsv(path: str) -> list[tuple[str, str]]:
    """``source<TAB>target`` lines (UTF-8, or Latin-1 for legacy files; blank lines skipped)
    -> list of pairs; a line with a missing or extra column is a ValueError naming it
    (:func:`~rnnkit.data.sentiment.read_tsv_columns`)."""
    from ..data.sentiment import read_tsv_columns

    pairs = [(src, tgt) for _, src, tgt in read_tsv_columns(path, ("source", "target"))]
    if not pairs:
        raise ValueError(f"{path} holds no sentence pairs")
    return pairs
