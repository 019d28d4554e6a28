"""Real scores to train on: music21's Bach chorales and Essen folk songs, cached, and a split.

* :func:`chorales`: the four-part Bach chorales of music21's corpus (soprano, alto, tenor,
  bass as voices 0..3, with their key, pick-up and fermatas).
* :func:`folk_melodies`: the Essen folk song collection (one voice each), from ABC.
* :func:`split`: train/valid/test by a hash of each piece's name.

Parsing is slow (about 0.12 s a chorale, 0.03 s a folk song), so the pieces are parsed once
and kept as compressed arrays (``.npz``: note columns plus a JSON header) in
:func:`cache_dir`, ``$RNNKIT_CACHE/music`` or else ``~/.cache/rnnkit/music``; loading them
again takes 0.3 s for the chorales, about 1 s for all the folk songs. A cache file written
by another music21 version, or by another layout of this module, or one that cannot be read
(corrupt, cut short) is parsed anew and rewritten (atomically). Delete the folder to force a
rebuild.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes
from .score import Note, Piece, _music21, piece_from_music21

__all__ = [
    "CACHE_FORMAT",
    "SPLITS",
    "cache_dir",
    "chorale",
    "chorale_names",
    "chorales",
    "folk_files",
    "folk_melodies",
    "load_pieces",
    "save_pieces",
    "split",
    "split_of",
]

#: the layout of a cache file; raised when it changes, so older caches are rebuilt
CACHE_FORMAT = "rnnkit.music.pieces/1"
SPLITS = ("train", "valid", "test")
#: voices of a chorale, top down
CHORALE_VOICES = ("soprano", "alto", "tenor", "bass")


# -- the cache -----------------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$RNNKIT_CACHE/music`` if ``RNNKIT_CACHE`` is set, else ``~/.cache/rnnkit/music``
    (``$XDG_CACHE_HOME/rnnkit/music`` when that is set)."""
    root = os.environ.get("RNNKIT_CACHE")
    if root:
        return Path(root).expanduser() / "music"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "rnnkit" / "music"


def _music21_version() -> str:
    try:
        return importlib.metadata.version("music21")
    except importlib.metadata.PackageNotFoundError:
        return "none"


def save_pieces(pieces: Sequence[Piece], path: str | os.PathLike, **info: Any) -> None:
    """Write ``pieces`` to ``path`` as a compressed ``.npz`` (atomically): one column per note
    field over all pieces, the fermatas likewise, and a JSON header with each piece's name,
    tempo, metre, key and pick-up, the cache format and music21's version, and ``info``."""
    notes = [n for p in pieces for n in p.notes]
    header = {
        "format": CACHE_FORMAT, "music21": _music21_version(), **info,
        "pieces": [{"name": p.name, "tempo": p.tempo, "time_signature": list(p.time_signature),
                    "key": p.key, "pickup": p.pickup} for p in pieces],
    }
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        header=np.array(json.dumps(header)),
        counts=np.array([len(p.notes) for p in pieces], dtype=np.int64),
        pitch=np.array([n.pitch for n in notes], dtype=np.uint8),
        start=np.array([n.start for n in notes], dtype=np.float64),
        duration=np.array([n.duration for n in notes], dtype=np.float64),
        voice=np.array([n.voice for n in notes], dtype=np.int32),
        velocity=np.array([n.velocity for n in notes], dtype=np.uint8),
        fermata_counts=np.array([len(p.fermatas) for p in pieces], dtype=np.int64),
        fermatas=np.array([f for p in pieces for f in p.fermatas], dtype=np.float64),
    )
    atomic_write_bytes(buf.getvalue(), path)


