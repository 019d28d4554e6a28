r"""Sequence classification (many-to-one): tokens or feature vectors -> class probabilities.

.. math::
    e_t = \mathrm{Embed}(x_t) \text{ or } x_t, \qquad
    h_{1..T} = \mathrm{Recurrent}(e_{1..T}), \qquad
    z = \mathrm{pool}(h_{1..T_b}), \qquad
    p(y \mid x) = \mathrm{softmax}(W \, \mathrm{dropout}(z) + b)

Pooling runs over each sequence's own ``T_b`` valid steps only:

* ``"last"``: the final state of the last layer: forward direction at step ``T_b``, backward
  direction at step 1 (both have then read the whole sequence);
* ``"mean"``: :math:`\frac{1}{T_b} \sum_{t \le T_b} h_t`; ``"max"``: element-wise max;
* ``"attention"``: :math:`\sum_t \alpha_t h_t` with additive attention of a learned query over
  the outputs (Yang et al., 2016, eq. 8-10), padded steps weighted exactly zero.

Shapes: tokens ``[B, T]`` (``long``) or features ``[B, T, F]`` (float); ``lengths [B]``;
logits ``[B, C]``. A batch for :meth:`SequenceClassifier.loss` is ``(x, lengths, y)`` or a dict
with keys ``x``, ``lengths``, ``y``.

>>> cfg = ClassifierConfig(num_classes=3, vocab_size=50, embed_size=8, hidden_size=16,
...                        pooling="attention")
>>> model = SequenceClassifier(cfg)
>>> x, lengths = torch.randint(1, 50, (4, 7)), torch.tensor([7, 5, 2, 1])
>>> tuple(model.predict_proba(x, lengths).shape)
(4, 3)
>>> out = model.loss((x, lengths, torch.tensor([0, 1, 2, 0])))
>>> sorted(out.metrics), out.weight
(['accuracy'], 4)
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import AdditiveAttention, lengths_to_mask
from ..cells import LSTMState
from ..recurrent import Recurrent
from ..train.protocol import LossOutput
from .config import POOLINGS, ClassifierConfig

__all__ = ["POOLINGS", "ClassifierConfig", "SequenceClassifier", "TextClassifier",
           "train_text_classifier",
           "encode_sequence", "unpack_batch"]



def build_encoder(c: Any) -> tuple[nn.Embedding | None, Recurrent]:
    """The shared front end's modules for a classifier or tagger config ``c``: a token
    embedding (``None`` for float features of width ``c.input_size``) and the
    :class:`~rnnkit.Recurrent` over it (dropout between layers only when stacked)."""
    embed = (nn.Embedding(c.vocab_size, c.embed_size, padding_idx=0)
             if c.vocab_size is not None else None)
    in_size = c.embed_size if c.vocab_size is not None else c.input_size
    rnn = Recurrent(c.cell, in_size, c.hidden_size, num_layers=c.num_layers,
                    bidirectional=c.bidirectional,
                    dropout=c.dropout if c.num_layers > 1 else 0.0, backend=c.backend)
    return embed, rnn


def encode_sequence(embed: nn.Module | None, rnn: Recurrent, x: Tensor, lengths: Tensor | None,
                    dropout: nn.Module) -> tuple[Tensor, object, Tensor | None]:
    """Shared front end of the classifier and tagger: check input, embed, run the RNN.

    Returns ``(out [B, T, D*H], final state, lengths)``.
    """
    if embed is not None:
        if x.dim() != 2 or x.dtype != torch.long:
            raise ValueError(f"expected token ids of shape [B, T] and dtype long, got "
                             f"{x.dtype} of shape {list(x.shape)}; this model was built with "
                             f"vocab_size (use input_size for feature input)")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= embed.num_embeddings):
            raise ValueError(f"token ids must lie in [0, {embed.num_embeddings}), got "
                             f"{int(x.min())}..{int(x.max())}; encode with the model's vocab")
        e = embed(x)
    else:
        if x.dim() != 3 or not x.is_floating_point():
            raise ValueError(f"expected float features of shape [B, T, F], got {x.dtype} of "
                             f"shape {list(x.shape)}")
        e = x
    if lengths is not None:
        lengths = torch.as_tensor(lengths, device=x.device).long()
    out, state = rnn(dropout(e), lengths=None if lengths is None else lengths.cpu())
    return out, state, lengths


def unpack_batch(batch) -> tuple[Tensor, Tensor | None, Tensor]:
    """``(x, lengths, y)`` from a tuple ``(x, lengths, y)``, ``(x, y)`` or a dict."""
    if isinstance(batch, dict):
        return batch["x"], batch.get("lengths"), batch["y"]
    if isinstance(batch, (tuple, list)) and len(batch) == 3:
        return batch[0], batch[1], batch[2]
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], None, batch[1]
    raise ValueError("a batch must be (x, lengths, y), (x, y) or a dict with keys x, "
                     f"lengths, y; got {type(batch).__name__}")


class SequenceClassifier(nn.Module):
    """Many-to-one RNN classifier; see the module docstring for the equations.

    Methods: ``forward(x, lengths) -> logits [B, C]``, ``predict_proba``, ``predict``, and
    ``loss(batch) -> LossOutput`` (cross-entropy, with ``accuracy`` in the metrics).
    """

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embed, self.rnn = build_encoder(c)
        width = self.rnn.output_size
        self.attention = (AdditiveAttention(width, width) if c.pooling == "attention" else None)
        self.query = nn.Parameter(torch.randn(width) * 0.1) if self.attention else None
        self.in_drop = nn.Dropout(c.embed_dropout)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(width, c.num_classes)

    def pool(self, out: Tensor, state, lengths: Tensor | None) -> Tensor:
        """``[B, T, D*H]`` outputs (zeros past each length) -> ``[B, D*H]``."""
        B, T, _ = out.shape
        kind = self.config.pooling
        if kind == "last":
            h = state.h if isinstance(state, LSTMState) else state  # [L*D, B, O]
            D = self.rnn.num_directions
            return torch.cat([h[-D + d] for d in range(D)], dim=-1)  # last layer's directions
        mask = (lengths_to_mask(lengths, T, device=out.device) if lengths is not None
                else torch.ones(B, T, dtype=torch.bool, device=out.device))
        if kind == "mean":
            return out.sum(1) / mask.sum(1, keepdim=True).to(out.dtype)
        if kind == "max":
            return out.masked_fill(~mask[:, :, None], float("-inf")).max(1).values
        context, _ = self.attention(self.query.expand(B, -1), out, mask=mask)
        return context

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Class logits ``[B, C]`` for tokens ``[B, T]`` or features ``[B, T, F]``."""
        out, state, lengths = encode_sequence(self.embed, self.rnn, x, lengths, self.in_drop)
        return self.head(self.drop(self.pool(out, state, lengths)))

    @torch.no_grad()
    def predict_proba(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Class probabilities ``[B, C]`` (eval mode for the call)."""
        was = self.training
        self.eval()
        try:
            return torch.softmax(self(x, lengths), -1)
        finally:
            self.train(was)

    def predict(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Most probable class ``[B]``."""
        return self.predict_proba(x, lengths).argmax(-1)

    def loss(self, batch, state=None) -> LossOutput:
        """Cross-entropy of a batch ``(x, lengths, y)``; metrics: ``accuracy``."""
        x, lengths, y = unpack_batch(batch)
        logits = self(x, lengths)
        y = y.long()
        if y.shape != logits.shape[:1] or int(y.min()) < 0 or int(y.max()) >= logits.shape[1]:
            raise ValueError(f"labels must be class ids in [0, {logits.shape[1]}) of shape "
                             f"[{logits.shape[0]}], got shape {list(y.shape)}")
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(-1) == y).float().mean()
        return LossOutput(loss, None, {"accuracy": acc.detach()}, int(y.shape[0]))


