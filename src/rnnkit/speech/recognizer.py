"""The speech recogniser application: audio in, text out.

A :class:`SpeechRecognizer` owns the feature extractor (:class:`~rnnkit.speech.features.LogMel`),
the :class:`~rnnkit.speech.model.AcousticModel`, its alphabet (CTC blank first) and its decoding
settings (:class:`~rnnkit.speech.config.DecodeConfig`, with an optional
:class:`~rnnkit.ngram.NGramLM`). It trains with CTC on ``(audio, text)`` examples through the
one :class:`~rnnkit.train.Trainer`, transcribes files or waveforms of any rate and length
(chunks of ``chunk_seconds``), streams (unidirectional models), evaluates WER/CER with
``jiwer``, and saves as one tagged file (``rnnkit.save`` / ``rnnkit.load``).

>>> rec = SpeechRecognizer(SpeechConfig(hidden_size=16, num_layers=1, channels=4, n_mels=32),
...                        alphabet=["<blank>", " ", "a", "b"])
>>> out = rec.transcribe([torch.randn(16000) * 0.1])
>>> isinstance(out[0].text, str), out[0].chars == [] or isinstance(out[0].chars[0][1], float)
(True, True)
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Sampler

from ..decoding.ctc import CTCGreedyStream
from ..saving import Savable
from ..train.callbacks import KeepBest
from ..train.protocol import LossOutput
from .audio import check_audio, iter_chunks, load_audio
from .config import DecodeConfig, SpeechConfig
from .features import LogMel
from .model import AcousticModel
from .normalization import spec_augment

__all__ = ["EvalResult", "SpeechRecognizer", "Transcript"]

Audio = "str | os.PathLike | Tensor"
BLANK = "<blank>"


@dataclass
class Transcript:
    """One decoded utterance: ``text``, its ``score`` (log-probability, plus LM terms when a
    beam with an LM ran), the ``nbest`` list of ``(text, score)``, and ``chars``: each
    character with its time in seconds (the frame CTC emitted it). ``log_probs [T', V]`` is
    kept for plotting."""

    text: str
    score: float
    nbest: list[tuple[str, float]] = field(default_factory=list)
    chars: list[tuple[str, float]] = field(default_factory=list)
    log_probs: Tensor | None = None


@dataclass
class EvalResult:
    """Corpus WER and CER (``jiwer``: errors over reference words / characters) and one row
    per utterance: ``{"id", "reference", "hypothesis", "wer", "cer"}``."""

    wer: float
    cer: float
    rows: list[dict[str, Any]]
    seconds_audio: float = 0.0
    seconds_decoding: float = 0.0

    @property
    def rtf(self) -> float:
        """Real-time factor: decoding time over audio time."""
        return self.seconds_decoding / max(self.seconds_audio, 1e-9)


class SpeechRecognizer(Savable):
    """A CTC speech recogniser; see the module docstring."""

    KIND, VERSION = "rnnkit.speech", 1
    chunk_seconds: float = 30.0

    def __init__(self, config: SpeechConfig | None = None, alphabet: Sequence[str] | None = None,
                 decode: DecodeConfig | None = None, lm: Any = None, lm_unit: str = "word"
                 ) -> None:
        from .text import ENGLISH_ALPHABET

        self.config = config or SpeechConfig()
        self.alphabet = list(alphabet or ENGLISH_ALPHABET)
        if self.alphabet[0] != BLANK or len(set(self.alphabet)) != len(self.alphabet):
            raise ValueError(f"alphabet must start with {BLANK!r} and have no repeats, got "
                             f"{self.alphabet[:5]}...")
        self.index = {ch: i for i, ch in enumerate(self.alphabet)}
        self.decode = decode or DecodeConfig()
        self.lm, self.lm_unit = lm, lm_unit
        c = self.config
        self.features = LogMel(rate=c.rate, win_length=round(c.win_ms * c.rate / 1000),
                               n_fft=round(c.win_ms * c.rate / 1000),
                               hop_length=round(c.hop_ms * c.rate / 1000), n_mels=c.n_mels,
                               f_min=c.f_min, f_max=c.f_max)
        self.model = AcousticModel(c.n_mels, len(self.alphabet), channels=c.channels,
                                   hidden_size=c.hidden_size, num_layers=c.num_layers,
                                   cell=c.cell, bidirectional=c.bidirectional,
                                   dropout=c.dropout, normalize=c.normalize).eval()
        self.history: dict[str, Any] | None = None

    # -- audio -> features ----------------------------------------------------------------------
    @property
    def frame_seconds(self) -> float:
        """Seconds per output frame (the front end halves the frame rate)."""
        return 2 * self.config.hop_ms / 1000

    def waveform(self, audio: Any, rate: int | None = None) -> Tensor:
        """A file path (any rate, any channels) or a waveform tensor at ``rate`` (default: the
        model's) -> mono float32 at the model's rate, checked."""
        if isinstance(audio, (str, os.PathLike)):
            return load_audio(audio, self.config.rate)
        if not isinstance(audio, Tensor):
            raise TypeError(f"audio must be a file path or a waveform tensor, got "
                            f"{type(audio).__name__}")
        from .audio import resample

        samples = check_audio(audio, rate or self.config.rate)
        if rate and rate != self.config.rate:
            samples = resample(samples, rate, self.config.rate)
        return samples

    def featurize(self, samples: Tensor) -> Tensor:
        """Mono waveform ``[N]`` -> log-mel frames ``[T, n_mels]`` (``[B, N]`` -> ``[B, T,
        n_mels]``)."""
        with torch.no_grad():
            return self.features(samples)

    def encode_text(self, text: str) -> list[int]:
        """Characters -> alphabet indices; an unknown character is an error naming it."""
        missing = sorted({ch for ch in text if ch not in self.index})
        if missing:
            raise ValueError(f"transcript {text!r} has characters outside the alphabet: "
                             f"{missing}; normalise it (rnnkit.speech.normalize_transcript) or "
                             f"build the alphabet from the training texts")
        return [self.index[ch] for ch in text]

    # -- training -------------------------------------------------------------------------------
    def prepare(self, examples: Iterable[Any], augment: Any = None, copies: int = 0,
                desc: str = "features", keep_original: bool = True, progress: bool = True
                ) -> list[tuple[Tensor, Tensor]]:
        """``(audio, text)`` pairs (or objects with ``.path``/``.text``) -> ``(features
        [T, F], targets [L])``: the original (unless ``keep_original=False``) and ``copies``
        augmented versions of each (``augment(samples, rate)`` on the waveform). Examples too
        short for their text (CTC needs at least one frame per character and repeat) are
        dropped with a warning. ``progress`` shows a bar."""
        from ..train.progress import maybe_tqdm

        out, dropped = [], 0
        for ex in maybe_tqdm(list(examples), desc=desc, disable=not progress):
            audio, text = _pair(ex)
            target = torch.tensor(self.encode_text(text), dtype=torch.long)
            samples = self.waveform(audio)
            versions = [samples] * keep_original + [augment(samples, self.config.rate)
                                                    for _ in range(copies)]
            for s in versions:
                feats = self.featurize(s)
                frames = int(self.model.output_lengths(torch.tensor([len(feats)]))[0])
                if frames < _ctc_min_frames(target) or len(target) == 0:
                    dropped += 1
                    continue
                out.append((feats, target))
        if dropped:
            import warnings

            warnings.warn(f"dropped {dropped} examples shorter than their transcripts need "
                          f"(or with empty text)", stacklevel=2)
        if not out:
            raise ValueError("no usable training examples: each needs audio at least as long "
                             "as its transcript needs and a non-empty transcript")
        return out

    def fit(self, train: Sequence[tuple[Tensor, Tensor]] | Iterable[Any],
            valid: Sequence[tuple[Tensor, Tensor]] | Iterable[Any] | None = None,
            callbacks: Sequence[Any] = ()) -> SpeechRecognizer:
        """Train on ``train`` (prepared pairs from :meth:`prepare`, or raw examples), keeping
        the weights best on ``valid`` (if given); global feature statistics are computed from
        ``train``."""
        from ..train.trainer import Trainer

        train, valid = self._prepared(train), (self._prepared(valid) if valid else None)
        c = self.config
        feats = torch.cat([f for f, _ in train])
        self.model.set_stats(feats.mean(0), feats.std(0))
        task = _CTCTask(self.model, c)
        tc = c.train if valid else dataclasses.replace(c.train, eval_every=0,
                                                        early_stop_patience=None)
        train_dl = DataLoader(train, batch_sampler=_Buckets(train, c.batch_size, tc.seed),
                              collate_fn=_collate)
        valid_dl = (DataLoader(valid, batch_sampler=_Buckets(valid, c.batch_size, None),
                               collate_fn=_collate) if valid else None)
        keep = KeepBest()
        trainer = Trainer(task, tc, train_dl, valid_dl,
                          callbacks=([keep] if valid else []) + list(callbacks))
        self.model.train()
        try:
            trainer.fit()
        finally:
            if keep.state is not None:
                task.load_state_dict(keep.state)
            self.model.eval()
        self.history = {"steps": trainer.step, "best_valid_loss": keep.best}
        return self

    def step_seconds(self, data: Sequence[tuple[Tensor, Tensor]], steps: int = 6) -> float:
        """Median seconds of one training step (forward, CTC, backward) on batches drawn from
        prepared ``data``, for setting a step budget from a time budget; the weights are left
        as they were."""
        import copy
        import time

        saved = copy.deepcopy(self.model.state_dict())
        task = _CTCTask(self.model, self.config).train()
        batches = list(_Buckets(data, self.config.batch_size, seed=0))[: steps + 1]
        times = []
        for idx in batches:
            t0 = time.perf_counter()
            out = task.loss(_collate([data[i] for i in idx]))
            out.loss.backward()
            times.append(time.perf_counter() - t0)
        self.model.zero_grad(set_to_none=True)
        self.model.load_state_dict(saved)
        self.model.eval()
        times = sorted(times[1:] or times)  # the first step pays one-off costs
        return times[len(times) // 2]

    def _prepared(self, data: Any) -> list[tuple[Tensor, Tensor]]:
        data = list(data)
        if data and isinstance(data[0], tuple) and isinstance(data[0][0], Tensor) \
                and data[0][0].ndim == 2 and data[0][1].dtype == torch.long:
            return data
        return self.prepare(data)

    # -- inference ------------------------------------------------------------------------------
    @torch.no_grad()
    def log_probs(self, audio: Any) -> Tensor:
        """One utterance -> CTC log-probabilities ``[T', V]``; audio longer than
        ``chunk_seconds`` runs in consecutive chunks whose frames are joined."""
        samples = self.waveform(audio)
        self.model.eval()
        parts = []
        for _, chunk in iter_chunks(samples, self.config.rate, seconds=self.chunk_seconds):
            feats = self.featurize(chunk)
            if len(feats) == 0:
                continue
            lp, _ = self.model(feats[None], torch.tensor([len(feats)]))
            parts.append(lp[0])
        if not parts:
            name = f"{os.fspath(audio)}: " if isinstance(audio, (str, os.PathLike)) else ""
            raise ValueError(f"{name}audio of {len(samples)} samples is shorter than one "
                             f"{self.config.win_ms:g} ms frame; give a longer recording "
                             f"(at least {self.features.n_fft} samples at {self.config.rate} Hz)")
        return torch.cat(parts)

    def decode_log_probs(self, lp: Tensor, decode: DecodeConfig | None = None) -> Transcript:
        """``[T', V]`` log-probabilities -> :class:`Transcript` (greedy or beam, per
        ``decode``)."""
        from ..decoding.ctc import ctc_greedy, ctc_prefix_beam_search

        d = decode or self.decode
        if d.lm_weight and self.lm is None:
            raise ValueError("lm_weight needs a language model and this recogniser has none; "
                             "set rec.lm = NGramLM(order).fit(texts) (rnnkit.ngram) or use "
                             "lm_weight 0")
        if d.beam_size <= 1 and d.lexicon is None and (self.lm is None or d.lm_weight == 0):
            hyps = ctc_greedy(lp, blank=0)
        else:
            hyps = ctc_prefix_beam_search(
                lp, beam_size=max(d.beam_size, 1), blank=0, lm=self.lm if d.lm_weight else None,
                lm_weight=d.lm_weight, word_bonus=d.word_bonus, alphabet=self.alphabet,
                lexicon=d.lexicon, nbest=d.nbest, lm_unit=self.lm_unit)
        if not hyps:  # a lexicon no path can spell: nothing was recognised
            return Transcript("", -math.inf, [], [], lp)
        texts = [("".join(self.alphabet[t] for t in h.tokens), float(h.score)) for h in hyps]
        best = hyps[0]
        chars = [(self.alphabet[t], (f + 0.5) * self.frame_seconds)
                 for t, f in zip(best.tokens, best.frames)]
        return Transcript(" ".join(texts[0][0].split()), texts[0][1], texts, chars, lp)

    def transcribe(self, audio: Any | Sequence[Any], decode: DecodeConfig | None = None,
                   ) -> list[Transcript]:
        """Files or waveforms (one or a list) -> one :class:`Transcript` each."""
        items = [audio] if isinstance(audio, (str, os.PathLike)) or (
            isinstance(audio, Tensor) and audio.ndim == 1) else list(audio)
        return [self.decode_log_probs(self.log_probs(a), decode) for a in items]

    def stream(self) -> RecognizerStream:
        """A streaming session over audio chunks (unidirectional models)."""
        return RecognizerStream(self)

    def evaluate(self, examples: Iterable[Any], decode: DecodeConfig | None = None,
                 progress: bool = False) -> EvalResult:
        """WER/CER (``jiwer``) and a row per utterance over ``(audio, text)`` examples."""
        import time

        import jiwer

        from ..train.progress import maybe_tqdm

        rows, audio_s, dec_s = [], 0.0, 0.0
        examples = list(examples)
        for i, ex in enumerate(maybe_tqdm(examples, desc="evaluate", disable=not progress)):
            audio, ref = _pair(ex)
            samples = self.waveform(audio)
            t0 = time.perf_counter()
            hyp = self.decode_log_probs(self.log_probs(samples), decode).text
            dec_s += time.perf_counter() - t0
            audio_s += len(samples) / self.config.rate
            rows.append({"id": getattr(ex, "id", str(i)), "reference": ref, "hypothesis": hyp,
                         "wer": _rate(jiwer.wer, ref, hyp), "cer": _rate(jiwer.cer, ref, hyp)})
        refs = [r["reference"] for r in rows if r["reference"].strip()]
        hyps = [r["hypothesis"] for r in rows if r["reference"].strip()]
        if not refs:
            raise ValueError("no example has a non-empty reference transcript")
        return EvalResult(float(jiwer.wer(refs, hyps)), float(jiwer.cer(refs, hyps)), rows,
                          audio_s, dec_s)

    # -- persistence ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        cfg = asdict(self.config)
        cfg["train"] = self.config.train.to_dict()
        return {"config": cfg, "alphabet": self.alphabet, "decode": asdict(self.decode),
                "state_dict": self.model.state_dict(), "history": self.history,
                "lm": self.lm.state() if self.lm is not None else None, "lm_unit": self.lm_unit}

    @classmethod
    def from_state(cls, blob: dict[str, Any]) -> SpeechRecognizer:
        lm = None
        if blob.get("lm") is not None:
            from ..ngram import NGramLM

            lm = NGramLM.from_state(blob["lm"])
        self = cls(SpeechConfig(**blob["config"]), blob["alphabet"],
                   DecodeConfig(**blob["decode"]), lm, blob.get("lm_unit", "word"))
        self.model.load_state_dict(blob["state_dict"])
        self.model.eval()
        self.history = blob.get("history")
        return self


class RecognizerStream:
    """Push audio chunks (any size, model rate), get the newly decided characters back (greedy
    CTC, which needs no look-ahead); :meth:`finish` returns the whole text."""

    def __init__(self, rec: SpeechRecognizer) -> None:
        self.rec = rec
        self.acoustic = rec.model.stream()
        self.mel = rec.features.stream()
        self.greedy = CTCGreedyStream(blank=0)
        self.text: list[str] = []

    def push(self, samples: Tensor) -> str:
        feats = self.mel.push(samples)
        if len(feats) == 0:
            return ""
        tokens, _ = self.greedy.push(self.acoustic.push(feats))
        new = [self.rec.alphabet[k] for k in tokens]
        self.text.extend(new)
        return "".join(new)

    def finish(self) -> str:
        return " ".join("".join(self.text).split())


# -- training pieces ----------------------------------------------------------------------------
class _CTCTask(nn.Module):
    """The model with its CTC loss (and SpecAugment while training) for the Trainer."""

    def __init__(self, model: AcousticModel, config: SpeechConfig) -> None:
        super().__init__()
        self.model, self.config = model, config
        self.gen = torch.Generator().manual_seed(config.train.seed + 1)

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        feats, lengths, targets, target_lengths = batch
        c = self.config
        x = self.model.normalized(feats, lengths)
        if self.training and c.spec_augment:
            x = spec_augment(x, lengths, freq_masks=c.freq_masks, freq_width=c.freq_width,
                             time_masks=c.time_masks, time_width=c.time_width,
                             generator=self.gen)
        lp, out_lengths = self.model(x, lengths, normalized=True)
        loss = F.ctc_loss(lp.transpose(0, 1), targets, out_lengths, target_lengths, blank=0,
                          reduction="mean", zero_infinity=True)
        return LossOutput(loss, None, {}, int(feats.shape[0]))


class _Buckets(Sampler):
    """Batches of similar length (sorted, cut into ``batch_size`` runs), in a new random order
    each epoch (``seed``; ``None``: fixed order, for validation)."""

    def __init__(self, data: Sequence[tuple[Tensor, Tensor]], batch_size: int,
                 seed: int | None) -> None:
        order = sorted(range(len(data)), key=lambda i: len(data[i][0]))
        self.batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        self.gen = torch.Generator().manual_seed(seed) if seed is not None else None

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        if self.gen is None:
            yield from self.batches
            return
        for i in torch.randperm(len(self.batches), generator=self.gen).tolist():
            yield self.batches[i]


def _collate(items: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    feats = nn.utils.rnn.pad_sequence([f for f, _ in items], batch_first=True)  # [B, T, F]
    targets = nn.utils.rnn.pad_sequence([t for _, t in items], batch_first=True)  # [B, S]
    return (feats, torch.tensor([len(f) for f, _ in items]), targets,
            torch.tensor([len(t) for _, t in items]))


def _ctc_min_frames(target: Tensor) -> int:
    """Frames CTC needs for ``target``: one per label plus a blank between repeats."""
    return len(target) + int((target[1:] == target[:-1]).sum()) if len(target) else 1


def _pair(ex: Any) -> tuple[Any, str]:
    if hasattr(ex, "text") and hasattr(ex, "path"):
        return ex.path, ex.text
    if isinstance(ex, (tuple, list)) and len(ex) == 2:
        return ex[0], ex[1]
    raise TypeError(f"an example must be (audio, text) or have .path and .text, got "
                    f"{type(ex).__name__}")


def _rate(fn: Any, ref: str, hyp: str) -> float:
    if not ref.strip():
        return math.nan
    return float(fn(ref, hyp))
