r"""``rnnkit speech``: train, run and evaluate a CTC speech recogniser (a thin layer over
:mod:`rnnkit.speech`).

    rnnkit speech data --texts corpus.txt --out tts/            # synthesise a training set
    rnnkit speech train --data tts/ --valid asterisk:train --out asr.pt
    rnnkit speech transcribe asr.pt a.wav b.flac --beam 16 --png a.png
    rnnkit speech transcribe asr-uni.pt long.wav --stream
    rnnkit speech evaluate asr.pt --data asterisk:test

``--data`` (and ``--valid``) is a ``manifest.tsv`` (``path<TAB>text`` per line, paths relative
to the file), a folder holding one, or a corpus shipped by Debian packages (``make
speech-data``): ``asterisk:train``, ``asterisk:test``, ``asterisk:digits`` (one US-English
speaker), ``fillets:train``, ``fillets:test`` (Dutch, two speakers). Every field of
:class:`~rnnkit.speech.config.SpeechConfig` is a flag ``--model.field`` and every field of its
:class:`~rnnkit.train.TrainConfig` ``--train.field``; both can be set in a TOML file
(``--config run.toml``); short flags: ``--cell``, ``--hidden-size``, ``--layers``,
``--steps``, ``--batch-size``, ``--seed``, ``--unidirectional``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

from .options import add_command_options, add_compute_flag, build_configs, metered, with_defaults
from .runs import check_output, check_writable

__all__ = ["register"]


ALIASES = {"model.cell": "--cell", "model.hidden_size": "--hidden-size",
           "model.num_layers": "--layers", "model.batch_size": "--batch-size",
           "train.max_steps": "--steps", "train.seed": "--seed"}
NOT_FLAGS = {"model.train"}


def _sections() -> dict[str, type]:
    from ..speech.config import SpeechConfig, speech_train
    from ..train import TrainConfig

    return {"model": SpeechConfig, "train": with_defaults(TrainConfig,
                                                           **speech_train().to_dict())}


def read_examples(spec: str, flag: str = "--data") -> list[Any]:
    """``spec`` (a manifest, a folder with ``manifest.tsv`` or ``corpus:split``) -> examples
    with ``.path`` and ``.text``."""
    from ..speech import corpora, fillets, tts

    if ":" in spec and not os.path.exists(spec):
        name, _, split = spec.partition(":")
        if name == "asterisk":
            splits = corpora.asterisk_split(corpora.asterisk_corpus())
        elif name == "fillets":
            splits = fillets.fillets_split(fillets.fillets_corpus())
        else:
            raise ValueError(f"{flag} {spec}: unknown corpus {name!r}; use asterisk:SPLIT, "
                             f"fillets:SPLIT or a manifest.tsv")
        if split not in splits:
            raise ValueError(f"{flag} {spec}: {name} has splits {sorted(splits)}")
        return list(splits[split])
    path = os.path.join(spec, "manifest.tsv") if os.path.isdir(spec) else spec
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{flag} {spec}: no such manifest (a manifest.tsv, a folder "
                                f"with one, or asterisk:train / fillets:test ...)")
    examples = tts.read_manifest(path)
    if not examples:
        raise ValueError(f"{flag} {spec}: {path} lists no clips; add path<TAB>text lines (or "
                         f"make a data set with `rnnkit speech data --texts lines.txt --out DIR`)")
    return examples


def _flag_names(err: ValueError) -> ValueError:
    """``err`` with the config fields it names (``hidden_size``) written as their flags
    (``--hidden-size``), so a bad setting is reported in the terms the user typed."""
    import re

    flags = {name.split(".")[1]: flag for name, flag in ALIASES.items()}
    for section, cls in _sections().items():
        for name in getattr(cls, "__dataclass_fields__", {}):
            if f"{section}.{name}" not in NOT_FLAGS:
                flags.setdefault(name, f"--{section}.{name}")
    msg = re.sub(r"^(" + "|".join(sorted(flags, key=len, reverse=True)) + r")\b",
                 lambda m: flags[m.group(1)], str(err))
    return type(err)(msg)


def _train(args: argparse.Namespace) -> int:
    from ..speech import ENGLISH_ALPHABET, SpeechRecognizer, alphabet_from_texts
    from ..train.distributed import is_main_process

    check_output(args.out, args.overwrite, "--out")
    if args.lm_order < 0:
        raise ValueError(f"--lm-order must be 0 (no LM) or an n-gram order >= 1, got "
                         f"{args.lm_order}; e.g. --lm-order 3")
    if args.lm_unit is not None and not args.lm_order:
        raise ValueError("--lm-unit sets the tokens of the LM that --lm-order N fits; add "
                         "--lm-order N (e.g. --lm-order 3) or drop --lm-unit")
    try:
        cfg = build_configs(args, _sections(), NOT_FLAGS, {})
        model_cfg = cfg["model"]
        model_cfg.train = cfg["train"]
        if "train.max_steps" in vars(args) and "train.warmup_steps" not in vars(args):
            from ..train.budget import retrain  # warm-up and log interval follow --steps

            model_cfg.train = retrain(cfg["train"], max_steps=cfg["train"].max_steps)
    except ValueError as err:
        raise _flag_names(err) from None
    if args.unidirectional:
        model_cfg.bidirectional, model_cfg.normalize = False, "global"
    train = read_examples(args.data)
    valid = read_examples(args.valid, "--valid") if args.valid else None
    # every English letter, plus whatever else the training texts use (Dutch diacritics): a
    # small --data set must not make the model unable to write a letter it never saw
    alphabet = alphabet_from_texts([u.text for u in train] + ["".join(ENGLISH_ALPHABET[2:])])
    if valid:
        _check_texts(valid, alphabet, "--valid", args.valid, error=True)
    rec = SpeechRecognizer(model_cfg, alphabet)
    main = is_main_process()  # under torchrun only rank 0 reports and writes --out
    if main:
        print(f"{len(train)} training utterances, alphabet of {len(alphabet)}"
              + (f", {len(valid)} validation" if valid else ""), file=sys.stderr)
    progress = model_cfg.train.progress and main
    data = rec.prepare(train, desc="train features", progress=progress)
    vdata = rec.prepare(valid, desc="valid features", progress=progress) if valid else None
    if args.lm_order:
        from ..ngram import NGramLM

        rec.lm_unit = args.lm_unit or "word"
        rec.lm = NGramLM(args.lm_order).fit(
            [u.text.split() if args.lm_unit == "word" else list(u.text) for u in train])
    rec.fit(data, vdata)
    if not main:
        return 0
    rec.save(args.out)
    print(f"wrote {args.out} ({rec.history['steps']} steps)")
    from ..train.trainer import write_card

    card = write_card(args.out)
    if card:
        print(f"wrote {card} (model card)", file=sys.stderr)
    return 0


def _check_texts(examples: list[Any], alphabet: list[str], flag: str, spec: str,
                 error: bool) -> None:
    """Transcripts of ``examples`` with characters outside ``alphabet``: an error (``error``)
    or a warning on stderr (evaluation: such references always count as errors)."""
    known = set(alphabet)
    bad = [u for u in examples if set(u.text) - known]
    if not bad:
        return
    chars = sorted(set().union(*(set(u.text) - known for u in bad)))
    where = getattr(bad[0], "id", "") or bad[0].text
    msg = (f"{flag} {spec}: {len(bad)} transcript(s) use characters the model cannot write: "
           f"{chars} (first: {where} {bad[0].text!r})")
    if error:
        raise ValueError(f"{msg}; write them like the --data texts (lower case, no "
                         f"punctuation: `rnnkit speech data` does this) or add such texts to "
                         f"--data")
    print(f"warning: {msg}; they count as errors in WER/CER, normalise the texts like the "
          f"training texts for a fair score", file=sys.stderr)


def _read_lexicon(path: str) -> list[str]:
    """The words of ``--lexicon FILE`` (whitespace separated), with errors that name the fix."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"--lexicon {path} is a folder; give a text file of words "
                                f"(one per line) or --lexicon digits")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--lexicon {path}: no such file; give a text file of words "
                                f"(one per line) or --lexicon digits")
    try:
        with open(path, encoding="utf-8-sig") as f:
            words = f.read().split()
    except UnicodeDecodeError:
        raise ValueError(f"--lexicon {path} is not UTF-8 text; give a text file of words "
                         f"(one per line), saved as UTF-8") from None
    if not words:
        raise ValueError(f"--lexicon {path} holds no words, so nothing could be recognised; "
                         f"put the allowed words in it (one per line) or drop --lexicon")
    return words


