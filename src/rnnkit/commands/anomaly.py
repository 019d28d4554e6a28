r"""``rnnkit anomaly detect``: flag anomalous rows of a CSV column with an RNN detector (a thin
call into :mod:`rnnkit.anomaly.detector`).

    rnnkit anomaly detect --csv data.csv --column value --out flagged.csv --plot anomalies.png
    rnnkit anomaly detect --dataset yahoo --column data --label label --train-frac 0.4
    rnnkit anomaly detect --dataset mitdb --column data --label label --method window \
        --input-len auto --hidden-size 64 --steps 1500
    rnnkit anomaly detect --dataset mitdb --column data --label label --method forecast+window

The detector trains on the first ``--train-frac`` of the rows (assumed mostly normal), then
scores every row; flagged rows are written to ``--out`` and a PNG marks detected (and, with
``--label``, true) anomalies. ``--method window`` scores whole windows (beats) instead of
single steps; ``--input-len auto`` makes the window one period of the training rows
(autocorrelation), which ``--pool`` (default: about 50 model steps) averages down. With
``--label`` precision / recall / F1 over the rows after the training part are printed, next
to the rolling z-score baseline. ``--method forecast+window`` runs a forecast detector
(``--input-len``, ``--hidden-size``, ``--steps``) and a one-period window detector
(``--window-hidden-size``, ``--window-steps``) together and flags a row when either does
(:class:`~rnnkit.anomaly.union.AnomalyUnion`): spikes and abnormal cycles alike.
"""

from __future__ import annotations

__all__ = ["register"]


def _detect(args) -> int:
    import numpy as np
    import pandas as pd

    from ..anomaly.detector import AnomalyConfig, AnomalyDetector, RollingZScore, plot_anomalies
    from ..anomaly.metrics import as_binary, f1_scores
    from ..data.timeseries import read_csv

    if bool(args.csv) == bool(args.dataset):
        raise ValueError("give exactly one of --csv FILE or --dataset NAME")
    if args.dataset:
        from ..data.datasets import load_dataset

        df = load_dataset(args.dataset)
    else:
        df = read_csv(args.csv)
    for col in [args.column] + ([args.label] if args.label else []):
        if col not in df.columns:
            raise ValueError(f"column {col!r} not in the CSV; available: {list(df.columns)}")
    if not pd.api.types.is_numeric_dtype(df[args.column]):
        raise TypeError(f"column {args.column!r} is not numeric ({df[args.column].dtype}); "
                        f"pick a numeric --column (the CSV has {list(df.columns)})")
    y = df[args.column].to_numpy(dtype=float)
    if not np.isfinite(y).all():
        raise ValueError(f"column {args.column!r} has {int((~np.isfinite(y)).sum())} NaN/inf "
                         "values; fill or drop them first")
    # checked before training: NaN, 2 or text labels would otherwise count as anomalies
    labels = as_binary(df[args.label].to_numpy(), f"--label column {args.label!r}") \
        if args.label else None
    if not 0 < args.train_frac < 1:
        raise ValueError(f"--train-frac must be in (0, 1), got {args.train_frac}")
    for flag in ("steps", "hidden_size", "window_steps", "window_hidden_size"):
        # named here: the detectors' own errors say max_steps, and forecast+window has two
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be a positive integer, got "
                             f"{getattr(args, flag)}")
    n_train = int(len(y) * args.train_frac)
    if args.method == "forecast+window":
        from ..anomaly.union import AnomalyUnion

        input_len, _ = _window_args(args, y[:n_train], "forecast")
        win_len, pool = _window_args(args, y[:n_train], "window", auto=True)
        print(f"window member: input_len {win_len}, pool {pool}")
        model = AnomalyUnion([
            AnomalyDetector(AnomalyConfig(method="forecast", input_len=input_len,
                                          hidden_size=args.hidden_size, max_steps=args.steps,
                                          seed=args.seed)),
            AnomalyDetector(AnomalyConfig(method="window", input_len=win_len, pool=pool,
                                          hidden_size=args.window_hidden_size,
                                          max_steps=args.window_steps, seed=args.seed))])
    else:
        input_len, pool = _window_args(args, y[:n_train], args.method)
        if args.method == "window":
            print(f"window: input_len {input_len}, pool {pool}")
        model = AnomalyDetector(AnomalyConfig(
            method=args.method, input_len=input_len, pool=pool, hidden_size=args.hidden_size,
            max_steps=args.steps, seed=args.seed))
    det = model.fit(y[:n_train]).detect(y)
    flagged = df.assign(score=det.smoothed)[det.flags.astype(bool)]
    flagged.insert(0, "row", np.nonzero(det.flags)[0])
    flagged.to_csv(args.out, index=False)
    print(f"{int(det.flags.sum())} of {len(y)} rows flagged (threshold {det.threshold:.4g}); "
          f"wrote {args.out}")
    if labels is not None:
        base = RollingZScore().detect(y)
        for name, flags in (("rnnkit", det.flags), ("rolling z-score", base.flags)):
            m = f1_scores(labels[n_train:], flags[n_train:])
            print(f"{name:16s} " + " ".join(f"{k} {v:.3f}" for k, v in m.items()))
    if args.plot:
        plot_anomalies(y, det, labels, args.plot, title=f"{args.column} ({args.method})")
        print(f"wrote {args.plot}")
    return 0


