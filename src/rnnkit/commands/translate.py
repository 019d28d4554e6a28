"""``rnnkit translate``: train an attention encoder-decoder and translate with beam search.

    rnnkit translate pairs --tgt fr --n 20000 --out pairs.tsv     # numbers in words (num2words)
    rnnkit translate pairs --tgt fr --n 2000 --split test --out test.tsv  # never in any train
    rnnkit translate train --pairs pairs.tsv --out-dir runs/en-fr --max-time 600
    rnnkit translate train --config en-fr.toml --model.hidden_size 256
    rnnkit translate run runs/en-fr/best.pt "one thousand, nine hundred and eighty-seven"
    rnnkit translate runs/en-fr/best.pt "twenty-one" --beam 5 --heatmap att.png  # = run
    rnnkit translate runs/en-fr/best.pt --input numbers.txt > french.txt  # one per line
    rnnkit translate runs/en-fr/best.pt --input - --output french.txt --batch-size 512 < en.txt

Translations print as ``TRANSLATION<TAB>SCORE-NAME SCORE``, e.g. ``vingt et un<TAB>log-prob/token
-0.0123``. ``train``'s ``--out-dir`` must be a new or empty folder: ``--resume`` continues the
run there from its last.pt, ``--overwrite`` replaces it; ``pairs`` replaces an existing
``--out`` file only with ``--overwrite``, and ``run`` an existing ``--output`` file too. With
``--input``, output line ``i`` is the translation of input line ``i``, and a blank input line
gives a blank output line. ``run`` takes ``--beam`` up to 1000 and ``--max-len``
up to 10 x the length the model decodes by default.

Every option of ``translate train`` is a field of a config dataclass (``[model]``:
Seq2SeqConfig, ``[data]``: TranslateDataConfig, ``[train]``: TrainConfig), settable as a
``[section]`` key of a TOML file given with ``--config``, as ``--section.field VALUE`` or with
its short alias (``--hidden 256``); later wins: default < TOML < flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys

from .options import (
    add_command_options,
    build_configs,
    print_warnings,
    with_defaults,
)
from .runs import (
    add_run_dir_flags,
    best_note,
    check_output,
    check_writable,
    open_run,
)

__all__ = ["TranslateDataConfig", "register"]


@dataclasses.dataclass
class TranslateDataConfig:
    """The data settings of ``rnnkit translate train``.

    Attributes:
        pairs: UTF-8 file of source<TAB>target lines (exactly one TAB per line).
        level: target tokens: "word", or "char" (German number compounds).
        batch_size: sentence pairs per batch.
        val_fraction: share of the pairs held out for validation (and best.pt).
    """

    pairs: str | None = None
    level: str = "word"
    batch_size: int = 64
    val_fraction: float = 0.05

    def __post_init__(self) -> None:  # checked before any work, in the settings' names
        from ..checks import choice, positive_ints

        choice("level", self.level, ("word", "char"))
        positive_ints(batch_size=self.batch_size)
        if not 0 <= self.val_fraction < 1:  # NaN fails too
            raise ValueError(f"val_fraction must be in [0, 1) (the share of the pairs held out "
                             f"for validation, e.g. 0.05), got {self.val_fraction}")


def _sections() -> dict[str, type]:
    from ..text.config import Seq2SeqConfig
    from ..train import TrainConfig

    return {"model": with_defaults(Seq2SeqConfig, src_vocab_size=5, tgt_vocab_size=5),
            "data": TranslateDataConfig,
            "train": with_defaults(TrainConfig, lr=3e-3, scheduler="cosine", warmup_steps=100)}


# today's short flags; every field also has --section.field
ALIASES = {
    "data.pairs": "--pairs", "data.level": "--level", "data.batch_size": "--batch-size",
    "data.val_fraction": "--val-fraction",
    "model.attention": "--attention", "model.cell": "--cell", "model.embed_size": "--embed",
    "model.hidden_size": "--hidden", "model.teacher_forcing": "--teacher-forcing",
    "model.dropout": "--dropout",
    "train.epochs": "--epochs", "train.max_time": "--max-time", "train.lr": "--lr",
    "train.seed": "--seed", "train.device": "--device", "train.out_dir": "--out-dir",
}
NOT_FLAGS = {"model.src_vocab_size", "model.tgt_vocab_size"}  # from the data

#: the largest ``--beam`` taken: beam search keeps every hypothesis of every text in memory,
#: and beyond a few dozen a wider beam changes nothing (5-10 is usual)
MAX_BEAM = 1000
#: ``--max-len`` may be at most this many times the length the model decodes by default (its
#: longest training target x 1.5 + 5), or ``MAX_LEN`` for a checkpoint without one
MAX_LEN_FACTOR, MAX_LEN = 10, 10_000


class _RunByDefault(argparse._SubParsersAction):
    """Subcommands ``train``, ``pairs``, ``run``; any other first word is a checkpoint of
    ``run`` (so ``rnnkit translate CHECKPOINT TEXT`` keeps working)."""

    class _Anything(dict):
        def __contains__(self, key: object) -> bool:  # argparse's choice check passes all
            return True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.choices = self._Anything()  # the subparsers stay in self._name_parser_map

    def add_parser(self, name, **kwargs):
        """The parser, also listed in ``choices`` (as argparse lists it): the CLI finds each
        subcommand's flags there to put its messages in their words."""
        parser = super().add_parser(name, **kwargs)
        self.choices.update(self._name_parser_map)
        return parser

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if values and values[0] not in self._name_parser_map:
            values = ["run", *values]
        super().__call__(parser, namespace, values, option_string)


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..data.numbers import LANGUAGES

    parser = subparsers.add_parser("translate", help="sequence-to-sequence translation",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", metavar="{train,pairs,run}",
                                action=_RunByDefault)
    tr = sub.add_parser("train", help="train on source<TAB>target lines",
                        description="Train an attention encoder-decoder. Options come from the "
                        "defaults, then --config FILE.toml ([model], [data], [train] tables), "
                        "then flags.")
    add_command_options(tr, _sections(), ALIASES, NOT_FLAGS)
    tr.add_argument("--input-feeding", dest="model.input_feeding", action="store_const",
                    const=True, default=argparse.SUPPRESS,
                    help="feed the attentional state back (= --model.input_feeding true; "
                    "default: off)")
    add_run_dir_flags(tr)
    tr.set_defaults(func=_train)

    pa = sub.add_parser("pairs", help="write number-in-words pairs (num2words)")
    pa.add_argument("--out", required=True, help="TSV file to write (required)")
    pa.add_argument("--overwrite", action="store_true",
                    help="replace an existing --out file (default: off: it is refused)")
    pa.add_argument("--src", default="en", choices=LANGUAGES,
                    help="source language code (default: %(default)s)")
    pa.add_argument("--tgt", default="fr", choices=LANGUAGES,
                    help="target language code (default: %(default)s)")
    pa.add_argument("--n", type=int, default=20000,
                    help="numbers in the chosen split: at most 800000 for train, 100000 for "
                    "valid or test (default: %(default)s)")
    pa.add_argument("--split", default="train", choices=["train", "valid", "test"],
                    help="which disjoint split of the numbers: a number's split depends on "
                    "the number and --seed only, so splits never overlap whatever each --n "
                    "(default: %(default)s)")
    pa.add_argument("--seed", type=int, default=0,
                    help="seed of the split: runs meant to be disjoint must share it "
                    "(default: %(default)s)")
    pa.set_defaults(func=_pairs)

    run = sub.add_parser("run", aliases=["predict"],
                         help="translate texts with a trained model (the default: "
                         "`rnnkit translate CHECKPOINT TEXT` is `run`)",
                         description="Translate source texts, given as arguments or one per "
                         "line with --input; prints TRANSLATION<TAB>SCORE-NAME SCORE per text.")
    run.add_argument("checkpoint", help="best.pt or last.pt from `rnnkit translate train`")
    run.add_argument("texts", nargs="*", metavar="TEXT",
                     help="one or more source texts (quote each), or none with --input")
    run.add_argument("--input", metavar="FILE", default=None,
                     help="translate every line of FILE (UTF-8, one source sentence per line, "
                     "- for stdin), printing one line per input line in order; a blank line "
                     "gives a blank line (default: none)")
    run.add_argument("--output", metavar="FILE", default=None,
                     help="write the translations to FILE (atomically, when all are done) "
                     "instead of stdout (default: stdout)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an existing --output file (default: off: it is refused)")
    run.add_argument("--beam", type=int, default=5,
                     help="beam size, 1 = greedy (default: %(default)s)")
    run.add_argument("--length-penalty", type=float, default=1.0,
                     help="beam scores are log-prob / length ** this: 0 = summed log-prob, 1 = "
                     "per-token mean (default: %(default)s)")
    run.add_argument("--max-len", type=int, default=None,
                     help="most target tokens to decode (default: from the training targets)")
    run.add_argument("--batch-size", type=int, default=256,
                     help="sentences translated together (default: %(default)s)")
    run.add_argument("--heatmap", default=None, metavar="PNG",
                     help="write the attention heatmap of the first translation to this PNG "
                     "(default: none)")
    run.set_defaults(func=_translate)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _train(args: argparse.Namespace) -> int:
    from ..text.translation import read_pairs_tsv, train_translator
    from ..train.distributed import is_main_process

    cfg = build_configs(args, _sections(), NOT_FLAGS,
                        {"data.pairs": "--pairs", "train.out_dir": "--out-dir"})
    cfg, _ = open_run(args, cfg, _sections(), not_flags=NOT_FLAGS, aliases=ALIASES)
    data, train = cfg["data"], cfg["train"]  # a resumed run's own data settings
    pairs = read_pairs_tsv(data.pairs)
    tr, metrics = train_translator(pairs, cfg["model"], train, val_fraction=data.val_fraction,
                                   level=data.level, batch_size=data.batch_size,
                                   seed=train.seed, resume=args.resume)
    if not is_main_process():  # under torchrun only rank 0 reports
        return 0
    print(f"trained on {len(pairs)} pairs; vocab source {len(tr.src_vocab)}, target "
          f"{len(tr.tgt_vocab)}; validation{best_note(metrics)} loss {metrics['loss']:.4f}, "
          f"token accuracy {metrics['token_accuracy']:.4f}; checkpoints in {train.out_dir}")
    return 0