def _decode(args: argparse.Namespace, rec: Any):
    from ..speech.config import DecodeConfig

    lexicon = None
    if args.lexicon == "digits":
        from ..speech.corpora import DIGIT_WORDS

        lexicon = list(DIGIT_WORDS)
    elif args.lexicon:
        lexicon = _read_lexicon(args.lexicon)
    if lexicon is not None and not any(set(w) <= set(rec.alphabet) for w in lexicon):
        raise ValueError(f"--lexicon {args.lexicon}: no word in it can be spelled with the "
                         f"model's characters {rec.alphabet[1:]} (e.g. {lexicon[0]!r}), so "
                         f"nothing could be recognised; give words the model was trained on, "
                         f"written like its training texts (lower case)")
    try:  # DecodeConfig checks the values; its messages get the flags' names here
        decode = DecodeConfig(beam_size=args.beam, lm_weight=args.lm_weight,
                              word_bonus=args.word_bonus, lexicon=lexicon, nbest=args.nbest)
    except ValueError as err:
        raise ValueError(_decode_flags(str(err))) from None
    if args.lm_weight and rec.lm is None:
        raise ValueError(f"{args.checkpoint} has no language model for --lm-weight to weigh; "
                         f"retrain with `rnnkit speech train ... --lm-order 3` or drop "
                         f"--lm-weight")
    return decode


