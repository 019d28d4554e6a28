"""The text application: train a :class:`~rnnkit.text.language_model.LanguageModel` on a
text file with truncated BPTT, print samples while it learns, and the ``rnnkit demo`` job.

The pieces are the library's own: a tokenizer (:mod:`rnnkit.data.text`), the model, the
:class:`~rnnkit.train.Trainer` with a :class:`~rnnkit.train.BPTTStream` per split, and a
:class:`SampleCallback`. The CLI (:mod:`rnnkit.commands.text`) only parses arguments into the
config dataclasses below and calls :func:`fit_text` or :func:`run_demo`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..data.text import TextDataConfig, load_text, stdlib_corpus
from ..decoding import check_sampling
from ..saving import atomic_write_text
from ..train import BPTTStream, Callback, TrainConfig, Trainer, load_checkpoint
from .language_model import LanguageModel, LanguageModelConfig, bits_per_token

__all__ = [
    "DemoConfig",
    "SampleCallback",
    "SampleConfig",
    "TextRun",
    "ThroughputMeter",
    "TimeCosineLR",
    "fit_text",
    "run_demo",
    "split_text",
]


@dataclass
class SampleConfig:
    """How samples are drawn (the ``[sample]`` table; also ``rnnkit generate``'s options).

    Attributes:
        prime: the text the model continues.
        length: tokens to generate.
        temperature: ``> 0`` softmax temperature; ``0`` = greedy.
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


def _write(text: str) -> None:
    """Print without breaking a tqdm progress bar."""
    try:
        from tqdm import tqdm

        tqdm.write(text, file=sys.stdout)
    except ImportError:  # pragma: no cover - tqdm is in the train extra
        print(text, flush=True)


class SampleCallback(Callback):
    """Prints a sample of the model's text at every evaluation (and at most every
    ``config.every_s`` seconds between them), so the user sees it learn. Samples are kept in
    :attr:`samples` as ``(step, val_loss or None, text)``. Only the main process prints."""

    def __init__(self, config: SampleConfig, printer: Callable[[str], None] = _write) -> None:
        self.config = config
        self.printer = printer
        self.samples: list[tuple[int, float | None, str]] = []
        self._last = time.monotonic()

    def _sample(self, trainer: Any, step: int, loss: float | None) -> None:
        if trainer.rank != 0:  # the trainer's own rank (DistContext); it wraps only its engine
            return
        text = self.config.draw(trainer.model)
        self.samples.append((step, loss, text))
        head = f"step {step}" + (f", val loss {loss:.3f} nats/token "
                                 f"({bits_per_token(loss):.3f} bits)" if loss is not None else "")
        self.printer(f"\n----- sample at {head} -----\n{self.config.prime}{text}\n" + "-" * 40)
        self._last = time.monotonic()

    def on_step_end(self, trainer: Any, step: int, logs: dict) -> None:
        every = self.config.every_s
        if every > 0 and time.monotonic() - self._last >= every:
            self._sample(trainer, step, None)

    def on_eval_end(self, trainer: Any, step: int, metrics: dict) -> None:
        loss = metrics.get("loss")
        self._sample(trainer, step, float(loss) if loss is not None else None)


class TimeCosineLR(Callback):
    r"""Cosine learning-rate decay over a wall-clock budget, for ``max_time`` runs whose step
    count is not known in advance. At elapsed fraction :math:`f = t / \text{budget}` after
    ``warmup_steps`` linear warm-up steps the lr is
    :math:`\text{lr} \cdot (r + (1 - r) \tfrac12 (1 + \cos \pi \min(f, 1)))` with
    :math:`r` = ``floor``. Use it with ``TrainConfig(scheduler="none", warmup_steps=0)``; the
    schedule follows the clock, so a resumed run does not repeat it bit for bit.
    """

    def __init__(self, budget_s: float, warmup_steps: int = 0, floor: float = 0.0) -> None:
        if budget_s <= 0:
            raise ValueError(f"budget_s must be positive, got {budget_s}")
        self.budget_s, self.warmup_steps, self.floor = float(budget_s), warmup_steps, floor
        self._base: list[float] = []
        self._t0 = 0.0

    def multiplier(self, step: int, elapsed: float) -> float:
        """The lr multiplier after ``step`` optimizer steps and ``elapsed`` seconds.

        >>> cb = TimeCosineLR(100.0, warmup_steps=10)
        >>> cb.multiplier(4, 1.0), cb.multiplier(50, 50.0), cb.multiplier(90, 100.0)
        (0.5, 0.5, 0.0)
        """
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        f = min(1.0, elapsed / self.budget_s)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * f))

    def _apply(self, trainer: Any, step: int) -> None:
        m = self.multiplier(step, time.perf_counter() - self._t0)
        for group, base in zip(trainer.optimizer.param_groups, self._base):
            group["lr"] = base * m

    def on_fit_start(self, trainer: Any) -> None:
        if trainer.scheduler is not None:
            raise ValueError("TimeCosineLR sets the lr itself: use it with "
                             "TrainConfig(scheduler='none', warmup_steps=0)")
        self._base = [g["lr"] for g in trainer.optimizer.param_groups]
        self._t0 = time.perf_counter()
        self._apply(trainer, trainer.step)

    def on_step_end(self, trainer: Any, step: int, logs: dict) -> None:
        self._apply(trainer, step)

    def on_fit_end(self, trainer: Any) -> None:
        for group, base in zip(trainer.optimizer.param_groups, self._base):
            group["lr"] = base