def _pairs(args: argparse.Namespace) -> int:
    from ..data.numbers import number_pairs, numbers_in_split, split_capacity, write_pairs_tsv

    check_output(args.out, args.overwrite, "--out")  # before any work
    most = split_capacity(args.split)
    if not 1 <= args.n <= most:
        raise ValueError(f"--n must be between 1 and {most} (the numbers a {args.split} split "
                         f"can hold), got {args.n}")
    # a number's split depends on the number and --seed only, never on --n: the splits of
    # any two runs with the same --seed are disjoint
    pairs = number_pairs(numbers_in_split(args.split, args.n, seed=args.seed), args.src,
                         args.tgt)
    write_pairs_tsv(pairs, args.out)
    print(f"wrote {len(pairs)} {args.src}->{args.tgt} pairs to {args.out}")
    return 0


def _read_input(path: str) -> list[str]:
    """The lines of ``--input`` (``-``: stdin) as UTF-8 text, split at ``\n``, ``\r\n`` and
    ``\r`` (the final newline ends the last line); a missing, binary or non-UTF-8 file is
    refused, in the flag's words."""
    if path == "-":
        where = "- (stdin)"
        buffer = getattr(sys.stdin, "buffer", None)
        raw = buffer.read() if buffer is not None else sys.stdin.read().encode("utf-8")
    else:
        where = path
        if os.path.isdir(path):
            raise IsADirectoryError(f"--input {path} is a folder; give a text file with one "
                                    f"source sentence per line")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"--input {path}: no such file; check the path (relative "
                                    f"paths start at {os.getcwd()}), or give - for stdin") \
                from None
    if b"\x00" in raw[:65536]:
        raise ValueError(f"--input {where} looks binary (it contains NUL bytes); give a plain "
                         f"UTF-8 text file with one source sentence per line")
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark is no part of the first sentence
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise ValueError(f"--input {where} is not UTF-8 text (byte 0x{raw[err.start]:02x} on "
                         f"line {line}); convert it first, e.g. iconv -f latin1 -t utf-8 FILE "
                         f"> FILE.utf8") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and not lines[-1]:
        lines.pop()  # the final newline ends the last line
    return lines


