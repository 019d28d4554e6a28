r"""``rnnkit anomaly detect``: flag anomalous rows of a CSV column with an RNN detector (a thin
call into :mod:`rnnkit.anomaly.detector`).

    rnnkit anomaly detect --csv data.csv --column value --out flagged.csv --plot anomalies.png
    rnnkit anomaly detect --csv data.csv --column value --time date   # rows in time order
    rnnkit anomaly detect --dataset yahoo --column data --label label --train-frac 0.4
    rnnkit anomaly detect --dataset mitdb --column data --label label --method window \
        --input-len auto --hidden-size 64 --steps 1500
    rnnkit anomaly detect --dataset mitdb --column data --label label --method forecast+window

The detector trains on the first ``--train-frac`` of the rows (assumed mostly normal), then
scores every row; flagged rows are written to ``--out`` and a PNG marks detected (and, with
``--label``, true) anomalies. The rows are taken in file order; with ``--time`` (a registered
data set: its time column) they must be in time order, without duplicates (the forecast
commands' check, :func:`rnnkit.data.timeseries.check_time_order`), and the plot's x-axis is
that time. Both output files are checked before any work and written atomically at the end.
``--method window`` scores whole windows (beats) instead of
single steps; ``--input-len auto`` makes the window one period of the training rows
(autocorrelation), which ``--pool`` (default: about 50 model steps) averages down. With
``--label`` precision / recall / F1 over the rows after the training part are printed, next
to the rolling z-score baseline. ``--method forecast+window`` runs a forecast detector
(``--input-len``, ``--hidden-size``, ``--steps``) and a one-period window detector
(``--window-hidden-size``, ``--window-steps``) together and flags a row when either does
(:class:`~rnnkit.anomaly.union.AnomalyUnion`): spikes and abnormal cycles alike.

The detector's options come from its config dataclasses: every field of
:class:`~rnnkit.anomaly.config.AnomalyConfig` is a flag ``--model.field`` and every field of
its :class:`~rnnkit.train.TrainConfig` a flag ``--train.field``, and both can be set in a TOML
file (``--config run.toml`` with tables ``[model]`` and ``[train]``; later wins: default <
TOML < flag). Today's short flags stay: ``--hidden-size`` is ``--model.hidden_size``,
``--steps`` ``--train.max_steps``, ``--seed`` ``--train.seed``. ``--method``, ``--input-len``
and ``--pool`` (which also take ``forecast+window`` and ``auto``) may be set in ``[model]``
too; the flag wins.
"""

from __future__ import annotations

from typing import Any

from .options import add_config_arguments, given_settings, speaking_flags
from .runs import check_run_dir, check_writable

__all__ = ["ALIASES", "register"]

# today's short flags; every field also has --model.field / --train.field
ALIASES = {"model.hidden_size": "--hidden-size", "train.max_steps": "--steps",
           "train.seed": "--seed"}
# hand-written flags (they also take 'auto' and 'forecast+window'), TOML only, or the
# [train] table itself
NOT_FLAGS = {"model.method", "model.input_len", "model.pool", "model.z_range", "model.train"}
#: the command's own defaults, below the --config file and the flags
DEFAULTS = {"model": {"method": "forecast", "input_len": "32", "pool": None},
            "train": {"max_steps": 400}}


def _sections() -> dict[str, type]:
    from ..anomaly.config import AnomalyConfig
    from ..train import TrainConfig

    return {"model": AnomalyConfig, "train": TrainConfig}


def _settings(args) -> dict[str, dict[str, Any]]:
    """Per table, the command's defaults < the ``--config`` file < the flags given."""
    given = given_settings(args, _sections(), NOT_FLAGS)
    out = {name: {**DEFAULTS.get(name, {}), **values} for name, values in given.items()}
    for key in ("method", "input_len", "pool"):      # the hand-written flags win
        if getattr(args, key) is not None:
            out["model"][key] = getattr(args, key)
    return out


