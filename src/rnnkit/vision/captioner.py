r"""Show, Attend and Tell (Xu et al. 2015): an LSTM that writes a caption while attending over
a CNN's feature grid, and :class:`ImageCaptioner`, the user-facing wrapper.

**Annotations.** The encoder grid ``[B, C, h, w]`` is read as ``L = h w`` vectors, standardised
with the training set's per-channel mean and standard deviation and projected:
:math:`a_i = W_a \hat f_i + b_a \in \mathbb{R}^D` (``[B, L, D]``; the projection lets a frozen
1280-channel encoder feed a small decoder).

**Decoder** (soft "deterministic" attention, section 4.2; :math:`E y` embeds a word):

.. math::
    h_0 = \tanh(f_{init,h}(\bar a)), \quad c_0 = \tanh(f_{init,c}(\bar a)), \quad
    \bar a = \tfrac1L \textstyle\sum_i a_i

    e_{ti} = w^\top \tanh(W_h h_{t-1} + W_k a_i + b), \quad
    \alpha_t = \mathrm{softmax}(e_t), \quad
    \beta_t = \sigma(f_\beta(h_{t-1})), \quad
    \hat z_t = \beta_t \textstyle\sum_i \alpha_{ti} a_i

    (h_t, c_t) = \mathrm{LSTM}([E y_{t-1}; \hat z_t], (h_{t-1}, c_{t-1}))

    p(y_t \mid a, y_{<t}) = \mathrm{softmax}(L_o(E y_{t-1} + L_h h_t + L_z \hat z_t))
    \quad \text{(deep output, eq. 7)}

The attention score is :class:`rnnkit.attention.AdditiveAttention`'s (its ``query_proj``
= :math:`W_h`, ``key_proj`` = :math:`W_k, b`, ``v`` = :math:`w`; keys projected once per
image); the LSTM is :class:`rnnkit.Recurrent` stepped with ``Recurrent.step``. With
``attention=False`` (the mean-pooled decoder) :math:`\hat z_t = \bar a` at every step, no
:math:`\beta`, and :math:`\alpha` is uniform.

**Checklist** (``word_class`` given; a neural checklist, Kiddon et al. 2016): the LSTM also
reads :math:`r_t \in \mathbb{R}^K`, the object counts of the classes not named yet, over 4:
:math:`r_0 = n / 4` and a word of class :math:`k` sets :math:`r_{t,k} = 0` from the next step
on, so the input is :math:`[E y_{t-1}; \hat z_t; r_t]`. In training :math:`n` are the scene's
true counts; when captioning, those of a :class:`~rnnkit.vision.layout.LayoutReader` (each
layout cell's class and size, and the background; the default) or an
:class:`~rnnkit.vision.counter.ObjectCounter`, and a
:class:`~rnnkit.vision.layout.SceneConstraint` (or
:class:`~rnnkit.vision.counter.CountConstraint`) keeps the words to the reading: counts,
relations, sizes and background. What a caption states then comes from a reading made cell by
cell, not from which classes the training captions named together: that is what carries to
pairs never seen together. The decoder chooses which facts to state, in which order and words.
(``spatial_reader=False``: the reader sees only the mean-pooled features, like the decoder
with ``attention=False``: the model without attention anywhere.)

**Loss.** Cross-entropy of the next word (teacher forcing; with ``scheduled_sampling = p``
each input word is, with probability ``p``, the model's own previous argmax instead, Bengio
et al. 2015) plus the doubly stochastic regularisation (eq. 14)
:math:`\lambda \sum_i (1 - \sum_t \alpha_{ti})^2` over each caption's words (mean over the
batch, per token like the cross-entropy).

**Decoding** goes through :mod:`rnnkit.decoding` with ``step_fn(tokens, state)``: greedy
(:func:`~rnnkit.decoding.greedy_search`) or batched beam search
(:func:`~rnnkit.decoding.beam_search`); the state ``{"h", "c", "ann", "keys"}`` carries the
LSTM state (``[1, N, H]``: reordered along dim 1) and each hypothesis' image annotations (with
a checklist also ``"checklist" [N, K]``; under a constraint its own entries, ``"remaining"``,
``"pending"``, ...). The attention weights of a decoded caption come from re-reading it with
teacher forcing.

Shapes: ``features [B, C, h, w]``, ``tokens [B, T]`` (``<bos>`` first), ``logits
[B, T, V]``, ``alphas [B, T, L]``.

>>> net = ShowAttendTell(feature_size=8, vocab_size=12, embed_size=6, hidden_size=10,
...                      annotation_size=5, attn_size=4)
>>> logits, alphas = net(torch.rand(2, 8, 3, 3), torch.randint(4, 12, (2, 7)))
>>> tuple(logits.shape), tuple(alphas.shape), bool(torch.allclose(alphas.sum(-1), torch.ones(2, 7)))
((2, 7, 12), (2, 7, 9), True)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..attention import AdditiveAttention
from ..decoding.beam import beam_search, greedy_search, index_state
from ..recurrent import Recurrent
from ..saving import Savable
from ..train.protocol import LossOutput
from .cnn import StandardisedFeatures

__all__ = ["CaptionResult", "CaptionerConfig", "ImageCaptioner", "PAD", "ShowAttendTell",
           "SPECIALS", "doubly_stochastic_penalty", "save_attention_png"]

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = 0, 1, 2, 3


def doubly_stochastic_penalty(alphas: Tensor, mask: Tensor | None = None) -> Tensor:
    r""":math:`\sum_i (1 - \sum_t m_t \alpha_{ti})^2` per caption: ``alphas [B, T, L]``,
    ``mask [B, T]`` (True at real words; ``None``: all) -> ``[B]``."""
    if mask is not None:
        alphas = alphas * mask[:, :, None].to(alphas.dtype)
    return ((1.0 - alphas.sum(1)) ** 2).sum(-1)


class ShowAttendTell(StandardisedFeatures):
    """The captioning network; see the module docstring for the equations.

    Args:
        feature_size: encoder channels ``C``.
        vocab_size: words ``V`` (specials included: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2).
        embed_size: ``E``; hidden_size: LSTM ``H``; annotation_size: ``D``; attn_size: ``A``.
        attention: soft attention (True) or the mean-pooled context (False).
        dropout: on the LSTM output and the deep output layer's input.
        dsr_lambda: :math:`\\lambda` of the doubly stochastic regularisation.
        scheduled_sampling: probability of feeding the model's own previous word in training.
        cell: the registered cell of the decoder (an LSTM-state cell: ``"lstm"``).
        word_class: each word's class (``-1``: not a class noun) turns the checklist on;
            ``n_classes``: ``K``, the number of classes. (:class:`ImageCaptioner` also
            attaches its :class:`~rnnkit.vision.layout.LayoutReader` as ``layout``, or its
            :class:`~rnnkit.vision.counter.ObjectCounter` as ``counter``, so the reader's
            weights travel in this module's state dict.)

    Parameters (besides the attention's and the LSTM's): ``project [D, C]``, ``embed [V, E]``,
    ``init_h, init_c [H, D]``, ``f_beta [1, H]``, ``L_h [E, H]``, ``L_z [E, D]``,
    ``L_o [V, E]``; buffers ``feat_mean, feat_std [C]``. PyTorch default initialisation.
    """

    item_name = "words"

    def __init__(self, feature_size: int, vocab_size: int, *, embed_size: int = 128,
                 hidden_size: int = 384, annotation_size: int = 256, attn_size: int = 256,
                 attention: bool = True, dropout: float = 0.3, dsr_lambda: float = 1.0,
                 scheduled_sampling: float = 0.0, cell: str = "lstm",
                 word_class: Sequence[int] | None = None, n_classes: int = 0) -> None:
        super().__init__()
        for name, v in (("feature_size", feature_size), ("vocab_size", vocab_size),
                        ("embed_size", embed_size), ("hidden_size", hidden_size),
                        ("annotation_size", annotation_size), ("attn_size", attn_size)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if vocab_size <= EOS:
            raise ValueError(f"vocab_size must count the specials {SPECIALS} and some words, "
                             f"got {vocab_size}")
        if not 0.0 <= scheduled_sampling <= 1.0 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"scheduled_sampling must be in [0, 1] and dropout in [0, 1), got "
                             f"{scheduled_sampling} and {dropout}")
        if not (isinstance(dsr_lambda, (int, float)) and dsr_lambda >= 0):
            raise ValueError(f"dsr_lambda must be a number >= 0, got {dsr_lambda!r}")
        C, V, E, H, D = feature_size, vocab_size, embed_size, hidden_size, annotation_size
        self.feature_size, self.vocab_size, self.attention = C, V, bool(attention)
        self.dsr_lambda, self.scheduled_sampling = float(dsr_lambda), float(scheduled_sampling)
        self._init_stats(C)
        self.project = nn.Linear(C, D)
        self.embed = nn.Embedding(V, E, padding_idx=PAD)
        self.init_h, self.init_c = nn.Linear(D, H), nn.Linear(D, H)
        self.checklist = word_class is not None
        if self.checklist:
            wc = torch.as_tensor(list(word_class), dtype=torch.long)
            if wc.shape != (V,) or not isinstance(n_classes, int) or n_classes < 1 or \
                    int(wc.max()) >= n_classes or int(wc.min()) < -1:
                raise ValueError(f"word_class must give each of the {V} words a class in "
                                 f"0 .. n_classes - 1 or -1 (not a class noun), with "
                                 f"n_classes >= 1")
            self.register_buffer("word_class", wc)
        self.n_classes = n_classes if self.checklist else 0
        self.rnn = Recurrent(cell, E + D + self.n_classes, H, check_finite=False)
        if self.attention:
            self.attend = AdditiveAttention(H, D, attn_size)
            self.f_beta = nn.Linear(H, 1)
        self.L_h, self.L_z, self.L_o = nn.Linear(H, E), nn.Linear(D, E), nn.Linear(E, V)
        self.drop = nn.Dropout(dropout)

    # -- pieces ------------------------------------------------------------------------------
    def annotations(self, features: Tensor) -> Tensor:
        """``features [B, C, h, w]`` -> annotations ``a [B, L, D]`` (``L = h w``)."""
        x = self.standardise(features).flatten(2).transpose(1, 2)  # [B, L, C]
        return self.project(x)  # [B, L, D]

    def initial_state(self, ann: Tensor, counts: Tensor | None = None) -> dict[str, Tensor]:
        """Annotations ``[B, L, D]`` (and, with a checklist, object ``counts [B, K]``) -> the
        decoder state at ``t = 0``."""
        mean = ann.mean(1)  # [B, D]
        state = {"h": torch.tanh(self.init_h(mean))[None], "c": torch.tanh(self.init_c(mean))[None],
                 "ann": ann}
        if self.checklist:
            if counts is None or counts.shape != (ann.shape[0], self.n_classes):
                raise ValueError(f"this decoder reads a checklist: give counts [B, K] = "
                                 f"[{ann.shape[0]}, {self.n_classes}] (the scenes' object "
                                 f"counts in training, the counter's when captioning)")
            state["checklist"] = counts.to(ann.dtype) / 4.0
        if self.attention:
            state["keys"] = self.attend.key_proj(ann)  # [B, L, A], once per image
        return state

    def step(self, prev: Tensor, state: dict[str, Tensor]
             ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """One word: ``prev [N]`` (previous word ids), state -> ``(logits [N, V], state,
        alpha [N, L])``."""
        h, ann = state["h"][-1], state["ann"]  # [N, H], [N, L, D]
        if self.attention:
            q = self.attend.query_proj(h)[:, None]  # [N, 1, A]
            alpha = torch.softmax(self.attend.v(torch.tanh(q + state["keys"])).squeeze(-1), -1)
            beta = torch.sigmoid(self.f_beta(h))  # [N, 1]
            z = beta * torch.bmm(alpha[:, None], ann).squeeze(1)  # [N, D]
        else:
            alpha = ann.new_full(ann.shape[:2], 1.0 / ann.shape[1])
            z = ann.mean(1)
        e = self.embed(prev)  # [N, E]
        inp = [e, z]
        if self.checklist:  # the classes not named yet: the word just read crosses one off
            cls = self.word_class[prev]
            named = F.one_hot(cls.clamp_min(0), self.n_classes) * (cls >= 0)[:, None]
            state = {**state, "checklist": state["checklist"] * (1 - named.to(z.dtype))}
            inp.append(state["checklist"])
        out, (h2, c2) = self.rnn.step(torch.cat(inp, -1), (state["h"], state["c"]))
        logits = self.L_o(self.drop(e + self.L_h(self.drop(out)) + self.L_z(z)))  # [N, V]
        return logits, {**state, "h": h2, "c": c2}, alpha

    # -- teacher forcing -----------------------------------------------------------------------
    def forward(self, features: Tensor, tokens: Tensor, owner: Tensor | None = None,
                counts: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``features [M, C, h, w]``, input words ``tokens [B, T]`` (``<bos>`` first) and
        ``owner [B]``, the image of each caption (``None``: ``M = B``, caption ``b`` of image
        ``b``) -> ``(logits [B, T, V], alphas [B, T, L])``; in training mode with
        ``scheduled_sampling > 0``, some inputs after the first are the model's own argmax."""
        B = features.shape[0] if owner is None else owner.shape[0]
        if tokens.dim() != 2 or tokens.shape[0] != B or tokens.shape[1] == 0:
            raise ValueError(f"expected tokens [B, T] with B = {B} and T >= 1, "
                             f"got {list(tokens.shape)}")
        ann = self.annotations(features)  # [M, L, D]
        if owner is not None:
            ann = ann[owner]
            counts = None if counts is None else counts[owner]
        state = self.initial_state(ann, counts)
        logits, alphas = [], []
        prev = tokens[:, 0]
        for t in range(tokens.shape[1]):
            if t > 0:
                prev = tokens[:, t]
                if self.training and self.scheduled_sampling > 0:
                    own = logits[-1].detach().argmax(-1)
                    swap = torch.rand(prev.shape, device=prev.device) < self.scheduled_sampling
                    prev = torch.where(swap & (prev != PAD), own, prev)
            out, state, alpha = self.step(prev, state)
            logits.append(out)
            alphas.append(alpha)
        return torch.stack(logits, 1), torch.stack(alphas, 1)

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        """Trainer protocol: ``batch = (features [M, C, h, w], tokens [B, T + 1], owner [B])``
        with ``tokens = <bos> w_1 .. w_n <eos> <pad>..`` and ``owner[b]`` the image of caption
        ``b`` (several captions of one image share its features, projected once); a decoder
        with a checklist takes ``counts [M, K]`` as a fourth item."""
        features, tokens, owner = batch[:3]
        inp, tgt = tokens[:, :-1], tokens[:, 1:]
        logits, alphas = self(features, inp, owner, batch[3] if len(batch) > 3 else None)
        mask = tgt != PAD  # [B, T]
        n = int(mask.sum())
        xent = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1),
                               ignore_index=PAD, reduction="sum") / n
        loss = xent
        metrics = {"xent": xent.detach()}
        if self.attention and self.dsr_lambda:
            dsr = doubly_stochastic_penalty(alphas, mask).sum() / n
            loss = loss + self.dsr_lambda * dsr
            metrics["dsr"] = dsr.detach()
        return LossOutput(loss, None, metrics, n)

    # -- decoding --------------------------------------------------------------------------------
    def step_log_probs(self, tokens: Tensor, state: dict[str, Tensor]
                       ) -> tuple[Tensor, dict[str, Tensor]]:
        """The decoding toolkit's ``step_fn``: ``tokens [N]``, state -> ``(log_probs [N, V],
        state)``, with ``<pad>``, ``<bos>`` and ``<unk>`` never generated."""
        logits, state, _ = self.step(tokens, state)
        logits = logits.float()
        logits[:, [PAD, BOS, UNK]] = float("-inf")
        return torch.log_softmax(logits, -1), state

    @torch.no_grad()
    def decode(self, features: Tensor, *, beam_size: int = 1, max_len: int = 30,
               length_penalty: float = 0.0, constraint: Any = None,
               counts: Tensor | None = None, reading: Any = None) -> list[list[int]]:
        """Word ids of the best caption of each image (no ``<bos>``/``<eos>``): greedy for
        ``beam_size=1`` through :func:`~rnnkit.decoding.greedy_search`, else batched beam
        search (with ``length_penalty=0`` a beam of 1 is exactly greedy). With a
        :class:`~rnnkit.vision.counter.CountConstraint` and predicted ``counts [B, K]``,
        refused words get probability 0 at every step (greedy and beam alike); a
        :class:`~rnnkit.vision.layout.SceneConstraint` starts from ``reading`` (a
        :meth:`~rnnkit.vision.layout.LayoutReader.predict` dict; ``None``: ``counts``)."""
        B = features.shape[0]
        if constraint is not None and (counts is None or counts.shape[0] != B):
            raise ValueError(f"a constraint needs counts [B, K] with B = {B}")
        state = self.initial_state(self.annotations(features), counts)
        step_fn = self.step_log_probs
        if constraint is not None:
            state = {**state, **constraint.init_state(counts if reading is None else reading)}
            step_fn = constraint.wrap(step_fn)

        dev = features.device
        if beam_size == 1:
            out = greedy_search(step_fn, state, B, bos=BOS, eos=EOS, max_len=max_len, pad=PAD,
                                device=dev)
            toks, lens = out.tokens, out.lengths
        else:
            reorder = functools.partial(index_state, dim={"h": 1, "c": 1})
            out = beam_search(step_fn, state, B, bos=BOS, eos=EOS, beam_size=beam_size,
                              max_len=max_len, length_penalty=length_penalty, pad=PAD,
                              reorder_state=reorder, device=dev)
            toks, lens = out.tokens[:, 0], out.lengths[:, 0]
        return [toks[b, : int(lens[b])].tolist() for b in range(B)]


