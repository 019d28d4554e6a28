r"""Train the music models on pieces, and use what was trained: generate, harmonize, evaluate.

:func:`train_music` trains a :class:`~rnnkit.music.frames.FrameModel`, an
:class:`~rnnkit.music.events.EventModel` or a :class:`~rnnkit.music.harmonizer.Harmonizer`
through the :class:`~rnnkit.train.Trainer` on encoded pieces (:mod:`rnnkit.music.data`),
keeping ``best.pt`` by the validation loss. Every checkpoint's ``extra_state`` holds the
model's config (``task``, ``config``: what ``rnnkit.load(best.pt)`` rebuilds the model from)
and, under ``"music"``, the :class:`~rnnkit.music.data.MusicEncoding` (grid, pitch range,
event vocabulary) and what the data looked like (metre, tempo, the soprano's range), so that
:func:`load_music` rebuilds the model *and* how it reads and writes music from ``best.pt``
alone.

Using a trained model (each takes a :class:`MusicCheckpoint`):

* :func:`generate_music`: a new piece of a given length (quarter notes), from silence or
  continuing a prime (frame and event models);
* :func:`harmonize_melody`: alto, tenor and bass under a given melody (the harmonizer);
* :func:`evaluate_music`: exact scores of whole pieces: negative log-likelihood per frame
  (frames), per event and per second (events), per voice (harmonizer).

All lengths and times are in quarter notes, as in :mod:`rnnkit.music.score`; the tempo
(quarter notes per minute) turns them into seconds.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from .data import (
    DEFAULT_GRID,
    MODELS,
    MusicEncoding,
    encode_pieces,
    event_batches,
    fit_shift,
    frame_features,
    music_batches,
)
from .encoding import EventVocab, PianoRoll, VoiceFrames, pitch_name, quantize
from .score import Note, Piece

__all__ = [
    "MusicCheckpoint",
    "evaluate_music",
    "generate_music",
    "harmonize_melody",
    "deal_voices",
    "load_music",
    "melody_of",
    "train_music",
]

#: the trainer-checkpoint task of each model
TASK_OF = {"frames": "music_frames", "events": "music_events", "harmonizer": "music_harmonizer"}
MODEL_OF_TASK = {task: model for model, task in TASK_OF.items()}
#: what a checkpoint of each model is for, said when it is given to the wrong command
USE = {"frames": "rnnkit music generate {path}", "events": "rnnkit music generate {path}",
       "harmonizer": "rnnkit music harmonize {path} MELODY.mid"}
#: the other applications' checkpoints (their extra_state task), for "wrong file" errors
OTHER_TASKS = {"language_model": ("a text language model", "rnnkit generate {path}"),
               "classify": ("a text classifier", "rnnkit classify predict {path} TEXT"),
               "translate": ("a translator", "rnnkit translate run {path} TEXT")}


def _model_class(model: str) -> type:
    if model == "frames":
        from .frames import FrameModel

        return FrameModel
    if model == "events":
        from .events import EventModel

        return EventModel
    from .harmonizer import Harmonizer

    return Harmonizer


def _config_for(model: str, config: Any, encoding: MusicEncoding) -> Any:
    """The model config with the sizes the encoding fixes filled in (``config=None``: the
    defaults)."""
    if model == "frames":
        from .frames import FrameModelConfig as cls

        fixed = {"n_pitches": encoding.n_pitches, "n_features": encoding.n_features}
    elif model == "events":
        from .events import EventModelConfig as cls

        fixed = {"vocab_size": len(encoding.encoder)}
    else:
        from .harmonizer import HarmonizerConfig as cls

        fixed = {"n_pitches": encoding.n_pitches, "n_features": encoding.n_features}
    if config is None:
        return cls(**fixed)
    if not isinstance(config, cls):
        raise TypeError(f"config must be a {cls.__name__} for model={model!r}, got "
                        f"{type(config).__name__}")
    return replace(config, **fixed)


def _span(pieces: list[Piece]) -> tuple[int, int]:
    pitches = [n.pitch for p in pieces for n in p.notes]
    if not pitches:
        raise ValueError("the pieces have no notes")
    return min(pitches), max(pitches)


def _data_info(train: list[Piece], encoding: MusicEncoding) -> dict[str, Any]:
    """What the training pieces looked like: the most common metre, the median tempo and,
    for the harmonizer, the soprano's range (where melodies are moved by octaves)."""
    metre = Counter(p.time_signature for p in train).most_common(1)[0][0]
    info: dict[str, Any] = {"time_signature": list(metre),
                            "tempo": float(np.median([p.tempo for p in train]))}
    if encoding.model == "harmonizer":
        top = [n.pitch for p in train for n in p.voice(0)]
        if top:
            info["soprano_range"] = [max(min(top), encoding.low), min(max(top), encoding.high)]
    return info