def load_pieces(path: str | os.PathLike) -> tuple[list[Piece], dict]:
    """The pieces and the JSON header that :func:`save_pieces` wrote to ``path``. Raises
    ``ValueError`` for a file that is not such a cache (or is damaged), ``OSError`` if it
    cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            cols = {k: z[k] for k in ("counts", "pitch", "start", "duration", "voice",
                                      "velocity", "fermata_counts", "fermatas")}
    except (KeyError, ValueError, EOFError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a readable rnnkit music cache: {e}") from e
    except Exception as e:  # zipfile.BadZipFile, zlib.error, ...: damaged
        if isinstance(e, OSError) and not os.path.exists(path):
            raise
        raise ValueError(f"{path} is damaged: {type(e).__name__}: {e}") from e
    metas = header.get("pieces", [])
    if (header.get("format") != CACHE_FORMAT or len(metas) != len(cols["counts"])
            or int(cols["counts"].sum()) != len(cols["pitch"])
            or int(cols["fermata_counts"].sum()) != len(cols["fermatas"])):
        raise ValueError(f"{path} is not a cache of format {CACHE_FORMAT} or is inconsistent")
    pitch, voice, velocity = (cols[k].tolist() for k in ("pitch", "voice", "velocity"))
    start, duration = cols["start"].tolist(), cols["duration"].tolist()
    fermatas = cols["fermatas"].tolist()
    pieces, i, j = [], 0, 0
    for meta, count, fcount in zip(metas, cols["counts"].tolist(),
                                   cols["fermata_counts"].tolist()):
        notes = [Note(pitch[k], start[k], duration[k], voice[k], velocity[k])
                 for k in range(i, i + count)]
        pieces.append(Piece(notes, name=meta["name"], tempo=meta["tempo"],
                            time_signature=tuple(meta["time_signature"]), key=meta["key"],
                            fermatas=fermatas[j:j + fcount], pickup=meta["pickup"]))
        i, j = i + count, j + fcount
    return pieces, header


def _cached(filename: str, build: Callable[[], list[Piece]], **info: Any) -> list[Piece]:
    """The pieces in ``cache_dir() / filename`` if it holds a valid cache of this music21
    version (and ``info``), else ``build()``, saved there."""
    path = cache_dir() / filename
    if path.is_file():
        try:
            pieces, header = load_pieces(path)
            if header.get("music21") == _music21_version() and all(
                    header.get(k) == v for k, v in info.items()):
                return pieces
        except (ValueError, OSError):
            pass  # damaged or foreign: rebuilt below
    pieces = build()
    try:
        save_pieces(pieces, path, **info)
    except OSError as e:  # a read-only home is no reason to fail: parse again next time
        warnings.warn(f"could not write the music cache {path}: {e}", stacklevel=3)
    return pieces


# -- Bach chorales -------------------------------------------------------------------------------
def chorale_names() -> list[str]:
    """music21's chorale corpus paths (``"bach/bwv269"``), each once, in its catalogue order
    (music21's iterator lists a few twice)."""
    _music21()
    from music21 import corpus

    names = (re.sub(r"\.(mxl|xml|musicxml|krn)$", "", str(n))
             for n in corpus.chorales.Iterator(returnType="filename"))
    return list(dict.fromkeys(names))


def chorale(name: str) -> Piece | None:
    """One chorale of music21's corpus, parsed now (no cache): ``name`` as in
    :func:`chorale_names`. ``None`` if it does not have exactly four parts (those with
    instruments as well); the parts are soprano, alto, tenor, bass: voices 0..3."""
    _music21()
    from music21 import corpus

    score = corpus.parse(name, forceSource=True)  # our cache, not music21's pickles in /tmp
    if len(score.parts) != len(CHORALE_VOICES):
        return None
    return piece_from_music21(score, name=name)


def chorales() -> list[Piece]:
    """The Bach chorales of music21's corpus that have exactly four parts: 331 with
    music21 10.5 (its iterator lists 371 files, 350 different ones; the 19 with instrument
    parts as well are left out). Voices 0..3 are soprano, alto, tenor, bass; each piece has
    its key, first time signature, pick-up and fermatas, and is named by its corpus path
    (``"bach/bwv269"``). Pitches span 36..81 (C2..A5), the default range of the encodings.

    The first call parses them (about 45 s) and caches them in :func:`cache_dir`
    (``chorales.npz``, about 110 kB); later calls load that in about 0.3 s."""

    def build() -> list[Piece]:
        return [p for p in map(chorale, chorale_names()) if p is not None]

    return _cached("chorales.npz", build, source="music21 bach chorales, 4 parts")


# -- Essen folk songs ----------------------------------------------------------------------------
def folk_files() -> list[Path]:
    """The Essen collection's ABC files in music21's corpus, by name (music21's own test
    files ``test*.abc`` left out). Found without importing music21."""
    spec = importlib.util.find_spec("music21")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        _music21()  # raises the install hint
        raise ImportError("music21 is importable but its package folder was not found")
    folder = Path(locations[0]) / "corpus" / "essenFolksong"
    return sorted(p for p in folder.glob("*.abc") if not p.name.startswith("test"))


def _tunes(path: Path) -> list[str]:
    """The tunes of an ABC file, each with the file's header (what comes before the first
    ``X:``) in front."""
    text = path.read_text(encoding="utf-8", errors="replace")
    head, *tunes = re.split(r"(?m)^(?=X:)", text)
    return [head + t for t in tunes]


def _folk_tune(job: tuple[str, str]) -> Piece | None:
    name, text = job
    from music21 import converter

    try:
        piece = piece_from_music21(converter.parseData(text, format="abc"), name=name)
    except Exception:  # a tune music21 cannot read: left out, counted by the caller
        return None
    return piece if piece.notes and piece.num_voices() == 1 else None


def _folk_jobs(path: Path, limit: int | None = None) -> list[tuple[str, str]]:
    jobs, seen = [], set()
    for i, text in enumerate(_tunes(path)[:limit]):
        m = re.match(r"X:\s*(\S+)", text[text.find("X:"):])
        name = f"essen/{path.stem}/{m.group(1) if m else i + 1}"
        if name in seen:
            name = f"{name}#{i + 1}"
        seen.add(name)
        jobs.append((name, text))
    return jobs


def _folk_parse(jobs: list[tuple[str, str]], where: str) -> list[Piece]:
    _music21()
    pieces = [_folk_tune(job) for job in jobs]
    missing = sum(p is None for p in pieces)
    if missing:
        warnings.warn(f"{where}: left out {missing} of {len(jobs)} tunes music21 could not "
                      f"read as one voice", stacklevel=3)
    return [p for p in pieces if p is not None]


def folk_melodies(limit: int | None = None) -> list[Piece]:
    """Essen folk songs (one voice each), file by file in :func:`folk_files` order, at most
    ``limit`` of them (``None``: all, 8,462 with music21 10.5). Named
    ``"essen/<file>/<X number>"``; key, time signature and pick-up from the ABC header. Tunes
    music21 cannot read are left out with a warning.

    Each file is cached whole (``essen-<file>.npz`` in :func:`cache_dir`) the first time all
    of it is needed (about 0.03 s a tune to parse: some 5 minutes for the whole collection,
    once; about 1 s to load it after that); a ``limit`` that ends inside an uncached file
    parses just the tunes it needs from it."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    out: list[Piece] = []
    for path in folk_files():
        need = None if limit is None else limit - len(out)
        if need == 0:
            break
        cache = cache_dir() / f"essen-{path.stem}.npz"
        size = path.stat().st_size
        if need is not None and not cache.is_file() and need < len(_tunes(path)):
            pieces = _folk_parse(_folk_jobs(path, need), path.name)
        else:
            pieces = _cached(cache.name, lambda p=path: _folk_parse(_folk_jobs(p), p.name),
                             source=f"music21 essenFolksong/{path.name}", size=size)
        out.extend(pieces[:need])
    return out


# -- splits --------------------------------------------------------------------------------------
def split_of(name: str, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """``"train"``, ``"valid"`` or ``"test"`` for a piece named ``name``: the first 8 bytes of
    SHA-256 of the UTF-8 name, read as a number ``u`` in [0, 1), fall in the first
    ``fractions[0]`` of [0, 1) for train, the next ``fractions[1]`` for valid, the rest for
    test. A function of the name alone: the same on every machine and Python, whatever else
    is split with it.

    >>> split_of("bach/bwv269")
    'train'
    """
    f = _fractions(fractions)
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    if u < f[0]:
        return "train"
    return "valid" if u < f[0] + f[1] else "test"


def _fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    f = tuple(float(x) for x in fractions)
    if len(f) != 3 or min(f) < 0 or abs(sum(f) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be three numbers >= 0 (train, valid, test) summing "
                         f"to 1, got {tuple(fractions)}")
    return f  # type: ignore[return-value]


def split(pieces: Sequence[Piece], fractions: Sequence[float] = (0.8, 0.1, 0.1),
          ) -> dict[str, list[Piece]]:
    """``{"train": [...], "valid": [...], "test": [...]}``, whole pieces, each put where
    :func:`split_of` puts its name, in their given order within each part.

    So a piece's part depends on its name only: not on the order of ``pieces``, on how many
    there are, or on a seed; adding pieces never moves the others. The sizes are
    ``fractions`` of the total only on average (binomially: for the 331 chorales and 10%, the
    valid part has 33 +- 5). Pieces sharing a name share a part; pieces that differ only in
    name (a chorale harmonised twice, a folk song in two collections) may not.
    """
    f = _fractions(fractions)
    out: dict[str, list[Piece]] = {k: [] for k in SPLITS}
    for p in pieces:
        if not p.name:
            raise ValueError("split needs every piece to have a name (it hashes the name); "
                             "give each a unique Piece.name")
        out[split_of(p.name, f)].append(p)
    return out
