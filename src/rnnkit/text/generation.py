"""The text application: train a :class:`~rnnkit.text.language_model.LanguageModel` on a
text file with truncated BPTT, print samples while it learns, and the ``rnnkit demo`` job.

The pieces are the library's own: a tokenizer (:mod:`rnnkit.data.text`), the model, the
:class:`~rnnkit.train.Trainer` with a :class:`~rnnkit.train.BPTTStream` per split, and a
:class:`SampleCallback`. The CLI (:mod:`rnnkit.commands.text`) only parses arguments into the
config dataclasses below and calls :func:`fit_text` or :func:`run_demo`.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from ..data.text import TextDataConfig, load_text, stdlib_corpus
from ..saving import atomic_write_text
from ..train import BPTTStream, Callback, TrainConfig, Trainer, load_checkpoint
from ..train.callbacks import KeepBest
from .config import DemoConfig, SampleConfig
from .language_model import (
    LN2,
    LanguageModel,
    LanguageModelConfig,
    bits_per_token,
    perplexity,
)

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
    "text_fingerprint",
    "validation_blocks",
]


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
    :math:`r` = ``floor``, where :math:`t` is the trainer's :attr:`~rnnkit.train.Trainer.elapsed`
    (which a resumed run continues). Use it with ``TrainConfig(scheduler="none",
    warmup_steps=0)``; the schedule follows the clock, so a resumed run does not repeat it bit
    for bit.
    """

    def __init__(self, budget_s: float, warmup_steps: int = 0, floor: float = 0.0) -> None:
        if budget_s <= 0:
            raise ValueError(f"budget_s must be positive, got {budget_s}")
        self.budget_s, self.warmup_steps, self.floor = float(budget_s), warmup_steps, floor
        self._base: list[float] = []

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
        m = self.multiplier(step, trainer.elapsed)
        for group, base in zip(trainer.optimizer.param_groups, self._base):
            group["lr"] = base * m

    def on_fit_start(self, trainer: Any) -> None:
        if trainer.scheduler is not None:
            raise ValueError("TimeCosineLR sets the lr itself: use it with "
                             "TrainConfig(scheduler='none', warmup_steps=0)")
        # the configured peak (a resumed optimizer holds the decayed lr of its last step)
        self._base = [trainer.config.lr] * len(trainer.optimizer.param_groups)
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


#: Tokens per held-out validation block (:func:`validation_blocks`).
VAL_BLOCK = 2048


def validation_blocks(n: int, val_fraction: float,
                      block: int = VAL_BLOCK) -> list[tuple[int, int]]:
    """Held-out ``[start, end)`` token ranges, about ``val_fraction`` of a stream of ``n``
    tokens, spread evenly over it: the stream is cut into equal periods and the last ``block``
    tokens (or fewer) of each are held out. Spreading them keeps every part of the text in
    training: a validation tail would drop the end of a corpus (the last book, the play that
    continues into the test text) from what the model learns. A short text gets one block,
    its tail.

    >>> validation_blocks(100, 0.1, block=3)  # 10 tokens held out, in 3 blocks
    [(30, 33), (63, 66), (96, 100)]
    >>> validation_blocks(100, 0.1, block=2048)
    [(90, 100)]
    """
    held = int(round(n * val_fraction))
    if held < 1:
        return []
    count = max(1, round(held / block))
    size = held // count
    period = n // count
    spans = [((i + 1) * period - size, (i + 1) * period) for i in range(count - 1)]
    return [*spans, (n - (held - size * (count - 1)), n)]


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


def text_fingerprint(text: str) -> dict[str, Any]:
    """What identifies a training text in a checkpoint: its length and SHA-1.

    >>> text_fingerprint("abc")
    {'chars': 3, 'sha1': 'a9993e364706816aba3e25717850c26c9cd0d89d'}
    """
    return {"chars": len(text), "sha1": hashlib.sha1(text.encode("utf-8", "surrogatepass"))
            .hexdigest()}