# -- training ------------------------------------------------------------------------------------
def train_music(model: str, train: list[Piece], valid: list[Piece], config: Any = None,
                train_config: Any = None, *, grid: float | None = None,
                low: int | None = None, high: int | None = None, features: bool = True,
                steps: int = 16, velocity: bool = False, augment: bool = True,
                batch_size: int = 16, max_frames: int = 128, bptt: int = 128,
                resume: bool = False, run: dict[str, Any] | None = None,
                ) -> tuple[Any, dict[str, float]]:
    """Train a music model on ``train``, keeping the weights best on ``valid``.

    Args:
        model: ``"frames"``, ``"events"`` or ``"harmonizer"``.
        train, valid: whole pieces (split them by piece, e.g. with
            :func:`~rnnkit.music.corpus.split`); ``valid`` chooses ``best.pt`` and must not be
            empty. The harmonizer needs four-part pieces; other pieces are left out with a
            warning (also those the encoding cannot hold).
        config: the model's config (``FrameModelConfig``, ``EventModelConfig``,
            ``HarmonizerConfig``; ``None``: its defaults); its sizes that the encoding fixes
            (``n_pitches``, ``n_features``, ``vocab_size``) are filled in.
        train_config: a :class:`~rnnkit.train.TrainConfig` (``out_dir`` gets ``best.pt``,
            ``last.pt``); its ``seed`` also seeds the weights and the data order.
        grid: quarter notes per frame or step (default: 1.0 frames, 0.25 events and
            harmonizer, :data:`~rnnkit.music.data.DEFAULT_GRID`).
        low, high: the pitch range (default: the span of the ``train`` and ``valid`` pieces).
        features: condition frames and harmonizer on bar position and fermatas.
        steps, velocity: the event vocabulary (longest time shift in grid units; loudness).
        augment: transpose the training pieces at random each epoch (see
            :mod:`rnnkit.music.data`); never the validation pieces.
        batch_size: pieces (chunks) per batch; for the event model, rows of the BPTT stream.
        max_frames: frames per training chunk (frames, harmonizer); validation reads whole
            pieces, so its loss is the exact score :func:`evaluate_music` gives.
        bptt: events: tokens per truncated-BPTT chunk.
        resume: continue the run in ``train_config.out_dir`` from its ``last.pt``, with that
            checkpoint's encoding and model config (the arguments that set them are then
            ignored).
        run: JSON-able settings to save with the run (``extra_state["run"]``; the CLI's
            ``{"data_config": {...}}``, which ``--resume`` compares against).

    Returns:
        ``(model, metrics)``: the model with the weights of ``best.pt`` (in eval mode, its
        :class:`~rnnkit.music.data.MusicEncoding` as ``model.encoding``) and their validation
        metrics (``loss``: nats per frame, event or voice token; ``step``). Under ``torchrun``
        every process calls it with the same pieces and settings; only rank 0 writes files.
    """
    from ..train import TrainConfig, Trainer, load_checkpoint

    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    train_config = train_config or TrainConfig()
    if not train:
        raise ValueError("no training pieces: give at least one piece to train on")
    if not valid:
        raise ValueError("no validation pieces: best.pt is chosen on them; give some (a "
                         "corpus split's valid part)")
    saved = None
    if resume:
        if not train_config.out_dir:
            raise ValueError("resume=True needs train_config.out_dir, the folder with last.pt")
        saved = load_checkpoint(os.path.join(train_config.out_dir, "last.pt"))
        extra = saved.get("extra_state") or {}
        if extra.get("task") != TASK_OF[model]:
            raise ValueError(f"the run in {train_config.out_dir} trained task "
                             f"{extra.get('task')!r}, not {TASK_OF[model]!r}; resume it with "
                             f"model={MODEL_OF_TASK.get(extra.get('task'), '?')!r}")
        encoding = MusicEncoding.from_dict(extra["music"]["encoding"])
        cls = _model_class(model)
        config = cls.CONFIG(**extra["config"])
    else:
        if low is None or high is None:
            lo, hi = _span(list(train) + list(valid))
            low = lo if low is None else low
            high = hi if high is None else high
        encoding = MusicEncoding(model, DEFAULT_GRID[model] if grid is None else grid,
                                 low, high, features=features, steps=steps, velocity=velocity)
        config = _config_for(model, config, encoding)
    train_var, train_names = encode_pieces(train, encoding, augment=augment,
                                           what="training pieces")
    valid_var, _ = encode_pieces(valid, encoding, augment=False, what="validation pieces")
    if not train_var:
        raise ValueError(f"none of the {len(train)} training pieces fits the {model} encoding "
                         f"({encoding.describe()}); see the warning above")
    if not valid_var:
        raise ValueError(f"none of the {len(valid)} validation pieces fits the {model} "
                         f"encoding ({encoding.describe()}); see the warning above")
    seed = train_config.seed
    if model == "events":
        from .data import EventStream

        tokens = sum(len(v[0]) for v in train_var)
        if tokens // batch_size < 2:
            raise ValueError(f"the training pieces hold {tokens} event tokens, too few for "
                             f"batch_size={batch_size} rows; lower batch_size or add pieces")
        train_data: Any = EventStream(train_var, batch_size, bptt, shuffle=True, seed=seed)
        valid_data: Any = event_batches(valid_var, batch_size)
    else:
        train_data = music_batches(train_var, encoding, batch_size, max_frames, shuffle=True,
                                   seed=seed)
        valid_data = music_batches(valid_var, encoding, batch_size, None)
    torch.manual_seed(seed)
    net = _model_class(model)(config)
    names = set(train_names)
    kept = [p for p in train if p.name in names] or list(train)
    music = {"encoding": encoding.to_dict(), **_data_info(kept, encoding),
             "pieces": {"train": len(train_var), "valid": len(valid_var)},
             "augment": bool(augment)}
    if saved is not None:  # a resumed run keeps what its data looked like
        music = {**music, **{k: v for k, v in saved["extra_state"]["music"].items()
                             if k != "pieces"}}
    extra_state = {**net.extra_state(), "music": music, "run": dict(run or {})}
    trainer = Trainer(net, train_config, train_data, valid_data, extra_state=extra_state)
    trainer.fit(resume=resume)
    metrics = trainer.best_metrics()
    net.eval()
    net.encoding = encoding
    return net, metrics


