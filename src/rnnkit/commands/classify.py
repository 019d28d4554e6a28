"""``rnnkit classify``: train a text or time-series classifier and predict class probabilities.

    rnnkit classify train --data ../shared/data --out-dir runs/sentiment --epochs 6
    rnnkit classify train --data labelled.tsv --out-dir runs/topics   # label<TAB>text lines
    rnnkit classify train --data labelled.tsv --out-dir runs/topics --resume --epochs 12
    rnnkit classify train --config sentiment.toml --lr 1e-3
    rnnkit classify predict runs/sentiment/best.pt "a gorgeous , witty film"

Time series (UCR/UEA ``.ts`` or ``.arff`` files, or ``.tsv``/``.csv`` with one series per row,
the label first) train a :class:`~rnnkit.series.classifier.SeriesClassifier` (FCN, LSTM-FCN or
GRU-FCN, chosen with its epoch by cross-validation on the training file, then refit on all of
it; ``[series]`` options, ``--series.FIELD``); ``--epochs``, ``--lr``, ``--seed`` and
``--batch-size`` apply to it when given::

    rnnkit classify train --data GunPoint_TRAIN.ts --out-dir runs/gunpoint
    rnnkit classify predict runs/gunpoint/best.pt --data GunPoint_TEST.ts  # + accuracy

A series fit is many short training runs (each fold of each candidate's cross-validation, each
refit network); ``last.pt`` keeps the finished ones. Ctrl-C stops it after the step in flight
and prints the command that continues it (the same one with ``--resume``): the result is the
one an uninterrupted run gives.

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
import os
import warnings

from .options import (
    add_command_options,
    add_compute_flag,
    add_config_arguments,
    build_configs,
    given_settings,
    metered,
    print_warnings,
    with_defaults,
)
from .runs import (
    add_run_dir_flags,
    best_note,
    flag_name,
    open_run,
    progress_mismatch,
    unreadable_progress,
)

__all__ = ["ClassifyDataConfig", "register"]


@dataclasses.dataclass
class ClassifyDataConfig:
    """The data settings of ``rnnkit classify train``.

    Attributes:
        path: a text file (UTF-8, or Latin-1) of label<TAB>text lines (the label first; a
            header line such as label<TAB>text is skipped), a folder with
            rt-polarity.pos/.neg (e.g. ../shared/data), or a series file (.ts, .arff, or
            .tsv/.csv with one series per row, the label first) for a series classifier.
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
    from ..text.config import ClassifierConfig
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
SERIES_ALIASES = {"series.models": "--models", "series.shuffle": "--shuffle",
                  "series.cv_folds": "--cv-folds"}
#: text settings that also set a series classifier when given: section.field -> series field
SHARED = {"train.epochs": "epochs", "train.lr": "lr", "train.seed": "seed",
          "train.weight_decay": "weight_decay", "data.batch_size": "batch_size"}