def _detector(settings: dict[str, dict[str, Any]], **fixed: Any):
    """An :class:`~rnnkit.anomaly.detector.AnomalyDetector` of the ``[model]`` settings
    changed by ``fixed``, trained for ``[train]`` (``fixed["max_steps"]`` replaces its
    budget)."""
    from ..anomaly.config import AnomalyConfig, anomaly_train
    from ..anomaly.detector import AnomalyDetector

    train = {**settings["train"], **({"max_steps": fixed.pop("max_steps")}
                                     if "max_steps" in fixed else {})}
    return AnomalyDetector(AnomalyConfig(**{**settings["model"], **fixed},
                                         train=anomaly_train(**train)))


def _detect(args) -> int:
    import numpy as np
    import pandas as pd

    from ..anomaly import RollingZScore, as_binary, f1_scores, plot_anomalies
    from ..data.timeseries import check_time_order, read_csv
    from ..saving import atomic_write_text

    settings = _settings(args)
    model_set, method = settings["model"], settings["model"]["method"]
    check_writable(args.out, "--out")   # every file written, checked before any work
    if args.plot:
        check_writable(args.plot, "--plot")
    if settings["train"].get("out_dir") is not None:
        check_run_dir(settings["train"]["out_dir"], resume=False, overwrite=False,
                      flag="--train.out_dir")
    if bool(args.csv) == bool(args.dataset):
        raise ValueError("give exactly one of --csv FILE or --dataset NAME")
    if args.dataset:
        from ..data.datasets import load_dataset

        df = load_dataset(args.dataset)
    else:
        flags = [f for f, given in (("--column", True), ("--time", args.time),
                                    ("--label", args.label)) if given]
        df = read_csv(args.csv, "--csv", needs=f"the {' and '.join(flags)} column"
                      + ("s" if len(flags) > 1 else ""))
    time_col = args.time or ("time" if args.dataset and "time" in df.columns else None)
    missing = [f"{flag} {col!r}" for flag, col in (("--column", args.column),
                                                   ("--time", time_col), ("--label", args.label))
               if col and col not in df.columns]
    if missing:  # named by the flag that picks each: that is what to change
        where = f"the data set {args.dataset!r}" if args.dataset else "the CSV"
        what = "is not a column" if len(missing) == 1 else "are not columns"
        raise ValueError(f"{', '.join(missing)} {what} of {where}; choose from its columns "
                         f"{list(df.columns)}")
    # rows in time order, as the forecast commands require (one check for both)
    times = check_time_order(df[time_col], time_col) if time_col else None
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
    for flag, value in (("steps", settings["train"]["max_steps"]),
                        ("hidden-size", model_set.get("hidden_size", 1)),
                        ("window-steps", args.window_steps),
                        ("window-hidden-size", args.window_hidden_size)):
        # named here: the detectors' own errors say max_steps, and forecast+window has two
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"--{flag} must be a positive integer, got {value}")
    n_train = int(len(y) * args.train_frac)
    if method == "forecast+window":
        from ..anomaly.union import AnomalyUnion

        input_len, _ = _window_args(model_set, y[:n_train], "forecast")
        win_len, pool = _window_args(model_set, y[:n_train], "window", auto=True)
        print(f"window member: input_len {win_len}, pool {pool}")
        model = AnomalyUnion([
            _detector(settings, method="forecast", input_len=input_len, pool=1),
            _detector(settings, method="window", input_len=win_len, pool=pool,
                      hidden_size=args.window_hidden_size, max_steps=args.window_steps)])
    else:
        input_len, pool = _window_args(model_set, y[:n_train], method)
        if method == "window":
            print(f"window: input_len {input_len}, pool {pool}")
        model = _detector(settings, input_len=input_len, pool=pool)
    det = model.fit(y[:n_train]).detect(y)
    flagged = df.assign(score=det.smoothed)[det.flags.astype(bool)]
    flagged.insert(0, "row", np.nonzero(det.flags)[0])
    atomic_write_text(flagged.to_csv(index=False), args.out)  # only now: Ctrl-C leaves it be
    print(f"{int(det.flags.sum())} of {len(y)} rows flagged (threshold {det.threshold:.4g}); "
          f"wrote {args.out}")
    if labels is not None:
        base = RollingZScore().detect(y)
        for name, flags in (("rnnkit", det.flags), ("rolling z-score", base.flags)):
            m = f1_scores(labels[n_train:], flags[n_train:])
            print(f"{name:16s} " + " ".join(f"{k} {v:.3f}" for k, v in m.items()))
    if args.plot:
        path = plot_anomalies(y, det, labels, args.plot, title=f"{args.column} ({method})",
                              time=None if times is None else times.to_numpy())
        print(f"wrote {path}")
    return 0


