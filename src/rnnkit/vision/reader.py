"""The text-line reader application: an image of one line of text in, the text out.

A :class:`TextLineReader` owns a :class:`~rnnkit.vision.crnn.CRNN`, its alphabet (the CTC
blank first, then :data:`~rnnkit.vision.textlines.ALPHABET`), its decoding settings (greedy,
or CTC prefix beam search with an optional character n-gram
:class:`~rnnkit.ngram.NGramLM` fitted on the training lines only) and its settings
(:class:`ReaderConfig`). It trains with CTC through the one :class:`~rnnkit.train.Trainer` on
lines rendered afresh for every batch (:mod:`~rnnkit.vision.textlines`: a new font, slant,
blur, noise, ... each time), reads images of any size (files, PIL images, arrays, tensors; see
:meth:`TextLineReader.prepare`), evaluates CER and WER (``jiwer``) per font group, and saves as
one tagged file (``rnnkit.save`` / ``rnnkit.load``, kind ``rnnkit.text_line_reader``).

>>> reader = TextLineReader(ReaderConfig(channels=(4, 8, 8, 8), hidden_size=8, num_layers=1))
>>> out = reader.read([np.full((40, 200), 255, np.uint8) - np.eye(40, 200, dtype=np.uint8)
...                    * 255])
>>> isinstance(out[0], str)
True
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..saving import Savable
from ..train.protocol import LossOutput
from .crnn import CRNN
from .textlines import ALPHABET, TextLineDataset, find_fonts, normalize_line, render_line

__all__ = ["EvalResult", "ReaderConfig", "RenderedBatches", "TextLineReader", "collate_lines"]

BLANK = "<blank>"
TASK = "text_line_reader"


@dataclass
class ReaderConfig:
    """Settings of a :class:`TextLineReader`.

    Attributes:
        height: line height in pixels the images are scaled to (a multiple of 16).
        channels: CNN widths ``(c1, c2, c3, c4)``.
        hidden_size: LSTM state size per direction.
        num_layers: stacked bidirectional layers.
        cell: recurrent cell (any registered one).
        dropout: dropout of the recurrent stack and before the output layer.
        batch_size: lines per training batch.
        batches_per_epoch: rendered batches per epoch (an epoch is a unit of logging and
            checkpointing here: every batch is new).
        valid_lines: validation lines rendered once (fixed) to choose the best weights.
        lm_order: order of the character n-gram LM fitted on the training lines (0: none).
        beam_size: default decoding: 1 is greedy (best path), more is prefix beam search.
        lm_weight: default weight of the LM in beam search (0: not used).
    """

    height: int = 32
    channels: tuple[int, ...] = (16, 32, 64, 96)
    hidden_size: int = 128
    num_layers: int = 2
    cell: str = "lstm"
    dropout: float = 0.1
    batch_size: int = 32
    batches_per_epoch: int = 100
    valid_lines: int = 256
    lm_order: int = 6
    beam_size: int = 1
    lm_weight: float = 0.0

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        for name in ("hidden_size", "num_layers", "batch_size", "batches_per_epoch",
                     "beam_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.height < 16 or self.height % 16:
            raise ValueError(f"height must be a multiple of 16 (16, 32, 48, ...), got "
                             f"{self.height}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.lm_order < 0 or self.lm_weight < 0 or self.valid_lines < 1:
            raise ValueError(f"lm_order and lm_weight must be >= 0 and valid_lines >= 1, got "
                             f"{self.lm_order}, {self.lm_weight}, {self.valid_lines}")


@dataclass
class EvalResult:
    """Corpus CER and WER (``jiwer``: edits over reference characters / words) and one row per
    line: ``{"reference", "hypothesis", "font"}``."""

    cer: float
    wer: float
    rows: list[dict[str, str]] = field(default_factory=list)


class TextLineReader(Savable):
    """A CRNN + CTC text-line recogniser; see the module docstring."""

    KIND, VERSION = "rnnkit.text_line_reader", 1
    #: the widest line accepted, in multiples of its height (after cropping to the ink)
    max_aspect: float = 60.0

    def __init__(self, config: ReaderConfig | None = None,
                 alphabet: Sequence[str] | None = None, lm: Any = None) -> None:
        self.config = config or ReaderConfig()
        self.alphabet = [BLANK, *(alphabet if alphabet is not None else ALPHABET)]
        if len(set(self.alphabet)) != len(self.alphabet) or any(
                len(ch) != 1 for ch in self.alphabet[1:]):
            raise ValueError("alphabet must be distinct single characters (the blank is added "
                             "first)")
        self.index = {ch: i for i, ch in enumerate(self.alphabet)}
        self.lm = lm
        c = self.config
        self.model = CRNN(len(self.alphabet), c.height, c.channels, c.hidden_size,
                          c.num_layers, c.cell, c.dropout).eval()
        self.history: dict[str, Any] | None = None

    # -- images -> tensors ------------------------------------------------------------------------
    def prepare(self, image: Any) -> Tensor:
        """One line image -> ``float32 [1, height, W]`` (ink 1, paper 0). ``image``: a file
        path (any format Pillow reads), a PIL image, a numpy array ``[H, W]`` / ``[H, W, C]``
        or a tensor ``[C, H, W]`` / ``[H, W]`` (see :func:`rnnkit.vision.images.load_image`:
        colour is turned to grey, transparency composited on white); dark text on light
        paper or light on dark. It is cropped to its ink and scaled to ``height`` by
        :func:`~rnnkit.vision.textlines.normalize_line`; errors name the fix."""
        from .images import ImageError, load_image

        rgb = load_image(image)  # [3, H, W] in [0, 1], checked
        gray = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) * 255
        try:
            line = normalize_line(gray.round().to(torch.uint8).numpy(), self.config.height,
                                  max_aspect=self.max_aspect)
        except ValueError as err:
            what = os.fspath(image) if isinstance(image, (str, os.PathLike)) else "the image"
            raise ImageError(f"{what}: {err}") from None
        return _to_tensor(line)

    # -- training ---------------------------------------------------------------------------------
    def encode_text(self, text: str) -> list[int]:
        """Characters -> label ids; a character outside the alphabet is an error naming it."""
        missing = sorted({ch for ch in text if ch not in self.index})
        if missing:
            raise ValueError(f"text {text!r} has characters outside the alphabet: {missing}; "
                             f"normalise it with rnnkit.vision.textlines.normalize_text")
        return [self.index[ch] for ch in text]

    def fit(self, train_lines: Sequence[str], valid_lines: Sequence[str] | None = None,
            fonts: dict[str, str] | None = None, train: Any = None, *,
            resume: bool = False, callbacks: Sequence[Any] = ()) -> TextLineReader:
        """Train on ``train_lines`` rendered in ``fonts`` (``{name: path}``, default the
        ``train`` group of :data:`~rnnkit.vision.textlines.FONT_GROUPS`), keeping the weights
        with the lowest CTC loss on ``valid_lines`` (rendered once in the same fonts; the test
        fonts are never seen). ``train`` is a :class:`~rnnkit.train.TrainConfig` (its
        ``out_dir`` gets ``best.pt`` / ``last.pt``; ``resume`` continues from ``last.pt``).
        The character LM (``lm_order``) is fitted on ``train_lines``."""
        from ..train import TrainConfig, Trainer
        from ..train.callbacks import KeepBest

        c = self.config
        train = train or TrainConfig(max_steps=1000, progress=False)
        fonts = fonts or find_fonts("train")
        train_lines = [s for s in dict.fromkeys(train_lines) if s.strip()]
        if not train_lines:
            raise ValueError("no training lines; give at least one non-empty line of text")
        for line in train_lines:
            self.encode_text(line)
        torch.manual_seed(train.seed)
        self.model = CRNN(len(self.alphabet), c.height, c.channels, c.hidden_size,
                          c.num_layers, c.cell, c.dropout)
        data = RenderedBatches(train_lines, fonts, c.batch_size, c.batches_per_epoch,
                               seed=train.seed, height=c.height, encode=self.encode_text)
        valid = None
        if valid_lines:
            vset = TextLineDataset(list(valid_lines), fonts, min(c.valid_lines, len(valid_lines)),
                                   seed=train.seed + 1, height=c.height)
            valid = _fixed_batches([vset[i] for i in range(len(vset))], c.batch_size,
                                   self.encode_text)
        else:
            train = dataclasses.replace(train, early_stop_patience=None)
        task = _CTCTask(self.model)
        keep = KeepBest()
        extra = {"task": TASK, "config": _config_dict(c), "alphabet": self.alphabet[1:],
                 "fonts": sorted(fonts)}
        trainer = Trainer(task, train, data, valid, callbacks=[keep, *callbacks],
                          extra_state=extra)
        try:
            trainer.fit(resume=resume)
        finally:
            if keep.state is not None:
                task.load_state_dict(keep.state)
            self.model.eval()
        if c.lm_order:
            from ..ngram import NGramLM

            self.lm = NGramLM(c.lm_order).fit(train_lines)
        self.history = {"steps": trainer.step, "best_valid_loss": keep.best
                        if keep.state is not None else None, "seconds": trainer.elapsed,
                        "fonts": sorted(fonts)}
        return self

    def step_seconds(self, lines: Sequence[str], fonts: dict[str, str], steps: int = 4,
                     seed: int = 0) -> float:
        """Median seconds of one training step (rendering a batch, forward, CTC, backward)
        with this config, for setting a step budget from a time budget; the weights are left
        as they were."""
        import copy
        import time

        saved = copy.deepcopy(self.model.state_dict())
        c = self.config
        data = RenderedBatches(list(lines), fonts, c.batch_size, steps + 1, seed=seed,
                               height=c.height, encode=self.encode_text)
        task = _CTCTask(self.model).train()
        times = []
        t0 = time.perf_counter()
        for batch in data:
            task.loss(batch).loss.backward()
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
        self.model.zero_grad(set_to_none=True)
        self.model.load_state_dict(saved)
        self.model.eval()
        times = sorted(times[1:])  # the first step pays one-off costs
        return times[len(times) // 2]

    # -- inference --------------------------------------------------------------------------------
    @torch.no_grad()
    def log_probs(self, images: Sequence[Any], batch_size: int = 32) -> list[Tensor]:
        """Line images -> CTC log-probabilities ``[T_i, V]`` each (batched by width)."""
        lines = [self.prepare(im) for im in images]
        self.model.eval()
        out: list[Tensor | None] = [None] * len(lines)
        order = sorted(range(len(lines)), key=lambda i: lines[i].shape[-1])
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            x, widths = _pad([lines[i] for i in idx])
            lp, n = self.model(x, widths)
            for j, i in enumerate(idx):
                out[i] = lp[j, : int(n[j])]
        return out  # type: ignore[return-value]

    def decode(self, log_probs: Tensor, beam: int | None = None,
               lm_weight: float | None = None) -> str:
        """``[T, V]`` -> text: greedy when ``beam`` is 1 and no LM weighs in, else CTC prefix
        beam search (with the character LM at ``lm_weight``). ``None``: the config's
        defaults."""
        from ..decoding.ctc import ctc_greedy, ctc_prefix_beam_search

        beam = self.config.beam_size if beam is None else beam
        weight = self.config.lm_weight if lm_weight is None else lm_weight
        if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
            raise ValueError(f"beam must be an int >= 1 (1 = greedy), got {beam!r}")
        if weight and self.lm is None:
            raise ValueError("lm_weight needs a language model and this reader has none; train "
                             "with lm_order > 0 or use lm_weight 0")
        if beam == 1 and not weight:
            hyp = ctc_greedy(log_probs, blank=0)[0]
        else:
            hyps = ctc_prefix_beam_search(log_probs, beam_size=beam, blank=0,
                                          lm=self.lm if weight else None, lm_weight=weight,
                                          lm_unit="char", alphabet=self.alphabet)
            if not hyps:
                return ""
            hyp = hyps[0]
        return "".join(self.alphabet[t] for t in hyp.tokens)

    def read(self, images: Any, beam: int | None = None,
             lm_weight: float | None = None) -> list[str]:
        """Line images (one, or a list) -> their texts; see :meth:`prepare` for what an image
        may be and :meth:`decode` for ``beam`` / ``lm_weight``."""
        items = list(images) if isinstance(images, (list, tuple)) else [images]
        if not items:
            raise ValueError("no images to read; give at least one")
        return [self.decode(lp, beam, lm_weight) for lp in self.log_probs(items)]

    def evaluate(self, lines: Sequence[str], fonts: dict[str, str], n: int | None = None,
                 seed: int = 0, beam: int | None = None, lm_weight: float | None = None,
                 augment: bool = True) -> EvalResult:
        """CER / WER over ``lines`` rendered in ``fonts`` (``{name: path}``; each line once in
        a font drawn from ``seed``, or ``n`` lines drawn with repeats)."""
        import jiwer

        data = TextLineDataset(list(lines), fonts, n, seed=seed, height=self.config.height,
                               augment=augment)
        items = [data[i] for i in range(len(data))]
        hyps = self._read_rendered([img for img, _, _ in items], beam, lm_weight)
        refs = [text for _, text, _ in items]
        rows = [{"reference": r, "hypothesis": h, "font": f}
                for r, h, (_, _, f) in zip(refs, hyps, items)]
        return EvalResult(float(jiwer.cer(refs, hyps)), float(jiwer.wer(refs, hyps)), rows)

    def tune_lm_weight(self, lines: Sequence[str], fonts: dict[str, str], beam: int = 8,
                       weights: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), n: int = 200,
                       seed: int = 0) -> dict[float, float]:
        """Choose ``config.lm_weight`` (and ``beam_size``) by CER on ``lines`` (validation
        lines: never the test ones) rendered in ``fonts``; returns ``{weight: CER}``."""
        import jiwer

        if self.lm is None:
            raise ValueError("this reader has no language model to weigh; train with "
                             "lm_order > 0")
        data = TextLineDataset(list(lines)[:n], fonts, seed=seed, height=self.config.height)
        items = [data[i] for i in range(len(data))]
        lps = self.log_probs([img for img, _, _ in items])
        refs = [text for _, text, _ in items]
        scores = {float(w): float(jiwer.cer(refs, [self.decode(lp, beam, w) for lp in lps]))
                  for w in weights}
        best = min(scores, key=lambda w: (scores[w], w))
        self.config.beam_size, self.config.lm_weight = beam, best
        return scores

    def _read_rendered(self, images: list[np.ndarray], beam: int | None,
                       lm_weight: float | None) -> list[str]:
        # rendered lines are already normalised; prepare() re-crops them the same way
        return [self.decode(lp, beam, lm_weight) for lp in self.log_probs(
            list(images))]

    # -- persistence ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"config": _config_dict(self.config), "alphabet": self.alphabet[1:],
                "state_dict": self.model.state_dict(), "history": self.history,
                "lm": self.lm.state() if self.lm is not None else None}

    @classmethod
    def from_state(cls, blob: dict[str, Any]) -> TextLineReader:
        lm = None
        if blob.get("lm") is not None:
            from ..ngram import NGramLM

            lm = NGramLM.from_state(blob["lm"])
        self = cls(ReaderConfig(**blob["config"]), blob["alphabet"], lm)
        self.model.load_state_dict(blob["state_dict"])
        self.model.eval()
        self.history = blob.get("history")
        return self

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> TextLineReader:
        """A reader from a trainer checkpoint of :meth:`fit` (``best.pt`` / ``last.pt``): the
        weights, config and alphabet; no LM (that is in the saved reader file)."""
        extra = ckpt.get("extra_state") or {}
        if extra.get("task") != TASK:
            raise ValueError(f"not a text-line reader checkpoint (task {extra.get('task')!r})")
        self = cls(ReaderConfig(**extra["config"]), extra["alphabet"])
        self.model.load_state_dict({k.removeprefix("model."): v
                                    for k, v in ckpt["model"].items()})
        self.model.eval()
        self.history = {"steps": ckpt.get("step"), "fonts": extra.get("fonts")}
        return self


# -- training pieces ----------------------------------------------------------------------------
class _CTCTask(nn.Module):
    """The CRNN with its CTC loss, for the Trainer."""

    item_name = "lines"

    def __init__(self, model: CRNN) -> None:
        super().__init__()
        self.model = model

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        images, widths, targets, target_lengths = batch
        lp, out_lengths = self.model(images, widths)
        loss = F.ctc_loss(lp.transpose(0, 1), targets, out_lengths, target_lengths, blank=0,
                          reduction="mean", zero_infinity=True)
        return LossOutput(loss, None, {}, int(images.shape[0]))


class RenderedBatches:
    """``batches`` training batches per pass, each rendered afresh (:func:`collate_lines`):
    a random length bucket of ``lines`` (eight buckets by length, so a batch pads little),
    ``batch_size`` lines from it, each in a random font of ``fonts`` that draws it, in a random
    style. The random stream is :attr:`generator` (seeded by ``seed``), which the Trainer saves
    and restores, so a resumed run draws the same batches."""

    def __init__(self, lines: Sequence[str], fonts: dict[str, str], batch_size: int,
                 batches: int, *, seed: int = 0, height: int = 32, encode: Any = None) -> None:
        self.data = TextLineDataset(sorted(lines, key=len), fonts, len(lines), height=height)
        self.batch_size, self.batches, self.encode = batch_size, batches, encode
        n = len(lines)
        self.buckets = [range(n * k // 8, max(n * (k + 1) // 8, n * k // 8 + 1)) for k in
                        range(8)] if n >= 8 else [range(n)]
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
        for _ in range(self.batches):
            s = int(torch.randint(2 ** 62, (1,), generator=self.generator))
            yield self.batch(s)

    def batch(self, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The batch of ``seed``."""
        rng = np.random.default_rng(seed)
        bucket = self.buckets[int(rng.integers(len(self.buckets)))]
        items = []
        for _ in range(self.batch_size):
            line = self.data.lines[bucket[int(rng.integers(len(bucket)))]]
            names = [n for n in self.data.names if set(line) <= _charset(self.data.fonts[n])]
            font = self.data.fonts[names[int(rng.integers(len(names)))]]
            items.append((render_line(line, font, seed=int(rng.integers(2 ** 31)),
                                      height=self.data.height), line))
        return collate_lines(items, self.encode)