def _check_resumable(last: Path, text: str, model_config: LanguageModelConfig,
                     data_config: TextDataConfig) -> dict[str, Any]:
    """The ``extra_state`` of ``last.pt``, after checking this call continues that run: the
    same text and the same model and data settings (the CLI names its flags earlier)."""
    extra = load_checkpoint(last).get("extra_state") or {}
    run = extra.get("run") or {}
    saved_model = LanguageModel.from_extra_state(extra).config
    wrong = [f"{f.name} {getattr(saved_model, f.name)!r} (given {getattr(model_config, f.name)!r})"
             for f in fields(saved_model) if f.name != "vocab_size"
             and getattr(saved_model, f.name) != getattr(model_config, f.name)]
    wrong += [f"{k} {v!r} (given {getattr(data_config, k)!r})"
              for k, v in (run.get("data_config") or {}).items()
              if k != "path" and getattr(data_config, k, v) != v]
    if wrong:
        raise ValueError(f"resume: {last} was trained with {', '.join(wrong)}; resume with the "
                         f"run's own settings or start a new run in another folder")
    if "data" in run and run["data"] != text_fingerprint(text):
        saved, now = run["data"], text_fingerprint(text)
        raise ValueError(f"resume: the training text is not the one this run was trained on "
                         f"({now['chars']:,} chars, sha1 {now['sha1'][:12]} vs the run's "
                         f"{saved['chars']:,} chars, sha1 {saved['sha1'][:12]}); resume with "
                         f"the same file or start a new run")
    return extra