# -- the user-facing wrapper ---------------------------------------------------------------------
@dataclass
class CaptionerConfig:
    """The captioner: network sizes, encoder, training and decoding settings.

    Attributes:
        embed_size: word embedding ``E``.
        hidden_size: LSTM state ``H``.
        annotation_size: projected annotation ``D``.
        attn_size: attention scorer width ``A``.
        attention: soft attention (true) or the mean-pooled context (false).
        dropout: dropout of the decoder.
        dsr_lambda: weight of the doubly stochastic attention regularisation.
        scheduled_sampling: probability of feeding the model's own previous word in training.
        count_objects: train an :class:`~rnnkit.vision.counter.ObjectCounter` on the scenes'
            object counts (before the decoder); the decoder reads the counts as a checklist
            and decodes under a :class:`~rnnkit.vision.counter.CountConstraint`: a caption
            that ends names every counted class once and no other, and a number word before
            a noun must be that class' count (a noun without one is not checked). The
            counter judges each grid cell on its own, so its counts hold for objects never
            seen together; the decoder alone writes what its training captions made likely.
        read_layout: with ``count_objects``, read the whole layout instead of counts alone:
            a :class:`~rnnkit.vision.layout.LayoutReader` (each layout cell's class and size,
            and the background) replaces the counter, and the decoder decodes under a
            :class:`~rnnkit.vision.layout.SceneConstraint`: besides the counts, every
            relation, size and background a caption states must hold in the reading.
        spatial_reader: the layout reader judges each layout cell on the features under it
            (true), or reads the whole layout from the mean-pooled features (false: with
            ``attention=False``, a model that sees no position's features anywhere, the
            "no attention" ablation of the benchmark).
        counter_epochs: training epochs of the counter or layout reader (the best on valid
            is kept); it trains
            for at most a quarter of the train config's ``max_time`` (which the decoder's
            time then excludes) and ignores ``max_steps``. Its initial weights and dropout
            follow the train config's ``seed`` alone, so two captioners fit with one seed on
            one data set get the same reader, whatever their decoders, unless the time bound
            stops them at different steps (``history["reader_steps"]``).
        pretrained: the ImageNet-trained encoder (true) or the same net randomly initialised.
        encoder_seed: seed of the random initialisation when ``pretrained`` is false.
        image_size: images are letterboxed to this square side before the encoder (256: an
            8 x 8 feature grid; pictograms of 26 to 40 pixels are lost at 128).
        batch_size: captions per training batch.
        beam_size: default beam of :meth:`ImageCaptioner.caption` (1 = greedy).
        max_len: most words of a generated caption.
        length_penalty: beam search's ``alpha`` (0: raw log-probability).
    """

    embed_size: int = 128
    hidden_size: int = 384
    annotation_size: int = 256
    attn_size: int = 256
    attention: bool = True
    dropout: float = 0.3
    dsr_lambda: float = 1.0
    scheduled_sampling: float = 0.0
    count_objects: bool = True
    read_layout: bool = True
    spatial_reader: bool = True
    counter_epochs: int = 40
    pretrained: bool = True
    encoder_seed: int = 0
    image_size: int = 256
    batch_size: int = 64
    beam_size: int = 1
    max_len: int = 30
    length_penalty: float = 0.0

    def __post_init__(self) -> None:
        for name in ("embed_size", "hidden_size", "annotation_size", "attn_size",
                     "batch_size", "beam_size", "max_len", "counter_epochs"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.image_size, int) or not 32 <= self.image_size <= 1024:
            raise ValueError(f"image_size must be 32 to 1024 pixels (the encoder needs at "
                             f"least 32), got {self.image_size!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 <= self.scheduled_sampling <= 1.0:
            raise ValueError(f"scheduled_sampling must be in [0, 1], got "
                             f"{self.scheduled_sampling!r}")
        if not (self.dsr_lambda >= 0 and math.isfinite(self.dsr_lambda)):
            raise ValueError(f"dsr_lambda must be a number >= 0, got {self.dsr_lambda!r}")
        if not self.spatial_reader and not (self.count_objects and self.read_layout):
            raise ValueError("spatial_reader=False is a setting of the layout reader: it needs "
                             "count_objects=True and read_layout=True (or leave it true)")
        if not (self.length_penalty >= 0 and math.isfinite(self.length_penalty)):
            raise ValueError(f"length_penalty must be >= 0, got {self.length_penalty!r}")


@dataclass
class CaptionResult:
    """One generated caption: its ``text``, ``words`` and each word's attention weights
    ``alphas [n_words, h, w]`` over the encoder grid (uniform for the mean-pooled model)."""

    text: str
    words: list[str]
    alphas: Tensor


def _encoder(config: CaptionerConfig) -> nn.Module:
    from .cnn import ImageEncoder

    if config.pretrained:
        return ImageEncoder(pretrained=True).eval()
    with torch.random.fork_rng(devices=[]):  # the same random net on every load
        torch.manual_seed(config.encoder_seed)
        return ImageEncoder(pretrained=False).eval()


class ImageCaptioner(Savable):
    """Images in, captions out: a frozen :class:`~rnnkit.vision.cnn.ImageEncoder` and a
    :class:`ShowAttendTell` decoder, with its word list.

    ``fit(train_scenes, valid_scenes)`` trains on :class:`~rnnkit.vision.scenes.Scene` lists
    (encoder features are computed once and cached as float16); ``caption(images)`` takes a
    path, a list of paths, PIL images, arrays or a ``[B, 3, H, W]`` tensor in [0, 1] (via
    :func:`rnnkit.vision.images.load_image`, letterboxed to ``image_size``); saved with
    ``rnnkit.save`` as ``rnnkit.image_captioner`` (the encoder is rebuilt, not stored: the
    pretrained weights, or the seeded random net). A trainer checkpoint of :meth:`fit` with
    an ``out_dir`` (``best.pt``) loads with ``rnnkit.load`` too.

    Args:
        config: :class:`CaptionerConfig`.
        words: the vocabulary (specials first); ``None`` builds it from the training captions.
        encoder: any module ``[B, 3, S, S] -> [B, C, h, w]`` with ``out_channels`` (default:
            built from the config); a custom encoder is not saved.
    """

    KIND, VERSION, TASK = "rnnkit.image_captioner", 3, "image_captioner"

    def __init__(self, config: CaptionerConfig | None = None, words: Sequence[str] | None = None,
                 encoder: nn.Module | None = None) -> None:
        self.config = config or CaptionerConfig()
        self._encoder = encoder
        self.words: list[str] | None = None
        self.model: ShowAttendTell | None = None
        # the CountConstraint / SceneConstraint over the words (count_objects)
        self.constraint: Any = None
        self.history: dict[str, Any] | None = None
        if words is not None:
            self._build(words)

    @property
    def encoder(self) -> nn.Module:
        if self._encoder is None:
            self._encoder = _encoder(self.config)
        return self._encoder

    def _build(self, words: Sequence[str]) -> None:
        words = list(words)
        if tuple(words[:len(SPECIALS)]) != SPECIALS or len(set(words)) != len(words):
            raise ValueError(f"words must start with {SPECIALS} and have no repeats")
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}
        c = self.config
        lexicon = _word_lexicon(words) if c.count_objects else None
        from .scenes import CLASSES

        self.model = ShowAttendTell(
            getattr(self.encoder, "out_channels", 1280), len(words), embed_size=c.embed_size,
            hidden_size=c.hidden_size, annotation_size=c.annotation_size,
            attn_size=c.attn_size, attention=c.attention, dropout=c.dropout,
            dsr_lambda=c.dsr_lambda, scheduled_sampling=c.scheduled_sampling,
            word_class=lexicon[0] if lexicon else None,
            n_classes=len(CLASSES) if lexicon else 0).eval()
        if lexicon:
            from .counter import CountConstraint, ObjectCounter
            from .layout import LayoutReader, SceneConstraint, scene_word_tables
            from .scenes import BACKGROUNDS, GRID

            # a submodule, so its weights travel in the model's state dict and checkpoints
            # (frozen but while _fit_reader trains it: the decoder's optimizer, and a resumed
            # run's saved optimizer state, never hold its parameters)
            C = getattr(self.encoder, "out_channels", 1280)
            if c.read_layout and math.ceil(c.image_size / 32) < GRID:
                import warnings

                warnings.warn(f"image_size={c.image_size} gives the layout reader a "
                              f"{math.ceil(c.image_size / 32)} x {math.ceil(c.image_size / 32)}"
                              f" feature grid, coarser than the {GRID} x {GRID} layout: "
                              f"neighbouring cells blur together; use image_size >= "
                              f"{32 * (GRID - 1) + 1} (default 256)", stacklevel=3)
            if c.read_layout:
                self.model.layout = LayoutReader(C, len(CLASSES), len(BACKGROUNDS), GRID,
                                                 pooled=not c.spatial_reader
                                                 ).requires_grad_(False).eval()
                self.constraint = SceneConstraint(*lexicon, eos=EOS,
                                                  **scene_word_tables(words))
            else:
                self.model.counter = ObjectCounter(C, len(CLASSES)
                                                   ).requires_grad_(False).eval()
                self.constraint = CountConstraint(*lexicon, eos=EOS)

    @property
    def reader(self) -> Any:
        """What reads the scene before the decoder writes: the :class:`~rnnkit.vision.
        layout.LayoutReader` (``read_layout``) or :class:`~rnnkit.vision.counter.
        ObjectCounter`; ``None`` without ``count_objects``."""
        layout = getattr(self.model, "layout", None)
        return layout if layout is not None else getattr(self.model, "counter", None)

    def read(self, features: Tensor) -> tuple[Tensor, Any]:
        """Features ``[B, C, h, w]`` -> the reader's ``counts [B, K]`` (classes no word
        names set to 0) and what the constraint starts from (the counts, or the
        :meth:`~rnnkit.vision.layout.LayoutReader.predict` dict)."""
        self._need_model()
        reader = self.reader
        if reader is None:
            raise ValueError("this captioner reads no counts (count_objects=False)")
        if reader is getattr(self.model, "layout", None):
            reading = reader.predict(features)
            reading["counts"] = self.constraint.nameable(reading["counts"])
            return reading["counts"], reading
        counts = self.constraint.nameable(reader.predict(features))
        return counts, counts

    @property
    def counter(self) -> Any:
        """The :class:`~rnnkit.vision.counter.ObjectCounter` of a ``read_layout=False`` model
        (``None`` otherwise: see :attr:`reader`)."""
        return getattr(self.model, "counter", None)

    def _need_model(self) -> ShowAttendTell:
        if self.model is None:
            raise RuntimeError("this captioner has not been trained: call fit(scenes) or load "
                               "a trained one (rnnkit.load(path))")
        return self.model

    # -- data --------------------------------------------------------------------------------------
    def encode_text(self, caption: str) -> list[int]:
        """``<bos>`` + word ids + ``<eos>`` (unknown words -> ``<unk>``)."""
        return [BOS, *(self.index.get(w, UNK) for w in caption.lower().split()), EOS]

    @torch.no_grad()
    def features(self, images: Tensor, batch_size: int = 32, progress: bool = False) -> Tensor:
        """``[B, 3, S, S]`` in [0, 1] -> encoder features ``[B, C, h, w]`` (float32)."""
        from ..train.progress import maybe_tqdm

        enc = self.encoder.eval()
        chunks = range(0, len(images), batch_size)
        return torch.cat([enc(images[i:i + batch_size]).float()
                          for i in maybe_tqdm(chunks, desc="encoder features",
                                              disable=not progress)])

    def scene_features(self, scenes: Sequence[Any], progress: bool = False) -> Tensor:
        """Rendered scenes -> float16 features ``[N, C, h, w]`` (rendered in chunks)."""
        from .scenes import render_batch

        out = []
        for i in range(0, len(scenes), 256):
            imgs = render_batch(list(scenes[i:i + 256]), self.config.image_size)
            out.append(self.features(imgs, progress=progress and i == 0).half())
        return torch.cat(out)

    def _loader(self, scenes: Sequence[Any], feats: Tensor, shuffle: bool, seed: int) -> Any:
        """Batches ``(features [M, C, h, w], tokens [B, T + 1], owner [B])`` of whole images
        with all their captions, about ``batch_size`` captions each (and the images' object
        ``counts [M, K]`` for a decoder with a checklist)."""
        from torch.utils.data import DataLoader

        encoded = [[torch.tensor(self.encode_text(c)) for c in s.captions] for s in scenes]
        per = max(1, round(self.config.batch_size / max(1, len(scenes[0].captions))))
        counts = _scene_counts(scenes) if self._need_model().checklist else None

        def collate(idx: list[int]) -> tuple[Tensor, ...]:
            toks = [t for i in idx for t in encoded[i]]
            owner = torch.tensor([j for j, i in enumerate(idx) for _ in encoded[i]])
            batch = (feats[torch.tensor(idx)],
                     nn.utils.rnn.pad_sequence(toks, batch_first=True, padding_value=PAD), owner)
            return batch if counts is None else (*batch, counts[torch.tensor(idx)])

        gen = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(range(len(scenes)), batch_size=per, shuffle=shuffle, generator=gen,
                          collate_fn=collate)

    # -- training --------------------------------------------------------------------------------
    def fit(self, train: Sequence[Any], valid: Sequence[Any] | None = None,
            train_config: Any = None, *, train_features: Tensor | None = None,
            valid_features: Tensor | None = None, resume: bool = False,
            run: dict[str, Any] | None = None, callbacks: Sequence[Any] = (),
            progress: bool = False) -> ImageCaptioner:
        """Train on scenes (``.captions`` each; rendered at ``image_size`` unless their
        encoder features are given, ``[N, C, h, w]``), keeping the weights with the lowest
        loss on ``valid``. ``train_config`` is a :class:`~rnnkit.train.TrainConfig`
        (``out_dir``: ``best.pt`` / ``last.pt``, ``resume`` continues ``last.pt``); ``run``
        is saved in the checkpoints (``extra_state["run"]``)."""
        from ..train import TrainConfig, Trainer
        from ..train.callbacks import KeepBest

        train = list(train)
        if not train:
            raise ValueError("no training scenes; give at least one captioned scene")
        if self.model is None:
            self._build(_vocabulary(c for s in train for c in s.captions))
        tc = train_config or TrainConfig(progress=False, plot=False, compute=False, card=False)
        if not valid:
            tc = dataclasses.replace(tc, eval_every=0, early_stop_patience=None)
        tf = self.scene_features(train, progress) if train_features is None else train_features
        vf = None
        if valid:
            vf = self.scene_features(valid, progress) if valid_features is None else \
                valid_features
        for name, f, n in (("train_features", tf, len(train)),
                           ("valid_features", vf, len(valid or []))):
            if f is not None and (f.dim() != 4 or len(f) != n):
                raise ValueError(f"{name} must be [N, C, h, w] with N = {n} scenes, got "
                                 f"{list(f.shape)}")
        model = self._need_model()
        if not resume:
            flat = tf.float().transpose(0, 1).flatten(1)  # [C, N h w]
            model.set_stats(flat.mean(1), flat.std(1))
            del flat
        counter_s, reader_fit = 0.0, {"reader_epochs": None, "reader_steps": None}
        if self.reader is not None and not resume:
            counter_s, reader_fit = self._fit_reader(train, tf, valid, vf, tc)
        elif self.reader is not None and tc.out_dir:  # resumed: the reader's time is spent
            counter_s = _reader_seconds(tc.out_dir)
        if counter_s and tc.max_time:  # max_time is the budget of the whole run
            tc = dataclasses.replace(tc, max_time=max(1.0, tc.max_time - counter_s))
        torch.manual_seed(tc.seed)
        train_dl = self._loader(train, tf, True, tc.seed)
        valid_dl = self._loader(valid, vf, False, 0) if valid else None
        keep = KeepBest()
        extra = {"task": self.TASK, "config": asdict(self.config), "words": self.words,
                 "run": dict(run or {}), "reader_seconds": counter_s}
        trainer = Trainer(model, tc, train_dl, valid_dl, extra_state=extra,
                          callbacks=([keep] if valid else []) + list(callbacks))
        model.train()
        try:
            trainer.fit(resume=resume)
        finally:
            if tc.out_dir and valid:
                trainer.restore_best()
            elif keep.state is not None:
                model.load_state_dict(keep.state)
            model.cpu().eval()
        self.history = {"steps": trainer.step, "best_valid_loss": keep.best
                        if keep.state is not None else trainer.best_metric,
                        "seconds": trainer.elapsed + counter_s, "counter_seconds": counter_s,
                        **reader_fit}
        return self

    def _fit_reader(self, train: Sequence[Any], tf: Tensor, valid: Sequence[Any] | None,
                    vf: Tensor | None, tc: Any) -> tuple[float, dict[str, int]]:
        """Train the layout reader on the scenes' layouts (or the object counter on their
        counts), keeping the best epoch on ``valid``; at most a quarter of ``tc.max_time``.
        Returns its seconds and ``{"reader_epochs", "reader_steps"}`` (complete epochs and
        steps taken)."""
        import time

        from torch.utils.data import DataLoader, TensorDataset

        from ..train import Trainer
        from ..train.callbacks import KeepBest
        from ..train.interrupt import TrainingInterrupted
        from .layout import scene_layouts

        t0 = time.perf_counter()
        reader = self.reader
        reader.set_stats(self._need_model().feat_mean, self._need_model().feat_std)
        targets = (lambda s: (_scene_counts(s),)) if self.counter is not None else scene_layouts
        gen = torch.Generator().manual_seed(tc.seed)
        train_dl = DataLoader(TensorDataset(tf, *targets(train)), batch_size=64,
                              shuffle=True, generator=gen)
        valid_dl = DataLoader(TensorDataset(vf, *targets(valid)), batch_size=256) \
            if valid else None
        ctc = dataclasses.replace(
            tc, epochs=self.config.counter_epochs, max_steps=None, lr=1e-3, eval_every=0,
            early_stop_patience=None, out_dir=None,
            max_time=tc.max_time / 4 if tc.max_time else None)
        keep = KeepBest()
        with torch.random.fork_rng(devices=[]):  # its initial weights follow tc.seed alone,
            torch.manual_seed(tc.seed)  # not the RNG draws of the decoder built before it
            for m in reader.modules():  # (the Trainer seeds its dropout masks)
                if m is not reader and hasattr(m, "reset_parameters"):
                    m.reset_parameters()
        reader.requires_grad_(True).train()
        trainer = Trainer(reader, ctc, train_dl, valid_dl, callbacks=[keep] if valid else [])
        try:
            trainer.fit()
        except TrainingInterrupted as err:  # no checkpoint yet: say so, not "no out_dir"
            what = "object counter" if self.counter is not None else "layout reader"
            err.args = (f"{err.signal_name}: interrupted while training the {what} (step "
                        f"{err.step}), before the decoder's first checkpoint; nothing was "
                        f"saved: run the same command again",)
            raise
        finally:
            if keep.state is not None:
                reader.load_state_dict(keep.state)
            reader.requires_grad_(False).eval()  # fixed while the decoder trains
        return time.perf_counter() - t0, {"reader_epochs": trainer.epoch,
                                          "reader_steps": trainer.step}

    # -- inference -------------------------------------------------------------------------------
    def images(self, images: Any) -> Tensor:
        """Anything :func:`~rnnkit.vision.images.load_image` takes (one or a list), or a
        ``[B, 3, H, W]`` tensor in [0, 1] -> ``[B, 3, S, S]`` letterboxed to ``image_size``."""
        from .images import to_batch

        S = self.config.image_size
        if isinstance(images, Tensor) and images.dim() == 4:
            return to_batch(list(images), (S, S))
        if isinstance(images, (str, os.PathLike, Tensor)) or type(images).__module__.startswith(
                ("PIL", "numpy")):
            images = [images]
        return to_batch(list(images), (S, S))

    @torch.no_grad()
    def describe_features(self, feats: Tensor, beam_size: int | None = None
                          ) -> list[CaptionResult]:
        """Encoder features ``[B, C, h, w]`` -> one :class:`CaptionResult` each."""
        model = self._need_model().eval()
        c = self.config
        beam = c.beam_size if beam_size is None else beam_size
        if not isinstance(beam, int) or isinstance(beam, bool) or beam < 1:
            raise ValueError(f"beam_size must be an integer >= 1 (1 = greedy), got {beam!r}")
        out = []
        h, w = feats.shape[-2:]
        for i in range(0, len(feats), 256):
            f = feats[i:i + 256].float()
            counts, reading = (None, None) if self.reader is None else self.read(f)
            ids = model.decode(f, beam_size=beam, max_len=c.max_len,
                               length_penalty=c.length_penalty, constraint=self.constraint,
                               counts=counts, reading=reading)
            toks = nn.utils.rnn.pad_sequence([torch.tensor([BOS, *t], dtype=torch.long)
                                              for t in ids], batch_first=True, padding_value=PAD)
            _, alphas = model(f, toks, counts=counts)  # [b, T, L]: the weights of each word
            for j, t in enumerate(ids):
                words = [self.words[k] for k in t]
                out.append(CaptionResult(" ".join(words), words,
                                         alphas[j, : len(t)].reshape(len(t), h, w)))
        return out

    def describe(self, images: Any, beam_size: int | None = None) -> list[CaptionResult]:
        """Images -> :class:`CaptionResult` (caption and per-word attention) each."""
        self._need_model()
        return self.describe_features(self.features(self.images(images)), beam_size)

    def caption(self, images: Any, beam_size: int | None = None) -> list[str]:
        """Images (a path, a list, a ``[B, 3, H, W]`` tensor, ...) -> one caption each."""
        return [r.text for r in self.describe(images, beam_size)]

    def evaluate(self, scenes: Sequence[Any], beam_size: int | None = None,
                 features: Tensor | None = None) -> dict[str, Any]:
        """BLEU-4, CIDEr-D and scene-fact scores on ``scenes`` (:func:`~rnnkit.vision.
        caption_metrics.caption_scores`), plus the ``captions``."""
        from .caption_metrics import caption_scores

        feats = self.scene_features(scenes) if features is None else features
        caps = [r.text for r in self.describe_features(feats, beam_size)]
        return {**caption_scores(caps, scenes), "captions": caps}

    # -- persistence ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        model = self._need_model()
        return {"config": asdict(self.config), "words": self.words,
                "state_dict": model.state_dict(), "history": self.history}

    @classmethod
    def from_state(cls, blob: dict[str, Any]) -> ImageCaptioner:
        """From an ``rnnkit.image_captioner`` file or a trainer checkpoint of :meth:`fit`."""
        if "extra_state" in blob:  # a trainer checkpoint (best.pt / last.pt)
            extra = blob["extra_state"]
            if not isinstance(extra, dict) or extra.get("task") != cls.TASK:
                raise KeyError("extra_state.task is not image_captioner")
            config, words, weights = extra["config"], extra["words"], blob["model"]
            history = {"steps": blob.get("step"), "metrics": blob.get("metrics")}
        else:
            config, words, weights = blob["config"], blob["words"], blob["state_dict"]
            history = blob.get("history")
        self = cls(CaptionerConfig(**upgrade_config(config)), words)
        self._need_model().load_state_dict(weights)
        self.history = history
        return self


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """A saved :class:`CaptionerConfig` dict -> today's fields: the fields added since get
    the value that rebuilds the saved model (version 1 had no counter, version 2 the object
    counter, not the layout reader). For loading and for resuming a run.

    >>> upgrade_config({"hidden_size": 8})["read_layout"], upgrade_config({})["count_objects"]
    (False, False)
    """
    return {"count_objects": False, "read_layout": False, **config}