def _window_args(args, train, method: str, auto: bool = False) -> tuple[int, int]:
    """``--input-len`` and ``--pool`` of a ``method`` detector as integers, resolving ``auto``
    from the training rows (``auto=True``: the window is one period whatever --input-len
    says, for the window member of ``forecast+window``, whose --input-len is the forecast
    member's)."""
    from ..anomaly.detector import estimate_period, pooled_window

    def as_int(name, value):
        what = f"--{name} must be a positive integer" + (" or 'auto'" if name == "input-len"
                                                          else "")
        try:
            v = int(value)
        except ValueError:
            raise ValueError(f"{what}, got {value!r}") from None
        if v < 1:
            raise ValueError(f"{what}, got {value!r}")
        return v

    if method != "window":
        if args.input_len == "auto" or (args.pool is not None
                                        and args.method != "forecast+window"):
            raise ValueError("--pool and --input-len auto need --method window (with "
                             "forecast+window the window is always one period; --input-len is "
                             "the forecast member's)")
        return as_int("input-len", args.input_len), 1
    if auto or args.input_len == "auto":
        pool = None if args.pool is None else as_int("pool", args.pool)
        return pooled_window(estimate_period(train), pool)
    input_len = as_int("input-len", args.input_len)
    if args.pool is None:                        # about 50 model steps
        return pooled_window(input_len)
    return input_len, as_int("pool", args.pool)


def register(subparsers) -> None:
    """Add ``anomaly detect``."""
    p = subparsers.add_parser("anomaly", help="time-series anomaly detection",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="anomaly_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    d = sub.add_parser("detect", help="flag anomalous rows of a column")
    d.add_argument("--csv", help="CSV file")
    d.add_argument("--dataset", help="a registered series instead of --csv (yahoo, mitdb)")
    d.add_argument("--column", required=True, help="the numeric column to check")
    d.add_argument("--label", help="optional 0/1 label column: print precision / recall / F1")
    d.add_argument("--method", default="forecast",
                   choices=["forecast", "autoencoder", "window", "forecast+window"],
                   help="one-step forecast errors, one-step autoencoder errors, whole-window "
                   "(beat-level) autoencoder scores, or forecast and window detectors together "
                   "(a row is flagged when either flags it)")
    d.add_argument("--train-frac", type=float, default=0.4,
                   help="leading fraction of rows to train on (default 0.4)")
    d.add_argument("--input-len", default="32",
                   help="past steps / window length; 'auto' (window): one estimated period")
    d.add_argument("--pool", default=None,
                   help="window method: average-pool factor (default: about 50 model steps)")
    d.add_argument("--hidden-size", type=int, default=32)
    d.add_argument("--steps", type=int, default=400)
    d.add_argument("--window-hidden-size", type=int, default=64,
                   help="forecast+window: the window member's hidden size")
    d.add_argument("--window-steps", type=int, default=1500,
                   help="forecast+window: the window member's optimizer steps")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default="anomalies.csv", help="CSV of the flagged rows")
    d.add_argument("--plot", default="anomalies.png", help="PNG path ('' for none)")
    d.set_defaults(func=_detect)
