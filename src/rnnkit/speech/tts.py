"""Synthetic training speech from text with the installed offline synthesisers.

Two engines are used when installed (``make speech-data``, or ``apt-get install espeak-ng
flite``): **espeak-ng** (formant synthesis; English accents ``en-us``, ``en-gb``,
``en-gb-x-rp``, ``en-029``, ``en-gb-scotland`` ... each also with voice variants ``+m1`` ..
``+m7``, ``+f1`` .. ``+f5``) and **flite** (CMU diphone/cluster voices ``kal``, ``kal16``,
``awb``, ``rms``, ``slt``). A :class:`Voice` names one of them; :func:`synthesize` speaks a
text; :func:`build_tts_dataset` writes a dataset of WAVs plus a manifest.

Manifest format (``manifest.tsv``, UTF-8, no header): one line per clip,
``<path>\\t<text>\\t<voice id>``, where ``path`` is relative to the manifest's folder, ``text``
is the normalised transcript that was spoken (:func:`~rnnkit.speech.text.normalize_transcript`)
and ``voice id`` is ``<engine>:<name>`` (``espeak-ng:en-us+f3``, ``flite:slt``) followed by
``@<words per minute>/<pitch>`` (``espeak-ng:en-us+f3@175/50``).
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..saving import atomic_write_bytes, atomic_write_text
from ..train.progress import maybe_tqdm
from .corpora import Utterance, _read_audio
from .text import normalize_transcript

__all__ = [
    "ESPEAK_VARIANTS",
    "FLITE_VOICES",
    "Voice",
    "build_tts_dataset",
    "read_manifest",
    "synthesize",
    "tts_voices",
]

INSTALL_FIX = "run `make speech-data` (or `sudo apt-get install espeak-ng flite`)"
#: espeak-ng voice variants combined with every accent by :func:`tts_voices`.
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
#: flite voices for general text (``awb_time`` only speaks clock times and is left out), with
#: the approximate mean pitch (Hz) that ``pitch=50`` stands for.
FLITE_VOICES = {"kal": 95.0, "kal16": 95.0, "awb": 105.0, "rms": 100.0, "slt": 170.0}
_FLITE_DEFAULT_WPM = 175.0


@dataclass(frozen=True)
class Voice:
    """One synthesiser voice: ``engine`` (``"espeak-ng"`` or ``"flite"``) and ``name`` as the
    engine takes it (``"en-us+f3"``, ``"slt"``); ``language`` is what it speaks."""

    engine: str
    name: str
    language: str = "en"

    @property
    def id(self) -> str:
        """``"<engine>:<name>"``, e.g. ``"espeak-ng:en-gb-x-rp+m3"``."""
        return f"{self.engine}:{self.name}"

    @classmethod
    def parse(cls, voice: Voice | str) -> Voice:
        """A :class:`Voice` from itself, an id ``"flite:slt"`` or a bare name (a flite voice
        name -> flite, anything else -> espeak-ng)."""
        if isinstance(voice, Voice):
            return voice
        engine, sep, name = voice.partition(":")
        if not sep:
            engine, name = ("flite" if voice in FLITE_VOICES else "espeak-ng"), voice
        if engine not in ("espeak-ng", "flite"):
            raise ValueError(f"unknown TTS engine {engine!r} in {voice!r} (espeak-ng or flite)")
        lang = name.split("+")[0].split("-")[0] if engine == "espeak-ng" else "en"
        return cls(engine, name, lang)


def _espeak_bin() -> str | None:
    return shutil.which("espeak-ng") or shutil.which("espeak")


def _run(cmd: list[str], timeout: float = 120.0) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as err:
        raise RuntimeError(f"{cmd[0]} is not installed; {INSTALL_FIX}") from err
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout + res.stderr


def tts_voices(
    language: str = "en", variants: Sequence[str] | None = ESPEAK_VARIANTS, flite: bool = True
) -> list[Voice]:
    """The installed voices for ``language``: every espeak-ng accent of it (its own voice
    files only; MBROLA voices need extra packages and are skipped), each plain and with each
    installed ``variants`` entry (``en-us+f3``), then the flite voices of
    :data:`FLITE_VOICES` that ``flite -lv`` lists (English only). Raises RuntimeError naming
    the fix when neither synthesiser is installed."""
    espeak, flite_bin = _espeak_bin(), shutil.which("flite")
    if espeak is None and flite_bin is None:
        raise RuntimeError(f"no speech synthesiser (espeak-ng or flite) found; {INSTALL_FIX}")
    out: list[Voice] = []
    if espeak is not None:
        accents: list[str] = []
        for line in _run([espeak, f"--voices={language}"]).splitlines()[1:]:
            cols = line.split()
            if len(cols) < 5 or cols[4].startswith("mb/"):
                continue
            code = cols[1]
            if (code == language or code.startswith(language + "-")) and code not in accents:
                accents.append(code)
        installed: set[str] = set()
        if variants:
            for line in _run([espeak, "--voices=variant"]).splitlines()[1:]:
                cols = line.split()
                if len(cols) >= 5 and cols[4].startswith("!v/"):
                    installed.add(cols[4][3:])
        names = [v for v in (variants or ()) if v in installed]
        for code in accents:
            out.append(Voice("espeak-ng", code, language))
            out.extend(Voice("espeak-ng", f"{code}+{v}", language) for v in names)
    if flite and flite_bin is not None and language == "en":
        listed = _run([flite_bin, "-lv"]).replace("Voices available:", " ").split()
        out.extend(Voice("flite", v, "en") for v in FLITE_VOICES if v in listed)
    return out


def synthesize(
    text: str,
    voice: Voice | str,
    rate_wpm: float | None = None,
    pitch: float | None = None,
    sample_rate: int = 16000,
) -> torch.Tensor:
    """``text`` spoken by ``voice`` as float32 samples at ``sample_rate`` Hz (Tensor[N]).

    ``rate_wpm`` is the speaking rate in words per minute (espeak-ng ``-s``; flite's duration
    stretch ``175 / rate_wpm``); ``pitch`` is on espeak-ng's 0-99 scale, 50 the voice's own
    (flite: mean F0 scaled by ``2 ** ((pitch - 50) / 100)``). ``None`` keeps the default. The
    text is passed in a file, so any characters are safe. The engine writes a WAV that is read
    back and resampled."""
    v = Voice.parse(voice)
    with tempfile.TemporaryDirectory(prefix="rnnkit-tts-") as tmp:
        txt, wav = os.path.join(tmp, "in.txt"), os.path.join(tmp, "out.wav")
        with open(txt, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        if v.engine == "espeak-ng":
            exe = _espeak_bin()
            if exe is None:
                raise RuntimeError(f"espeak-ng is not installed; {INSTALL_FIX}")
            cmd = [exe, "-v", v.name, "-w", wav, "-b", "1"]
            if rate_wpm is not None:
                cmd += ["-s", str(int(round(rate_wpm)))]
            if pitch is not None:
                cmd += ["-p", str(int(round(min(99, max(0, pitch)))))]
            cmd += ["-f", txt]
        else:
            exe = shutil.which("flite")
            if exe is None:
                raise RuntimeError(f"flite is not installed; {INSTALL_FIX}")
            cmd = [exe, "-voice", v.name]
            if rate_wpm is not None:
                cmd += ["--setf", f"duration_stretch={_FLITE_DEFAULT_WPM / float(rate_wpm):.4f}"]
            if pitch is not None:
                f0 = FLITE_VOICES.get(v.name, 110.0) * 2 ** ((float(pitch) - 50) / 100)
                cmd += ["--setf", f"int_f0_target_mean={f0:.1f}"]
            cmd += ["-f", txt, "-o", wav]
        _run(cmd)
        if not os.path.exists(wav) or os.path.getsize(wav) <= 44:
            raise RuntimeError(f"{' '.join(cmd)} wrote no audio for {text!r}")
        x = _read_audio(wav, sample_rate)
    return torch.from_numpy(x)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", s).strip("_")


def build_tts_dataset(
    texts: Iterable[str],
    out_dir: str | os.PathLike,
    voices: Sequence[Voice | str] | None = None,
    rates: Sequence[float] = (140, 175, 210),
    pitches: Sequence[float] = (35, 50, 65),
    per_text: int = 4,
    seed: int = 0,
    workers: int = 2,
    augment: Callable[..., torch.Tensor] | None = None,
    sample_rate: int = 16000,
    language: str = "en",
    progress: bool = True,
) -> Path:
    """Speak every text ``per_text`` times and write the clips and ``manifest.tsv`` to
    ``out_dir``; returns the manifest's path (format in the module docstring).

    Each text is normalised first (:func:`~rnnkit.speech.text.normalize_transcript` in
    ``language``; texts that normalise to nothing are skipped) so the audio says exactly its
    label. For each text a ``random.Random(seed)`` stream draws ``per_text`` distinct
    (voice, rate, pitch) combinations: a voice family uniformly (an espeak-ng accent with its
    variants, or one flite voice, so the 5 flite voices are not drowned by ~100 espeak-ng
    ones), a voice in it, a rate from ``rates`` and a pitch from ``pitches``; ``voices``
    defaults to :func:`tts_voices`. Clips are 16-bit mono WAVs at ``sample_rate`` named
    ``wav/<i // 1000>/<i>_<text hash>_<k>_<voice>_<rate>_<pitch>.wav``; a clip that already
    exists is not synthesised again, so an interrupted build resumes where it stopped (files
    are written atomically by :func:`rnnkit.saving.atomic_write_bytes`).
    ``augment(samples, rate, generator=g)`` (an :class:`~rnnkit.speech.augment.Augmenter`, or
    any callable of that shape; ``g`` a ``torch.Generator`` seeded per clip, so a rebuild is
    identical) may transform the audio before it is written. ``workers`` synthesiser
    processes run at once; a progress bar shows them."""
    out = Path(out_dir)
    chosen = [Voice.parse(v) for v in voices] if voices is not None else tts_voices(language)
    if not chosen:
        raise RuntimeError(f"no TTS voices for language {language!r}; {INSTALL_FIX}")
    families: dict[str, list[Voice]] = {}
    for v in chosen:  # an accent with all its variants, or one flite voice
        families.setdefault(f"{v.engine}:{v.name.split('+')[0]}", []).append(v)
    fams = list(families.values())
    n_combos = len(set(chosen)) * len(set(rates)) * len(set(pitches))
    rng = random.Random(seed)

    def draw() -> list[tuple[Voice, float, float]]:
        picked: list[tuple[Voice, float, float]] = []
        while len(picked) < min(per_text, n_combos):
            c = (rng.choice(rng.choice(fams)), rng.choice(rates), rng.choice(pitches))
            if c not in picked:
                picked.append(c)
        return picked

    jobs = []
    for i, raw in enumerate(texts):
        text = normalize_transcript(raw, language)
        if not text:
            continue
        h = hashlib.sha1(text.encode()).hexdigest()[:8]
        for k, (v, r, p) in enumerate(draw()):
            rel = f"wav/{i // 1000:03d}/{i:06d}_{h}_{k}_{_slug(v.id)}_{r:g}_{p:g}.wav"
            jobs.append((rel, text, v, r, p))

    def work(job) -> str:
        rel, text, v, r, p = job
        path = out / rel
        if path.exists() and path.stat().st_size > 44:
            return rel
        x = synthesize(text, v, rate_wpm=r, pitch=p, sample_rate=sample_rate)
        if augment is not None:
            key = int.from_bytes(hashlib.sha1(rel.encode()).digest()[:8], "little")
            x = augment(x, sample_rate, generator=torch.Generator().manual_seed(key))
        import soundfile

        buf = io.BytesIO()
        data = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)
        soundfile.write(buf, data, sample_rate, subtype="PCM_16", format="WAV")
        atomic_write_bytes(buf.getvalue(), path)
        return rel

    if not jobs:
        raise ValueError("nothing to speak: none of the texts has words left after "
                         "normalisation (e.g. only punctuation); give lines with words")
    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        done = as_completed([pool.submit(work, j) for j in jobs])
        for fut in maybe_tqdm(done, desc=f"TTS -> {out}", total=len(jobs), disable=not progress):
            fut.result()
    manifest = out / "manifest.tsv"
    atomic_write_text("".join(f"{rel}\t{text}\t{v.id}@{r:g}/{p:g}\n"
                              for rel, text, v, r, p in jobs), manifest)
    return manifest


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    """The clips of a ``manifest.tsv`` (``path<TAB>text[<TAB>speaker]`` per line, paths
    relative to the manifest's folder or absolute) as :class:`~rnnkit.speech.corpora.Utterance`
    s: ``speaker`` the third column (the voice, for synthesised sets; ``""`` when absent),
    ``text`` and ``raw_text`` the text column, ``id`` the path column without its extension,
    ``duration`` None. Blank lines are skipped; a line without a path and a text raises
    ValueError naming its line number; a missing audio file is named with its line."""
    p = Path(path)
    base = p.parent
    utts = []
    with open(p, encoding="utf-8-sig") as f:  # -sig: a byte order mark is not part of a path
        try:
            lines = f.read().split("\n")
        except UnicodeDecodeError:
            raise ValueError(f"{p} is not UTF-8 text; a manifest is path<TAB>text lines saved "
                             f"as UTF-8") from None
        for n, line in enumerate(lines, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) < 2 or not cols[0].strip():
                raise ValueError(f"{p}:{n}: expected path<TAB>text[<TAB>speaker], got "
                                 f"{line!r}")
            rel, text, voice = cols[0], cols[1], (cols[2] if len(cols) > 2 else "")
            full = rel if os.path.isabs(rel) else str(base / rel)
            if not os.path.isfile(full):
                header = " - a header line? remove it" if n == 1 and "." not in rel else ""
                raise FileNotFoundError(f"{p}:{n}: audio file {full} does not exist (paths "
                                        f"are relative to the manifest's folder{header})")
            utts.append(Utterance(full, text, voice, text, None,
                                  re.sub(r"\.(wav|flac|ogg)$", "", rel)))
    return utts