# -- loading -------------------------------------------------------------------------------------
@dataclass
class MusicCheckpoint:
    """A trained music model with everything needed to use it.

    Attributes:
        model: the ``FrameModel``, ``EventModel`` or ``Harmonizer`` (eval mode, CPU).
        encoding: how it reads and writes music.
        info: what its training data looked like (``time_signature``, ``tempo``,
            ``soprano_range``, ``pieces``, ...), from the checkpoint.
        path: the file.
        step: the optimizer step the weights are from.
        metrics: the validation metrics saved with them.
        run: the run's saved settings (the CLI's ``data_config``).
    """

    model: Any
    encoding: MusicEncoding
    info: dict[str, Any]
    path: str
    step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``"frames"``, ``"events"`` or ``"harmonizer"``."""
        return self.encoding.model


def load_music(path: str | os.PathLike, models: tuple[str, ...] = MODELS,
               command: str = "") -> MusicCheckpoint:
    """The trained model of a ``best.pt`` / ``last.pt`` written by :func:`train_music`
    (``rnnkit music train``), read safely (``weights_only=True``).

    ``models`` are the kinds the caller can use; a checkpoint of another music model, of
    another application, a plain model file or a damaged file raises a ``ValueError`` (a
    missing path ``FileNotFoundError``, a folder ``IsADirectoryError``) that says what the
    file is and which command uses it (``command``: the caller's, for the message).
    """
    from ..saving import (
        KINDS,
        TRAIN_KIND,
        describe,
        parse_tag,
        read_torch_file,
        wrong_file_hint,
    )

    path = os.fspath(path)
    where = "`rnnkit music train` writes best.pt and last.pt into its --out-dir"
    blob = read_torch_file(path, "cpu", where=where)
    parsed = parse_tag(blob)
    wanted = " or ".join(models)
    if parsed is None:
        raise ValueError(f"{path} is not an rnnkit file; give the best.pt of `rnnkit music "
                         f"train --model {models[0]}`")
    kind, _ = parsed
    if kind != TRAIN_KIND:
        if kind.startswith("rnnkit.music_") and kind in KINDS:
            raise ValueError(f"{path} is {describe(blob)}: a model saved without its encoding "
                             f"(grid, pitch range), which {command or 'this'} needs; give the "
                             f"best.pt (or last.pt) that `rnnkit music train` wrote")
        raise ValueError(f"{path} is not a music checkpoint{wrong_file_hint(blob, path) or ''}"
                         f" ({describe(blob)}); give the best.pt of `rnnkit music train "
                         f"--model {models[0]}`")
    extra = blob.get("extra_state") if isinstance(blob.get("extra_state"), dict) else {}
    task = extra.get("task")
    if task not in MODEL_OF_TASK:
        what, use = OTHER_TASKS.get(task, (f"a checkpoint of task {task!r}", ""))
        raise ValueError(f"{path} is {what}'s checkpoint, not a music model's" +
                         (f": use it with `{use.format(path=path)}`" if use else "") +
                         f"; {command or 'this command'} needs the best.pt of `rnnkit music "
                         f"train --model {models[0]}`")
    kind = MODEL_OF_TASK[task]
    if kind not in models:
        raise ValueError(f"{path} is a {kind} model (`rnnkit music train --model {kind}`): "
                         f"use it with `{USE[kind].format(path=path)}`; "
                         f"{command or 'this command'} needs a {wanted} model")
    try:
        music = extra["music"]
        encoding = MusicEncoding.from_dict(music["encoding"])
        net = _model_class(kind).from_state(blob)
    except (KeyError, TypeError, RuntimeError) as err:
        raise ValueError(f"{path} is tagged as a {kind} checkpoint but its content is "
                         f"incomplete or damaged ({type(err).__name__}: {err}); re-create it "
                         f"with `rnnkit music train`") from None
    net.encoding = encoding
    info = {k: v for k, v in music.items() if k != "encoding"}
    return MusicCheckpoint(net, encoding, info, path, int(blob.get("step", 0)),
                           dict(blob.get("metrics") or {}), dict(extra.get("run") or {}))


# -- generation ----------------------------------------------------------------------------------
def _finish(piece: Piece, end: float, **meta: Any) -> Piece:
    """``piece`` cut at ``end`` quarter notes, with the notes struck last held to ``end`` (a
    final chord rings out, so the piece lasts exactly ``end``), and ``meta`` set."""
    notes = [replace(n, duration=min(n.end, end) - n.start) for n in piece.notes
             if n.start < end - 1e-9]
    if not notes:
        return Piece([], **meta)
    last = max(n.start for n in notes)
    notes = [replace(n, duration=end - n.start) if abs(n.start - last) < 1e-9 else n
             for n in notes]
    return Piece(notes, **meta)


def _into_range(piece: Piece, encoding: MusicEncoding, what: str) -> int:
    s = fit_shift(piece, encoding.low, encoding.high)
    if s is None:
        lo = min(n.pitch for n in piece.notes)
        hi = max(n.pitch for n in piece.notes)
        raise ValueError(f"{what} spans pitches {lo}..{hi} ({pitch_name(lo)}..{pitch_name(hi)})"
                         f", wider than the model's range {encoding.low}..{encoding.high} "
                         f"({pitch_name(encoding.low)}..{pitch_name(encoding.high)}); give "
                         f"one within it")
    return s


def generate_music(ckpt: MusicCheckpoint, length: float, prime: Piece | None = None, *,
                   temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None, seed: int | None = None,
                   max_voices: int | None = None, tempo: float | None = None,
                   time_signature: tuple[int, int] | None = None, name: str = "generated",
                   ) -> Piece:
    """A new piece lasting exactly ``length`` quarter notes, from a frame or event model.

    Without ``prime`` the model starts from silence (frames) or ``BOS`` (events); with one,
    the prime (moved onto the grid, and into the model's range by the nearest transposition,
    undone afterwards) is read first and continued, and stays at the start of the piece as
    the model read it. The frame model draws each pitch of each frame (``temperature``,
    at most ``max_voices`` pitches a frame); the event model draws events
    (``temperature``, ``top_k``, ``top_p``; ``EOS`` is never drawn: the piece ends at
    ``length``, and only pitches within the model's range are drawn). Notes sounding at
    ``length`` are cut there, and the notes struck last ring
    to the end; the notes are then dealt into voices of one note at a time
    (:func:`deal_voices`). ``seed`` makes it reproducible. Metre and tempo: ``time_signature`` and
    ``tempo``, else the prime's, else the training data's. Raises ``ValueError`` when
    nothing was generated (only silence) or the prime is as long as ``length``.
    """
    from ..decoding import check_sampling

    enc, net = ckpt.encoding, ckpt.model
    if ckpt.kind not in ("frames", "events"):
        raise ValueError(f"a {ckpt.kind} model does not generate from scratch; use "
                         f"harmonize_melody")
    check_sampling(temperature, top_k, top_p)
    if ckpt.kind == "frames" and (top_k is not None or top_p is not None):
        raise ValueError("top_k and top_p cut a distribution over tokens (the events model); "
                         "the frames model draws every pitch on its own: use temperature and "
                         "max_voices")
    if ckpt.kind == "events" and max_voices is not None:
        raise ValueError("max_voices limits the pitches of a frame (the frames model); the "
                         "events model writes one note at a time: drop max_voices")
    metre = tuple(time_signature or (prime.time_signature if prime is not None
                                     else ckpt.info.get("time_signature", (4, 4))))
    bpm = float(tempo or (prime.tempo if prime is not None else ckpt.info.get("tempo", 100.0)))
    if not (isinstance(length, (int, float)) and math.isfinite(length)
            and round(length / enc.grid) >= 1):
        raise ValueError(f"length must be at least one grid step ({enc.grid:g} quarter notes), "
                         f"got {length!r}")
    total = int(round(length / enc.grid))
    shift, pickup, fermatas, key = 0, 0.0, [], None
    if prime is not None:
        if not prime.notes:
            raise ValueError("the prime has no notes; give a prime with notes, or none")
        shift = _into_range(prime, enc, "the prime")
        prime = prime.transpose(shift) if shift else prime
        pickup, fermatas, key = prime.pickup, list(prime.fermatas), prime.key
    if ckpt.kind == "frames":
        out = _generate_frames(net, enc, total, prime, metre, pickup, temperature, seed,
                               max_voices)
    else:
        out = _generate_events(net, enc, total, prime, temperature, top_k, top_p, seed)
    meta = dict(name=name, tempo=bpm, time_signature=metre, pickup=pickup,
                fermatas=[f for f in fermatas if f < total * enc.grid], key=key)
    piece = _finish(out, total * enc.grid, **meta)
    if not piece.notes:
        raise ValueError("the model generated only silence; raise the temperature, give a "
                         "prime, or train the model longer")
    piece = deal_voices(piece)
    return piece.transpose(-shift) if shift else piece


def deal_voices(piece: Piece) -> Piece:
    """``piece`` with its notes dealt into voices that play one note (or one chord: notes
    struck together for as long) at a time: in order of onset, the highest first, each note
    goes to the lowest-numbered voice that is silent by then or whose last chord it joins (a
    new voice if none). A piano roll's or an event stream's notes have no voices; these are
    the parts MIDI tracks and MusicXML show (and one MIDI track holding overlapping notes of
    different lengths does not read back as written).

    >>> piece = Piece([Note(60, 0, 2), Note(64, 0, 2), Note(67, 0, 1), Note(65, 1, 1)])
    >>> [(n.pitch, n.voice) for n in deal_voices(piece).notes]
    [(67, 0), (60, 1), (64, 1), (65, 0)]
    """
    ends: list[float] = []  # per voice: when its last note (or chord) stops
    last: list[tuple[float, float]] = []  # per voice: (start, duration) of that note
    notes = []
    for n in sorted(piece.notes, key=lambda n: (n.start, -n.pitch, n.duration)):
        v = next((i for i, (e, sd) in enumerate(zip(ends, last))
                  if e <= n.start + 1e-9 or sd == (n.start, n.duration)), None)
        if v is None:
            ends.append(0.0)
            last.append((-1.0, 0.0))
            v = len(ends) - 1
        ends[v], last[v] = max(ends[v], n.end), (n.start, n.duration)
        notes.append(replace(n, voice=v))
    return replace(piece, notes=notes, fermatas=list(piece.fermatas))


def _prime_frames(prime: Piece, enc: MusicEncoding, total: int) -> np.ndarray:
    roll = PianoRoll(enc.grid, enc.low, enc.high).encode(prime)
    if len(roll) >= total:
        raise ValueError(f"the prime lasts {prime.end():g} quarter notes ({len(roll)} frames), "
                         f"as long as the piece to generate ({total * enc.grid:g}); ask for a "
                         f"longer piece or give a shorter prime")
    return roll


def _generate_frames(net: Any, enc: MusicEncoding, total: int, prime: Piece | None,
                     metre: tuple[int, int], pickup: float, temperature: float,
                     seed: int | None, max_voices: int | None) -> Piece:
    P = enc.n_pitches
    roll = _prime_frames(prime, enc, total) if prime is not None else \
        np.zeros((0, P), dtype=np.float32)
    start = np.concatenate([np.zeros((1, P), dtype=np.float32), roll])  # the silent frame
    feats = None
    if enc.n_features:
        f = frame_features(total, enc.grid, metre, pickup)
        if prime is not None and len(roll):
            f[:len(roll)] = PianoRoll(enc.grid, enc.low, enc.high).features(prime)[:len(roll)]
        feats = torch.from_numpy(np.concatenate([np.zeros((1, f.shape[1]), np.float32), f]))
    frames = net.sample(torch.from_numpy(start), steps=total - len(roll),
                        temperature=float(temperature), features=feats, seed=seed,
                        max_voices=max_voices)
    return PianoRoll(enc.grid, enc.low, enc.high).decode(frames[1:].cpu().numpy())


def _generate_events(net: Any, enc: MusicEncoding, total: int, prime: Piece | None,
                     temperature: float, top_k: int | None, top_p: float | None,
                     seed: int | None) -> Piece:
    from ..decoding import generate_tokens
    from .events import BOS, EOS, PAD

    vocab: EventVocab = enc.encoder
    ids = [BOS]
    now = 0
    if prime is not None:
        ids = vocab.encode(quantize(prime, enc.grid))[:-1]  # without EOS
        now = sum(t - vocab.TIME_SHIFT + 1 for t in ids
                  if vocab.TIME_SHIFT <= t < vocab.VELOCITY)
        if now >= total:
            raise ValueError(f"the prime lasts {now * enc.grid:g} quarter notes, as long as "
                             f"the piece to generate ({total * enc.grid:g}); ask for a longer "
                             f"piece or give a shorter prime")
    out = list(ids)
    limit = 64 * total + 256  # events at most; a model that never moves time stops here
    outside = [p for p in range(128) if not enc.low <= p <= enc.high]  # never trained on
    banned = [PAD, BOS, EOS, *(vocab.NOTE_ON + p for p in outside),
              *(vocab.NOTE_OFF + p for p in outside)]
    with net.evaluating():
        prime_ids = torch.tensor([ids], dtype=torch.long, device=net.device)
        for tok in generate_tokens(net.lm, prime_ids, limit, temperature=temperature,
                                   top_k=top_k, top_p=top_p, seed=seed, banned=banned):
            t = int(tok[0])
            if vocab.TIME_SHIFT <= t < vocab.VELOCITY:
                k = min(t - vocab.TIME_SHIFT + 1, total - now)
                out.append(vocab.TIME_SHIFT + k - 1)
                now += k
                if now >= total:
                    break
            else:
                out.append(t)
    return vocab.decode(out)


# -- harmonization -------------------------------------------------------------------------------
def melody_of(piece: Piece) -> Piece:
    """The melody of a score: its top voice (the first voice with notes: the top part of a
    score, the first track of a MIDI file), one note at a time (where several start
    together, the highest; a note is cut where the next one starts), as voice 0, with the
    piece's metre, tempo, key, pick-up and fermatas."""
    voice = next((v for v in range(piece.num_voices()) if piece.voice(v)), None)
    if voice is None:
        raise ValueError(f"{piece.name or 'the score'} has no notes")
    by_start: dict[float, Note] = {}
    for n in piece.voice(voice):
        if n.start not in by_start or n.pitch > by_start[n.start].pitch:
            by_start[n.start] = n
    starts = sorted(by_start)
    notes = []
    for a, b in zip(starts, starts[1:] + [math.inf]):
        n = by_start[a]
        notes.append(Note(n.pitch, n.start, min(n.end, b) - n.start, 0, n.velocity))
    return replace(piece, notes=notes, fermatas=list(piece.fermatas))


def harmonize_melody(ckpt: MusicCheckpoint, melody: Piece, *, temperature: float = 0.0,
                     top_k: int | None = None, top_p: float | None = None,
                     seed: int | None = None, beam_size: int = 1,
                     voice_leading_penalty: float = 3.0,
                     ) -> tuple[Piece, dict[str, Any]]:
    """Alto, tenor and bass under ``melody`` (one voice: see :func:`melody_of`) from a
    harmonizer: ``(chorale, info)``.

    The melody is moved onto the model's grid (:func:`~rnnkit.music.encoding.quantize`;
    ``info["moved"]`` counts the notes that changed) and, when it lies outside the soprano
    range the model learnt, by whole octaves into it (else into the model's whole range;
    ``info["shift"]``); the harmony is written there and the chorale moved back, so its voice
    0 is the (quantized) melody exactly (``info["where"]``: ``"soprano range"`` or, when it
    does not fit that, ``"range"``). A melody that no octave fits raises a
    ``ValueError`` naming the range. Decoding: greedy by default, sampled with
    ``temperature``/``top_k``/``top_p``/``seed``, or a beam search with ``beam_size > 1``;
    ``voice_leading_penalty`` (nats per parallel fifth, octave or crossing) steers any of them
    away from those faults (see :mod:`rnnkit.music.harmonizer`; the default 3 was chosen on
    valid chorales, as `rnnkit music harmonize`'s; 0 = the model's choice alone).
    """
    from .harmonizer import Harmonizer

    enc, net = ckpt.encoding, ckpt.model
    if not isinstance(net, Harmonizer):
        raise ValueError(f"a {ckpt.kind} model does not harmonize; give a harmonizer")
    if melody.num_voices() != 1:
        raise ValueError("the melody must be one voice; take it with melody_of(piece)")
    on_grid = quantize(melody, enc.grid)
    kept = {(n.pitch, n.start, n.duration) for n in on_grid.notes}
    moved = sum((n.pitch, n.start, n.duration) not in kept for n in melody.notes)
    lo_s, hi_s = ckpt.info.get("soprano_range", (enc.low, enc.high))
    shift, where = fit_shift(on_grid, lo_s, hi_s, octaves=True), "soprano range"
    if shift is None:
        shift, where = fit_shift(on_grid, enc.low, enc.high, octaves=True), "range"
    if shift is None:
        lo = min(n.pitch for n in on_grid.notes)
        hi = max(n.pitch for n in on_grid.notes)
        raise ValueError(f"the melody spans pitches {lo}..{hi} ({pitch_name(lo)}.."
                         f"{pitch_name(hi)}): no octave puts it within the model's range "
                         f"{enc.low}..{enc.high} ({pitch_name(enc.low)}..{pitch_name(enc.high)})"
                         f"; give a melody of at most {enc.high - enc.low + 1} semitones' span")
    placed = on_grid.transpose(shift) if shift else on_grid
    vf = VoiceFrames(enc.grid, enc.voices, enc.low, enc.high)
    soprano = torch.from_numpy(vf.encode(placed)[:, 0])
    feats = None
    if enc.n_features:
        feats = torch.from_numpy(PianoRoll(enc.grid, enc.low, enc.high).features(placed))
    chorale = net.harmonize(soprano, feats, temperature=temperature, top_k=top_k, top_p=top_p,
                            seed=seed, beam_size=beam_size,
                            voice_leading_penalty=voice_leading_penalty)
    out = vf.decode(chorale.cpu().numpy())
    out = replace(placed, notes=out.notes, fermatas=list(placed.fermatas))
    out = out.transpose(-shift) if shift else out
    return out, {"shift": shift, "moved": moved, "frames": int(len(soprano)), "where": where}


# -- evaluation ----------------------------------------------------------------------------------
def evaluate_music(ckpt: MusicCheckpoint, pieces: list[Piece], batch_size: int = 16,
                   ) -> dict[str, Any]:
    """Exact scores of whole ``pieces`` (each moved into the model's range by the nearest
    transposition if needed; pieces the encoding cannot hold are left out with a warning):

    * frames: the JSB Chorales protocol: ``nll_per_frame`` (nats, summed over pitches, over
      every frame after the first of each piece) and ``frame_accuracy`` (Bay et al.), with
      ``frames`` (scored); and ``nll_per_frame_all``: over every frame, the first one predicted
      from silence (``frames_all``), what training minimises (the validation loss);
    * events: ``nll_per_event`` (nats per scored event, ``EOS`` included),
      ``nll_per_second`` (nats per second of music at each piece's tempo), ``events``,
      ``seconds``;
    * harmonizer: ``nll_per_token`` (nats per voice token, teacher-forced), and per voice
      ``alto_nll``, ``alto_accuracy``, ... (the share of frames whose most probable token is
      the reference one), ``frames``.

    Each also has ``pieces`` (scored) and ``left_out``.
    """
    enc, net = ckpt.encoding, ckpt.model
    variants, names = encode_pieces(pieces, enc, augment=False, what="pieces")
    if not variants:
        raise ValueError(f"none of the {len(pieces)} pieces fits the model's encoding "
                         f"({enc.describe()})")
    result: dict[str, Any] = {"pieces": len(variants), "left_out": len(pieces) - len(variants)}
    if ckpt.kind == "frames":
        result.update(_frame_scores(net, music_batches(variants, enc, batch_size, None)))
    elif ckpt.kind == "events":
        by_name = {p.name: p for p in pieces}
        nats, count, seconds = 0.0, 0, 0.0
        for name, var in zip(names, variants):
            total, n = net.log_likelihood(var[0].data.tolist())
            nats -= total
            count += n
            piece = by_name.get(name)
            if piece is not None:
                seconds += piece.end() * 60.0 / piece.tempo
        result.update(nll_per_event=nats / count, nll_per_second=nats / seconds,
                      events=count, seconds=seconds)
    else:
        result.update(_harmonizer_scores(net, music_batches(variants, enc, batch_size, None)))
    return result


def _frame_scores(net: Any, batches: Any) -> dict[str, Any]:
    """The JSB protocol's scores (every frame after the first of each piece, through
    :class:`~rnnkit.music.metrics.FrameScores`) and the NLL over every frame, the first one
    predicted from silence (what training minimises and validates)."""
    import torch.nn.functional as F

    from .metrics import FrameScores

    after_first = FrameScores()
    first_nats, first_count = 0.0, 0
    with net.evaluating():
        for batch in batches:
            frames, lengths = batch["frames"], batch["lengths"]  # silent frame + the piece
            feats = batch.get("features")
            logits, _ = net(frames[:, :-1], feats[:, 1:] if feats is not None else None,
                            lengths=lengths - 1, targets=frames[:, 1:])
            # the frames the model predicts: a NADE decides pitch by pitch, not from the
            # true lower notes its teacher-forced logits are conditioned on
            pred = net._predicted(batch, logits).bool().cpu()
            logits = logits.double().cpu()
            for b, n in enumerate(lengths.tolist()):
                z, v = logits[b, :n - 1], frames[b, 1:n].double()
                first_nats += float(F.binary_cross_entropy_with_logits(
                    z[0], v[0], reduction="sum"))
                first_count += 1
                if n > 2:
                    gold, guess = v[1:].bool(), pred[b, 1:n - 1]
                    after_first.add_counts(
                        float(F.binary_cross_entropy_with_logits(z[1:], v[1:], reduction="sum")),
                        n - 2, int((guess & gold).sum()), int((guess & ~gold).sum()),
                        int((~guess & gold).sum()))
    scores = after_first.result() if after_first.frames else \
        {"nll": float("nan"), "accuracy": float("nan"), "nats": 0.0, "frames": 0}
    total = (scores["nats"] + first_nats) / (scores["frames"] + first_count)
    return {"nll_per_frame": scores["nll"], "frame_accuracy": scores["accuracy"],
            "frames": scores["frames"], "nll_per_frame_all": total,
            "frames_all": scores["frames"] + first_count}


def _harmonizer_scores(net: Any, batches: Any) -> dict[str, Any]:
    import torch.nn.functional as F

    from .harmonizer import VOICES

    nll = torch.zeros(3, dtype=torch.float64)
    hits = torch.zeros(3, dtype=torch.float64)
    frames = 0
    with net.evaluating():
        for batch in batches:
            voices, lengths = batch["voices"], batch["lengths"]
            logits = net(voices, batch.get("features"), lengths)  # [B, T, 3, V]
            target = voices[..., 1:].to(logits.device)
            mask = (torch.arange(voices.shape[1])[None, :] < lengths[:, None]).to(logits.device)
            logp = F.log_softmax(logits.double(), -1)
            picked = logp.gather(-1, target[..., None])[..., 0]  # [B, T, 3]
            nll -= (picked * mask[..., None]).sum((0, 1)).cpu()
            hits += ((logits.argmax(-1) == target) & mask[..., None]).sum((0, 1)).double().cpu()
            frames += int(mask.sum())
    out: dict[str, Any] = {"nll_per_token": float(nll.sum()) / (3 * frames), "frames": frames}
    for i, v in enumerate(VOICES[1:]):
        out[f"{v}_nll"] = float(nll[i]) / frames
        out[f"{v}_accuracy"] = float(hits[i]) / frames
    return out

