"""``rnnkit music``: train music models on real scores, then generate, harmonize, evaluate.

    rnnkit music train --corpus chorales --model frames --out-dir runs/jsb
    rnnkit music train --corpus chorales --model harmonizer --out-dir runs/satb --epochs 20
    rnnkit music train --corpus folk --limit 2000 --model events --out-dir runs/folk
    rnnkit music train --corpus my_midi/ --model events --out-dir runs/mine --max-time 600
    rnnkit music generate runs/jsb/best.pt --bars 16 --out song.mid --wav song.wav --png song.png
    rnnkit music generate runs/folk/best.pt --prime start.mid --seconds 30 --out more.mid
    rnnkit music harmonize runs/satb/best.pt melody.mid --out chorale.mid --beam 4
    rnnkit music evaluate runs/jsb/best.pt --split test

``--corpus`` is ``chorales`` (music21's four-part Bach chorales), ``folk`` (the Essen folk
songs, one voice) or a folder of score files (MIDI, MusicXML, ABC, Humdrum, read
recursively); the pieces are split into train/valid/test by a hash of each piece's name
(``--fractions``), so a piece stays in its part whatever else is in the folder. The models:
``frames`` (piano-roll frames, one Bernoulli per pitch: the JSB Chorales protocol at
``--grid 1``), ``events`` (a language model over note-on/note-off/time-shift events) and
``harmonizer`` (alto, tenor and bass under a given soprano; four-part scores only).

``--out-dir`` must be a new or empty folder: ``--resume`` continues the run there from its
last.pt, ``--overwrite`` replaces it. Every option of ``music train`` is a field of a config
dataclass (``[model]``: MusicModelOptions, ``[data]``: MusicDataConfig, ``[train]``:
TrainConfig), settable in a TOML file given with ``--config``, as ``--section.field VALUE``
or with its short alias (``--hidden 128``); later wins: default < TOML < flag. ``make
music-data`` installs fluidsynth, which ``--wav`` needs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import warnings
from typing import Any

from .options import add_command_options, build_configs, print_warnings, with_defaults
from .runs import add_run_dir_flags, best_note, check_output, open_run

__all__ = ["MusicDataConfig", "MusicModelOptions", "register"]

CORPORA = ("chorales", "folk")
MODELS = ("frames", "events", "harmonizer")
#: what the validation loss counts, per model
UNITS = {"frames": "nats per frame", "events": "nats per event",
         "harmonizer": "nats per voice token"}
#: `music harmonize`'s default: chosen on 20 valid chorales (parallel fifths per 100 chord
#: changes 21 -> 0.2, octaves 25 -> 0.1, Bach 0.3 and 0.06; agreement with Bach's voices
#: unchanged), see benchmarks/music.py
VOICE_LEADING_PENALTY = 3.0
MAX_BARS = 1000
MAX_SECONDS = 3600.0


@dataclasses.dataclass
class MusicModelOptions:
    """The architecture of the model ``--model`` names; an option left unset keeps that
    model's own default (frames: GRU 256 x 2, embed 128; events: LSTM 512 x 2, embed 128;
    harmonizer: GRU 128, 2 encoder and 2 decoder layers, embed 32; dropout 0.2).

    Attributes:
        cell: any registered cell (gru, lstm, ...).
        embed_size: width of the input projection (frames) or embedding (events, harmonizer).
        hidden_size: recurrent state size (the harmonizer: per encoder direction and decoder).
        num_layers: stacked recurrent layers (the harmonizer: of its encoder and of its
            decoder each).
        dropout: on the inputs, between layers and before the output layer.
        tie_weights: events only: share the embedding with the output layer (needs --embed
            equal to --hidden).
        output: frames only: independent (one Bernoulli per pitch) or nade (the pitches of
            a frame jointly, RNN-NADE).
        nade_hidden: frames with --output nade: the NADE's hidden units.
        backend: Recurrent backend (auto picks the fastest).
    """

    cell: str | None = None
    embed_size: int | None = None
    hidden_size: int | None = None
    num_layers: int | None = None
    dropout: float | None = None
    tie_weights: bool | None = None
    output: str | None = None
    nade_hidden: int | None = None
    backend: str | None = None

    def build(self, model: str) -> Any:
        """The config dataclass of ``model`` with the options that are set (its sizes fixed
        by the encoding are placeholders here; :func:`~rnnkit.music.training.train_music`
        fills them in)."""
        given = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if model != "events" and "tie_weights" in given:
            raise ValueError(f"--tie-weights shares the event model's embedding and output "
                             f"layer; drop it for --model {model}")
        for name in ("output", "nade_hidden"):
            if model != "frames" and name in given:
                raise ValueError(f"--{name.replace('_', '-')} sets the frame model's output; "
                                 f"drop it for --model {model}")
        if model == "frames":
            from ..music.frames import FrameModelConfig

            return FrameModelConfig(n_pitches=1, **given)
        if model == "events":
            from ..music.events import EventModelConfig

            return EventModelConfig(vocab_size=4, **given)
        from ..music.harmonizer import HarmonizerConfig

        layers = given.pop("num_layers", None)
        if layers is not None:
            given.update(enc_layers=layers, dec_layers=layers)
        return HarmonizerConfig(n_pitches=1, **given)


@dataclasses.dataclass
class MusicDataConfig:
    """The data settings of ``rnnkit music train``.

    Attributes:
        corpus: chorales (music21's Bach chorales, four parts), folk (the Essen folk songs,
            one voice) or a folder of MIDI/MusicXML/ABC/Humdrum files (read recursively).
        model: frames (piano-roll frames), events (note events, a language model) or
            harmonizer (alto, tenor, bass under a soprano; four-part scores).
        limit: use at most this many pieces of the corpus, in its order (before the split).
        fractions: train,valid,test shares of the split by piece name (valid chooses best.pt).
        grid: quarter notes per frame or time step (1 = quarter notes, 0.25 = 16ths; default
            1 for frames, 0.25 for events and harmonizer).
        low: lowest MIDI pitch the model knows (default: the lowest in the corpus).
        high: highest MIDI pitch the model knows (default: the highest in the corpus).
        augment: transpose each training piece at random every epoch (-6..+5 semitones that
            stay within low..high).
        features: frames and harmonizer: also read the position in the bar and fermatas.
        max_shift: events: the longest time shift, in grid steps.
        velocity: events: also encode loudness.
        batch_size: pieces (chunks) per batch; events: rows of the BPTT stream.
        max_frames: frames and harmonizer: frames per training chunk.
        bptt: events: tokens per truncated-BPTT chunk.
    """

    corpus: str = "chorales"
    model: str = "frames"
    limit: int | None = None
    fractions: str = "0.8,0.1,0.1"
    grid: float | None = None
    low: int | None = None
    high: int | None = None
    augment: bool = True
    features: bool = True
    max_shift: int = 16
    velocity: bool = False
    batch_size: int = 16
    max_frames: int = 128
    bptt: int = 128

    def __post_init__(self) -> None:
        from ..checks import choice, positive_ints

        choice("model", self.model, MODELS)
        positive_ints(batch_size=self.batch_size, max_shift=self.max_shift, bptt=self.bptt)
        if not self.corpus:
            raise ValueError("corpus must be chorales, folk or a folder of score files")
        if self.limit is not None:
            positive_ints(limit=self.limit)
        if isinstance(self.max_frames, bool) or not isinstance(self.max_frames, int) or \
                self.max_frames < 2:
            raise ValueError(f"max_frames must be an integer >= 2 (frames per training chunk), "
                             f"got {self.max_frames!r}")
        if self.grid is not None and not 0 < self.grid <= 4:
            raise ValueError(f"grid must be a note length in quarter notes above 0 and at most "
                             f"4, such as 1 (quarter notes) or 0.25 (16ths), got {self.grid!r}")
        for name in ("low", "high"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 127:
                raise ValueError(f"{name} must be a MIDI pitch 0..127, got {value!r}")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low ({self.low}) must not be above high ({self.high})")
        self.split_fractions()

    def split_fractions(self) -> tuple[float, float, float]:
        """``fractions`` as three numbers."""
        try:
            parts = tuple(float(x) for x in str(self.fractions).split(","))
        except ValueError:
            parts = ()
        if len(parts) != 3 or min(parts) < 0 or abs(sum(parts) - 1) > 1e-6 or parts[1] == 0:
            raise ValueError(f"fractions must be three shares train,valid,test summing to 1 "
                             f"with valid > 0, e.g. fractions=0.8,0.1,0.1; got "
                             f"{self.fractions!r}")
        return parts  # type: ignore[return-value]


def _sections() -> dict[str, type]:
    from ..train.config import TrainConfig

    return {"model": MusicModelOptions, "data": MusicDataConfig,
            "train": with_defaults(TrainConfig, epochs=30, lr=3e-3, clip_norm=5.0)}


# short flags; every field also has --section.field
ALIASES = {
    "model.cell": "--cell", "model.embed_size": "--embed", "model.hidden_size": "--hidden",
    "model.num_layers": "--layers", "model.dropout": "--dropout",
    "model.tie_weights": "--tie-weights", "model.output": "--output",
    "model.nade_hidden": "--nade-hidden", "data.corpus": "--corpus", "data.model": "--model",
    "data.limit": "--limit", "data.fractions": "--fractions", "data.grid": "--grid",
    "data.low": "--low", "data.high": "--high", "data.augment": "--augment",
    "data.features": "--features", "data.max_shift": "--max-shift",
    "data.velocity": "--velocity", "data.batch_size": "--batch-size",
    "data.max_frames": "--max-frames", "data.bptt": "--bptt", "train.epochs": "--epochs",
    "train.max_steps": "--max-steps", "train.max_time": "--max-time", "train.lr": "--lr",
    "train.seed": "--seed", "train.device": "--device", "train.out_dir": "--out-dir",
}
NOT_FLAGS: set[str] = set()


# -- reading pieces ------------------------------------------------------------------------------
def load_corpus(spec: str, limit: int | None = None, flag: str = "--corpus") -> list[Any]:
    """The pieces of ``spec``: ``chorales``, ``folk`` or a folder of score files (read
    recursively, named by their path in the folder without the extension; files that cannot
    be read are left out with a warning)."""
    from ..music import corpus

    if spec == "chorales":
        pieces = corpus.chorales()
        return pieces[:limit] if limit else pieces
    if spec == "folk":
        return corpus.folk_melodies(limit)
    return _read_folder(spec, limit, flag)


def _read_folder(folder: str, limit: int | None, flag: str) -> list[Any]:
    from pathlib import Path

    from ..music.score import FORMATS, read_score

    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"{flag} {folder}: no such folder; give chorales, folk or a "
                                f"folder of score files ({', '.join(FORMATS)})")
    if not root.is_dir():
        raise NotADirectoryError(f"{flag} {folder} is a file; give a folder of score files "
                                 f"({', '.join(FORMATS)}), or chorales / folk")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in FORMATS and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise ValueError(f"{flag} {folder} holds no score files ({', '.join(FORMATS)}); give "
                         f"a folder of MIDI/MusicXML/ABC files, or chorales / folk")
    pieces, bad = [], []
    for path in files:
        if limit is not None and len(pieces) >= limit:
            break
        try:
            piece = read_score(path)
        except (ValueError, OSError) as err:
            bad.append(f"{path.name}: {err}")
            continue
        name = path.relative_to(root).with_suffix("").as_posix()
        pieces.append(dataclasses.replace(piece, name=name, fermatas=list(piece.fermatas)))
    if not pieces:
        raise ValueError(f"{flag} {folder}: none of its {len(files)} score files could be read "
                         f"({bad[0]}); give files with pitched notes (MIDI with more than "
                         f"drums on channel 10, MusicXML, ABC)")
    if bad:
        warnings.warn(f"{flag} {folder}: left out {len(bad)} of {len(files)} files that could "
                      f"not be read: " + "; ".join(bad[:3]) + ("; ..." if len(bad) > 3 else ""),
                      stacklevel=2)
    return pieces


def read_input(path: str, flag: str) -> Any:
    """One score file for ``flag`` (``--prime``, ``MELODY``), with errors that name the
    fix."""
    from ..music.score import FORMATS, read_score

    if os.path.isdir(path):
        raise IsADirectoryError(f"{flag} {path} is a folder; give a score file "
                                f"({', '.join(FORMATS)})")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{flag} {path}: no such file; check the path")
    try:
        return read_score(path)
    except ValueError as err:
        said = str(err).replace(str(path), os.path.basename(path))
        raise ValueError(f"{flag} {path}: {said}; give a score file with pitched notes "
                         f"({', '.join(FORMATS)}; MIDI with more than drums on channel "
                         f"10)") from None


# -- train -----------------------------------------------------------------------------------
def _train(args: argparse.Namespace) -> int:
    from ..music import corpus as corpora
    from ..music.training import train_music
    from ..train.distributed import is_main_process

    sections = _sections()
    cfg = build_configs(args, sections, NOT_FLAGS, {"train.out_dir": "--out-dir"})
    cfg, _ = open_run(args, cfg, sections, not_flags=NOT_FLAGS, aliases=ALIASES)
    data, train = cfg["data"], cfg["train"]  # a resumed run's own data settings
    model_config = cfg["model"].build(data.model)
    if data.model == "harmonizer" and data.corpus == "folk":
        raise ValueError("the harmonizer learns from four-part scores, the folk songs have one "
                         "voice: use --corpus chorales or a folder of four-part scores")
    main = is_main_process()  # under torchrun only rank 0 reports
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pieces = load_corpus(data.corpus, data.limit)
        parts = corpora.split(pieces, data.split_fractions())
    if main:
        print_warnings(w.message for w in caught)
        print(f"{data.corpus}: {len(pieces)} pieces -> train {len(parts['train'])}, valid "
              f"{len(parts['valid'])}, test {len(parts['test'])} (split by piece name, "
              f"--fractions {data.fractions})", flush=True)
    for part in ("train", "valid"):
        if not parts[part]:
            raise ValueError(f"the {part} split of --corpus {data.corpus} is empty ({len(pieces)} "
                             f"pieces); add pieces, raise --limit, or change --fractions "
                             f"(now {data.fractions})")
    with warnings.catch_warnings():  # said as they come, "warning: ..." (rank 0 only)
        if main:
            warnings.showwarning = lambda message, *_, **__: print_warnings([message])
        else:
            warnings.simplefilter("ignore")
        net, metrics = train_music(
            data.model, parts["train"], parts["valid"], model_config, train, grid=data.grid,
            low=data.low, high=data.high, features=data.features, steps=data.max_shift,
            velocity=data.velocity, augment=data.augment, batch_size=data.batch_size,
            max_frames=data.max_frames, bptt=data.bptt, resume=args.resume,
            run={"data_config": dataclasses.asdict(data), "corpus": _where(data.corpus)})
    if not main:
        return 0
    extra = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k not in ("loss", "step"))
    print(f"trained the {data.model} model ({net.encoding.describe()}); validation"
          f"{best_note(metrics)} loss {metrics['loss']:.4f} {UNITS[data.model]}"
          + (f", {extra}" if extra else "") + f"; checkpoints in {train.out_dir}")
    return 0


def _where(spec: str) -> str:
    """A corpus as ``evaluate`` finds it again: its name, or the folder's absolute path."""
    return spec if spec in CORPORA else os.path.abspath(spec)