def _scene_counts(scenes: Sequence[Any]) -> Tensor:
    """Scenes -> their object counts ``[N, K]`` in :data:`~rnnkit.vision.scenes.CLASSES`
    order."""
    from .scenes import CLASSES

    order = {n: i for i, n in enumerate(CLASSES)}
    out = torch.zeros(len(scenes), len(CLASSES))
    for i, s in enumerate(scenes):
        counts = s.counts() if hasattr(s, "counts") else None
        if not isinstance(counts, dict) or not set(counts) <= set(order):
            raise ValueError(f"count_objects trains on scenes with object counts of "
                             f"rnnkit.vision.scenes.CLASSES (Scene objects); item {i} is "
                             f"{type(s).__name__}: give scenes or set count_objects=False")
        for noun, n in counts.items():
            out[i, order[noun]] = n
    return out


def _reader_seconds(out_dir: str | os.PathLike) -> float:
    """The seconds the reader of the run in ``out_dir`` trained (its ``last.pt``; 0 for a
    run saved before they were recorded, or none yet)."""
    from ..train.checkpoint import load_checkpoint

    path = os.path.join(out_dir, "last.pt")
    if not os.path.exists(path):
        return 0.0
    return float((load_checkpoint(path).get("extra_state") or {}).get("reader_seconds", 0.0))