def _charset(path: str) -> frozenset[str]:
    from .textlines import font_charset

    return font_charset(path)


def collate_lines(items: Sequence[tuple[np.ndarray, str]], encode: Any,
                  ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(image uint8 [H, W_i], text)`` pairs -> ``(images [B, 1, H, W_max]`` (ink 1, paper
    and padding 0), ``widths [B]``, ``targets [B, S]``, ``target_lengths [B])``. An image too
    narrow for CTC to spell its text (one frame per character, plus one between repeats) is
    widened with paper on the right."""
    lines, targets = [], []
    for img, text in items:
        t = torch.tensor(encode(text), dtype=torch.long)
        x = _to_tensor(img)
        need = 4 * (len(t) + int((t[1:] == t[:-1]).sum()))  # 4 px per frame
        if x.shape[-1] < need:
            x = F.pad(x, (0, need - x.shape[-1]))
        lines.append(x)
        targets.append(t)
    images, widths = _pad(lines)
    return (images, widths, nn.utils.rnn.pad_sequence(targets, batch_first=True),
            torch.tensor([len(t) for t in targets]))


def _fixed_batches(items: Sequence[tuple[np.ndarray, str, str]], batch_size: int, encode: Any,
                   ) -> list[tuple[Tensor, Tensor, Tensor, Tensor]]:
    order = sorted(range(len(items)), key=lambda i: items[i][0].shape[1])
    return [collate_lines([items[i][:2] for i in order[k:k + batch_size]], encode)
            for k in range(0, len(order), batch_size)]


def _to_tensor(img: np.ndarray) -> Tensor:
    """``uint8 [H, W]`` (dark ink) -> ``float32 [1, H, W]`` (ink 1, paper 0)."""
    return (255.0 - torch.from_numpy(np.array(img, dtype=np.float32)).float()).div_(255.0)[None]


def _pad(lines: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """``[1, H, W_i]`` -> ``[B, 1, H, W_max]`` zero-padded on the right, and ``widths [B]``."""
    widths = torch.tensor([x.shape[-1] for x in lines])
    out = lines[0].new_zeros(len(lines), 1, lines[0].shape[1], int(widths.max()))
    for i, x in enumerate(lines):
        out[i, :, :, : x.shape[-1]] = x
    return out, widths


def _config_dict(c: ReaderConfig) -> dict[str, Any]:
    d = asdict(c)
    d["channels"] = list(c.channels)
    return d