# -- outputs ---------------------------------------------------------------------------------
_SUFFIXES = {"--out": (".mid", ".midi"), "--musicxml": (".xml", ".musicxml"),
             "--wav": (".wav",), "--png": (".png",)}


def _check_outputs(args: argparse.Namespace) -> None:
    """Every output path: the right extension, not an existing file (unless --overwrite), not
    the same file twice, writable; and fluidsynth present when --wav is asked for. Checked
    before any work."""
    seen: dict[str, str] = {}
    for flag, suffixes in _SUFFIXES.items():
        path = getattr(args, flag[2:])
        if path is None:
            continue
        if not path.lower().endswith(suffixes):
            raise ValueError(f"{flag} {path}: give a {' or '.join(suffixes)} file name")
        check_output(path, args.overwrite, flag)
        real = os.path.realpath(path)
        if real in seen:
            raise ValueError(f"{seen[real]} and {flag} name the same file {path}; give each "
                             f"output its own name")
        seen[real] = flag
    if args.wav is not None:
        from ..music.render import find_fluidsynth, find_soundfont

        find_fluidsynth()
        find_soundfont(args.soundfont)
    elif args.soundfont is not None:
        raise ValueError("--soundfont sets the instruments of --wav; add --wav FILE.wav or "
                         "drop --soundfont")


