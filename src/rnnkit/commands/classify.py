"""``rnnkit classify``: train a text classifier and predict class probabilities.

    rnnkit classify train --data ../shared/data --out-dir runs/sentiment --epochs 6
    rnnkit classify train --data labelled.tsv --out-dir runs/topics   # label<TAB>text lines
    rnnkit classify predict runs/sentiment/best.pt "a gorgeous , witty film"
"""

from __future__ import annotations

import argparse
import json

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("classify", help="sequence classification of text",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    tr = sub.add_parser("train", help="train on label<TAB>text lines or the rt-polarity folder")
    tr.add_argument("--data", required=True,
                    help="a UTF-8 file of label<TAB>text lines, or a folder with "
                         "rt-polarity.pos/.neg (e.g. ../shared/data)")
    tr.add_argument("--out-dir", required=True, help="where best.pt, last.pt and logs go")
    tr.add_argument("--cell", default="lstm")
    tr.add_argument("--pooling", default="max", choices=["last", "mean", "max", "attention"])
    tr.add_argument("--embed", type=int, default=128)
    tr.add_argument("--hidden", type=int, default=128)
    tr.add_argument("--layers", type=int, default=1)
    tr.add_argument("--dropout", type=float, default=0.5)
    tr.add_argument("--embed-dropout", type=float, default=0.2)
    tr.add_argument("--min-freq", type=int, default=1)
    tr.add_argument("--init", default="random", choices=["random", "ppmi", "wordpiece"],
                    help="embedding init: N(0, 1), PPMI-SVD vectors of the training texts, or "
                    "pretrained WordPiece token vectors (English; needs rnnkit[pretrained]; "
                    "sets the embedding width to 384; best for sentiment, see "
                    "benchmarks/classify.py)")
    tr.add_argument("--epochs", type=int, default=6)
    tr.add_argument("--max-time", type=float, default=None, help="training budget in seconds")
    tr.add_argument("--lr", type=float, default=3e-3)
    tr.add_argument("--batch-size", type=int, default=50)
    tr.add_argument("--val-fraction", type=float, default=0.1)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="auto")
    tr.add_argument("--no-progress", action="store_true")
    tr.set_defaults(func=_train)
    pr = sub.add_parser("predict", help="class probabilities of texts")
    pr.add_argument("checkpoint", help="best.pt or last.pt from `rnnkit classify train`")
    pr.add_argument("texts", nargs="+", help="one or more texts (quote each)")
    pr.set_defaults(func=_predict)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _train(args: argparse.Namespace) -> int:
    from ..data.sentiment import load_labelled_text
    from ..text.classifier import ClassifierConfig, train_text_classifier
    from ..train import TrainConfig

    texts, labels = load_labelled_text(args.data)
    cfg = ClassifierConfig(num_classes=2, vocab_size=2, embed_size=args.embed,
                           hidden_size=args.hidden, num_layers=args.layers, cell=args.cell,
                           pooling=args.pooling, dropout=args.dropout,
                           embed_dropout=args.embed_dropout)
    tcfg = TrainConfig(epochs=args.epochs, max_time=args.max_time, lr=args.lr, seed=args.seed,
                       out_dir=args.out_dir, clip_norm=5.0, progress=not args.no_progress,
                       device=args.device)
    clf, metrics = train_text_classifier(texts, labels, cfg, tcfg,
                                         val_fraction=args.val_fraction,
                                         min_freq=args.min_freq, batch_size=args.batch_size,
                                         seed=args.seed, embed_init=args.init)
    print(f"trained on {len(texts)} texts, classes {clf.classes}, vocab {len(clf.vocab)}; "
          f"validation loss {metrics['loss']:.4f} accuracy {metrics['accuracy']:.4f}; "
          f"checkpoints in {args.out_dir}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ..text.classifier import TextClassifier

    clf = TextClassifier.from_checkpoint(args.checkpoint)
    probs = clf.predict_proba(args.texts)
    for text, row in zip(args.texts, probs.tolist()):
        best = clf.classes[max(range(len(row)), key=row.__getitem__)]
        print(json.dumps({"text": text, "label": best,
                          "probabilities": {c: round(p, 4) for c, p in zip(clf.classes, row)}}))
    return 0