#: DecodeConfig's fields as the flags that set them
DECODE_FLAGS = {"beam_size": "--beam", "lm_weight": "--lm-weight", "word_bonus": "--word-bonus",
                "lexicon": "--lexicon", "nbest": "--nbest"}


def _decode_flags(msg: str) -> str:
    import re

    return re.sub(r"\b(" + "|".join(DECODE_FLAGS) + r")\b", lambda m: DECODE_FLAGS[m.group(1)],
                  msg)


def _load(path: str):
    from ..saving import read_state, rebuild
    from ..speech import SpeechRecognizer

    return rebuild(SpeechRecognizer, read_state(path, SpeechRecognizer.KIND,
                                                version=SpeechRecognizer.VERSION), path)


def _transcribe(args: argparse.Namespace) -> int:
    if args.png and len(args.audio) != 1:
        raise ValueError("--png draws one file; give one audio file with it")
    if args.png:
        check_writable(args.png, "--png")
    if args.stream:
        extra = [flag for flag, used in (("--beam", args.beam != 1), ("--nbest", args.nbest != 1),
                                         ("--lexicon", args.lexicon),
                                         ("--lm-weight", args.lm_weight),
                                         ("--word-bonus", args.word_bonus), ("--png", args.png))
                 if used]
        if extra:
            raise ValueError(f"--stream decodes greedily as the audio arrives, without "
                             f"{', '.join(extra)}; drop {'it' if len(extra) == 1 else 'them'}, "
                             f"or drop --stream")
    if args.chunk_ms is None:
        args.chunk_ms = 100.0
    elif not args.stream:
        raise ValueError("--chunk-ms sets the chunk length of --stream; add --stream or drop "
                         "--chunk-ms")
    rec = _load(args.checkpoint)
    decode = _decode(args, rec)
    if args.stream and not (math.isfinite(args.chunk_ms)
                            and rec.config.hop_ms <= args.chunk_ms <= 60_000):
        raise ValueError(f"--chunk-ms must be from {rec.config.hop_ms:g} (one feature hop) to "
                         f"60000 ms, got {args.chunk_ms}; e.g. --chunk-ms 100")
    with metered(args, "audio minutes", 1) as meter:
        for path in args.audio:
            _transcribe_one(args, rec, decode, path)
            meter.add(_minutes(path))
    return 0


def _minutes(path: str) -> float:
    import soundfile

    return float(soundfile.info(path).duration) / 60


def _transcribe_one(args: argparse.Namespace, rec: Any, decode: Any, path: str) -> None:
    if args.stream:
        _stream(rec, path, args.chunk_ms)
    else:
        out = rec.transcribe(path, decode)[0]
        for text, score in (out.nbest if args.nbest > 1 else [(out.text, out.score)]):
            print(f"{path}\t{' '.join(text.split())}" + (f"\t{score:.3f}" if args.nbest > 1
                                                         else ""))
        if args.png:
            from ..speech.plots import plot_emissions

            plot_emissions(rec, rec.waveform(path), out, args.png)
            print(f"wrote {args.png}", file=sys.stderr)


def _stream(rec, path: str, chunk_ms: float) -> None:
    """Feed ``path`` in ``chunk_ms`` pieces as if live; print characters as they are decided."""
    samples = rec.waveform(path)
    step = max(1, int(rec.config.rate * chunk_ms / 1000))
    session = rec.stream()
    print(f"{path}\t", end="", flush=True)
    for i in range(0, len(samples), step):
        print(session.push(samples[i:i + step]), end="", flush=True)
    print()


def _evaluate(args: argparse.Namespace) -> int:
    rec = _load(args.checkpoint)
    decode = _decode(args, rec)
    examples = read_examples(args.data)
    _check_texts(examples, rec.alphabet, "--data", args.data, error=False)
    result = rec.evaluate(examples, decode, progress=True)
    if args.per_utterance:
        print("id\twer\tcer\treference\thypothesis")
        for r in result.rows:
            print(f"{r['id']}\t{r['wer']:.3f}\t{r['cer']:.3f}\t{r['reference']}\t"
                  f"{r['hypothesis']}")
    print(f"WER {result.wer:.2%}  CER {result.cer:.2%}  ({len(result.rows)} utterances, "
          f"{result.seconds_audio / 60:.1f} min, real-time factor {result.rtf:.3f})")
    return 0