def _write_outputs(args: argparse.Namespace, piece: Any) -> None:
    from ..music.score import write_midi, write_musicxml

    write_midi(piece, args.out)
    print(f"wrote {args.out}")
    if args.musicxml:
        write_musicxml(piece, args.musicxml)
        print(f"wrote {args.musicxml}")
    if args.png:
        from ..music.render import piano_roll_png

        piano_roll_png(piece, args.png)
        print(f"wrote {args.png}")
    if args.wav:
        from ..music.render import render_wav

        render_wav(piece, args.wav, soundfont=args.soundfont)
        print(f"wrote {args.wav}")


def _check_sampling(args: argparse.Namespace) -> None:
    if not (0 <= args.temperature <= 100):
        raise ValueError(f"--temperature must be from 0 (greedy) to 100, got "
                         f"{args.temperature}; e.g. --temperature 1")
    if args.top_k is not None and args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}; e.g. --top-k 20")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise ValueError(f"--top-p must lie in (0, 1], got {args.top_p}; e.g. --top-p 0.9")
    if args.tempo is not None and not 1 <= args.tempo <= 1000:
        raise ValueError(f"--tempo must be from 1 to 1000 quarter notes per minute, got "
                         f"{args.tempo}; e.g. --tempo 100")
    if not -48 <= args.key_shift <= 48:
        raise ValueError(f"--key-shift must be from -48 to 48 semitones, got {args.key_shift}")


