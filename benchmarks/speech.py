"""Speech recognition on real human speech never trained on, side by side with CMU Sphinx
(``pocketsphinx`` 5, its bundled US-English acoustic model, LM and dictionary).

Data (Debian packages, ``make speech-data``), split before any choice was made:

* **English**: one US-English speaker (asterisk-core-sounds-en, 8 kHz). The fixed split of
  :func:`rnnkit.speech.corpora.asterisk_split`: the ten digit clips ``digits/0..9`` are test
  material only; the other clips fall in ``train`` / ``test`` halves by a stable hash, and
  ``train`` loses every clip whose text a test clip has. Training audio = the ``train`` half's
  real clips (90%; the other 10% is validation, by hash) + espeak-ng/flite speaking the
  ``train`` half's texts and random digit strings (never test audio, never test prompts).
* Test 1, **connected digits**: strings of 3-10 digits joined from the speaker's own ten digit
  clips with natural pauses (:func:`~rnnkit.speech.corpora.connected_digits`). Sphinx runs
  with a JSGF digit grammar; rnnkit with the ten digit words as its lexicon.
* Test 2, **open prompts**: the ``test`` half. Sphinx with its own LM; rnnkit with an n-gram
  LM of its training texts (a word 3-gram or a character 6-gram, chosen with its weight on
  the validation clips).
* Test 3, **Dutch cross-speaker** (fillets-ng-data-nl): train on the big fish's clips, test on
  the small fish's (another voice). Sphinx has no Dutch model.
* Test 4, **streaming**: a unidirectional model, per-frame latency and real-time factor on 1
  thread; its WER beside the bidirectional model's.

Every model trains for a wall-clock budget (``--minutes``): the number of steps is set from a
measured step time so the cosine schedule ends with the budget. Run from the project root::

    python benchmarks/speech.py                      # everything (~75 min on 2 cores)
    python benchmarks/speech.py --tasks digits prompts --minutes 10
    python benchmarks/speech.py --quick              # a smoke run (~5 min)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rnnkit.ngram import NGramLM  # noqa: E402
from rnnkit.speech import (  # noqa: E402
    DecodeConfig,
    SpeechConfig,
    SpeechRecognizer,
    alphabet_from_texts,
    corpora,
    fillets,
    speech_train,
    tts,
)
from rnnkit.speech.augment import telephone  # noqa: E402

DIGITS = corpora.DIGIT_WORDS


def _hash_bit(key: str, mod: int) -> int:
    return hashlib.sha1(key.encode()).digest()[0] % mod


def digit_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(DIGITS) for _ in range(rng.randint(1, 10))) for _ in range(n)]


def english_data(args) -> dict:
    """The English splits: real train/valid clips, the TTS set, and the two test sets."""
    split = corpora.asterisk_split(corpora.asterisk_corpus())
    real_train = [u for u in split["train"] if _hash_bit(u.id, 10) != 0]
    valid = [u for u in split["train"] if _hash_bit(u.id, 10) == 0]
    texts = sorted({u.text for u in real_train}) + digit_texts(args.digit_texts, seed=1)
    out = os.path.join(args.cache, "tts_en")
    manifest = tts.build_tts_dataset(texts, out, per_text=args.per_text, seed=0)
    synth = tts.read_manifest(manifest)
    digits = corpora.connected_digits(corpora.asterisk_digit_clips(split["digits"]),
                                      n=args.n_digits, seed=2, rate=16000)
    return {"real": real_train, "valid": valid, "tts": synth, "digits": digits,
            "prompts": split["test"], "texts": [u.text for u in real_train] + texts}


def budget_steps(rec: SpeechRecognizer, data, seconds: float) -> int:
    """Steps that fit ``seconds`` at the measured time of a few training steps."""
    per_step = rec.step_seconds(data)
    return max(50, int(seconds / per_step))


def train_model(args, data: dict, bidirectional: bool, minutes: float, name: str,
                f_max: float | None = 4000.0):
    """Train one recogniser for ``minutes`` (``f_max=4000``: a telephone-band model, since
    the English test audio is 8 kHz)."""
    cfg = SpeechConfig(f_max=f_max, n_mels=64, hidden_size=args.hidden, num_layers=args.layers,
                       bidirectional=bidirectional,
                       normalize="utterance" if bidirectional else "global",
                       batch_size=16)
    alphabet = alphabet_from_texts(data["texts"])
    rec = SpeechRecognizer(cfg, alphabet, lm_unit="word")
    saved = os.path.join(args.cache, f"{name}-{args.hidden}x{args.layers}-{minutes:g}min.pt")
    if args.reuse and os.path.exists(saved):
        rec = SpeechRecognizer.load(saved)
        print(f"[{name}] reusing {saved}: {rec.history}", flush=True)
        return rec, {**rec.history, "reused": saved}

    def phone(samples, rate):  # the test audio is 8 kHz telephone speech
        return telephone(samples, rate)

    t0 = time.perf_counter()
    train = rec.prepare(data["real"], desc=f"{name}: real")
    train += rec.prepare(data["real"], augment=_speed_copies(), copies=2, desc="speed")
    if data["tts"]:
        train += rec.prepare(data["tts"], augment=phone, copies=1, keep_original=False,
                             desc=f"{name}: tts")
    valid = rec.prepare(data["valid"], desc="valid")
    prep = time.perf_counter() - t0
    steps = budget_steps(rec, train, minutes * 60)
    rec.config.train = speech_train(steps, max_time=minutes * 60 * 1.5, eval_every=max(
        50, steps // 10), seed=0, progress=not args.no_progress)
    t0 = time.perf_counter()
    rec.fit(train, valid)
    fit = time.perf_counter() - t0
    rec.lm = NGramLM(3).fit([t.split() for t in data["texts"]])
    val = rec.evaluate(data["valid"])  # the only quality number choices may look at
    rec.history.update(train_minutes=fit / 60, prep_seconds=prep, valid_wer=val.wer,
                       valid_cer=val.cer)
    print(f"[{name}] validation (greedy): WER {val.wer:.2%} CER {val.cer:.2%}", flush=True)
    rec.save(saved)
    hours = sum(len(f) for f, _ in train) * rec.config.hop_ms / 1000 / 3600
    print(f"[{name}] {len(train)} training utterances ({hours:.2f} h of features), "
          f"{rec.history['steps']} steps, features {prep:.0f} s, training {fit / 60:.1f} min",
          flush=True)
    return rec, {**rec.history, "train_hours_audio": hours}


def tune_lm(rec, valid, beam: int, texts: list[str]) -> DecodeConfig:
    """The LM (a word 3-gram or a character 6-gram of the training texts), its weight and the
    word bonus with the lowest WER on the validation clips (the test sets never see this
    choice); ``rec`` keeps the chosen LM."""
    lms = {"word": NGramLM(3).fit([t.split() for t in texts]),
           "char": NGramLM(6).fit([list(t) for t in texts])}
    best = None
    for unit, lm in lms.items():
        rec.lm, rec.lm_unit = lm, unit
        for w in (0.0, 0.3, 0.6, 1.0, 1.5, 2.0):
            for bonus in (0.0, 1.0, 2.0):
                d = DecodeConfig(beam_size=beam, lm_weight=w, word_bonus=bonus)
                wer = rec.evaluate(valid, d).wer
                if best is None or wer < best[0]:
                    best = (wer, unit, d)
    wer, unit, d = best
    rec.lm, rec.lm_unit = lms[unit], unit
    print(f"  LM chosen on validation: {unit} n-gram, lm_weight {d.lm_weight}, word_bonus "
          f"{d.word_bonus} (validation WER {wer:.2%})", flush=True)
    return d


def _speed_copies():
    from rnnkit.speech.augment import speed_perturb

    gen = random.Random(0)

    def aug(samples, rate):
        return speed_perturb(samples, gen.choice([0.9, 1.1]))

    return aug


def sphinx_eval(mode: str, examples, rec_rate: int = 16000) -> dict:
    import jiwer

    from speech_sphinx import SphinxRecognizer

    sphinx = SphinxRecognizer(mode=mode)
    refs, hyps, audio_s, t = [], [], 0.0, 0.0
    for audio, ref in examples:
        samples = audio if isinstance(audio, torch.Tensor) else _load16k(audio)
        t0 = time.perf_counter()
        hyp = sphinx.transcribe(samples.numpy())
        t += time.perf_counter() - t0
        audio_s += len(samples) / rec_rate
        refs.append(ref)
        hyps.append(" ".join("zero" if w == "oh" else w for w in hyp.split()))
    return {"wer": jiwer.wer(refs, hyps), "cer": jiwer.cer(refs, hyps), "rtf": t / audio_s,
            "examples": list(zip(refs[:3], hyps[:3]))}


def _load16k(path):
    from rnnkit.speech.audio import load_audio

    return load_audio(path, 16000)


def ours_eval(rec, examples, decode: DecodeConfig) -> dict:
    r = rec.evaluate(examples, decode)
    print(f"  rnnkit {decode}: WER {r.wer:.2%} CER {r.cer:.2%} RTF {r.rtf:.3f}", flush=True)
    return {"wer": r.wer, "cer": r.cer, "rtf": r.rtf,
            "examples": [(x["reference"], x["hypothesis"]) for x in r.rows[:3]]}


def stream_latency(rec, examples, chunk_ms: float = 10.0) -> dict:
    """Per-chunk compute time feeding 10 ms chunks, and the real-time factor."""
    times, audio_s = [], 0.0
    for audio, _ in examples:
        samples = rec.waveform(audio)
        session = rec.stream()
        step = int(rec.config.rate * chunk_ms / 1000)
        for i in range(0, len(samples), step):
            t0 = time.perf_counter()
            session.push(samples[i:i + step])
            times.append(time.perf_counter() - t0)
        audio_s += len(samples) / rec.config.rate
    return {"chunk_ms": chunk_ms,
            "ms_per_10ms_frame_median": 1000 * float(np.median(times)),
            "ms_per_10ms_frame_p95": 1000 * float(np.percentile(times, 95)),
            "rtf": sum(times) / audio_s}


def row(name, res):
    return f"| {name} | {res['wer']:.2%} | {res['cer']:.2%} | {res['rtf']:.3f} |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["digits", "prompts", "dutch", "stream"])
    p.add_argument("--minutes", type=float, default=25.0, help="training budget per model")
    p.add_argument("--stream-minutes", type=float, default=15.0)
    p.add_argument("--hidden", type=int, default=192)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n-digits", type=int, default=300)
    p.add_argument("--digit-texts", type=int, default=600)
    p.add_argument("--per-text", type=int, default=3)
    p.add_argument("--beam", type=int, default=16)
    p.add_argument("--cache", default=os.path.join(".cache", "speech"))
    p.add_argument("--out", default=os.path.join("benchmarks", "results", "speech.json"))
    p.add_argument("--quick", action="store_true", help="tiny budgets: a smoke run")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--skip-sphinx", action="store_true")
    p.add_argument("--reuse", action="store_true",
                   help="load models this script saved in --cache instead of training")
    args = p.parse_args()
    if args.quick:
        args.minutes, args.stream_minutes, args.n_digits = 1.0, 1.0, 20
        args.digit_texts, args.per_text, args.hidden, args.layers = 60, 1, 64, 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results: dict = {"settings": vars(args)}
    greedy = DecodeConfig()
    en_tasks = {"digits", "prompts", "stream"} & set(args.tasks)
    if en_tasks:
        data = english_data(args)
        print(f"English: {len(data['real'])} real training clips, {len(data['valid'])} "
              f"validation, {len(data['tts'])} TTS clips; tests: {len(data['digits'])} digit "
              f"strings, {len(data['prompts'])} prompts", flush=True)
        prompts = [(u.path, u.text) for u in data["prompts"]]
        lexicon = DecodeConfig(beam_size=args.beam, lexicon=list(DIGITS))
        if {"digits", "prompts"} & set(args.tasks):
            rec, info = train_model(args, data, True, args.minutes, "bidirectional")
            results["bi"] = info
            if "digits" in args.tasks:
                results["digits"] = {"rnnkit greedy": ours_eval(rec, data["digits"], greedy),
                                     "rnnkit beam + digit lexicon":
                                         ours_eval(rec, data["digits"], lexicon)}
                if not args.skip_sphinx:
                    results["digits"]["pocketsphinx + digit grammar"] = sphinx_eval(
                        "digits", data["digits"])
            if "prompts" in args.tasks:
                lm = tune_lm(rec, data["valid"], args.beam, data["texts"])
                results["prompts"] = {"rnnkit greedy": ours_eval(rec, prompts, greedy),
                                      "rnnkit beam + n-gram LM":
                                          ours_eval(rec, prompts, lm)}
                if not args.skip_sphinx:
                    results["prompts"]["pocketsphinx + its LM"] = sphinx_eval("lm", prompts)
        if "stream" in args.tasks:
            uni, info = train_model(args, data, False, args.stream_minutes, "unidirectional")
            results["uni"] = info
            torch.set_num_threads(1)
            results["stream"] = {
                "latency": stream_latency(uni, data["digits"][:20]),
                "latency_100ms": stream_latency(uni, data["digits"][:20], chunk_ms=100.0),
                "digits greedy": ours_eval(uni, data["digits"], greedy),
                "prompts greedy": ours_eval(uni, prompts, greedy)}
            torch.set_num_threads(args.threads)
    if "dutch" in args.tasks:
        split = fillets.fillets_split(fillets.fillets_corpus())
        train = [u for u in split["train"] if _hash_bit(u.id, 10) != 0]
        valid = [u for u in split["train"] if _hash_bit(u.id, 10) == 0]
        data = {"real": train, "valid": valid, "tts": [], "texts": [u.text for u in train]}
        print(f"Dutch: {len(train)} training clips (speaker v), {len(valid)} validation, "
              f"{len(split['test'])} test clips (speaker m)", flush=True)
        rec, info = train_model(args, data, True, args.minutes, "dutch", f_max=None)
        results["dutch_info"] = info
        test = [(u.path, u.text) for u in split["test"]]
        lm = tune_lm(rec, valid, args.beam, data["texts"])
        results["dutch"] = {"rnnkit greedy": ours_eval(rec, test, greedy),
                            "rnnkit beam + n-gram LM": ours_eval(rec, test, lm)}
    report(results)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1, default=str)
    print(f"wrote {args.out}")


def report(results: dict) -> None:
    for task in ("digits", "prompts", "dutch"):
        if task in results:
            print(f"\n### {task}\n| system | WER | CER | RTF |\n|---|---|---|---|")
            for name, res in results[task].items():
                print(row(name, res))
            for name, res in results[task].items():
                for ref, hyp in res["examples"][:2]:
                    print(f"  {name}: ref {ref!r} -> {hyp!r}")
    if "stream" in results:
        s = results["stream"]
        lat = s["latency"]
        print(f"\n### streaming (unidirectional, 1 thread)\nper 10 ms chunk: median "
              f"{lat['ms_per_10ms_frame_median']:.2f} ms, p95 {lat['ms_per_10ms_frame_p95']:.2f} "
              f"ms, RTF {lat['rtf']:.3f}")
        if "latency_100ms" in s:
            lat = s["latency_100ms"]
            print(f"per 100 ms chunk: median {lat['ms_per_10ms_frame_median']:.2f} ms, RTF "
                  f"{lat['rtf']:.3f}")
        print(row("unidirectional greedy, digits", s["digits greedy"]))
        print(row("unidirectional greedy, prompts", s["prompts greedy"]))
    for key in ("bi", "uni", "dutch_info"):
        if key in results:
            print(f"{key}: {results[key]}")


if __name__ == "__main__":
    main()
