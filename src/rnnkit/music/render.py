"""See and hear a piece: a piano-roll picture (matplotlib) and audio (the fluidsynth program).

* :func:`piano_roll_png`: every note as a bar (pitch up, time in quarter notes across, one
  colour per voice), with bar lines and the fermatas marked.
* :func:`render_wav`: a piece or a MIDI file played through a General MIDI soundfont by the
  ``fluidsynth`` command-line program, to a 16-bit stereo WAV file. ``make music-data``
  installs fluidsynth (the Debian package, with ``--no-install-recommends``), which brings a
  small General MIDI soundfont (``timgm6mb-soundfont``: ``/usr/share/sounds/sf2/
  TimGM6mb.sf2``); a soundfont can also be given (``soundfont=``, or ``$RNNKIT_SOUNDFONT``).

Both write atomically (a temporary file in the same folder, then ``os.replace``): a failed
render leaves no file behind.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .score import Piece

__all__ = ["SOUNDFONTS", "find_fluidsynth", "find_soundfont", "piano_roll_png", "render_wav"]

#: where General MIDI soundfonts are looked for, in order (Debian's default-GM alternative,
#: timgm6mb-soundfont, fluid-soundfont-gm, musescore's, a generic default)
SOUNDFONTS = (
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
)
_INSTALL = ("run `make music-data` (Debian: apt-get install --no-install-recommends "
            "fluidsynth)")
#: one colour per voice (soprano, alto, tenor, bass, then on)
_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
            "#17becf")


# -- pictures ------------------------------------------------------------------------------------
def piano_roll_png(piece: Piece, path: str | os.PathLike, title: str | None = None,
                   dpi: int = 100) -> str:
    """Draw ``piece`` as a piano roll into the PNG file ``path``; returns ``path``.

    Time runs across in quarter notes (bar lines dashed, at ``pickup + k * bar``), MIDI pitch
    up (C's labelled, ``C4`` = 60), one colour per voice; fermatas are marked on top.
    ``title`` defaults to the piece's name. Raises ``ValueError`` for a piece without notes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..saving import atomic_write_figure
    from .encoding import pitch_name

    if not piece.notes:
        raise ValueError(f"{piece.name or 'the piece'} has no notes to draw")
    end = piece.end()
    lo = min(n.pitch for n in piece.notes)
    hi = max(n.pitch for n in piece.notes)
    width = min(24.0, max(6.0, end / 4))
    fig, ax = plt.subplots(figsize=(width, max(3.0, (hi - lo + 3) * 0.12)))
    for v in range(piece.num_voices()):
        notes = piece.voice(v)
        if notes:
            for n in notes:
                ax.add_patch(Rectangle(
                    (n.start, n.pitch - 0.4), n.duration, 0.8, facecolor=_COLOURS[v % 8],
                    edgecolor="black", linewidth=0.3))
            ax.plot([], [], color=_COLOURS[v % 8], linewidth=6, label=f"voice {v}")
    bar = piece.bar_length
    x = piece.pickup if piece.pickup else bar
    while x < end:
        ax.axvline(x, color="0.6", linewidth=0.6, linestyle="--")
        x += bar
    for f in piece.fermatas:
        ax.plot([f], [hi + 1.5], marker="v", color="black", markersize=5)
    ax.set_xlim(0, end)
    ax.set_ylim(lo - 1.5, hi + 2.5)
    cs = [p for p in range(lo - lo % 12, hi + 1, 12) if p >= lo - 1]
    ax.set_yticks(cs, [pitch_name(p) for p in cs])
    ax.set_xlabel("time (quarter notes)")
    ax.set_ylabel("pitch")
    ax.set_title(title if title is not None else (piece.name or "piano roll"))
    if piece.num_voices() > 1:
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False,
                  ncol=min(4, piece.num_voices()))
    fig.tight_layout()
    return atomic_write_figure(fig, path, dpi=dpi)


