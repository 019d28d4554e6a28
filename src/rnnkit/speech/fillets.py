"""The Fish Fillets NG Dutch dub as a speech corpus (two voices, 1,616 clips, 95.8 min).

Debian packages (``fillets-ng-data`` + ``fillets-ng-data-nl``): Ogg Vorbis
clips ``<root>/sound/<level>/nl/<dialog id>.ogg`` with transcripts in
``<root>/script/<level>/dialogs_nl.lua`` (shared jokes: ``sound/share/<topic>/nl/`` with
``script/share/<topic>_dialogs_nl.lua``) (Lua calls ``dialogId("<id>", "<font>",
"<English>")`` each followed by ``dialogStr("<Dutch>")``). The font names the speaker:
``font_small`` is the small fish (files ``<level>-m-<name>.ogg``, Czech *malá*),
``font_big`` the big fish (``<level>-v-<name>.ogg``, *velká*), other fonts other characters
(``font_statue``, ``font_parrot`` ...). :func:`fillets_corpus`, :func:`fillets_split`.

Installed by ``make speech-data``; no download at run time. Records are
:class:`~rnnkit.speech.corpora.Utterance` s sorted by ``id``; clips with no samples are skipped
and reported (two of the Dutch clips are empty).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

from .corpora import CorpusReport, Utterance, _duration, _missing
from .text import normalize_transcript

__all__ = ["fillets_corpus", "fillets_report", "fillets_split", "parse_fillets_dialogs"]

log = logging.getLogger(__name__)

FILLETS_PACKAGES = "fillets-ng-data fillets-ng-data-nl"
FILLETS_ROOT = "/usr/share/games/fillets-ng"


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