def _series_sections() -> dict[str, type]:
    from ..series.config import SeriesClassifierConfig

    return {"series": SeriesClassifierConfig}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("classify", help="classification of texts and time series",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    tr = sub.add_parser("train", help="train on label<TAB>text lines, the rt-polarity folder, or "
                        "a series file (.ts, .arff, .tsv/.csv with the label first)",
                        description="Train a text classifier, or a series classifier when "
                        "--data is a series file. Options come from the defaults, then "
                        "--config FILE.toml ([model], [data], [train], [series] tables), then "
                        "flags.")
    add_command_options(tr, _sections(), ALIASES, NOT_FLAGS)
    add_config_arguments(tr, _series_sections(), SERIES_ALIASES)
    add_run_dir_flags(tr)
    tr.set_defaults(func=_train)
    pr = sub.add_parser("predict", help="class probabilities of texts or series",
                        description="Print one JSON line per text (or series of --data): its "
                        "most probable label and the probability of every class; for a "
                        "labelled series file, a last line with the accuracy.")
    pr.add_argument("checkpoint", help="best.pt or last.pt from `rnnkit classify train`")
    pr.add_argument("texts", nargs="*", metavar="TEXT",
                    help="one or more texts (quote each); empty ones are refused")
    pr.add_argument("--data", metavar="FILE",
                    help="a series file (.ts, .arff, .tsv/.csv) for a series classifier "
                    "(default: none: classify the TEXTs)")
    add_compute_flag(pr, "text")
    pr.set_defaults(func=_predict)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _series_data(args: argparse.Namespace) -> str | None:
    """The --data path when it is a series file (by extension and content), else None."""
    from ..series.files import is_series_file

    path = getattr(args, "data.path", None)
    if path is None and args.config:  # --data may come from the [data] table
        path = build_configs(args, {**_sections(), **_series_sections()}, NOT_FLAGS,
                             {})["data"].path
    return path if path and is_series_file(path) else None


def _train(args: argparse.Namespace) -> int:
    if _series_data(args):
        return _train_series(args)
    series_given = sorted(k for k in vars(args) if k.startswith("series."))
    if series_given:
        print_warnings([f"{', '.join('--' + k for k in series_given)}: [series] options "
                        f"apply to series files only; ignored for text data"])
    return _train_text(args)


def _train_series(args: argparse.Namespace) -> int:
    from ..series.classifier import SeriesClassifier
    from ..series.files import read_series_file
    from ..series.progress import ProgressMismatch
    from .runs import check_run_dir

    sections = {**_sections(), **_series_sections()}
    cfg = build_configs(args, sections, NOT_FLAGS,
                        {"data.path": "--data", "train.out_dir": "--out-dir"})
    given = given_settings(args, sections, NOT_FLAGS)
    series_cfg = dataclasses.replace(cfg["series"], **{
        field: given[key.split(".")[0]][key.split(".")[1]] for key, field in SHARED.items()
        if key.split(".")[1] in given[key.split(".")[0]]})
    ignored = [flag_name(f"model.{k}", ALIASES) for k in given["model"]]
    ignored += [flag_name(f"{sec}.{k}", ALIASES) for sec in ("data", "train")
                for k in given[sec] if f"{sec}.{k}" not in SHARED
                and f"{sec}.{k}" not in ("data.path", "train.out_dir", "train.progress")]
    if ignored:
        print_warnings([f"{', '.join(ignored)}: text-model options; ignored for a series "
                        f"file (its options are --series.FIELD, see --help)"])
    out_dir, path = cfg["train"].out_dir, cfg["data"].path
    check_run_dir(out_dir, resume=args.resume, overwrite=args.overwrite)
    data = read_series_file(path, where=f"--data {path}: ")
    if data.labels is None:
        raise ValueError(f"--data {path}: the series have no class labels (@classLabel "
                         f"false); training needs a labelled file")
    os.makedirs(out_dir, exist_ok=True)
    last = os.path.join(out_dir, "last.pt")  # the finished training runs (SIGINT, --resume)
    best = os.path.join(out_dir, "best.pt")
    if args.overwrite:  # told to replace the run: its model and its progress go
        for old in (best, last):
            if os.path.exists(old):
                os.remove(old)
    flags = {field: key for key, field in SHARED.items()}  # --epochs rather than --series.epochs
    try:
        clf = SeriesClassifier(series_cfg).fit(data.series, data.labels, progress=last)
    except ProgressMismatch as err:
        aliases = {**ALIASES, **SERIES_ALIASES}
        changed = [f"{flag_name(flags.get(k, 'series.' + k), aliases)} was {old!r}, now {new!r}"
                   for k, (old, new) in err.changed.items()]
        raise progress_mismatch(err, last, changed, f"--data {path} holds other series or "
                                f"labels", "--data") from None
    except ValueError as err:
        raise unreadable_progress(err, last) from None
    clf.save(best)
    if os.path.exists(last):
        os.remove(last)  # best.pt holds every network: the progress is spent
    r = clf.recipe
    cv = f"{r['cv_accuracy']:.4f}" if r["cv_accuracy"] is not None else "n/a"
    kept = "; ".join(f"{m['model']}{' (dimension shuffle)' if m['shuffle'] else ''}, "
                     f"{m['epochs']} epochs" for m in r["members"])
    print(f"trained on {len(data.series)} series ({data.num_channels} channel(s)), classes "
          f"{clf.classes}; chosen by {series_cfg.cv_folds}-fold cross-validation (top CV "
          f"accuracy {cv}): {kept}, {series_cfg.ensemble} seed(s) each; "
          f"{clf.fit_seconds:.0f} s; model in {best}")
    return 0


def _train_text(args: argparse.Namespace) -> int:
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
    if args.data is not None:
        if args.texts:
            raise ValueError("give texts or --data FILE (series), not both")
        return _predict_series(args)
    if not args.texts:
        raise ValueError("give one or more TEXT arguments to classify (quoted), or --data FILE "
                         "for a series classifier, e.g. rnnkit classify predict CHECKPOINT "
                         "\"a witty film\"")
    from ..saving import file_kind
    from ..series.classifier import SeriesClassifier

    try:  # a broken file is reported by the text path, as before series existed
        kind = (file_kind(args.checkpoint) or ("",))[0]
    except Exception:
        kind = ""
    if kind == SeriesClassifier.KIND:
        raise ValueError(f"{args.checkpoint} is a series classifier; give the series with "
                         f"--data FILE (.ts, .arff, .tsv/.csv), not texts")
    return _predict_text(args)


def _predict_series(args: argparse.Namespace) -> int:
    from ..series.classifier import SeriesClassifier
    from ..series.files import label_name, read_series_file

    clf = SeriesClassifier.load(args.checkpoint)
    data = read_series_file(args.data, where=f"--data {args.data}: ")
    with metered(args, "series", 1) as meter:
        probs = clf.predict_proba(data.series)
        meter.add(len(data.series))
    hits = 0
    for i, row in enumerate(probs.tolist()):
        best = clf.classes[max(range(len(row)), key=row.__getitem__)]
        line = {"series": i + 1, "label": best,
                "probabilities": {c: round(p, 4) for c, p in zip(clf.classes, row)}}
        if data.labels is not None:  # label_name: a model trained when "1.0" stayed "1.0"
            line["true"] = data.labels[i]
            hits += label_name(best) == data.labels[i]
        print(json.dumps(line))
    if data.labels is not None:
        unknown = sorted(set(data.labels) - {label_name(c) for c in clf.classes})
        if unknown:
            print_warnings([f"--data {args.data}: classes {unknown} were not in the training "
                            f"data; their series count as errors"])
        print(json.dumps({"accuracy": round(hits / len(data.labels), 6), "correct": hits,
                          "series": len(data.labels)}))
    return 0


def _predict_text(args: argparse.Namespace) -> int:
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