def _shifted(args: argparse.Namespace, piece: Any) -> Any:
    if not args.key_shift:
        return piece
    try:
        return piece.transpose(args.key_shift)
    except ValueError:
        lo = min(n.pitch for n in piece.notes)
        hi = max(n.pitch for n in piece.notes)
        raise ValueError(f"--key-shift {args.key_shift} moves the notes ({lo}..{hi}) outside "
                         f"MIDI's 0..127; give a smaller --key-shift") from None


# -- generate --------------------------------------------------------------------------------
def _generate(args: argparse.Namespace) -> int:
    from ..train.distributed import is_main_process

    if not is_main_process():  # under torchrun only rank 0 writes
        return 0
    if args.bars is not None and not 1 <= args.bars <= MAX_BARS:
        raise ValueError(f"--bars must be from 1 to {MAX_BARS}, got {args.bars}; e.g. --bars 16")
    if args.seconds is not None and not 0 < args.seconds <= MAX_SECONDS:
        raise ValueError(f"--seconds must be above 0 and at most {MAX_SECONDS:g}, got "
                         f"{args.seconds}; e.g. --seconds 30")
    if args.max_voices is not None and args.max_voices < 1:
        raise ValueError(f"--max-voices must be at least 1, got {args.max_voices}")
    _check_sampling(args)
    _check_outputs(args)
    from ..music.training import generate_music, load_music

    ckpt = load_music(args.checkpoint, ("frames", "events"), "`rnnkit music generate`")
    if ckpt.kind == "frames" and (args.top_k is not None or args.top_p is not None):
        raise ValueError("--top-k and --top-p cut a distribution over events (an events "
                         "model); a frames model draws every pitch on its own: use "
                         "--temperature and --max-voices")
    if ckpt.kind == "events" and args.max_voices is not None:
        raise ValueError("--max-voices limits the pitches of a frame (a frames model); an "
                         "events model writes one note at a time: drop --max-voices")
    prime = read_input(args.prime, "--prime") if args.prime else None
    metre = tuple(prime.time_signature if prime is not None
                  else ckpt.info.get("time_signature", (4, 4)))
    tempo = args.tempo or (prime.tempo if prime is not None else ckpt.info.get("tempo", 100.0))
    bar = 4.0 * metre[0] / metre[1]
    pickup = prime.pickup if prime is not None else 0.0
    if args.seconds is not None:
        length = args.seconds * tempo / 60.0
        what = f"{args.seconds:g} s at {tempo:g} quarter notes per minute"
    else:
        bars = 16 if args.bars is None else args.bars
        length = pickup + bars * bar
        what = f"{bars} bars of {metre[0]}/{metre[1]}"
    grid = ckpt.encoding.grid
    if round(length / grid) < 1:
        raise ValueError(f"--seconds {args.seconds:g} is shorter than one step of the model "
                         f"({grid:g} quarter notes = {grid * 60 / tempo:.3g} s); ask for more")
    if prime is not None and prime.end() >= length:
        raise ValueError(f"--prime {args.prime} lasts {prime.end():g} quarter notes, as long "
                         f"as the {what} to generate ({length:g} quarter notes); ask for more "
                         f"--bars / --seconds or give a shorter --prime")
    piece = generate_music(ckpt, length, prime, temperature=args.temperature, top_k=args.top_k,
                           top_p=args.top_p, seed=args.seed, max_voices=args.max_voices,
                           tempo=tempo, time_signature=metre,
                           name=os.path.splitext(os.path.basename(args.out))[0])
    piece = _shifted(args, piece)
    print(f"generated {what} ({len(piece.notes)} notes, {piece.end():g} quarter notes) with "
          f"the {ckpt.kind} model of {args.checkpoint}")
    _write_outputs(args, piece)
    return 0