def fit_text(
    text: str,
    model_config: LanguageModelConfig,
    data_config: TextDataConfig,
    train_config: TrainConfig,
    sample_config: SampleConfig | None = None,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    run_info: dict[str, Any] | None = None,
) -> TextRun:
    """Train a language model on ``text`` with truncated BPTT; return it with the weights
    that scored best on validation.

    About ``data_config.val_fraction`` of the tokens is held out for validation, in blocks
    spread over the whole text (:func:`validation_blocks`; a short text's one block is its
    tail), so training sees every part of the corpus; the rest, joined, is the training
    stream, cut into ``data_config.batch_size`` rows and chunks of ``data_config.bptt``
    steps. The tokenizer is built from the whole text (a symbol of the validation part alone
    gets an id that training never makes likely, so it is not scored as ``<unk>``, which
    would flatter the model). Validation scores every block token once, each block read
    after the text before it, in the segments of
    :meth:`~rnnkit.text.language_model.LanguageModel.evaluation_batches` (independent of the
    batch size); that number chose ``best.pt`` and is the one returned in
    :attr:`TextRun.val_metrics` (no second, different evaluation).

    Every checkpoint holds the model config, the vocabulary and ``run``: the text's
    :func:`text_fingerprint`, the data settings and ``run_info`` (e.g. the schedule of a
    budgeted run). ``resume`` continues ``out_dir/last.pt`` with its vocabulary, and refuses
    a different text or different model/data settings.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the training text is empty; give a file with some text")
    tokenizer = data_config.build_tokenizer(text)  # the file's symbols, whichever part
    last = Path(train_config.out_dir) / "last.pt" if train_config.out_dir else None
    if resume and last is not None and last.exists():
        # continue with the checkpoint's own vocabulary, after checking it is the same run
        extra = _check_resumable(last, text, model_config, data_config)
        tokenizer = LanguageModel.from_extra_state(extra).tokenizer
    ids = tokenizer.encode_tensor(text)
    spans = validation_blocks(ids.numel(), data_config.val_fraction)
    keep = torch.ones(ids.numel(), dtype=torch.bool)
    for lo, hi in spans:
        keep[lo:hi] = False
    train_ids = ids[keep]  # the text without its validation blocks
    B = data_config.batch_size
    if train_ids.numel() < 2 * B + 1:
        raise ValueError(f"the training text has only {train_ids.numel()} tokens, too few for "
                         f"{B} rows; give more text or a smaller --batch-size")
    with torch.random.fork_rng(devices=[]):  # same seed, same initial weights; no side effect
        torch.manual_seed(train_config.seed)
        model = LanguageModel(replace(model_config, vocab_size=len(tokenizer)), tokenizer)
    train_data = BPTTStream(train_ids, B, data_config.bptt, overlap=data_config.overlap)
    # every token of each block is scored, predicted from the text before it (the training
    # text just before the block is read as context, not scored)
    val_spans = [(max(lo - 1, 0), hi - 1) for lo, hi in spans if hi - 1 > max(lo - 1, 0)]
    val_data = LanguageModel.evaluation_batches(ids, B, spans=val_spans) if val_spans else None
    if sample_config is not None and not tokenizer.encode(sample_config.prime):
        # e.g. the default "\n" prime of a word model: start from the text's first token
        first = tokenizer.itos[int(train_ids[0])]
        sample_config = replace(sample_config, prime=first)
    sampler = SampleCallback(sample_config) if sample_config is not None else None
    keep = KeepBest()
    cbs = [*callbacks, keep, *([sampler] if sampler is not None else [])]
    extra_state = {**model.extra_state(), "run": {
        "data": text_fingerprint(text), "data_config": asdict(data_config), **(run_info or {})}}
    trainer = Trainer(model, train_config, train_data, val_data=val_data, callbacks=cbs,
                      extra_state=extra_state)
    history = trainer.fit(resume=resume)
    model = trainer.model  # never DDP-wrapped: the trainer wraps its loss engine
    val_metrics: dict[str, Any] = {}
    if trainer.best_metric is not None and trainer.rank == 0:
        best = trainer.restore_best()  # the truth, also across resumes
        best_step = best["step"] if best is not None else keep.best_step
        if best is None and keep.state is not None:  # no out_dir: the weights kept in memory
            model.load_state_dict(keep.state)
        model.eval()
        loss = float(trainer.best_metric)
        targets = torch.cat([ids[lo + 1: hi + 1] for lo, hi in val_spans])
        tokens = targets.numel()
        chars = tokens if tokenizer.kind == "char" else tokens * len(text) / ids.numel()
        val_metrics = {
            "loss": loss, "perplexity": perplexity(loss), "bits_per_token": loss / LN2,
            "bits_per_char": loss * tokens / LN2 / chars,
            "tokens": tokens, "step": best_step, "blocks": len(val_spans),
            "unk_rate": float((targets == tokenizer.unk_id).float().mean()),
            "protocol": model.eval_protocol(), "chars": chars}
    return TextRun(model, trainer, history, val_metrics,
                   sampler.samples if sampler is not None else [])


#: Bytes of standard-library source the demo reads by default.
STDLIB_BYTES = 2_000_000


def run_demo(config: DemoConfig, out: Callable[[str], None] = print) -> TextRun:
    """The main job: train, show samples, and write ``best.pt``/``last.pt``, ``curves.png``,
    ``log.jsonl``/``log.csv`` and ``samples.txt`` into ``config.out_dir``."""
    if config.threads:
        torch.set_num_threads(config.threads)
    if config.data:
        text, source = load_text(config.data, max_bytes=config.corpus_bytes), config.data
        if config.corpus_bytes is not None and \
                os.path.getsize(config.data) > config.corpus_bytes:
            source += f" (its first {config.corpus_bytes:,} bytes: --corpus-bytes)"
    else:
        text = stdlib_corpus(config.corpus_bytes or STDLIB_BYTES)
        source = f"the Python {sys.version.split()[0]} standard library's own source"
    out(f"rnnkit demo: training a character LSTM on {len(text):,} characters of {source}")
    out(f"budget {config.max_time:.0f} s on {torch.get_num_threads()} CPU thread(s); outputs "
        f"go to {config.out_dir}/")
    out_dir = Path(config.out_dir)  # made by the trainer's first write, after the model
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