class TextClassifier:
    """A trained :class:`SequenceClassifier` with its vocabulary (any
    :class:`~rnnkit.data.vocab.Vocabulary`) and class names: text in, class probabilities out.
    Rebuilt from a trainer checkpoint by :meth:`from_checkpoint` or :func:`rnnkit.load`
    (the model config, vocabulary and classes travel in the checkpoint's ``extra_state``).

    >>> from rnnkit.data.vocab import Vocab
    >>> vocab = Vocab.build(["good film", "bad film"])
    >>> cfg = ClassifierConfig(num_classes=2, vocab_size=len(vocab), embed_size=4,
    ...                        hidden_size=4)
    >>> clf = TextClassifier(SequenceClassifier(cfg), vocab, ["neg", "pos"])
    >>> tuple(clf.predict_proba(["good film", "an unseen word"]).shape)
    (2, 2)
    """

    TASK = "classify"

    def __init__(self, model: SequenceClassifier, vocab, classes: list[str]) -> None:
        if len(classes) != model.config.num_classes:
            raise ValueError(f"{len(classes)} class names for a model with "
                             f"{model.config.num_classes} classes")
        self.model, self.vocab, self.classes = model, vocab, list(classes)

    def extra_state(self) -> dict:
        """JSON-able description saved in checkpoints."""
        from dataclasses import asdict

        return {"task": self.TASK, "config": asdict(self.model.config),
                "vocab": self.vocab.to_json(), "classes": self.classes}

    @classmethod
    def from_state(cls, checkpoint: dict, where: str = "this checkpoint") -> TextClassifier:
        """The trained classifier (eval mode) of a trainer checkpoint dict (what
        :func:`rnnkit.load` calls for ``task="classify"``)."""
        from ..data.vocab import vocabulary_from_json
        from ..train.checkpoint import task_state

        extra = task_state(checkpoint, cls.TASK, "text-classifier", "rnnkit classify train",
                           where)
        model = SequenceClassifier(ClassifierConfig(**extra["config"]))
        model.load_state_dict(checkpoint["model"])
        return cls(model.eval(), vocabulary_from_json(extra["vocab"]), extra["classes"])

    @classmethod
    def from_checkpoint(cls, path: str) -> TextClassifier:
        """Load ``best.pt`` / ``last.pt`` written by ``rnnkit classify train``."""
        from functools import partial

        from ..saving import rebuild
        from ..train import load_checkpoint

        return rebuild(partial(cls.from_state, where=str(path)), load_checkpoint(path), path)

    def encode(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        from ..data.batching import pad_sequences

        if isinstance(texts, str):
            texts = [texts]
        unk = self.vocab.unk_id
        ids = [seq or [unk] for seq in self.vocab.encode_batch(list(texts))]  # empty -> <unk>
        return pad_sequences(ids, dtype=torch.long)

    def predict_proba(self, texts: list[str]) -> Tensor:
        """Class probabilities ``[N, C]`` (columns in the order of :attr:`classes`)."""
        x, lengths = self.encode(texts)
        return self.model.predict_proba(x, lengths)

    def predict(self, texts: list[str]) -> list[str]:
        """The most probable class name of every text."""
        return [self.classes[i] for i in self.predict_proba(texts).argmax(-1).tolist()]


def train_text_classifier(texts: list[str], labels: list[str],
                          config: ClassifierConfig | None = None, train_config=None,
                          val_fraction: float = 0.1, min_freq: int = 1, batch_size: int = 50,
                          seed: int = 0, embed_init: str = "random", resume: bool = False,
                          ) -> tuple[TextClassifier, dict]:
    """Fit a :class:`TextClassifier` on ``texts`` with string ``labels``.

    A stratified ``val_fraction`` is held out for the trainer's evaluations (and best.pt);
    the vocabulary comes from the training part. ``config`` fields ``num_classes`` and
    ``vocab_size`` are filled in. ``embed_init="ppmi"`` starts the embeddings from PPMI-SVD
    vectors of the training texts (:mod:`rnnkit.data.embeddings`; needs scipy) instead of
    N(0, 1); ``embed_init="wordpiece"`` uses the pretrained WordPiece tokenizer and token
    embeddings of a packaged all-MiniLM-L6-v2 (:mod:`rnnkit.data.pretrained`; sets
    ``embed_size`` to 384 and ignores ``min_freq``). ``resume=True`` continues the run in
    ``train_config.out_dir`` from its ``last.pt``, with that checkpoint's vocabulary, classes
    and model config (``config``, ``min_freq`` and ``embed_init`` are then ignored). Returns
    the classifier with the weights of ``best.pt`` and their validation metrics. Under
    ``torchrun`` every process calls it with the same texts and settings and trains its share
    of each batch (:mod:`rnnkit.train.distributed`); only rank 0 writes files.
    """
    from dataclasses import replace

    from ..data.batching import sequence_loader
    from ..data.sentiment import stratified_split
    from ..data.vocab import Vocab
    from ..train import TrainConfig, Trainer

    if len(texts) != len(labels) or not texts:
        raise ValueError(f"need as many labels as texts (and at least one), got {len(texts)} "
                         f"texts and {len(labels)} labels")
    if embed_init not in ("random", "ppmi", "wordpiece"):
        raise ValueError(f"embed_init must be 'random', 'ppmi' or 'wordpiece', got "
                         f"{embed_init!r}")
    train_config = train_config or TrainConfig()
    saved = None
    if resume:  # the run's own vocabulary, classes and architecture, whatever the flags say
        if not train_config.out_dir:
            raise ValueError("resume=True needs train_config.out_dir, the folder with last.pt")
        saved = TextClassifier.from_checkpoint(os.path.join(train_config.out_dir, "last.pt"))
        unseen = sorted(set(labels) - set(saved.classes))
        if unseen:
            raise ValueError(f"the data has label(s) {', '.join(map(repr, unseen[:5]))} that the "
                             f"run in {train_config.out_dir} was not trained on (its classes: "
                             f"{', '.join(saved.classes)}); resume with the same data")
    classes = saved.classes if saved is not None else sorted(set(labels))
    y = [classes.index(label) for label in labels]
    fit_idx, val_idx = stratified_split(y, val_fraction, seed=seed)
    pretrained = None
    if saved is not None:
        vocab, cfg = saved.vocab, saved.model.config
    else:
        if embed_init == "wordpiece":
            from ..data.pretrained import load_wordpiece_embeddings

            vocab, pretrained = load_wordpiece_embeddings()
        else:
            vocab = Vocab.build([texts[i] for i in fit_idx], min_freq=min_freq)
        cfg = replace(config or ClassifierConfig(num_classes=len(classes),
                                                 vocab_size=len(vocab)),
                      num_classes=len(classes), vocab_size=len(vocab), input_size=None)
        if pretrained is not None:
            cfg = replace(cfg, embed_size=pretrained.shape[1])
    ids = [seq or [vocab.unk_id] for seq in vocab.encode_batch(list(texts))]
    torch.manual_seed(seed)
    model = SequenceClassifier(cfg)
    if pretrained is not None:
        with torch.no_grad():
            model.embed.weight.copy_(pretrained)
    elif embed_init == "ppmi" and saved is None:  # a resumed run's weights come from last.pt
        from ..data.embeddings import ppmi_svd_vectors

        vectors = ppmi_svd_vectors([ids[i] for i in fit_idx], len(vocab), cfg.embed_size)
        with torch.no_grad():
            model.embed.weight.copy_(vectors)
    clf = TextClassifier(model, vocab, classes)

    def loader(idx, shuffle):
        return sequence_loader([ids[i] for i in idx], [y[i] for i in idx],
                               batch_size=batch_size, shuffle=shuffle, seed=seed)

    trainer = Trainer(model, train_config, loader(fit_idx, True), loader(val_idx, False),
                      extra_state={**clf.extra_state(), "run": {"data_config": {
                          "val_fraction": val_fraction, "min_freq": min_freq,
                          "batch_size": batch_size, "init": embed_init}}})
    trainer.fit(resume=resume)
    # the weights and score of best.pt (the final weights, scored, without a best.pt); under
    # torchrun rank 0 reads best.pt and every rank gets the same weights and metrics
    metrics = trainer.best_metrics()
    model.eval()
    return clf, metrics