def _window_args(model: dict[str, Any], train, method: str,
                 auto: bool = False) -> tuple[int, int]:
    """``--input-len`` and ``--pool`` (``model["input_len"]``, ``model["pool"]``) of a
    ``method`` detector as integers, resolving ``auto`` from the training rows
    (``auto=True``: the window is one period whatever --input-len says, for the window member
    of ``forecast+window``, whose --input-len is the forecast member's)."""
    from ..anomaly.thresholds import estimate_period, pooled_window

    input_len, pool = model["input_len"], model["pool"]

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
        if input_len == "auto" or (pool is not None
                                   and model["method"] != "forecast+window"):
            raise ValueError("--pool and --input-len auto need --method window (with "
                             "forecast+window the window is always one period; --input-len is "
                             "the forecast member's)")
        return as_int("input-len", input_len), 1
    if auto or input_len == "auto":
        pool = None if pool is None else as_int("pool", pool)
        return pooled_window(estimate_period(train), pool)
    input_len = as_int("input-len", input_len)
    if pool is None:                             # about 50 model steps
        return pooled_window(input_len)
    return input_len, as_int("pool", pool)


def register(subparsers) -> None:
    """Add ``anomaly detect``."""
    p = subparsers.add_parser("anomaly", help="time-series anomaly detection",
                              description="Flag anomalous rows of a CSV column with an RNN "
                              "detector.")
    sub = p.add_subparsers(dest="anomaly_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    d = sub.add_parser("detect", help="flag anomalous rows of a column",
                       description="Train a detector on the first --train-frac of the rows, "
                       "score every row, write the flagged rows (--out) and a plot (--plot). "
                       "The rows are taken in file order; with --time they must be in time "
                       "order.")
    d.add_argument("--csv", help="CSV file")
    d.add_argument("--dataset", help="a registered series instead of --csv (yahoo, mitdb)")
    d.add_argument("--column", required=True, help="the numeric column to check")
    d.add_argument("--time", help="time column (datetimes or integer steps): the rows must be "
                   "in time order, without duplicates, and the plot's x-axis shows it "
                   "(default: the row number; --dataset: its time column)")
    d.add_argument("--label", help="optional 0/1 label column: print precision / recall / F1")
    d.add_argument("--method", default=None,
                   choices=["forecast", "autoencoder", "window", "forecast+window"],
                   help="one-step forecast errors, one-step autoencoder errors, whole-window "
                   "(beat-level) autoencoder scores, or forecast and window detectors together "
                   "(a row is flagged when either flags it; default forecast)")
    d.add_argument("--train-frac", type=float, default=0.4,
                   help="leading fraction of rows to train on (default 0.4)")
    d.add_argument("--input-len", default=None,
                   help="past steps / window length (default 32); 'auto' (window): one "
                   "estimated period")
    d.add_argument("--pool", default=None,
                   help="window method: average-pool factor (default: about 50 model steps)")
    d.add_argument("--window-hidden-size", type=int, default=64,
                   help="forecast+window: the window member's hidden size")
    d.add_argument("--window-steps", type=int, default=1500,
                   help="forecast+window: the window member's optimizer steps")
    d.add_argument("--config", help="TOML file with [model] and [train] tables")
    d.add_argument("--out", default="anomalies.csv",
                   help="CSV of the flagged rows (default: %(default)s)")
    d.add_argument("--plot", default="anomalies.png",
                   help="PNG path, '' for none (default: %(default)s)")
    add_config_arguments(d, _sections(), ALIASES, NOT_FLAGS)
    d.set_defaults(func=speaking_flags(_detect, d))
