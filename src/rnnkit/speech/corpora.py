"""Offline speech corpora installed from Debian packages, joined to their transcripts.

Two corpora, both installed by ``make speech-data`` (Debian packages, no download at run time):

* **Asterisk core sounds** (``asterisk-core-sounds-en-wav`` + ``asterisk-core-sounds-en``):
  568 telephone prompts by one speaker (Allison), 8 kHz 16-bit WAV under
  ``/usr/share/asterisk/sounds/en_US_f_Allison/`` (subfolders ``digits/``, ``letters/`` ...),
  transcripts in ``/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz``, one line
  per clip: ``<path without .wav>: <transcript>`` (``digits/7: seven``; ``;`` starts a
  comment). :func:`asterisk_corpus`, :func:`asterisk_split`, :func:`connected_digits`.
* **Fish Fillets NG, Dutch dub**: :mod:`rnnkit.speech.fillets`.

Every corpus function returns :class:`Utterance` records sorted by ``id``; durations come from
the file headers (no decoding).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .text import normalize_transcript

__all__ = [
    "CorpusReport",
    "Utterance",
    "asterisk_corpus",
    "asterisk_digit_clips",
    "asterisk_report",
    "asterisk_split",
    "connected_digits",
    "read_asterisk_transcripts",
    "trim_silence",
]

log = logging.getLogger(__name__)

SPEECH_DATA_FIX = "run `make speech-data` (or `sudo apt-get install {packages}`)"

ASTERISK_PACKAGES = "asterisk-core-sounds-en-wav asterisk-core-sounds-en"
ASTERISK_ROOTS = (
    "/usr/share/asterisk/sounds/en_US_f_Allison",
    "/usr/share/asterisk/sounds/en",
    "/usr/share/asterisk/sounds/en_US",
)
ASTERISK_TRANSCRIPTS = (
    "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz",
    "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt",
)

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass
class Utterance:
    """One recording: ``path`` to the audio file, ``text`` its normalised transcript
    (:func:`~rnnkit.speech.text.normalize_transcript`), ``speaker`` a label, ``raw_text`` the
    transcript as written in the source, ``duration`` in seconds (``None`` if unknown) and a
    corpus-unique ``id`` (asterisk: ``digits/7``; fillets: ``<level>/<dialog id>``)."""

    path: str
    text: str
    speaker: str
    raw_text: str
    duration: float | None
    id: str


@dataclass
class CorpusReport:
    """How a corpus' clips and transcripts joined: ``clips`` audio files found, ``minutes`` of
    audio in them, ``matched`` clips with a transcript, ``utterances`` the matched clips kept
    (speech), ``kept_minutes``, and the names of ``clips_without_transcript``,
    ``transcripts_without_clip`` and ``non_speech`` (transcripts that normalise to nothing,
    e.g. ``[ascending tones]``), ``per_speaker`` counts of the utterances kept, and ``empty``:
    clips with no samples or an unreadable header (skipped)."""

    clips: int = 0
    minutes: float = 0.0
    matched: int = 0
    utterances: int = 0
    kept_minutes: float = 0.0
    clips_without_transcript: list[str] = field(default_factory=list)
    transcripts_without_clip: list[str] = field(default_factory=list)
    non_speech: list[str] = field(default_factory=list)
    per_speaker: dict[str, int] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.clips} clips ({self.minutes:.1f} min), {self.matched} with a transcript, "
            f"{self.utterances} speech utterances kept ({self.kept_minutes:.1f} min); "
            f"{len(self.clips_without_transcript)} clips without transcript, "
            f"{len(self.transcripts_without_clip)} transcripts without clip, "
            f"{len(self.non_speech)} non-speech, {len(self.empty)} empty or unreadable; "
            f"per speaker {self.per_speaker}"
        )


def _missing(what: str, packages: str, detail: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{what} not found ({detail}); {SPEECH_DATA_FIX.format(packages=packages)}"
    )


def _duration(path: str) -> float | None:
    try:
        import soundfile

        info = soundfile.info(path)
        return info.frames / info.samplerate
    except Exception:  # unreadable header: leave it to the loader to complain
        return None


def _read_audio(path: str | os.PathLike, rate: int) -> np.ndarray:
    """Mono float32 samples of ``path`` resampled to ``rate`` Hz (soundfile + polyphase)."""
    import soundfile
    from scipy.signal import resample_poly

    data, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    x = data.mean(axis=1)
    if sr != rate:
        g = int(np.gcd(int(sr), int(rate)))
        x = resample_poly(x, rate // g, sr // g).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


# ---------------------------------------------------------------------------------- asterisk


def _find_asterisk_root(root: str | os.PathLike | None) -> Path:
    candidates = [Path(root)] if root is not None else [Path(p) for p in ASTERISK_ROOTS]
    for c in candidates:
        if c.is_dir() and any(c.rglob("*.wav")):
            return c.resolve()
    raise _missing(
        "Asterisk English prompts (WAV)",
        ASTERISK_PACKAGES,
        f"no .wav files under {', '.join(str(c) for c in candidates)}",
    )


def _find_asterisk_transcripts(root: Path, transcripts: str | os.PathLike | None) -> Path:
    if transcripts is not None:
        candidates = [Path(transcripts)]
    else:  # the upstream tarball ships core-sounds-en.txt next to the clips
        candidates = [root / "core-sounds-en.txt", root.parent / "core-sounds-en.txt"]
        candidates += [Path(p) for p in ASTERISK_TRANSCRIPTS]
    for c in candidates:
        if c.is_file():
            return c
    raise _missing(
        "Asterisk prompt transcripts",
        ASTERISK_PACKAGES,
        f"looked for {', '.join(str(c) for c in candidates)}",
    )


def read_asterisk_transcripts(path: str | os.PathLike) -> dict[str, str]:
    """``{clip name: transcript}`` from ``core-sounds-en.txt[.gz]`` (lines ``name: text``;
    blank lines and ``;`` comments skipped; a repeated name keeps its first transcript)."""
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    out: dict[str, str] = {}
    with opener(p, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(";") or ":" not in line:
                continue
            name, text = line.split(":", 1)
            out.setdefault(name.strip(), text.strip())
    return out


def _asterisk_join(
    root: str | os.PathLike | None, transcripts: str | os.PathLike | None
) -> tuple[list[Utterance], CorpusReport]:
    base = _find_asterisk_root(root)
    texts = read_asterisk_transcripts(_find_asterisk_transcripts(base, transcripts))
    clips = {
        p.relative_to(base).with_suffix("").as_posix(): p for p in sorted(base.rglob("*.wav"))
    }
    report = CorpusReport(clips=len(clips))
    utts = []
    total = kept = 0.0
    for name, path in clips.items():
        dur = _duration(str(path))
        total += dur or 0.0
        if name not in texts:
            report.clips_without_transcript.append(name)
            continue
        report.matched += 1
        raw = texts[name]
        # telephone keys as the prompts say them: "press * to ..." -> "star", "#" -> "pound"
        text = normalize_transcript(raw.replace("*", " star ").replace("#", " pound "), "en")
        if not text:
            report.non_speech.append(name)
            continue
        kept += dur or 0.0
        utts.append(Utterance(str(path), text, "allison", raw, dur, name))
    report.transcripts_without_clip = sorted(set(texts) - set(clips))
    report.minutes, report.kept_minutes = total / 60, kept / 60
    report.utterances = len(utts)
    report.per_speaker = {"allison": len(utts)} if utts else {}
    return utts, report


def asterisk_corpus(
    root: str | os.PathLike | None = None, transcripts: str | os.PathLike | None = None
) -> list[Utterance]:
    """The Asterisk English prompts joined to their transcripts, as :class:`Utterance` s.

    ``root`` is the folder of WAV prompts (default: the first of :data:`ASTERISK_ROOTS` that
    holds WAVs, i.e. ``/usr/share/asterisk/sounds/en_US_f_Allison``), searched recursively;
    ids are paths relative to it without ``.wav`` (``digits/7``). ``transcripts`` defaults to
    ``core-sounds-en.txt`` next to the clips or the Debian copy under ``/usr/share/doc``.
    Clips without a transcript and non-speech clips (beeps, tones, silences) are skipped;
    :func:`asterisk_report` counts them. Speaker is ``"allison"``. Raises FileNotFoundError
    naming ``make speech-data`` and the Debian packages when the clips or transcripts are
    missing."""
    utts, report = _asterisk_join(root, transcripts)
    log.info("asterisk corpus: %s", report.summary())
    return utts


def asterisk_report(
    root: str | os.PathLike | None = None, transcripts: str | os.PathLike | None = None
) -> CorpusReport:
    """How :func:`asterisk_corpus` joined clips and transcripts (see :class:`CorpusReport`)."""
    return _asterisk_join(root, transcripts)[1]


def _stable_bucket(key: str, seed: int = 0) -> int:
    """0 or 1 from the SHA-1 of ``"<seed>:<key>"``: the same on every machine and Python."""
    return hashlib.sha1(f"{seed}:{key}".encode()).digest()[0] & 1


def asterisk_split(utts: Sequence[Utterance], seed: int = 0) -> dict[str, list[Utterance]]:
    """The fixed split of :func:`asterisk_corpus`: ``{"train", "test", "digits"}``.

    * ``digits``: the ten clips ``digits/0`` .. ``digits/9`` (material for the connected-digit
      test, :func:`connected_digits`; never trained on);
    * every other clip goes to ``train`` or ``test`` by the low bit of SHA-1(``"<seed>:<id>"``)
      (a stable hash, no random state: the split never changes for ``seed=0``);
    * then ``train`` drops any clip whose normalised text equals a ``test`` or ``digits``
      clip's text, so no test sentence is ever trained on.

    Each list is sorted by id."""
    digit_ids = {f"digits/{d}" for d in range(10)}
    digits = sorted((u for u in utts if u.id in digit_ids), key=lambda u: u.id)
    rest = [u for u in utts if u.id not in digit_ids]
    test = sorted((u for u in rest if _stable_bucket(u.id, seed)), key=lambda u: u.id)
    held_out = {u.text for u in test} | {u.text for u in digits}
    train = sorted(
        (u for u in rest if not _stable_bucket(u.id, seed) and u.text not in held_out),
        key=lambda u: u.id,
    )
    return {"train": train, "test": test, "digits": digits}


def asterisk_digit_clips(utts: Iterable[Utterance]) -> dict[str, str]:
    """``{"0": path, ..., "9": path}`` from the ``digits/0`` .. ``digits/9`` utterances (e.g.
    ``asterisk_split(...)["digits"]``), for :func:`connected_digits`."""
    out = {}
    for u in utts:
        head, _, tail = u.id.rpartition("/")
        if head.endswith("digits") and tail.isdigit() and len(tail) == 1:
            out[tail] = u.path
    return dict(sorted(out.items()))


def trim_silence(
    x: np.ndarray, rate: int, threshold_db: float = -35.0, frame_ms: float = 10.0,
    margin_ms: float = 20.0,
) -> np.ndarray:
    """``x`` without leading and trailing silence: frames (``frame_ms``) whose energy is more
    than ``threshold_db`` below the loudest frame's are cut from both ends, keeping
    ``margin_ms`` of context. An all-silent clip is returned unchanged."""
    hop = max(1, int(rate * frame_ms / 1000))
    n = len(x) // hop
    if n == 0:
        return x
    energy = (x[: n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(axis=1)
    peak = energy.max()
    if peak <= 0:
        return x
    loud = np.nonzero(energy > peak * 10 ** (threshold_db / 10))[0]
    margin = int(rate * margin_ms / 1000)
    start = max(0, loud[0] * hop - margin)
    end = min(len(x), (loud[-1] + 1) * hop + margin)
    return x[start:end]


def connected_digits(
    digit_clips: Mapping[str, str | os.PathLike],
    n: int = 300,
    min_len: int = 3,
    max_len: int = 10,
    seed: int = 0,
    rate: int = 16000,
    pause: tuple[float, float] = (0.05, 0.35),
) -> list[tuple[torch.Tensor, str]]:
    """``n`` connected-digit strings made from one speaker's isolated digit recordings.

    ``digit_clips`` maps a digit (``"7"``) or its word (``"seven"``) to an audio file (see
    :func:`asterisk_digit_clips`). Each clip is read at ``rate``, trimmed of leading and
    trailing silence (:func:`trim_silence`) and peak-normalised to 0.5. Each string has a
    length drawn uniformly from ``[min_len, max_len]`` and uniformly drawn digits; the clips are
    joined with pauses drawn uniformly from ``pause`` seconds (the same range before the first
    and after the last digit), and low-level white noise (60 dB below the clips' peak) is added
    everywhere so pauses are not digital silence. Deterministic for a given ``seed``.

    Returns ``[(samples float32 Tensor[N], "four two nine"), ...]``."""
    if not digit_clips:
        raise ValueError("connected_digits needs at least one digit clip")
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
    words, audio = [], []
    for key in sorted(digit_clips):
        k = Path(str(key)).name.lower()
        word = DIGIT_WORDS[int(k)] if k.isdigit() and len(k) == 1 else k
        x = trim_silence(_read_audio(digit_clips[key], rate), rate)
        peak = float(np.abs(x).max()) if len(x) else 0.0
        words.append(word)
        audio.append(x * (0.5 / peak) if peak > 0 else x)
    rng = np.random.default_rng(seed)
    noise_std = 0.5 * 10 ** (-60 / 20)
    lo, hi = pause
    out = []
    for _ in range(n):
        length = int(rng.integers(min_len, max_len + 1))
        picks = rng.integers(0, len(words), size=length)
        pieces = []
        for i in picks:
            pieces.append(np.zeros(int(rng.uniform(lo, hi) * rate), np.float32))
            pieces.append(audio[i])
        pieces.append(np.zeros(int(rng.uniform(lo, hi) * rate), np.float32))
        x = np.concatenate(pieces)
        x = x + rng.normal(0.0, noise_std, size=len(x)).astype(np.float32)
        out.append((torch.from_numpy(x.astype(np.float32)), " ".join(words[i] for i in picks)))
    return out