def _data(args: argparse.Namespace) -> int:
    from ..speech.tts import build_tts_dataset

    if args.per_text < 1:
        raise ValueError(f"--per-text must be at least 1 (clips per line), got {args.per_text}; "
                         f"e.g. --per-text 4")
    if not os.path.isfile(args.texts):
        raise FileNotFoundError(f"--texts {args.texts}: no such file" + (
            " (it is a folder)" if os.path.isdir(args.texts) else "")
            + "; give a UTF-8 text file with one utterance per line")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise FileExistsError(f"--out {args.out} is a file; give a folder for the WAVs and "
                              f"manifest.tsv")
    check_writable(os.path.join(args.out, "manifest.tsv"), "--out")
    try:
        with open(args.texts, encoding="utf-8-sig") as f:
            texts = [line.strip() for line in f if line.strip()]
    except UnicodeDecodeError:
        raise ValueError(f"--texts {args.texts} is not UTF-8 text; give a text file with one "
                         f"utterance per line, saved as UTF-8") from None
    if not texts:
        raise ValueError(f"--texts {args.texts} has no non-empty lines")
    manifest = build_tts_dataset(texts, args.out, per_text=args.per_text, seed=args.seed)
    print(f"wrote {manifest}")
    return 0


def _decode_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beam", type=int, default=1,
                   help="beam size; 1 = greedy CTC (default: 1)")
    p.add_argument("--lm-weight", type=float, default=0.0,
                   help="weight of the model's n-gram LM in the beam (default: 0)")
    p.add_argument("--word-bonus", type=float, default=0.0,
                   help="score added per word in the beam (default: 0)")
    p.add_argument("--lexicon", help="'digits' or a file of allowed words (beam only)")
    p.add_argument("--nbest", type=int, default=1, help="hypotheses to print (default: 1)")


def register(subparsers) -> None:
    """Add ``speech data|train|transcribe|evaluate``."""
    p = subparsers.add_parser("speech", help="speech recognition (BiRNN + CTC)",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="speech_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    d = sub.add_parser("data", help="synthesise a training set from text with espeak-ng/flite")
    d.add_argument("--texts", required=True, help="text file, one utterance per line")
    d.add_argument("--out", required=True, help="output folder (WAVs + manifest.tsv)")
    d.add_argument("--per-text", type=int, default=4,
                   help="voices/rates/pitches per line (default: 4)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_data)

    t = sub.add_parser("train", help="train a recogniser with CTC")
    t.add_argument("--data", required=True, help="training manifest, folder or corpus:split")
    t.add_argument("--valid", help="validation data (keeps the best weights on it)")
    t.add_argument("--out", required=True, help="model file to write")
    t.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    t.add_argument("--unidirectional", action="store_true",
                   help="a streaming model (causal front end, global normalisation)")
    t.add_argument("--lm-order", type=int, default=0,
                   help="also fit an n-gram LM of this order on the training texts, used "
                        "by --beam N --lm-weight W (default: none)")
    t.add_argument("--lm-unit", choices=["word", "char"], default=None,
                   help="the LM's tokens (default: word)")
    add_command_options(t, _sections(), ALIASES, NOT_FLAGS)
    t.set_defaults(func=_train)

    r = sub.add_parser("transcribe", help="transcribe audio files")
    r.add_argument("checkpoint", help="a model from `rnnkit speech train`")
    r.add_argument("audio", nargs="+", help="WAV/FLAC/Ogg files, any rate and channels")
    r.add_argument("--stream", action="store_true",
                   help="feed the audio in chunks, printing text as it is decided "
                        "(unidirectional models)")
    r.add_argument("--chunk-ms", type=float, default=None,
                   help="chunk length for --stream (default: 100)")
    r.add_argument("--png", help="draw the spectrogram, CTC emissions and characters")
    _decode_options(r)
    add_compute_flag(r, "audio minute")
    r.set_defaults(func=_transcribe)

    e = sub.add_parser("evaluate", help="WER/CER on transcribed audio")
    e.add_argument("checkpoint")
    e.add_argument("--data", required=True, help="manifest, folder or corpus:split")
    e.add_argument("--per-utterance", action="store_true", help="print a row per utterance")
    _decode_options(e)
    e.set_defaults(func=_evaluate)