def _word_lexicon(words: Sequence[str]) -> tuple[list[int], list[int], list[int]]:
    """Each word's class in :data:`~rnnkit.vision.scenes.CLASSES` (-1: not a class noun),
    its number value (0: not a number word) and the ids of the articles "a" / "an"."""
    from .scenes import CLASSES, noun_words, number_words

    nouns, order = noun_words(), {n: i for i, n in enumerate(CLASSES)}
    classes = [order[nouns[w]] if w in nouns else -1 for w in words]
    if max(classes) < 0:
        raise ValueError("count_objects needs captions that name the scene classes "
                         "(rnnkit.vision.scenes.CLASSES); none of these words is one: set "
                         "count_objects=False")
    numbers = number_words()
    return (classes, [numbers.get(w, 0) for w in words],
            [i for i, w in enumerate(words) if w in ("a", "an")])


def _vocabulary(captions: Any) -> list[str]:
    """Specials, then every word of the captions, by frequency (ties alphabetically)."""
    from collections import Counter

    counts = Counter(w for c in captions for w in c.lower().split())
    return [*SPECIALS, *sorted(counts, key=lambda w: (-counts[w], w))]


def save_attention_png(image: Tensor, result: CaptionResult, path: str | os.PathLike,
                       cols: int = 5) -> str:
    """Draw ``image [3, S, S]`` once per word of ``result``, with that word's attention
    (upsampled from the ``h x w`` grid) overlaid, into a PNG at ``path`` (written
    atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..saving import atomic_write_figure

    n = max(1, len(result.words))
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    img = image.permute(1, 2, 0).clamp(0, 1).numpy()
    S = img.shape[0]
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= len(result.words):
            continue
        a = result.alphas[k][None, None].float()
        up = F.interpolate(a, size=img.shape[:2], mode="bilinear", align_corners=False)[0, 0]
        ax.imshow(img)
        ax.imshow(up.numpy(), alpha=0.55, cmap="magma", extent=(0, img.shape[1], S, 0))
        ax.set_title(result.words[k], fontsize=10)
    if not result.words:
        axes.flat[0].imshow(img)
        axes.flat[0].set_title("(empty caption)")
    fig.suptitle(result.text, fontsize=9)
    fig.tight_layout()
    return atomic_write_figure(fig, path)