# -- harmonize -------------------------------------------------------------------------------
def _harmonize(args: argparse.Namespace) -> int:
    from ..train.distributed import is_main_process

    if not is_main_process():
        return 0
    if args.beam < 1 or args.beam > 64:
        raise ValueError(f"--beam must be from 1 (no search) to 64, got {args.beam}; e.g. "
                         f"--beam 4")
    if args.beam > 1 and (args.temperature or args.top_k is not None or args.top_p is not None):
        raise ValueError("--beam searches for the most probable harmony: drop --temperature, "
                         "--top-k and --top-p, or drop --beam to sample")
    _check_sampling(args)
    if not 0 <= args.voice_leading_penalty <= 1000:
        raise ValueError(f"--voice-leading-penalty must be from 0 (none) to 1000 nats, got "
                         f"{args.voice_leading_penalty:g}; e.g. --voice-leading-penalty "
                         f"{VOICE_LEADING_PENALTY:g}")
    _check_outputs(args)
    from ..music.encoding import pitch_name
    from ..music.training import harmonize_melody, load_music, melody_of

    ckpt = load_music(args.checkpoint, ("harmonizer",), "`rnnkit music harmonize`")
    score = read_input(args.melody, "MELODY")
    melody = melody_of(score)
    if args.tempo:
        melody = dataclasses.replace(melody, tempo=args.tempo, fermatas=list(melody.fermatas))
    steps = melody.end() / ckpt.encoding.grid
    if steps > 100_000:
        raise ValueError(f"MELODY {args.melody} lasts {melody.end():g} quarter notes "
                         f"({steps:.0f} steps of the model); give a melody of at most "
                         f"{100_000 * ckpt.encoding.grid:g} quarter notes")
    chorale, info = harmonize_melody(ckpt, melody, temperature=args.temperature,
                                     top_k=args.top_k, top_p=args.top_p, seed=args.seed,
                                     beam_size=args.beam,
                                     voice_leading_penalty=args.voice_leading_penalty)
    chorale = dataclasses.replace(_shifted(args, chorale),
                                  name=os.path.splitext(os.path.basename(args.out))[0])
    lo = min(n.pitch for n in melody.notes)
    hi = max(n.pitch for n in melody.notes)
    notes = [f"melody of {len(melody.notes)} notes ({pitch_name(lo)}..{pitch_name(hi)})"]
    if info["moved"]:
        notes.append(f"{info['moved']} notes moved onto the model's grid of "
                     f"{ckpt.encoding.grid:g} quarter notes")
    if info["shift"]:
        notes.append(f"harmonized {abs(info['shift']) // 12} octave(s) "
                     f"{'up' if info['shift'] > 0 else 'down'}, in the model's {info['where']}, "
                     f"and moved back")
    print(f"harmonized the {'; '.join(notes)}: {chorale.num_voices()} voices, "
          f"{len(chorale.notes)} notes")
    _write_outputs(args, chorale)
    return 0