def _source_texts(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The texts to translate (TEXT arguments or the lines of ``--input``) and their names
    for messages. An empty TEXT is an error; a blank ``--input`` line is kept as ``""`` (its
    output line is empty too)."""
    if args.input is not None and args.texts:
        raise ValueError("give the source texts as TEXT arguments or with --input FILE, not "
                         "both")
    if args.input is None:
        if not args.texts:
            raise ValueError("nothing to translate: give a source text, e.g. rnnkit translate "
                             "CHECKPOINT \"twenty-one\", or --input FILE with one per line")
        names = [f"text {i}" for i in range(1, len(args.texts) + 1)]
        for name, text in zip(names, args.texts):
            if not text.strip():
                raise ValueError(f"{name} is empty; give a sentence to translate, e.g. rnnkit "
                                 f"translate CHECKPOINT \"twenty-one\"")
        return list(args.texts), names
    lines = _read_input(args.input)
    where = "stdin" if args.input == "-" else args.input
    if not any(line.strip() for line in lines):
        raise ValueError(f"--input {where} holds no sentences; give one source sentence per "
                         f"line")
    names = [f"{where}:{n}" for n in range(1, len(lines) + 1)]
    return [line.strip() for line in lines], names


def _score_name(beam: int, length_penalty: float) -> str:
    """What :meth:`~rnnkit.text.translation.Translator.translate`'s score is: the summed
    log-probability (greedy, or beam without length normalisation) or it divided by the
    length ** ``length_penalty``."""
    if beam == 1 or length_penalty == 0:
        return "log-prob"
    return "log-prob/token" if length_penalty == 1 else f"log-prob/length^{length_penalty:g}"


def _translate(args: argparse.Namespace) -> int:
    import torch

    from ..data.vocab import unknown_warnings
    from ..text.translation import Translator, save_attention_heatmap

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not 1 <= args.beam <= MAX_BEAM:
        raise ValueError(f"--beam must be between 1 (greedy) and {MAX_BEAM}, got {args.beam} "
                         f"(5-10 is usual)")
    if args.max_len is not None and args.max_len < 1:
        raise ValueError(f"--max-len must be a positive number of target tokens, got "
                         f"{args.max_len} (leave it out for the model's own)")
    if not math.isfinite(args.length_penalty) or args.length_penalty < 0:
        raise ValueError(f"--length-penalty must be a number >= 0 (0: summed log-prob, 1: "
                         f"per-token mean), got {args.length_penalty}")
    if args.heatmap is not None:
        check_writable(args.heatmap, "--heatmap")
    if args.output is not None:
        check_output(args.output, args.overwrite, "--output")
    texts, names = _source_texts(args)
    tr = Translator.from_checkpoint(args.checkpoint)
    longest = MAX_LEN_FACTOR * tr.max_len if tr.max_len else MAX_LEN
    if args.max_len is not None and args.max_len > longest:  # before allocating for it
        own = (f"{MAX_LEN_FACTOR} x the {tr.max_len} tokens this model decodes by default"
               if tr.max_len else "the cap for a checkpoint without a default")
        raise ValueError(f"--max-len must be at most {longest} ({own}), got {args.max_len}")
    todo = [i for i, text in enumerate(texts) if text]  # blank input lines stay blank
    print_warnings(unknown_warnings(tr.src_vocab, [texts[i] for i in todo],
                                    [names[i] for i in todo]))
    score_name = _score_name(args.beam, args.length_penalty)
    lines: list[str] = [""] * len(texts)
    results: list[tuple[str, float]] = []
    done = 0  # lines printed so far (stdout: each batch as soon as it is translated)
    for start in range(0, len(todo), args.batch_size):
        batch = todo[start:start + args.batch_size]
        out = tr.translate([texts[i] for i in batch], beam_size=args.beam,
                           max_len=args.max_len, length_penalty=args.length_penalty,
                           batch_size=args.batch_size)
        results += out
        for i, (text, score) in zip(batch, out):
            lines[i] = f"{text}\t{score_name} {score:.4f}"
        if args.output is None:
            end = todo[start + args.batch_size] if start + args.batch_size < len(todo) \
                else len(texts)
            print("".join(line + "\n" for line in lines[done:end]), end="", flush=True)
            done = end
    if args.output is not None:
        from ..saving import atomic_write_text

        atomic_write_text("".join(line + "\n" for line in lines), args.output)  # all or none
        print(f"wrote {len(lines)} lines ({len(todo)} translations) to {args.output}",
              file=sys.stderr)
    if args.heatmap:
        first = texts[todo[0]]
        out = results[0][0]
        src = torch.tensor(tr.src_vocab.encode(first) or [tr.src_vocab.unk_id])
        tgt = torch.tensor(tr.tgt_vocab.encode(out, bos=True, eos=True))
        w = tr.model.attention_map(src, tgt)
        vocab = tr.src_vocab.tokenizer
        save_attention_heatmap(w, [vocab.id_to_token(i) for i in src.tolist()],
                               [tr.tgt_vocab.tokenizer.id_to_token(i) for i in tgt[1:].tolist()],
                               args.heatmap, title=first)
        print(f"attention heatmap written to {args.heatmap}", file=sys.stderr)
    return 0
