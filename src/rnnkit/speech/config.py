"""The settings of a :class:`~rnnkit.speech.recognizer.SpeechRecognizer`: features, network and
augmentation in :class:`SpeechConfig`, training in its one ``train``
(:class:`~rnnkit.train.TrainConfig`) field, decoding in :class:`DecodeConfig`.

>>> cfg = SpeechConfig(hidden_size=64, train=speech_train(500))
>>> cfg.train.max_steps, cfg.n_mels, cfg.hop_ms
(500, 64, 10.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..checks import positive_ints
from ..train.budget import as_train_config, step_budget
from ..train.config import TrainConfig

__all__ = ["DecodeConfig", "SpeechConfig", "speech_train"]


def speech_train(max_steps: int = 3000, **overrides: Any) -> TrainConfig:
    """The recognisers' default training: :func:`~rnnkit.train.budget.step_budget` of
    ``max_steps`` with AdamW at lr 2e-3, cosine decay, clipping at 5 (CTC gradients are
    spiky), an evaluation every 250 steps keeping the best weights, and a progress bar."""
    return step_budget(max_steps, **{"lr": 2e-3, "clip_norm": 5.0, "eval_every": 250,
                                     "progress": True, "weight_decay": 1e-2, **overrides})


@dataclass
class SpeechConfig:
    """Features (log-mel at ``rate``: ``n_mels`` bands over ``[f_min, f_max]``, 25 ms windows
    every ``hop_ms``), network (:class:`~rnnkit.speech.model.AcousticModel`), augmentation
    (SpecAugment masks on training features) and ``batch_size`` (utterances per step,
    length-bucketed). ``f_max=4000`` makes a telephone-band model that hears 8 kHz and 16 kHz
    audio alike.

    Attributes:
        rate: sample rate the model hears (Hz); audio of any other rate is resampled.
        n_mels: mel bands of the log-mel features.
        f_min: lowest filterbank frequency (Hz).
        f_max: highest filterbank frequency (Hz; None = rate / 2; 4000 for telephone audio).
        win_ms: analysis window (ms).
        hop_ms: frame hop (ms); the network emits one frame per two hops.
        cell: registered recurrent cell (gru, lstm, ln_lstm, ...).
        hidden_size: units per direction of each recurrent layer.
        num_layers: stacked recurrent layers.
        channels: channels of the two convolutions of the front end.
        bidirectional: false makes a streaming model (causal front end).
        dropout: dropout between recurrent layers and before the output layer.
        normalize: feature normalisation, 'utterance' or 'global' (streaming needs global).
        spec_augment: SpecAugment masks on training features.
        freq_masks: SpecAugment frequency masks per utterance.
        freq_width: widest frequency mask (bands).
        time_masks: SpecAugment time masks per utterance.
        time_width: widest time mask, as a fraction of the utterance.
        batch_size: utterances per training step (batches of similar length).
        train: training settings (the [train] table).
    """

    rate: int = 16000
    n_mels: int = 64
    f_min: float = 20.0
    f_max: float | None = None
    win_ms: float = 25.0
    hop_ms: float = 10.0
    cell: str = "gru"
    hidden_size: int = 256
    num_layers: int = 3
    channels: int = 32
    bidirectional: bool = True
    dropout: float = 0.1
    normalize: str = "utterance"
    spec_augment: bool = True
    freq_masks: int = 2
    freq_width: int = 10
    time_masks: int = 2
    time_width: float = 0.05
    batch_size: int = 16
    train: TrainConfig = field(default_factory=speech_train)

    def __post_init__(self) -> None:
        self.train = as_train_config(self.train)
        if self.normalize not in ("global", "utterance"):
            raise ValueError(f"normalize must be 'global' or 'utterance', got "
                             f"{self.normalize!r}")
        positive_ints(**{name: getattr(self, name) for name in (
            "rate", "n_mels", "hidden_size", "num_layers", "channels", "batch_size")})
        if self.f_max is not None and not 0 < self.f_max <= self.rate / 2:
            raise ValueError(f"f_max must be in (0, rate / 2 = {self.rate / 2:g}], got "
                             f"{self.f_max}")


@dataclass
class DecodeConfig:
    """How log-probabilities become text: ``beam_size=1`` is greedy CTC; a larger beam runs
    the prefix beam search, with an optional n-gram ``lm`` (word or character,
    ``lm_weight`` times its log-probability) plus ``word_bonus`` per word, and an optional
    ``lexicon`` (only these words; e.g. the ten digits). ``nbest`` hypotheses are kept."""

    beam_size: int = 1
    lm_weight: float = 0.0
    word_bonus: float = 0.0
    lexicon: list[str] | None = None
    nbest: int = 1

    #: the widest beam: its cost grows in proportion and stops helping long before this
    MAX_BEAM = 256

    def __post_init__(self) -> None:
        b = self.beam_size
        if not isinstance(b, int) or isinstance(b, bool) or not 1 <= b <= self.MAX_BEAM:
            raise ValueError(f"beam_size must be 1 (greedy) to {self.MAX_BEAM}, got {b!r}; "
                             f"e.g. beam_size 16")
        if not isinstance(self.nbest, int) or self.nbest < 1:
            raise ValueError(f"nbest must be at least 1, got {self.nbest!r}")
        if self.nbest > b:
            raise ValueError(f"nbest {self.nbest} needs a beam at least as wide; set "
                             f"beam_size {max(self.nbest, 16)}")
        for name in ("lm_weight", "word_bonus"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)}")
        if self.lm_weight < 0:
            raise ValueError(f"lm_weight must be >= 0 (0 ignores the LM), got {self.lm_weight}")
        if self.lexicon is not None and not self.lexicon:
            raise ValueError("lexicon holds no words, so nothing could be recognised; give the "
                             "allowed words or no lexicon")
        needs_beam = [name for name in ("lexicon", "lm_weight", "word_bonus")
                      if getattr(self, name)]
        if needs_beam and b == 1:
            verb = "needs" if len(needs_beam) == 1 else "need"
            raise ValueError(f"{', '.join(needs_beam)} {verb} the beam search, which "
                             f"beam_size 1 (greedy) does not run; set "
                             f"beam_size N (e.g. beam_size 16)")
