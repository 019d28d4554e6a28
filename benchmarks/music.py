"""Music models on held-out Bach chorales: likelihood, accuracy, musical statistics, harmony.

Data: the 331 four-part chorales music21 ships, split by piece name
(:func:`rnnkit.music.corpus.split`: 80/10/10, a hash of the name). Which data saw which
choice: every architecture and training setting below was fixed before any run (the library's
defaults: 2 layers, hidden 256, dropout 0.2, Adam, transposition augmentation, a time budget
per model); ``valid`` chose each run's ``best.pt`` (and the n-gram order of the baselines);
``test`` is scored once, here.

Printed (and written to ``--out``):

1. **Frames, the JSB Chorales protocol** (quarter-note frames, multi-hot pitches, negative
   log-likelihood per frame in nats summed over pitches, over every frame after the first of
   each test piece; frame accuracy of Bay et al. 2009) for LSTM, GRU and tanh RNN, each with
   one Bernoulli per pitch (the published setting) and with a NADE output (the pitches of a
   frame jointly, Boulanger-Lewandowski et al.'s RNN-NADE), beside the
   baselines fitted on the same train split: independent Bernoulli per pitch, "repeat the
   previous frame", an n-gram over frames. The published numbers on the original JSB split
   (Chung et al. 2014: tanh 9.19, LSTM 8.67, GRU 8.54) are an anchor only: that set is
   transposed to C and split differently.
2. **Events** (16th-note grid, Performance-RNN events): NLL per event and per second of the
   event model against an n-gram over events.
3. **Generation**: musical statistics of ``--samples`` pieces of 16 bars from the GRU + NADE
   frame model and from the frame n-gram, each as a distance to the test chorales (in units of the
   test set's own spread; :func:`rnnkit.music.metrics.statistics_distance`), with held-out
   Bach (the train split) as the reference point.
4. **Harmonisation**: the harmonizer given each test chorale's soprano: per-voice accuracy
   and NLL per token (teacher-forced); then its decoded harmonies, greedy and with the
   voice-leading penalty (the default 3 nats of ``rnnkit music harmonize``, chosen on 20 valid
   chorales; greedy and beam 4): voice-leading counts per 100 chord changes against Bach's
   own test chorales, chord changes per Bach's, and the share of frames whose alto, tenor and
   bass token equals Bach's.
5. **Folk melodies** (``--part folk``): the event LSTM trained on the Essen folk songs (split
   by tune name, as the chorales), NLL per event and per second on the held-out tunes against
   an n-gram over events (order by valid), and the musical statistics of ``--samples``
   generated melodies of 8 bars, from the LSTM and from the n-gram, as distances to the test
   tunes' (train-split tunes as the reference point). Written to ``--folk-out``.
6. Training time of every model.

Three generated MIDI / WAV / PNG triples go to ``--examples`` (WAV when fluidsynth is there).

Run: ``python benchmarks/music.py`` (about an hour on 2 CPU cores with ``--minutes 4`` per
chorale model and ``--folk-minutes 15`` for the folk LSTM, the defaults); ``--minutes 1
--folk-minutes 1`` for a quick look; ``--part chorales|harmony|folk``
for one part (``harmony``: the harmonizer alone; results are merged into the JSON files).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
import warnings

import numpy as np

#: the frame models' cells, each run with one Bernoulli per pitch and with a NADE output
FRAME_CELLS = {"LSTM": "lstm", "GRU": "gru", "tanh RNN": "elman"}
PUBLISHED = {"tanh RNN": 9.19, "LSTM": 8.67, "GRU": 8.54}  # Chung et al. 2014, JSB test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=4.0,
                        help="training budget per model (default 4)")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results/music_chorales.json")
    parser.add_argument("--examples", default="examples/music")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", choices=("all", "chorales", "harmony", "folk"),
                        default="all", help="what to run (default: all)")
    parser.add_argument("--folk-minutes", type=float, default=15.0,
                        help="training budget of the folk event LSTM (default 15: 6,805 "
                             "tunes; the issue's limit per model)")
    parser.add_argument("--folk-out", default="benchmarks/results/music_folk.json")
    args = parser.parse_args()
    import torch

    from rnnkit.music.corpus import chorales, split

    torch.set_num_threads(1)  # steadier than 2 on a shared machine (OpenMP spin-waits)
    warnings.filterwarnings("ignore", message="left out")
    if args.part in ("all", "folk"):
        _merge_json(args.folk_out, folk_table(args.folk_minutes, args.samples, args.seed))
        if args.part == "folk":
            return
    pieces = chorales()
    parts = split(pieces)
    train, valid, test = parts["train"], parts["valid"], parts["test"]
    print(f"{len(pieces)} chorales: train {len(train)}, valid {len(valid)}, test {len(test)} "
          f"(split by piece name)")
    results: dict = {"split": {k: len(v) for k, v in parts.items()}, "minutes": args.minutes}
    work = tempfile.mkdtemp(prefix="music_bench_")
    ckpts = {}
    runs = (*((name + nade, "frames", cell) for nade in ("", " + NADE")
              for name, cell in FRAME_CELLS.items()),
            ("events", "events", "lstm"), ("harmonizer", "harmonizer", "gru"))
    if args.part == "harmony":
        runs = runs[-1:]
    for name, model, cell in runs:
        ckpts[name], results.setdefault("train_seconds", {})[name] = train_one(
            model, cell, train, valid, os.path.join(work, name.replace(" ", "_")),
            args.minutes, args.seed, nade=name.endswith("NADE"))
    if args.part == "harmony":
        results["harmonization"] = harmony_table(ckpts["harmonizer"], test)
        _merge_json(args.out, results)
        return
    results["frames"] = frames_table(ckpts, train, valid, test)
    results["events"] = events_table(ckpts["events"], train, valid, test)
    results["generation"] = generation_table(ckpts["GRU + NADE"], train, valid, test,
                                             args.samples, args.seed)
    results["harmonization"] = harmony_table(ckpts["harmonizer"], test)
    print("\ntraining time (s):", {k: round(v) for k, v in results["train_seconds"].items()})
    write_examples(ckpts, test, args.examples, args.seed)
    _merge_json(args.out, results)


def _merge_json(path: str, results: dict) -> None:
    """Write ``results`` into the JSON file at ``path``, keeping the keys it does not set
    (one level down too: a part's ``train_seconds`` joins the other models')."""
    from rnnkit.atomic import merge_json

    merge_json(path, results, nested=("train_seconds",))
    print(f"wrote {path}")


def train_one(model: str, cell: str, train, valid, out_dir: str, minutes: float, seed: int,
              nade: bool = False):
    from rnnkit.music.frames import FrameModelConfig
    from rnnkit.music.harmonizer import HarmonizerConfig
    from rnnkit.music.training import load_music, train_music
    from rnnkit.train import TrainConfig

    config = {"frames": FrameModelConfig(n_pitches=1, cell=cell,
                                         output="nade" if nade else "independent"),
              "harmonizer": HarmonizerConfig(n_pitches=1, cell=cell)}.get(model)
    if model == "events":
        from rnnkit.music.events import EventModelConfig

        config = EventModelConfig(vocab_size=4, cell=cell)
    tc = TrainConfig(epochs=1000, max_time=60 * minutes, lr=3e-3, clip_norm=5.0,
                     out_dir=out_dir, progress=False, plot=False, seed=seed, eval_every=100,
                     card=False)
    t0 = time.perf_counter()
    train_music(model, train, valid, config, tc)
    seconds = time.perf_counter() - t0
    return load_music(os.path.join(out_dir, "best.pt")), seconds


def _rolls(ckpt, pieces) -> list[np.ndarray]:
    """The test pieces as the frame model reads them (in its range, on its grid)."""
    from rnnkit.music.data import encode_pieces

    variants, _ = encode_pieces(pieces, ckpt.encoding, augment=False, warn=False)
    return [v[0].data for v in variants]


def frames_table(ckpts, train, valid, test) -> dict:
    from rnnkit.music.baselines import BernoulliFrames, NGramFrames, RepeatFrames
    from rnnkit.music.training import evaluate_music

    ref = ckpts["GRU"]
    tr, va, te = (_rolls(ref, p) for p in (train, valid, test))
    rows = {}
    for name in (n + nade for nade in ("", " + NADE") for n in FRAME_CELLS):
        r = evaluate_music(ckpts[name], test)
        rows[name] = {"nll": r["nll_per_frame"], "accuracy": r["frame_accuracy"],
                      "frames": r["frames"]}
    orders = {n: NGramFrames(order=n).fit(tr).evaluate(va)["nll_per_frame"] for n in (1, 2, 3, 4)}
    best = min(orders, key=orders.get)
    for name, base in (("Bernoulli per pitch", BernoulliFrames()),
                       ("repeat previous frame", RepeatFrames(tied=False)),
                       (f"{best}-gram over frames (order by valid)", NGramFrames(order=best))):
        r = base.fit(tr).evaluate(te)
        rows[name] = {"nll": r["nll_per_frame"], "accuracy": r["frame_accuracy"],
                      "frames": r["frames"]}
    print(f"\nFrames (quarter notes, {rows['GRU']['frames']} test frames): NLL per frame "
          f"(nats) and frame accuracy")
    print("| model | test NLL/frame | frame accuracy | published (JSB split) |")
    print("|---|---|---|---|")
    for name, r in rows.items():
        pub = PUBLISHED.get(name)
        print(f"| {name} | {r['nll']:.2f} | {r['accuracy']:.3f} | "
              f"{pub if pub is not None else ''} |")
    return rows


def events_table(ckpt, train, valid, test) -> dict:
    from rnnkit.music.baselines import NGramEvents
    from rnnkit.music.data import encode_pieces
    from rnnkit.music.training import evaluate_music

    rnn = evaluate_music(ckpt, test)
    enc = ckpt.encoding
    tr, va, te = ([v[0].data.tolist() for v in encode_pieces(p, enc, warn=False)[0]]
                  for p in (train, valid, test))
    V = len(enc.encoder)
    orders = {n: NGramEvents(V, order=n).fit(tr).evaluate(va)["nll_per_event"]
              for n in (2, 3, 4, 5, 6)}
    best = min(orders, key=orders.get)
    ng = NGramEvents(V, order=best).fit(tr).evaluate(te)
    per_second = ng["nll_per_event"] * rnn["events"] / rnn["seconds"]
    rows = {"event RNN (LSTM)": {"nll_per_event": rnn["nll_per_event"],
                                 "nll_per_second": rnn["nll_per_second"]},
            f"{best}-gram over events (order by valid)": {
                "nll_per_event": ng["nll_per_event"], "nll_per_second": per_second}}
    print(f"\nEvents (16th grid, {rnn['events']} test events, {rnn['seconds']:.0f} s of music)")
    print("| model | NLL/event | NLL/second |")
    print("|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['nll_per_event']:.3f} | {r['nll_per_second']:.2f} |")
    return rows


def generation_table(ckpt, train, valid, test, n: int, seed: int) -> dict:
    from rnnkit.music.baselines import NGramFrames
    from rnnkit.music.encoding import PianoRoll
    from rnnkit.music.metrics import musical_statistics
    from rnnkit.music.training import generate_music

    enc = ckpt.encoding
    roll = PianoRoll(enc.grid, enc.low, enc.high)
    # every set passes through the same piano roll (a repeated note merges with the one before)
    test_set = [roll.decode(r) for r in _rolls(ckpt, test)]
    held_out = [roll.decode(r) for r in _rolls(ckpt, train)]
    bars = 16 * 4
    rnn = [generate_music(ckpt, bars, seed=seed + i, temperature=1.0) for i in range(n)]
    rnn = [roll.decode(roll.encode(p)) for p in rnn]
    orders = {o: NGramFrames(order=o).fit(_rolls(ckpt, train)).evaluate(
        _rolls(ckpt, valid))["nll_per_frame"] for o in (2, 3, 4)}
    ngram = NGramFrames(order=min(orders, key=orders.get)).fit(_rolls(ckpt, train))
    base = [roll.decode(ngram.sample(bars, seed=seed + i)) for i in range(n)]
    reference = musical_statistics(test_set)
    return distance_table(
        {"Bach, train split (reference point)": held_out, "GRU + NADE frame model": rnn,
         "n-gram over frames": base}, reference,
        f"\nGeneration: {n} pieces of 16 bars each; distance of their statistics to the test "
        f"chorales' (units of the test set's spread; lower = closer to Bach)", "pieces")


def distance_table(sets: dict, reference: dict, title: str, what: str) -> dict:
    """Print and return each set's statistics distance to ``reference`` (one row a set)."""
    from rnnkit.music.metrics import musical_statistics, statistics_distance

    rows = {}
    for name, pieces in sets.items():
        d = statistics_distance(musical_statistics(pieces), reference)
        rows[name] = {k: float(v) for k, v in d.items()
                      if isinstance(v, (int, float, np.floating))}
    keys = [k for k in next(iter(rows.values())) if k != "overall"]
    print(title)
    print(f"| {what} | overall | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 2) + "|")
    for name, d in rows.items():
        print(f"| {name} | {d['overall']:.2f} | " + " | ".join(f"{d[k]:.2f}" for k in keys)
              + " |")
    return rows


def harmony_table(ckpt, test) -> dict:
    from rnnkit.music.encoding import VoiceFrames, quantize
    from rnnkit.music.metrics import voice_leading
    from rnnkit.music.training import evaluate_music, harmonize_melody, melody_of

    scores = evaluate_music(ckpt, test)
    print(f"\nHarmonisation of the {scores['pieces']} test sopranos: teacher-forced NLL "
          f"{scores['nll_per_token']:.3f} nats per voice token; accuracy alto "
          f"{scores['alto_accuracy']:.3f}, tenor {scores['tenor_accuracy']:.3f}, bass "
          f"{scores['bass_accuracy']:.3f}")
    kinds = ("parallel_fifths", "parallel_octaves", "voice_crossings", "out_of_range")
    decoders = {"greedy": {"voice_leading_penalty": 0.0},
                "greedy, penalty 3": {"voice_leading_penalty": 3.0},
                "beam 4, penalty 3": {"beam_size": 4, "voice_leading_penalty": 3.0}}
    enc = ckpt.encoding
    frames = VoiceFrames(enc.grid, 4, 0, 127)
    rows: dict = {"bach": {k: 0 for k in (*kinds, "transitions")}}
    rows.update({name: {k: 0 for k in (*kinds, "transitions")} for name in decoders})
    agree: dict = {name: [] for name in decoders}
    pieces = [p for p in test if p.num_voices() == 4]
    for piece in pieces:
        v = voice_leading(piece)
        for k in rows["bach"]:
            rows["bach"][k] += v[k]
        try:
            bach = frames.encode(quantize(piece, enc.grid))
        except ValueError:  # a voice with overlapping notes: no frame-by-frame agreement
            bach = None
        for name, kw in decoders.items():
            ours, _ = harmonize_melody(ckpt, melody_of(piece), **kw)
            v = voice_leading(ours)
            for k in rows[name]:
                rows[name][k] += v[k]
            if bach is not None:
                mine = frames.encode(ours)
                n = min(len(mine), len(bach))
                agree[name].append((mine[:n, 1:] == bach[:n, 1:]).sum(0) / n)
    print(f"\nVoice leading of the decoded harmonies ({len(pieces)} test chorales), per 100 "
          f"chord changes; agreement = share of frames whose alto/tenor/bass token is Bach's")
    print("| harmony | parallel fifths | parallel octaves | crossings | out of range | "
          "chord changes (Bach = 1) | agreement A/T/B |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        c = {k: 100 * r[k] / max(r["transitions"], 1) for k in kinds}
        r["per_100_changes"] = c
        r["changes_vs_bach"] = r["transitions"] / max(rows["bach"]["transitions"], 1)
        a = np.mean(agree[name], 0) if name in agree else np.ones(3)
        r["agreement"] = [float(x) for x in a]
        print(f"| {name} | {c['parallel_fifths']:.2f} | {c['parallel_octaves']:.2f} | "
              f"{c['voice_crossings']:.2f} | {c['out_of_range']:.2f} | "
              f"{r['changes_vs_bach']:.2f} | " + "/".join(f"{x:.3f}" for x in a) + " |")
    return {"scores": scores, "decoded": rows}


def folk_table(minutes: float, samples: int, seed: int) -> dict:
    """The event LSTM on Essen folk songs against an n-gram over events (see the module
    docstring, part 5)."""
    from rnnkit.music.baselines import NGramEvents
    from rnnkit.music.corpus import folk_melodies, split
    from rnnkit.music.data import encode_pieces
    from rnnkit.music.encoding import quantize
    from rnnkit.music.events import BOS, EOS
    from rnnkit.music.metrics import musical_statistics
    from rnnkit.music.training import _finish, evaluate_music, generate_music

    tunes = folk_melodies()
    parts = split(tunes)
    train, valid, test = parts["train"], parts["valid"], parts["test"]
    print(f"\n{len(tunes)} Essen folk songs: train {len(train)}, valid {len(valid)}, test "
          f"{len(test)} (split by tune name)")
    work = tempfile.mkdtemp(prefix="music_folk_")
    ckpt, seconds = train_one("events", "lstm", train, valid, os.path.join(work, "events"),
                              minutes, seed)
    rnn = evaluate_music(ckpt, test)
    enc = ckpt.encoding
    tr, va, te = ([v[0].data.tolist() for v in encode_pieces(p, enc, warn=False)[0]]
                  for p in (train, valid, test))
    V = len(enc.encoder)
    orders = {n: NGramEvents(V, order=n).fit(tr).evaluate(va)["nll_per_event"]
              for n in (2, 3, 4, 5, 6, 8)}
    best = min(orders, key=orders.get)
    ngram = NGramEvents(V, order=best).fit(tr)
    ng = ngram.evaluate(te)
    per_second = ng["nll_per_event"] * rnn["events"] / rnn["seconds"]
    scores = {"event LSTM": {"nll_per_event": rnn["nll_per_event"],
                             "nll_per_second": rnn["nll_per_second"]},
              f"{best}-gram over events (order by valid)": {
                  "nll_per_event": ng["nll_per_event"], "nll_per_second": per_second}}
    print(f"Events on the held-out tunes ({rnn['events']} events, {rnn['seconds']:.0f} s)")
    print("| model | NLL/event | NLL/second |")
    print("|---|---|---|")
    for name, r in scores.items():
        print(f"| {name} | {r['nll_per_event']:.3f} | {r['nll_per_second']:.2f} |")

    length = 32.0  # quarter notes: 8 bars of 4/4
    vocab = enc.encoder

    def ngram_piece(i: int):
        ids = [BOS]
        for k in range(50):  # EOS drawn early: keep going (the LSTM never draws EOS either)
            new = ngram.sample(512, prime=ids, seed=seed + 1000 * i + k)
            ids += [t for t in new if t != EOS]
            piece = vocab.decode(ids + [EOS])
            if piece.end() >= length:
                break
        return _finish(piece, length, name=f"ngram{i}")

    def cut(piece):  # every set through the same grid, at most 8 bars
        return _finish(quantize(piece, enc.grid), length, name=piece.name)

    sets = {"folk, train split (reference point)": [cut(p) for p in train[:samples]],
            "event LSTM": [generate_music(ckpt, length, seed=seed + i, temperature=1.0)
                           for i in range(samples)],
            f"{best}-gram over events": [ngram_piece(i) for i in range(samples)]}
    reference = musical_statistics([cut(p) for p in test])
    rows = distance_table(
        sets, reference, f"Generation: {samples} melodies of 8 bars; distance of their "
        f"statistics to the test tunes' (units of the test set's spread; lower = closer)",
        "melodies")
    return {"split": {k: len(v) for k, v in parts.items()}, "minutes": minutes,
            "train_seconds": seconds, "events": scores, "ngram_orders_valid": orders,
            "generation": rows}


def write_examples(ckpts, test, folder: str, seed: int) -> None:
    from rnnkit.music.render import piano_roll_png, render_wav
    from rnnkit.music.score import write_midi
    from rnnkit.music.training import generate_music, harmonize_melody, melody_of

    os.makedirs(folder, exist_ok=True)
    made = {"frames_gru_nade": generate_music(ckpts["GRU + NADE"], 64, seed=seed),
            "events_lstm": generate_music(ckpts["events"], 64, seed=seed, temperature=0.9),
            "harmonized_" + re.sub(r"[^A-Za-z0-9]+", "_", test[0].name).strip("_"):
                harmonize_melody(ckpts["harmonizer"], melody_of(test[0]))[0]}
    for name, piece in made.items():
        base = os.path.join(folder, name)
        write_midi(piece, base + ".mid")
        piano_roll_png(piece, base + ".png")
        try:
            _mono(render_wav(piece, base + ".wav", rate=16000))
        except (FileNotFoundError, RuntimeError, OSError) as err:
            print(f"no WAV for {name}: {err}")
    print(f"examples: {sorted(os.listdir(folder))}")


def _mono(path: str) -> None:
    """Rewrite the stereo WAV at ``path`` as mono (the mean of the channels): the examples
    stay small in the repository (16 kHz mono, as their README says)."""
    import wave

    with wave.open(path) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    mono = data.reshape(-1, channels).mean(axis=1).round().astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(mono.tobytes())


if __name__ == "__main__":
    main()
