"""Offline speech corpora installed from Debian packages, joined to their transcripts.

Two corpora, both installed by ``make speech-data`` (Debian packages, no download at run time):

* **Asterisk core sounds** (``asterisk-core-sounds-en-wav`` + ``asterisk-core-sounds-en``):
  568 telephone prompts by one speaker (Allison), 8 kHz 16-bit WAV under
  ``/usr/share/asterisk/sounds/en_US_f_Allison/`` (subfolders ``digits/``, ``letters/`` ...),
  transcripts in ``/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz``, one line
  per clip: ``<path without .wav>: <transcript>`` (``digits/7: seven``; ``;`` starts a
  comment). :func:`asterisk_corpus`, :func:`asterisk_split`, :func:`connected_digits`.
* **Fish Fillets NG, Dutch dub** (``fillets-ng-data`` + ``fillets-ng-data-nl``): Ogg Vorbis
  clips ``<root>/sound/<level>/nl/<dialog id>.ogg`` with transcripts in
  ``<root>/script/<level>/dialogs_nl.lua`` (shared jokes: ``sound/share/<topic>/nl/`` with
  ``script/share/<topic>_dialogs_nl.lua``) (Lua calls ``dialogId("<id>", "<font>",
  "<English>")`` each followed by ``dialogStr("<Dutch>")``). The font names the speaker:
  ``font_small`` is the small fish (files ``<level>-m-<name>.ogg``, Czech *malá*),
  ``font_big`` the big fish (``<level>-v-<name>.ogg``, *velká*), other fonts other characters
  (``font_statue``, ``font_parrot`` ...). :func:`fillets_corpus`, :func:`fillets_split`.

Every corpus function returns :class:`Utterance` records sorted by ``id``; durations come from
the file headers (no decoding).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
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
    "fillets_corpus",
    "fillets_report",
    "fillets_split",
    "parse_fillets_dialogs",
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
FILLETS_PACKAGES = "fillets-ng-data fillets-ng-data-nl"
FILLETS_ROOT = "/usr/share/games/fillets-ng"

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


# ----------------------------------------------------------------------------------- fillets

_LUA_CALL = re.compile(r"\b(dialogId|dialogStr)\s*\(")
_LUA_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _lua_string(src: str, i: int) -> tuple[str, int]:
    """Parse the Lua string literal starting at ``src[i]`` ('...', "..." or [[...]]/[=[...]=])
    and return its value and the index just after it."""
    q = src[i]
    if q == "[":
        m = re.match(r"\[(=*)\[", src[i:])
        if not m:
            raise ValueError(f"not a Lua string at {i}")
        close = "]" + m.group(1) + "]"
        j = src.find(close, i + m.end())
        if j < 0:
            raise ValueError(f"unterminated long string at {i}")
        body = src[i + m.end(): j]
        return body[1:] if body.startswith("\n") else body, j + len(close)
    if q not in "'\"":
        raise ValueError(f"not a Lua string at {i}")
    out, j = [], i + 1
    while j < len(src):
        c = src[j]
        if c == q:
            return "".join(out), j + 1
        if c == "\\" and j + 1 < len(src):
            e = src[j + 1]
            if e.isdigit():  # \ddd decimal byte
                m = re.match(r"\d{1,3}", src[j + 1:])
                out.append(chr(int(m.group())))
                j += 1 + m.end()
                continue
            out.append(_LUA_ESCAPES.get(e, e))  # \" \' \\ and the non-standard \/ -> the char
            j += 2
            continue
        if c == "\n":
            raise ValueError(f"unterminated string at {i}")
        out.append(c)
        j += 1
    raise ValueError(f"unterminated string at {i}")


def _lua_args(src: str, i: int) -> tuple[list[str], int]:
    """String arguments of a call whose ``(`` ends at ``i``; ``..`` concatenations joined.
    Stops at ``)``; a non-string argument raises ValueError."""
    args: list[str] = []
    cur: str | None = None
    while i < len(src):
        while i < len(src) and src[i].isspace():
            i += 1
        if src.startswith("--", i) and not src.startswith("--[", i):  # line comment
            i = src.find("\n", i) if "\n" in src[i:] else len(src)
            continue
        c = src[i] if i < len(src) else ""
        if c == ")":
            if cur is not None:
                args.append(cur)
            return args, i + 1
        if c == ",":
            args.append(cur if cur is not None else "")
            cur = None
            i += 1
        elif src.startswith("..", i):
            i += 2
        elif c in "'\"[":
            s, i = _lua_string(src, i)
            cur = s if cur is None else cur + s
        else:
            raise ValueError(f"unexpected {src[i:i + 20]!r} in call arguments")
    raise ValueError("unterminated call")


def parse_fillets_dialogs(source: str) -> dict[str, tuple[str, str, str]]:
    """``{dialog id: (font, English, translation)}`` from the text of a Fish Fillets
    ``dialogs_<lang>.lua`` file: each ``dialogId("<id>", "<font>", "<English>")`` call is paired
    with the next ``dialogStr("<translation>")``. Lua strings in either quote or long-bracket
    form, escapes and ``..`` concatenation are understood; ``--`` comments and calls that do not
    parse are skipped; an id without a ``dialogStr`` is left out; a repeated id keeps its last
    translation (as the game does)."""
    src = re.sub(r"--\[(=*)\[.*?\]\1\]", " ", source, flags=re.S)  # block comments
    out: dict[str, tuple[str, str, str]] = {}
    pending: tuple[str, str, str] | None = None
    for m in _LUA_CALL.finditer(src):
        line_start = src.rfind("\n", 0, m.start()) + 1
        if "--" in src[line_start: m.start()]:
            continue  # commented out
        try:
            args, _ = _lua_args(src, m.end())
        except (ValueError, AttributeError):
            if m.group(1) == "dialogId":
                pending = None  # never pair a translation with the wrong id
            continue
        if m.group(1) == "dialogId":
            if args:
                args = (args + ["", ""])[:3]
                pending = (args[0], args[1], args[2])
        elif pending is not None and args:
            out[pending[0]] = (pending[1], pending[2], args[0])
            pending = None
    return out


_FISH_FONTS = {"font_small": "m", "font_big": "v"}
_FISH_FILE = re.compile(r"(?:^|-)([mv])-")


def _fillets_speaker(font: str, clip_name: str) -> str:
    """``"m"`` small fish, ``"v"`` big fish (from the dialog's font, else the file's naming
    ``<level>-m-<name>``), otherwise the font without ``font_`` (``"statue"``)."""
    if font in _FISH_FONTS:
        return _FISH_FONTS[font]
    if font:
        return font.removeprefix("font_")
    m = _FISH_FILE.search(clip_name)
    return m.group(1) if m else "other"


def _fillets_join(
    root: str | os.PathLike | None, language: str = "nl"
) -> tuple[list[Utterance], CorpusReport]:
    base = Path(root if root is not None else FILLETS_ROOT)
    sound = base / "sound"
    # level clips: sound/<level>/nl/*.ogg; shared jokes: sound/share/<topic>/nl/*.ogg
    clips = sorted(p for p in sound.rglob("*.ogg") if p.parent.name == language)
    if not clips:
        raise _missing(
            f"Fish Fillets NG speech ({language})",
            FILLETS_PACKAGES,
            f"no {sound}/<level>/{language}/*.ogg",
        )
    # script/<level>/dialogs_nl.lua, script/share/<topic>_dialogs_nl.lua: one table per folder
    dialogs: dict[str, dict[str, tuple[str, str, str]]] = {}
    for lua in sorted((base / "script").rglob(f"*dialogs_{language}.lua")):
        folder = lua.parent.relative_to(base / "script").as_posix()
        text = lua.read_text(encoding="utf-8", errors="replace")
        dialogs.setdefault(folder, {}).update(parse_fillets_dialogs(text))
    if not dialogs:
        raise _missing(
            f"Fish Fillets NG dialog scripts ({language})",
            FILLETS_PACKAGES,
            f"no {base}/script/<level>/dialogs_{language}.lua",
        )
    report = CorpusReport(clips=len(clips))
    utts = []
    total = kept = 0.0
    used = set()
    for path in clips:
        group = path.parent.parent.relative_to(sound).as_posix()  # "city", "share/border"
        name = path.stem
        cid = f"{group}/{name}"
        dur = _duration(str(path))
        total += dur or 0.0
        table = dialogs.get(group.split("/")[0], {})
        # one clip is misnamed with underscores (barrel/bar_v_fotka for bar-v-fotka)
        key = name if name in table else name.replace("_", "-")
        entry = table.get(key)
        if entry is None:
            report.clips_without_transcript.append(cid)
            continue
        used.add((group.split("/")[0], key))
        report.matched += 1
        font, _english, raw = entry
        text = normalize_transcript(raw, language)
        if not text:
            report.non_speech.append(cid)
            continue
        if not dur:  # no samples (gems/nl/zav-v-sto.ogg) or an unreadable header
            report.empty.append(cid)
            continue
        kept += dur
        utts.append(Utterance(str(path), text, _fillets_speaker(font, name), raw, dur, cid))
    report.transcripts_without_clip = sorted(
        f"{lv}/{i}" for lv, d in dialogs.items() for i in d if (lv, i) not in used
    )
    report.minutes, report.kept_minutes = total / 60, kept / 60
    report.utterances = len(utts)
    counts: dict[str, int] = {}
    for u in utts:
        counts[u.speaker] = counts.get(u.speaker, 0) + 1
    report.per_speaker = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    return utts, report


def fillets_corpus(root: str | os.PathLike | None = None) -> list[Utterance]:
    """The Fish Fillets NG Dutch voice clips joined to their ``dialogs_nl.lua`` transcripts.

    ``root`` is the game's data folder (default ``/usr/share/games/fillets-ng``) holding
    ``sound/<level>/nl/<dialog id>.ogg`` with ``script/<level>/dialogs_nl.lua``, and the shared
    jokes ``sound/share/<topic>/nl/<dialog id>.ogg`` with ``script/share/*_dialogs_nl.lua``.
    Ids are ``<level>/<dialog id>`` (``share/<topic>/<dialog id>``), ``text`` the Dutch
    transcript normalised with ``language="nl"``, ``speaker`` ``"m"`` (small fish), ``"v"``
    (big fish) or another character's font name (``"statue"``, ``"parrot"`` ...). Clips
    without a Dutch transcript are skipped; :func:`fillets_report` counts them. Raises
    FileNotFoundError naming ``make speech-data`` and the Debian packages when the data is
    missing."""
    utts, report = _fillets_join(root)
    log.info("fillets corpus: %s", report.summary())
    return utts


def fillets_report(root: str | os.PathLike | None = None) -> CorpusReport:
    """How :func:`fillets_corpus` joined clips and transcripts (see :class:`CorpusReport`)."""
    return _fillets_join(root)[1]


def fillets_split(
    utts: Sequence[Utterance], train_speaker: str = "v", test_speaker: str = "m"
) -> dict[str, list[Utterance]]:
    """Speaker-disjoint split of :func:`fillets_corpus`: ``train`` every clip of the big fish
    (``"v"``), ``test`` every clip of the small fish (``"m"``); other characters are in
    neither. A fixed rule, no randomness; each list sorted by id."""
    train = sorted((u for u in utts if u.speaker == train_speaker), key=lambda u: u.id)
    test = sorted((u for u in utts if u.speaker == test_speaker), key=lambda u: u.id)
    return {"train": train, "test": test}
