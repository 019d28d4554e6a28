"""``rnnkit vision read``: text-line recognition (CRNN + CTC) on rendered lines of real text.

    rnnkit vision read train --out-dir runs/ocr --max-time 600    # train (a time budget)
    rnnkit vision read train --out-dir runs/ocr --steps 2000      # or a step budget
    rnnkit vision read text runs/ocr/reader.pt line.png --beam 8 --lm
    rnnkit vision read runs/ocr/reader.pt line.png                # short for `read text ...`
    rnnkit vision read evaluate runs/ocr/reader.pt                # CER/WER per font group

The first word after ``read`` is the action: ``train``, ``text`` or ``evaluate``; anything
else is taken as the checkpoint of ``text`` (``read CKPT IMAGE...``), so a checkpoint file
literally named ``train`` or ``evaluate`` must be given as ``read text ./train IMAGE``.

``train`` renders lines of Jane Austen's *Lady Susan* (music21's copy; ``--text FILE`` for
your own) in the training fonts (``make vision-data``), afresh for every batch, and writes into
``--out-dir`` (a new or empty folder; ``--resume`` continues the run, ``--overwrite`` replaces
it): ``best.pt`` / ``last.pt`` (trainer checkpoints) and ``reader.pt``: the best weights with
the character n-gram LM fitted on the training lines and its weight tuned on validation lines.
``text`` and ``evaluate`` take ``reader.pt`` (or ``best.pt``, which has no LM). ``evaluate``
renders the test lines (never trained on) in the training fonts and in the held-out print and
handwriting fonts, and prints CER/WER per group.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .runs import check_run_dir

__all__ = ["register"]

ACTIONS = ("train", "text", "evaluate")
#: model flags -> ReaderConfig fields (a resumed run keeps the run's own)
MODEL_FLAGS = {"channels": "--channels", "hidden_size": "--hidden-size",
               "num_layers": "--layers", "batch_size": "--batch-size", "lm_order": "--lm-order",
               "valid_lines": "--valid-lines"}


# -- train ------------------------------------------------------------------------------------
def _channels(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(c) for c in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected four comma-separated widths like "
                                         f"16,32,64,96, got {text!r}") from None
    if len(out) != 4 or min(out) < 1:
        raise argparse.ArgumentTypeError(f"expected four positive widths like 16,32,64,96, got "
                                         f"{text!r}")
    return out


def _train_lines(path: str | None) -> list[str]:
    from ..vision.textlines import text_lines

    if path is None:
        return text_lines()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--text {path}: no such file; give a UTF-8 text file")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise ValueError(f"--text {path} is not UTF-8 text; save it as UTF-8") from None
    lines = text_lines(text)
    if len(lines) < 30:
        raise ValueError(f"--text {path} gives only {len(lines)} lines of 3-8 words; give a "
                         f"longer text (a few thousand words at least)")
    return lines


def _fonts(spec: str) -> dict[str, str]:
    from ..vision.textlines import FONT_GROUPS, HELDOUT_HANDWRITING, HELDOUT_PRINT, find_fonts

    if spec in FONT_GROUPS:
        if spec != "train":
            raise ValueError(f"--fonts {spec}: that group is held out for testing; train on "
                             f"--fonts train or a list of font names")
        return find_fonts("train")
    names = [n.strip() for n in spec.split(",") if n.strip()]
    held = sorted(set(names) & set(HELDOUT_PRINT + HELDOUT_HANDWRITING))
    if held:
        raise ValueError(f"--fonts: {', '.join(held)} are held out for testing (`read "
                         f"evaluate` scores them); train on other fonts")
    return find_fonts(names)


def _train(args: argparse.Namespace) -> int:
    from ..train import TrainConfig
    from ..vision.reader import ReaderConfig, TextLineReader
    from ..vision.textlines import split_lines

    check_run_dir(args.out_dir, resume=args.resume, overwrite=args.overwrite)
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.max_time is not None and args.max_time <= 0:
        raise ValueError(f"--max-time must be > 0 seconds, got {args.max_time}")
    given = {k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k) is not None}
    if args.resume:
        from ..train import load_checkpoint

        ckpt = load_checkpoint(os.path.join(args.out_dir, "last.pt"))
        saved = (ckpt.get("extra_state") or {}).get("config")
        if saved is None:
            raise ValueError(f"--resume: {args.out_dir}/last.pt is not a `vision read train` "
                             f"run; drop --resume or choose another --out-dir")
        for k, v in given.items():
            old = tuple(saved[k]) if k == "channels" else saved[k]
            if old != v:
                raise ValueError(f"--resume: this run was trained with {MODEL_FLAGS[k]} {old}, "
                                 f"but {v} is given; drop {MODEL_FLAGS[k]} to continue it")
        config = ReaderConfig(**saved)
    else:
        try:
            config = ReaderConfig(**given)
        except ValueError as err:
            msg = str(err)
            for k, flag in MODEL_FLAGS.items():
                msg = msg.replace(k, flag)
            raise ValueError(msg) from None
    fonts = _fonts(args.fonts)
    parts = split_lines(_train_lines(args.text))
    steps = args.steps if args.steps is not None or args.max_time is not None else 3000
    train = TrainConfig(max_steps=steps, max_time=args.max_time, epochs=10 ** 6, lr=args.lr,
                        scheduler="cosine" if steps else "none",
                        warmup_steps=min(100, (steps or 1000) // 10), eval_every=200,
                        seed=args.seed, out_dir=args.out_dir, device="cpu",
                        progress=sys.stderr.isatty(), log_every=50)
    reader = TextLineReader(config)
    print(f"{len(parts['train'])} training lines, {len(parts['valid'])} validation, "
          f"{len(fonts)} fonts; writing to {args.out_dir}", file=sys.stderr, flush=True)
    reader.fit(parts["train"], parts["valid"], fonts, train, resume=args.resume)
    scores = {}
    if reader.lm is not None:
        scores = reader.tune_lm_weight(parts["valid"], fonts, n=min(100, config.valid_lines))
    path = os.path.join(args.out_dir, "reader.pt")
    reader.save(path)
    valid = reader.evaluate(parts["valid"][: config.valid_lines], fonts, seed=1)
    print(f"trained {reader.history['steps']} steps in {reader.history['seconds']:.0f} s; "
          f"validation CER {valid.cer:.2%}, WER {valid.wer:.2%} (greedy, training fonts)"
          + (f"; LM weight {reader.config.lm_weight:g} (CER by weight: "
             + ", ".join(f"{w:g}: {c:.2%}" for w, c in scores.items()) + ")" if scores else ""))
    print(f"wrote {path}")
    return 0


# -- text / evaluate ---------------------------------------------------------------------------
def _load(path: str) -> Any:
    from ..saving import TRAIN_KIND, describe, parse_tag, read_torch_file
    from ..vision.reader import TASK, TextLineReader

    blob = read_torch_file(path, where="`rnnkit vision read train --out-dir DIR` writes "
                           "DIR/reader.pt")
    parsed = parse_tag(blob)
    if parsed and parsed[0] == TextLineReader.KIND:
        if parsed[1] > TextLineReader.VERSION:
            raise ValueError(f"{path} was written by a newer rnnkit; upgrade rnnkit")
        return TextLineReader.from_state(blob)
    if parsed and parsed[0] == TRAIN_KIND and (blob.get("extra_state") or {}).get("task") == TASK:
        return TextLineReader.from_checkpoint(blob)
    raise ValueError(f"{path} is not a text-line reader (it is {describe(blob)}); give the "
                     f"reader.pt that `rnnkit vision read train --out-dir DIR` writes")


def _decoding(args: argparse.Namespace, reader: Any) -> tuple[int, float]:
    if args.beam is not None and args.beam < 1:
        raise ValueError(f"--beam must be >= 1 (1 = greedy), got {args.beam}")
    if args.lm_weight is not None and args.lm_weight < 0:
        raise ValueError(f"--lm-weight must be >= 0, got {args.lm_weight}")
    use_lm = args.lm or (args.lm_weight or 0) > 0
    if use_lm and reader.lm is None:
        raise ValueError(f"{args.checkpoint} has no language model for --lm; give the reader.pt "
                         f"of `rnnkit vision read train` (best.pt has none) or drop --lm")
    beam = args.beam if args.beam is not None else (8 if use_lm else 1)
    weight = 0.0
    if use_lm:
        weight = args.lm_weight if args.lm_weight is not None else (
            reader.config.lm_weight or 0.5)
    return beam, weight


def _text(args: argparse.Namespace) -> int:
    for image in args.images:
        if not os.path.isfile(image):
            raise FileNotFoundError(f"{image}: no such image file; check the path")
    reader = _load(args.checkpoint)
    beam, weight = _decoding(args, reader)
    texts = reader.read(list(args.images), beam=beam, lm_weight=weight)
    for image, text in zip(args.images, texts):
        print(text if len(args.images) == 1 else f"{image}\t{text}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ..vision.textlines import FONT_GROUPS, find_fonts, split_lines

    if args.lines < 1:
        raise ValueError(f"--lines must be >= 1, got {args.lines}")
    reader = _load(args.checkpoint)
    beam, weight = _decoding(args, reader)
    lines = split_lines(_train_lines(args.text))["test"][: args.lines]
    rows = []
    for group in FONT_GROUPS:
        res = reader.evaluate(lines, find_fonts(group), seed=args.seed, beam=beam,
                              lm_weight=weight)
        rows.append({"fonts": group, "lines": len(res.rows), "cer": res.cer, "wer": res.wer})
    how = "greedy" if beam == 1 and not weight else f"beam {beam}" + (
        f" + LM {weight:g}" if weight else "")
    print(f"test lines (never trained on), {how}:")
    print(f"{'fonts':<22}{'lines':>6}{'CER':>9}{'WER':>9}")
    names = {"train": "training fonts", "print": "held-out print",
             "handwriting": "held-out handwriting"}
    for r in rows:
        print(f"{names[r['fonts']]:<22}{r['lines']:>6}{r['cer']:>9.2%}{r['wer']:>9.2%}")
    if args.json:
        print(json.dumps(rows))
    return 0


# -- the parser --------------------------------------------------------------------------------
class _ActionOrCheckpoint(argparse._SubParsersAction):
    """Sub-commands ``train|text|evaluate``; any other first word is a checkpoint for
    ``text`` (``read CKPT IMAGE`` = ``read text CKPT IMAGE``)."""

    class _Any(dict):
        """The sub-parsers; once :attr:`open`, every word counts as a choice (argparse checks
        the choice before the action can read it as a checkpoint)."""

        open = False

        def __contains__(self, key: object) -> bool:
            return self.open or super().__contains__(key)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._name_parser_map = self.choices = self._Any()

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: list[str], option_string: str | None = None) -> None:
        if values and values[0] not in ACTIONS:
            values = ["text", *values]
        super().__call__(parser, namespace, values, option_string)


def _decode_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beam", type=int, default=None,
                   help="CTC prefix beam width; 1 = greedy (default: 1, or 8 with --lm)")
    p.add_argument("--lm", action="store_true",
                   help="rescore the beam with the character n-gram LM of reader.pt at its "
                        "tuned weight (default: off)")
    p.add_argument("--lm-weight", type=float, default=None,
                   help="LM weight (implies --lm; default: the weight tuned at training)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vision read train|text|evaluate``."""
    parser = subparsers.add_parser("read", help="text-line recognition (CRNN + CTC)",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="read_action", metavar="{train,text,evaluate} | CKPT",
                                action=_ActionOrCheckpoint)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    tr = sub.add_parser("train", help="train a reader on rendered lines",
                        description="Train a CRNN reader on lines rendered afresh each batch "
                        "in the training fonts; best.pt is best on the validation lines.")
    tr.add_argument("--out-dir", required=True, help="run folder (new or empty)")
    tr.add_argument("--fonts", default="train",
                    help="`train` (the training group) or comma-separated font file names, "
                         "e.g. DejaVuSans,LiberationSerif-Regular (default: train)")
    tr.add_argument("--text", default=None, metavar="FILE",
                    help="UTF-8 text to cut into lines (default: Jane Austen's Lady Susan)")
    tr.add_argument("--steps", type=int, default=None,
                    help="optimizer steps (default: 3000, or unlimited with --max-time)")
    tr.add_argument("--max-time", type=float, default=None, metavar="S",
                    help="training budget in seconds (default: none)")
    tr.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: 3e-3)")
    tr.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    tr.add_argument("--channels", type=_channels, default=None,
                    help="CNN widths c1,c2,c3,c4 (default: 16,32,64,96)")
    tr.add_argument("--hidden-size", type=int, default=None,
                    help="LSTM size per direction (default: 128)")
    tr.add_argument("--layers", dest="num_layers", type=int, default=None,
                    help="bidirectional LSTM layers (default: 2)")
    tr.add_argument("--batch-size", type=int, default=None, help="lines per batch (default: 32)")
    tr.add_argument("--lm-order", type=int, default=None,
                    help="character n-gram LM order, 0 = none (default: 6)")
    tr.add_argument("--valid-lines", type=int, default=None,
                    help="validation lines: best.pt, the LM weight and the printed CER are "
                         "chosen / measured on them (default: 256)")
    tr.add_argument("--resume", action="store_true",
                    help="continue the run in --out-dir from its last.pt (default: off)")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace the run in --out-dir (default: refuse)")
    tr.set_defaults(func=_train)

    te = sub.add_parser("text", help="read the text of line images",
                        description="Print the text of each line image (one line of text per "
                        "image; several images: IMAGE<TAB>text).")
    te.add_argument("checkpoint", help="reader.pt of `vision read train` (or its best.pt)")
    te.add_argument("images", nargs="+", help="image files of single text lines")
    _decode_flags(te)
    te.set_defaults(func=_text)

    ev = sub.add_parser("evaluate", help="CER/WER per font group on the test lines",
                        description="Render the test lines in the training fonts and in the "
                        "held-out print and handwriting fonts; print CER/WER per group.")
    ev.add_argument("checkpoint", help="reader.pt of `vision read train`")
    ev.add_argument("--lines", type=int, default=300, help="test lines (default: 300)")
    ev.add_argument("--text", default=None, metavar="FILE",
                    help="the --text the reader was trained with (default: Lady Susan)")
    ev.add_argument("--seed", type=int, default=0, help="rendering seed (default: 0)")
    ev.add_argument("--json", action="store_true", help="also print the rows as JSON")
    _decode_flags(ev)
    ev.set_defaults(func=_evaluate)
    sub.choices.open = True