# -- evaluate --------------------------------------------------------------------------------
def _evaluate(args: argparse.Namespace) -> int:
    from ..train.distributed import is_main_process

    if not is_main_process():
        return 0
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    from ..music import corpus as corpora
    from ..music.training import evaluate_music, load_music

    ckpt = load_music(args.checkpoint, MODELS, "`rnnkit music evaluate`")
    saved = ckpt.run.get("data_config") or {}
    spec = args.corpus or ckpt.run.get("corpus") or saved.get("corpus") or "chorales"
    if args.corpus is None and spec not in CORPORA and not os.path.isdir(spec):
        raise FileNotFoundError(f"the corpus this model was trained on, {spec}, is not there "
                                f"any more; give --corpus chorales, folk or a folder")
    limit = args.limit if args.limit is not None or args.corpus is not None else \
        saved.get("limit")  # the model's own corpus: as many pieces as it was trained on
    fractions = saved.get("fractions", "0.8,0.1,0.1")
    if args.fractions is not None:
        fractions = args.fractions
    fracs = MusicDataConfig(fractions=fractions).split_fractions()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pieces = load_corpus(spec, limit)
        chosen = pieces if args.split == "all" else corpora.split(pieces, fracs)[args.split]
        if not chosen:
            raise ValueError(f"the {args.split} split of --corpus {spec} is empty "
                             f"({len(pieces)} pieces); choose another --split, add pieces, or "
                             f"change --fractions (now {fractions})")
        result = evaluate_music(ckpt, chosen, batch_size=args.batch_size)
    print_warnings(w.message for w in caught)
    head = (f"{args.checkpoint} ({ckpt.kind}, step {ckpt.step}) on the {args.split} split of "
            f"{spec}" + (f" (its first {limit} pieces)" if limit else "")
            + f": {_count(result['pieces'], 'piece')}"
            + (f" ({result['left_out']} left out)" if result["left_out"] else ""))
    print(head)
    if ckpt.kind == "frames":
        print(f"NLL per frame    {result['nll_per_frame']:.4f} nats ("
              f"{_count(result['frames'], 'frame')} after the first of each piece, the JSB "
              f"protocol)")
        print(f"frame accuracy   {result['frame_accuracy']:.4f}")
        print(f"NLL per frame    {result['nll_per_frame_all']:.4f} nats (all "
              f"{_count(result['frames_all'], 'frame')}, the first predicted from silence, as "
              f"in training)")
    elif ckpt.kind == "events":
        print(f"NLL per event    {result['nll_per_event']:.4f} nats ({result['events']} events)")
        print(f"NLL per second   {result['nll_per_second']:.4f} nats ({result['seconds']:.1f} s)")
    else:
        print(f"NLL per token    {result['nll_per_token']:.4f} nats ({result['frames']} frames "
              f"x 3 voices)")
        for voice in ("alto", "tenor", "bass"):
            print(f"{voice:<6} accuracy {result[voice + '_accuracy']:.4f}  NLL "
                  f"{result[voice + '_nll']:.4f} nats")
    return 0


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