# -- audio ---------------------------------------------------------------------------------------
def find_fluidsynth() -> str:
    """The path of the ``fluidsynth`` program; ``FileNotFoundError`` naming how to install it
    when it is missing."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise FileNotFoundError(f"rendering WAV audio needs the fluidsynth program, which is "
                                f"not installed: {_INSTALL}")
    return exe


def find_soundfont(soundfont: str | os.PathLike | None = None) -> str:
    """A General MIDI soundfont (``.sf2``/``.sf3``): ``soundfont`` if given (it must exist),
    else ``$RNNKIT_SOUNDFONT``, else the first of :data:`SOUNDFONTS` that exists, else the
    ``TimGM6mb.sf2`` that the pretty_midi package bundles. ``FileNotFoundError`` naming the
    fix when there is none."""
    if soundfont is not None:
        path = Path(soundfont)
        if not path.is_file():
            raise FileNotFoundError(f"no soundfont at {path}" + (" (it is a folder)" if
                                    path.is_dir() else "") + "; give a General MIDI .sf2 "
                                    "or .sf3 file, or leave it out to use the installed one")
        return os.fspath(path)
    env = os.environ.get("RNNKIT_SOUNDFONT")
    if env:
        if not os.path.isfile(env):
            raise FileNotFoundError(f"RNNKIT_SOUNDFONT={env} is not a file; point it at a "
                                    f"General MIDI .sf2 or .sf3 file, or unset it")
        return env
    for candidate in SOUNDFONTS:
        if os.path.isfile(candidate):
            return candidate
    spec = importlib.util.find_spec("pretty_midi")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "TimGM6mb.sf2"
        if bundled.is_file():
            return os.fspath(bundled)
    raise FileNotFoundError(f"no General MIDI soundfont found (looked for {SOUNDFONTS[0]} and "
                            f"{len(SOUNDFONTS) - 1} others): {_INSTALL}, which brings one, or "
                            f"give one (soundfont=..., --soundfont FILE.sf2)")


def render_wav(piece_or_midi: Piece | str | os.PathLike, path: str | os.PathLike,
               soundfont: str | os.PathLike | None = None, rate: int = 44100,
               gain: float = 0.6, timeout: float = 600.0) -> str:
    """Play a :class:`Piece` (written to a temporary MIDI file first) or a MIDI file through
    ``fluidsynth`` into the WAV file ``path`` (16-bit stereo at ``rate`` Hz, ``gain`` its
    master gain); returns ``path``.

    Raises ``FileNotFoundError`` when fluidsynth or a soundfont is missing (the message says
    ``make music-data``), ``ValueError`` for a piece without notes or a file fluidsynth
    cannot play, ``OSError`` when fluidsynth fails otherwise.
    """
    from ..saving import atomic_write_bytes

    exe = find_fluidsynth()
    font = find_soundfont(soundfont)
    if not (isinstance(rate, int) and 8000 <= rate <= 192000):
        raise ValueError(f"rate must be a sample rate in Hz from 8000 to 192000, got {rate!r}")
    with tempfile.TemporaryDirectory(prefix="rnnkit-wav-") as tmp:
        if isinstance(piece_or_midi, Piece):
            from .score import write_midi

            midi = os.path.join(tmp, "piece.mid")
            write_midi(piece_or_midi, midi)
        else:
            midi = os.fspath(piece_or_midi)
            if not os.path.isfile(midi):
                raise FileNotFoundError(f"no MIDI file at {midi}; give a .mid file or a Piece")
        wav = os.path.join(tmp, "out.wav")
        cmd = [exe, "-ni", "-q", "-T", "wav", "-F", wav, "-r", str(rate), "-g", str(gain),
               font, midi]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise OSError(f"fluidsynth did not finish rendering {midi} within {timeout:g} s; "
                          f"render a shorter piece") from None
        message = (done.stderr or done.stdout or "").strip().splitlines()
        if done.returncode != 0 or not os.path.isfile(wav) or os.path.getsize(wav) <= 44:
            detail = message[-1] if message else f"exit code {done.returncode}"
            raise ValueError(f"fluidsynth could not render {os.path.basename(midi)} with "
                             f"{font}: {detail}; check that the MIDI file and the soundfont "
                             f"play (e.g. `fluidsynth -ni {font} FILE.mid`)")
        with open(wav, "rb") as f:
            data = f.read()
    atomic_write_bytes(data, path)
    return os.fspath(path)
