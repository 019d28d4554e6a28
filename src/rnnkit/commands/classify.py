"""``rnnkit classify``: train a text classifier and predict class probabilities.

    rnnkit classify train --data ../shared/data --out-dir runs/sentiment --epochs 6
    rnnkit classify train --data labelled.tsv --out-dir runs/topics   # label<TAB>text lines
    rnnkit classify train --data labelled.tsv --out-dir runs/topics --resume --epochs 12
    rnnkit classify train --config sentiment.toml --lr 1e-3
    rnnkit classify predict runs/sentiment/best.pt "a gorgeous , witty film"

``--out-dir`` must be a new or empty folder: ``--resume`` continues the run there from its
last.pt, ``--overwrite`` replaces it. Every option of ``classify train`` is a field of a config
dataclass (``[model]``: ClassifierConfig, ``[data]``: ClassifyDataConfig, ``[train]``:
TrainConfig), settable as a ``[section]`` key of a TOML file given with ``--config``, as
``--section.field VALUE`` or with its short alias (``--hidden 64``); later wins: default <
TOML < flag. Example::

    [model]
    pooling = "attention"
    hidden_size = 64

    [data]
    path = "../shared/data"

    [train]
    epochs = 4
    out_dir = "runs/sentiment"
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import warnings

from .options import (
    add_command_options,
    add_compute_flag,
    build_configs,
    metered,
    print_warnings,
    with_defaults,
)
from .runs import add_run_dir_flags, best_note, open_run

__all__ = ["ClassifyDataConfig", "register"]


@dataclasses.dataclass
class ClassifyDataConfig:
    """The data settings of ``rnnkit classify train``.

    Attributes:
        path: a text file (UTF-8, or Latin-1) of label<TAB>text lines (the label first; a
            header line such as label<TAB>text is skipped), or a folder with
            rt-polarity.pos/.neg (e.g. ../shared/data).
        val_fraction: stratified share of the texts held out for validation (and best.pt).
        min_freq: words seen fewer times in the training texts become <unk>.
        batch_size: texts per batch.
        init: embedding init: "random" (N(0, 1)), "ppmi" (PPMI-SVD vectors of the training
            texts) or "wordpiece" (pretrained WordPiece token vectors, English; needs
            rnnkit[pretrained]; sets the embedding width to 384; best for sentiment, see
            benchmarks/classify.py).
    """

    path: str | None = None
    val_fraction: float = 0.1
    min_freq: int = 1
    batch_size: int = 50
    init: str = "random"

    def __post_init__(self) -> None:
        from ..checks import choice, positive_ints

        positive_ints(min_freq=self.min_freq, batch_size=self.batch_size)
        choice("init", self.init, ("random", "ppmi", "wordpiece"))
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must lie in (0, 1) (a share of the texts), got "
                             f"{self.val_fraction!r}")


def _sections() -> dict[str, type]:
    from ..text.classifier import ClassifierConfig
    from ..train import TrainConfig

    return {"model": with_defaults(ClassifierConfig, vocab_size=2, dropout=0.5,
                                   embed_dropout=0.2),
            "data": ClassifyDataConfig,
            "train": with_defaults(TrainConfig, epochs=6, lr=3e-3, clip_norm=5.0)}


# today's short flags; every field also has --section.field
ALIASES = {
    "model.cell": "--cell", "model.pooling": "--pooling", "model.embed_size": "--embed",
    "model.hidden_size": "--hidden", "model.num_layers": "--layers",
    "model.dropout": "--dropout", "model.embed_dropout": "--embed-dropout",
    "data.path": "--data", "data.min_freq": "--min-freq", "data.init": "--init",
    "data.batch_size": "--batch-size", "data.val_fraction": "--val-fraction",
    "train.epochs": "--epochs", "train.max_time": "--max-time", "train.lr": "--lr",
    "train.seed": "--seed", "train.device": "--device", "train.out_dir": "--out-dir",
}
NOT_FLAGS = {"model.num_classes", "model.vocab_size", "model.input_size"}  # from the data


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("classify", help="sequence classification of text",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    tr = sub.add_parser("train", help="train on label<TAB>text lines or the rt-polarity folder",
                        description="Train a text classifier. Options come from the defaults, "
                        "then --config FILE.toml ([model], [data], [train] tables), then flags.")
    add_command_options(tr, _sections(), ALIASES, NOT_FLAGS)
    add_run_dir_flags(tr)
    tr.set_defaults(func=_train)
    pr = sub.add_parser("predict", help="class probabilities of texts",
                        description="Print one JSON line per text: its most probable label and "
                        "the probability of every class.")
    pr.add_argument("checkpoint", help="best.pt or last.pt from `rnnkit classify train`")
    pr.add_argument("texts", nargs="+", metavar="TEXT",
                    help="one or more texts (quote each); empty ones are refused")
    add_compute_flag(pr, "text")
    pr.set_defaults(func=_predict)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _train(args: argparse.Namespace) -> int:
    from ..data.sentiment import load_labelled_text
    from ..text.classifier import train_text_classifier
    from ..train.distributed import is_main_process

    cfg = build_configs(args, _sections(), NOT_FLAGS,
                        {"data.path": "--data", "train.out_dir": "--out-dir"})
    cfg, _ = open_run(args, cfg, _sections(), not_flags=NOT_FLAGS, aliases=ALIASES)
    data, train = cfg["data"], cfg["train"]  # a resumed run's own data settings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        texts, labels = load_labelled_text(data.path)
    if is_main_process():  # under torchrun only rank 0 reports
        print_warnings(w.message for w in caught)
    clf, metrics = train_text_classifier(texts, labels, cfg["model"], train,
                                         val_fraction=data.val_fraction,
                                         min_freq=data.min_freq, batch_size=data.batch_size,
                                         seed=train.seed, embed_init=data.init,
                                         resume=args.resume)
    if not is_main_process():
        return 0
    print(f"trained on {len(texts)} texts, classes {clf.classes}, vocab {len(clf.vocab)}; "
          f"validation{best_note(metrics)} loss {metrics['loss']:.4f} accuracy "
          f"{metrics['accuracy']:.4f}; "
          f"checkpoints in {train.out_dir}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ..data.vocab import unknown_warnings
    from ..text.classifier import TextClassifier

    names = [f"text {i}" for i in range(1, len(args.texts) + 1)]
    for name, text in zip(names, args.texts):
        if not text.strip():
            raise ValueError(f"{name} is empty; give the text to classify in quotes, e.g. "
                             f"rnnkit classify predict CHECKPOINT \"a gorgeous , witty film\"")
    clf = TextClassifier.from_checkpoint(args.checkpoint)
    print_warnings(unknown_warnings(clf.vocab, args.texts, names))
    with metered(args, "texts", 1) as meter:
        probs = clf.predict_proba(args.texts)
        meter.add(len(args.texts))
    for text, row in zip(args.texts, probs.tolist()):
        best = clf.classes[max(range(len(row)), key=row.__getitem__)]
        print(json.dumps({"text": text, "label": best,
                          "probabilities": {c: round(p, 4) for c, p in zip(clf.classes, row)}}))
    return 0