# -- the parser ------------------------------------------------------------------------------
def _sampling_flags(p: argparse.ArgumentParser, temperature: float) -> None:
    p.add_argument("--temperature", type=float, default=temperature,
                   help=f"sampling temperature; 0 = the most probable (default: {temperature:g})")
    p.add_argument("--top-k", type=int, default=None,
                   help="sample among the k most probable tokens (default: all)")
    p.add_argument("--top-p", type=float, default=None,
                   help="sample among the most probable tokens of total probability p "
                        "(default: all)")
    p.add_argument("--seed", type=int, default=None, help="makes the draws reproducible")


def _output_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--out", required=True, metavar="FILE.mid", help=f"the {what}, as MIDI")
    p.add_argument("--musicxml", metavar="FILE.xml", help="also write it as MusicXML")
    p.add_argument("--wav", metavar="FILE.wav",
                   help="also play it into a WAV file (needs fluidsynth: make music-data)")
    p.add_argument("--soundfont", metavar="FILE.sf2",
                   help="General MIDI soundfont for --wav (default: the installed one)")
    p.add_argument("--png", metavar="FILE.png", help="also draw it as a piano roll")
    p.add_argument("--tempo", type=float, default=None,
                   help="quarter notes per minute (default: the prime's / melody's, else the "
                        "training data's)")
    p.add_argument("--key-shift", type=int, default=0, metavar="SEMITONES",
                   help="transpose the result (default: 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace output files that exist (default: refuse)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``music train|generate|harmonize|evaluate``."""
    parser = subparsers.add_parser("music", help="music: train on scores, generate, harmonize",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    tr = sub.add_parser("train", help="train a frames, events or harmonizer model on a corpus",
                        description="Train a music model on a corpus split by piece; best.pt "
                        "is the checkpoint best on the valid split. Options come from the "
                        "defaults, then --config FILE.toml ([model], [data], [train] tables), "
                        "then flags.")
    add_command_options(tr, _sections(), ALIASES, NOT_FLAGS)
    tr.add_argument("--no-augment", dest="data.augment", action="store_const", const=False,
                    default=argparse.SUPPRESS, help="no transposition (= --augment false)")
    add_run_dir_flags(tr, "model, data")
    tr.set_defaults(func=_train)

    ge = sub.add_parser("generate", help="write a new piece with a frames or events model",
                        description="Generate a piece from silence or continuing --prime, "
                        "as long as --bars (default 16) or --seconds say.")
    ge.add_argument("checkpoint", help="best.pt of `rnnkit music train --model frames|events`")
    ge.add_argument("--prime", metavar="FILE", help="a score to continue (MIDI, MusicXML, ABC)")
    length = ge.add_mutually_exclusive_group()
    length.add_argument("--bars", type=int, default=None,
                        help=f"length in bars of the metre (the prime's, else the training "
                             f"data's), the prime included, 1..{MAX_BARS} (default: 16)")
    length.add_argument("--seconds", type=float, default=None,
                        help="length in seconds at --tempo, the prime included")
    ge.add_argument("--max-voices", type=int, default=None,
                    help="frames model: at most this many pitches at once (default: no limit)")
    _sampling_flags(ge, 1.0)
    _output_flags(ge, "piece")
    ge.set_defaults(func=_generate)

    ha = sub.add_parser("harmonize", help="alto, tenor and bass under a melody",
                        description="Harmonize the top voice of MELODY in four parts with a "
                        "harmonizer; the melody is kept as the soprano (moved onto the model's "
                        "grid, and by octaves into its range and back when needed).")
    ha.add_argument("checkpoint", help="best.pt of `rnnkit music train --model harmonizer`")
    ha.add_argument("melody", help="a score whose top voice is the melody (MIDI, MusicXML, ABC)")
    ha.add_argument("--beam", type=int, default=1,
                    help="beam search over the three voices; 1 = greedy or sampled (default: 1)")
    ha.add_argument("--voice-leading-penalty", type=float, default=VOICE_LEADING_PENALTY,
                    metavar="NATS",
                    help="nats of log-probability given up per parallel fifth, parallel octave "
                         "or voice crossing the harmony would make; 0 = the model's choice "
                         f"alone (default: {VOICE_LEADING_PENALTY:g})")
    _sampling_flags(ha, 0.0)
    _output_flags(ha, "chorale")
    ha.set_defaults(func=_harmonize)

    ev = sub.add_parser("evaluate", help="score a model on a corpus split",
                        description="Exact scores on whole pieces: NLL per frame (frames), per "
                        "event and per second (events), per voice token with each voice's "
                        "accuracy (harmonizer).")
    ev.add_argument("checkpoint", help="best.pt of `rnnkit music train`")
    ev.add_argument("--corpus", default=None,
                    help="chorales, folk or a folder of scores (default: the model's own)")
    ev.add_argument("--split", choices=("train", "valid", "test", "all"), default="test",
                    help="which part of the corpus split (default: test)")
    ev.add_argument("--fractions", default=None,
                    help="train,valid,test shares of the split (default: the model's own)")
    ev.add_argument("--limit", type=int, default=None,
                    help="at most this many pieces of the corpus, before the split (default: "
                         "the model's own --limit on its own corpus, else all)")
    ev.add_argument("--batch-size", type=int, default=16, help="pieces per batch (default: 16)")
    ev.set_defaults(func=_evaluate)