class ThroughputMeter(Callback):
    """Counts training items (tokens) and wall time from fit start to fit end."""

    def __init__(self) -> None:
        self.items = 0.0
        self.steps = 0
        self.seconds = 0.0
        self._t0 = 0.0

    def on_fit_start(self, trainer: Any) -> None:
        self._t0 = time.perf_counter()

    def on_step_end(self, trainer: Any, step: int, logs: dict) -> None:
        self.items += float(logs.get("items", 0))
        self.steps += 1

    def on_fit_end(self, trainer: Any) -> None:
        self.seconds = time.perf_counter() - self._t0

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("nan")


def split_text(text: str, val_fraction: float) -> tuple[str, str]:
    """The first ``1 - val_fraction`` of the characters (train) and the rest (validation).

    >>> split_text("abcdefghij", 0.2)
    ('abcdefgh', 'ij')
    """
    cut = len(text) - int(round(len(text) * val_fraction))
    return text[:cut], text[cut:]


@dataclass
class TextRun:
    """What :func:`fit_text` returns."""

    model: LanguageModel
    trainer: Trainer
    history: Any
    val_metrics: dict = field(default_factory=dict)
    samples: list = field(default_factory=list)


def fit_text(
    text: str,
    model_config: LanguageModelConfig,
    data_config: TextDataConfig,
    train_config: TrainConfig,
    sample_config: SampleConfig | None = None,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
) -> TextRun:
    """Train a language model on ``text`` with truncated BPTT.

    The tokenizer is built from the training part only (validation symbols it never saw count
    as ``<unk>``; with ``resume`` the vocabulary and architecture come from ``last.pt``). The
    stream is cut into ``data_config.batch_size`` rows and chunks of ``data_config.bptt``
    steps. The model config and vocabulary go into every checkpoint, so
    :func:`~rnnkit.text.language_model.load_language_model` rebuilds the model. After
    training, the validation split is scored with
    :meth:`~rnnkit.text.language_model.LanguageModel.evaluate_text`.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the training text is empty; give a file with some text")
    train_text, val_text = split_text(text, data_config.val_fraction)
    tokenizer = data_config.build_tokenizer(train_text)
    if resume and train_config.out_dir:
        # continue with the checkpoint's own vocabulary and architecture, so a resumed run
        # never depends on repeating every flag
        last = Path(train_config.out_dir) / "last.pt"
        if last.exists():
            extra = load_checkpoint(last).get("extra_state") or {}
            saved = LanguageModel.from_extra_state(extra)
            tokenizer, model_config = saved.tokenizer, saved.config
    train_ids = tokenizer.encode_tensor(train_text)
    val_ids = tokenizer.encode_tensor(val_text) if val_text else None
    B = data_config.batch_size
    if train_ids.numel() < 2 * B + 1:
        raise ValueError(f"the training text has only {train_ids.numel()} tokens, too few for "
                         f"{B} rows; give more text or a smaller --batch-size")
    with torch.random.fork_rng(devices=[]):  # same seed, same initial weights; no side effect
        torch.manual_seed(train_config.seed)
        model = LanguageModel(replace(model_config, vocab_size=len(tokenizer)), tokenizer)
    train_data = BPTTStream(train_ids, B, data_config.bptt, overlap=data_config.overlap)
    val_data = None
    if val_ids is not None and val_ids.numel() >= 4:
        val_data = BPTTStream(val_ids, max(1, min(B, val_ids.numel() // 4)), data_config.bptt)
    if sample_config is not None and not tokenizer.encode(sample_config.prime):
        # e.g. the default "\n" prime of a word model: start from the text's first token
        first = tokenizer.itos[int(train_ids[0])]
        sample_config = replace(sample_config, prime=first)
    sampler = SampleCallback(sample_config) if sample_config is not None else None
    cbs = [*callbacks, *([sampler] if sampler is not None else [])]
    trainer = Trainer(model, train_config, train_data, val_data=val_data, callbacks=cbs,
                      extra_state=model.extra_state())
    history = trainer.fit(resume=resume)
    model = trainer.model  # never DDP-wrapped: the trainer wraps its loss engine
    val_metrics = {}
    if val_ids is not None and val_ids.numel() >= 2 and trainer.rank == 0:
        val_metrics = model.evaluate_text(val_text, batch_size=16, bptt=data_config.bptt)
    return TextRun(model, trainer, history, val_metrics,
                   sampler.samples if sampler is not None else [])


@dataclass
class DemoConfig:
    """``rnnkit demo``: a character LSTM on the Python standard library's own source.

    Attributes:
        out_dir: where the checkpoint, learning curves and samples go.
        max_time: training budget in seconds (wall clock).
        corpus_bytes: characters of standard-library source to read.
        hidden_size: LSTM state size.
        num_layers: stacked LSTM layers.
        embed_size: character embedding width.
        batch_size: rows of the truncated-BPTT stream.
        bptt: steps per chunk (between state detaches).
        lr: peak AdamW learning rate (cosine decay over the time budget, see
            :class:`TimeCosineLR`).
        eval_every: steps between validation passes (each prints a sample).
        sample_every_s: also print a sample at most this often between evaluations.
        threads: torch CPU threads (``0``: leave torch's default).
        seed: seed of training and sampling.
        data: a text file to train on instead of the standard library.
        progress: show the progress bar.
    """

    out_dir: str = "runs/demo"
    max_time: float = 180.0
    corpus_bytes: int = 2_000_000
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

    @classmethod
    def quick(cls, **overrides: Any) -> DemoConfig:
        """A ~30-second version (small model, small corpus) for tests and a first look."""
        base = dict(max_time=25.0, corpus_bytes=200_000, hidden_size=96, embed_size=32,
                    batch_size=16, bptt=64, eval_every=150, sample_every_s=10.0)
        base.update(overrides)
        return cls(**base)


def run_demo(config: DemoConfig, out: Callable[[str], None] = print) -> TextRun:
    """The main job: train, show samples, and write ``best.pt``/``last.pt``, ``curves.png``,
    ``log.jsonl``/``log.csv`` and ``samples.txt`` into ``config.out_dir``."""
    if config.threads:
        torch.set_num_threads(config.threads)
    if config.data:
        text, source = load_text(config.data, max_bytes=config.corpus_bytes), config.data
    else:
        text = stdlib_corpus(config.corpus_bytes)
        source = f"the Python {sys.version.split()[0]} standard library's own source"
    out(f"rnnkit demo: training a character LSTM on {len(text):,} characters of {source}")
    out(f"budget {config.max_time:.0f} s on {torch.get_num_threads()} CPU thread(s); outputs "
        f"go to {config.out_dir}/")
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_cfg = LanguageModelConfig(cell="lstm", embed_size=config.embed_size,
                                    hidden_size=config.hidden_size,
                                    num_layers=config.num_layers)
    data_cfg = TextDataConfig(level="char", val_fraction=0.02, batch_size=config.batch_size,
                              bptt=config.bptt)
    train_cfg = TrainConfig(epochs=1000, max_time=config.max_time, lr=config.lr,
                            clip_norm=1.0, eval_every=config.eval_every, seed=config.seed,
                            out_dir=str(out_dir), progress=config.progress, device="cpu")
    sample_cfg = SampleConfig(prime="def ", length=200, temperature=0.8, seed=config.seed,
                              every_s=config.sample_every_s)
    # the step count is unknown under a time budget, so the lr follows the clock
    schedule = TimeCosineLR(config.max_time, warmup_steps=20, floor=0.05)
    run = fit_text(text, model_cfg, data_cfg, train_cfg, sample_cfg, callbacks=[schedule])
    final = replace(sample_cfg, length=1000, seed=config.seed + 1).draw(run.model)
    _write_samples(out_dir / "samples.txt", run, sample_cfg, final)
    ckpt = out_dir / ("best.pt" if (out_dir / "best.pt").exists() else "last.pt")
    val = run.val_metrics
    out(f"\n===== final sample (temperature {sample_cfg.temperature}) =====\n"
        f"{sample_cfg.prime}{final}\n" + "=" * 40)
    if val:
        out(f"validation: {val['loss']:.3f} nats/char, {val['bits_per_char']:.3f} bits/char, "
            f"perplexity {val['perplexity']:.2f}")
    out(f"wrote {ckpt}, {out_dir / 'curves.png'}, {out_dir / 'samples.txt'}")
    out("next:\n"
        f"  rnnkit generate {ckpt} --prime \"class \" --length 500 --temperature 0.8\n"
        f"  rnnkit evaluate {ckpt} --data SOME_FILE.py\n"
        f"  rnnkit train text --data YOUR_TEXT.txt --out-dir runs/mine   # your own corpus")
    return run


def _write_samples(path: Path, run: TextRun, cfg: SampleConfig, final: str) -> None:
    lines = []
    for step, loss, text in run.samples:
        head = f"step {step}" + (f", val loss {loss:.3f}" if loss is not None else "")
        lines.append(f"===== {head} =====\n{cfg.prime}{text}\n")
    lines.append(f"===== final (temperature {cfg.temperature}) =====\n{cfg.prime}{final}\n")
    atomic_write_text("\n".join(lines), path)
