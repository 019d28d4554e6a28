"""``rnnkit forecast train | predict | backtest``: thin calls into
:mod:`rnnkit.forecast.forecaster`, :mod:`rnnkit.forecast.backtest` and the baselines.

The RNN's settings are the fields of :class:`~rnnkit.forecast.config.ForecasterConfig`
(``[model]``) and :class:`~rnnkit.train.TrainConfig` (``[train]``): each is a flag
``--model.field`` / ``--train.field`` and a key of a TOML file given with ``--config``, and the
common ones keep their short flags (``--horizon``, ``--input-len``, ``--season``, ``--head``,
``--steps``, ``--seed``, ...). Later wins: the defaults below < TOML < flags. Defaults that
differ from the dataclasses': ``input_len`` 2 x max(horizon, season), ``season`` the
dataset's, else that of the data's frequency (4 for quarterly, 12 for monthly, ...:
:func:`~rnnkit.data.timeseries.season_for_freq`), ``baseline`` "seasonal" when season > 1,
``transform`` "auto", ``max_steps`` 800. Both the season and the input length chosen are said
on stderr; ``backtest`` also says each window's (and with ``--search`` each setting's) fit.
Training's evaluation cadence and early stopping are ``--eval-every`` and ``--patience``
(``--train.eval_every``, ``--train.early_stop_patience``).

``--model esrnn`` (``train`` and ``backtest``) is :class:`~rnnkit.forecast.esrnn.ESRNN`, one
global network across all the series (``--ensemble N``: the mean of N seeds); ``--model comb``
its :class:`~rnnkit.forecast.combine.ForecastCombination` with ETS and ARIMA, weighted per
series by ``--combine`` (inverse_error, best, mean, median) over ``--validation-windows``
rolling origins inside the training data (each member fitted once for them); its weights are
printed. Both take the flags of :data:`ESRNN_FIELDS` (``--horizon``, ``--input-len``,
``--season``, ``--cell``, ``--hidden-size``, ``--model.num_layers``, ``--steps``, ``--train.lr``,
``--seed``, ``--eval-every``, ``--patience``, ...) and refuse the Forecaster's others;
``input_len`` defaults to ES-RNN's own ``max(horizon, season, 4)``. ``backtest --model naive2``
is the M4 benchmark. ``predict`` reads every forecast kind (:func:`load_forecaster`).

Data come from ``--csv FILE`` (with ``--time`` and ``--target`` columns, ``--series`` for
several series) or ``--dataset NAME`` (a registered package-shipped series, see
``rnnkit.data.datasets``).

Every file a command writes is checked before any work and written atomically at the end
(``--out`` of ``train`` is never replaced without ``--overwrite``); tables go to stdout, status
lines to stderr; the library's hints (``fill='interpolate'``) are reported as the flags that
set them (``--fill interpolate``, :func:`speaking_flags`).

    rnnkit forecast train --csv sales.csv --time date --target sales --horizon 12 --out m.pt
    rnnkit forecast train ... --out m.pt --overwrite         # replace m.pt (else an error)
    rnnkit forecast train --dataset airpassengers --horizon 12 --ar-window 24 \
        --search baseline=last,seasonal_mean --top-k 2 --ensemble 2 --out ens.pt  # 4 networks
    rnnkit forecast predict m.pt --csv sales.csv --out forecast.csv --plot forecast.png
    rnnkit forecast backtest --dataset airpassengers --horizon 12 --windows 4 --model lstm
    rnnkit forecast backtest --csv shops.csv --time week --target sales --series shop \
        --horizon 8 --model comb --ensemble 3 --combine inverse_error   # prints the weights
    rnnkit forecast train --csv shops.csv ... --horizon 8 --model esrnn --out es.pt
    rnnkit forecast backtest --dataset wineind --horizon 12 --model lstm --ensemble 2 \
        --search baseline=last,seasonal,seasonal_mean      # choose by validation, see
                                                           # rnnkit.forecast.search
    rnnkit forecast backtest --dataset sunspots --horizon 10 --input-len 44 --ar-window 44 \
        --search baseline=last,seasonal input_len=44,88 --top-k 4   # mean of the 4 best
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

from .options import (
    add_compute_flag,
    add_config_arguments,
    given_settings,
    metered,
    speaking_flags,
)
from .runs import (
    check_output,
    check_run_dir,
    check_writable,
    progress_mismatch,
    unreadable_progress,
)

__all__ = ["ALIASES", "register"]

# today's short flags; every field also has --model.field / --train.field
ALIASES = {
    "model.horizon": "--horizon", "model.input_len": "--input-len", "model.season": "--season",
    "model.head": "--head", "model.transform": "--transform", "model.ar_window": "--ar-window",
    "model.cell": "--cell", "model.hidden_size": "--hidden-size", "model.decoder": "--decoder",
    "train.max_steps": "--steps", "train.seed": "--seed", "train.eval_every": "--eval-every",
    "train.early_stop_patience": "--patience",
}
# set in TOML only (lists), or not at all (the [train] table is the model's training)
NOT_FLAGS = {"model.train", "model.quantiles", "model.calendar", "model.holidays"}
# the settings that mean the same for ES-RNN: "section.field" -> ESRNNConfig field; any other
# [model] / [train] setting given with --model esrnn or comb is refused (_check_esrnn_flags)
ESRNN_FIELDS = {
    "model.horizon": "horizon", "model.season": "season", "model.input_len": "input_len",
    "model.cell": "cell", "model.hidden_size": "hidden_size", "model.num_layers": "num_layers",
    "model.dropout": "dropout", "model.batch_size": "batch_size",
    "train.max_steps": "max_steps", "train.lr": "lr", "train.seed": "seed",
    "train.eval_every": "eval_every", "train.early_stop_patience": "patience",
}
ESRNN_IGNORED = {"train.progress"}  # ES-RNN draws no progress bar: harmless, accepted
GLOBAL_MODELS = ("esrnn", "comb")   # ES-RNN alone, or combined with ETS and ARIMA

DESCRIPTION = ("Train, predict and backtest RNN forecasters, the ES-RNN hybrid and its "
               "combination with ETS and ARIMA (and the seasonal-naive, Naive2, ARIMA and ETS "
               "baselines) on a CSV file or a registered data set.")


# -- errors in the user's words: the library's keywords as the flags that set them -------------
def _status(text: str) -> None:
    """A status line ("wrote ..."): on stderr, so stdout holds only the command's data."""
    print(text, file=sys.stderr)


# -- settings ------------------------------------------------------------------------------------
def _sections() -> dict[str, type]:
    from ..forecast.config import ForecasterConfig
    from ..train import TrainConfig

    return {"model": ForecasterConfig, "train": TrainConfig}


def _given(args) -> dict[str, dict[str, Any]]:
    """Per section, only the settings the ``--config`` file and the flags give (so the
    command's own defaults can sit below them)."""
    return given_settings(args, _sections(), NOT_FLAGS)


def _check_writable(args, *flags: str) -> None:
    """Before any work: each output file of ``flags`` (``"--out"``, ``"--plot"``) that is given
    can be written."""
    for flag in flags:
        path = getattr(args, flag[2:])
        if path:
            check_writable(path, flag)


def _check_run_dir(given: dict[str, dict[str, Any]], overwrite: bool = False) -> None:
    """Before any work: a ``[train] out_dir`` (the trainer's checkpoints) must be new or empty,
    unless ``overwrite``."""
    if given["train"].get("out_dir") is not None:
        check_run_dir(given["train"]["out_dir"], resume=False, overwrite=overwrite,
                      flag="--train.out_dir")


def _horizon(given: dict[str, dict[str, Any]]) -> int:
    if "horizon" not in given["model"]:
        raise ValueError("the number of steps to forecast is needed: pass --horizon H (or set "
                         "horizon in the [model] table of --config)")
    return given["model"]["horizon"]


def _config(given: dict[str, dict[str, Any]], season: int, **fixed: Any):
    """The :class:`ForecasterConfig`: the command's defaults < ``given`` < ``fixed``."""
    from ..forecast.config import ForecasterConfig, forecast_train

    model, H = given["model"], _horizon(given)
    defaults = {"input_len": max(2 * H, 2 * season), "season": season,
                "baseline": "seasonal" if season > 1 else "last", "transform": "auto"}
    return ForecasterConfig(**{**defaults, **model, **fixed},
                            train=forecast_train(**{"max_steps": 800, **given["train"]}))


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--csv", help="CSV file with a time column and target column(s)")
    p.add_argument("--dataset", help="a registered series name instead of --csv")
    p.add_argument("--time", help="time column (datetimes or integer steps)")
    p.add_argument("--target", nargs="+", help="target column(s)")
    p.add_argument("--series", help="column with series ids (several series, one model)")
    p.add_argument("--past-covariates", nargs="*", default=[], metavar="COL",
                   help="columns known only up to the forecast origin")
    p.add_argument("--future-covariates", nargs="*", default=[], metavar="COL",
                   help="columns known over the horizon too (predict needs their next values: "
                   "--future-csv)")
    p.add_argument("--freq", help="pandas frequency, e.g. D, MS, h (inferred if omitted)")
    p.add_argument("--fill", default="raise", choices=["raise", "interpolate", "ffill"],
                   help="missing timestamps, irregular spacing and NaN/inf values: raise (an "
                   "error naming them), interpolate (reindex to the frequency, interpolate "
                   "linearly in time) or ffill (reindex, carry the last value forward) "
                   "(default: %(default)s)")


def _load(args, season: int | None = None) -> tuple:
    """(DataFrame, column kwargs, season, note) from --csv or --dataset; ``season`` (the given
    one) defaults to the dataset's, else to that of the data's frequency
    (:func:`~rnnkit.data.timeseries.season_for_freq`); ``note`` says where a season not given
    came from (``None`` when it was given), for stderr once the settings are checked."""

    from ..data.timeseries import read_csv

    if season is not None and (not isinstance(season, int) or isinstance(season, bool)
                               or season < 1):
        raise ValueError(f"season must be a positive integer (the seasonal period in steps, 1 "
                         f"for none), got {season!r}")
    if bool(args.csv) == bool(args.dataset):
        raise ValueError("give exactly one of --csv FILE or --dataset NAME")
    note = None
    if args.dataset:
        from ..data.datasets import dataset_info, load_dataset

        info = dataset_info(args.dataset)
        df = load_dataset(args.dataset)
        cols = {"time": "time", "target": getattr(args, "target", None) or list(info.target),
                "series": getattr(args, "series", None) or info.series}
        if season is None:  # the data set's own season wins over its frequency's
            season = info.season
            note = f"season {season} (the {args.dataset} data set's own; --season to change)"
    else:
        if not args.time or not args.target:
            raise ValueError("--csv needs --time COL and --target COL")
        df = read_csv(args.csv, "--csv", needs="the --time and --target columns")
        cols = {"time": args.time, "target": args.target, "series": args.series}
    cols.update(past_covariates=args.past_covariates, future_covariates=args.future_covariates,
                freq=args.freq, fill=args.fill)
    if season is None:
        season, note = _season_of_freq(df, cols)
    return df, cols, season, note


def _season_of_freq(df, cols: dict) -> tuple[int, str]:
    """The season of a CSV's frequency (:func:`~rnnkit.data.timeseries.season_for_freq`: 4
    for quarterly, 12 for monthly, ...; 1 for integer steps) and a note saying so."""
    from ..data.timeseries import as_series, freq_kind, season_for_freq

    freq = as_series(df, **cols)[0].freq  # --freq, else inferred: the same for every series
    season = season_for_freq(freq)
    if freq is None:
        return season, ("season 1 (the --time column holds integer steps, no frequency; "
                        "--season to change)")
    return season, (f"season {season} (from the {freq_kind(freq)} frequency {freq}; --season "
                    f"to change)")


class _Notes:
    """Status lines held back until the work is under way: called with a progress line (or
    with none, at the end), it prints the held notes first. A command refused by a check,
    before any fitting, so prints its one error line only."""

    def __init__(self) -> None:
        self.held: list[str] = []

    def add(self, text: str | None) -> None:
        if text:
            self.held.append(text)

    def __call__(self, text: str | None = None) -> None:
        for note in self.held:
            _status(note)
        self.held = []
        if text is not None:
            _status(text)


def _choices(note: str | None, given: dict[str, dict[str, Any]], cfg, grid: dict) -> _Notes:
    """Notes saying where the season came from (``note``) and how the input length was
    chosen (searched, given, or 2 x max(horizon, season); ``cfg`` None: a baseline, none)."""
    notes = _Notes()
    notes.add(note)
    if cfg is None:
        return notes
    H, m = cfg.horizon, cfg.season
    if "input_len" in grid:
        how = f"searched over {', '.join(map(str, grid['input_len']))} (--search input_len=...)"
    elif "input_len" in given["model"]:
        how = f"{cfg.input_len} (given; --input-len to change)"
    elif hasattr(cfg, "val_windows"):  # an ESRNNConfig: the library's own default
        how = f"{cfg.input_len} (max(horizon, season, 4), ES-RNN's default; --input-len to change)"
    else:
        why = f"the season {m}" if m > H else f"the horizon {H}"
        how = f"{cfg.input_len} (2 x {why}; --input-len to change)"
    notes.add(f"input length {how}")
    return notes


# -- ES-RNN and the combination (--model esrnn | comb) --------------------------------------------
def _flag_of(key: str) -> str:
    """The flag a user types for ``"section.field"``: its short alias, else ``--section.field``."""
    return ALIASES.get(key, f"--{key}")


def _check_new_model_flags(args, given: dict[str, dict[str, Any]]) -> None:
    """Before any work: the flags given fit ``args.model``. ES-RNN and the combination take the
    settings of :data:`ESRNN_FIELDS` only (the rest are Forecaster's); ``--combine`` and
    ``--validation-windows`` are the combination's only."""
    comb_only = [f for f, v in (("--combine", args.method),
                                ("--validation-windows", args.validation_windows))
                 if v is not None]
    if args.model != "comb" and comb_only:
        raise ValueError(f"{', '.join(comb_only)}: options of the combination, not of --model "
                         f"{args.model}; leave them out or use --model comb")
    if args.validation_windows is not None and args.validation_windows < 0:
        raise ValueError(f"--validation-windows takes a number of origins >= 0, got "
                         f"{args.validation_windows}")
    if args.validation_windows == 0 and args.method in (None, "inverse_error", "best"):
        raise ValueError(f"--combine {args.method or 'inverse_error'} weights the members by "
                         f"their validation errors: give --validation-windows 1 or more, or "
                         f"--combine mean or median")
    if args.model not in GLOBAL_MODELS:
        return
    unused = [f for f, used in (("--search", args.search), ("--top-k", args.top_k > 1),
                                ("--past-covariates", args.past_covariates),
                                ("--future-covariates", args.future_covariates)) if used]
    unused += [_flag_of(f"{sec}.{k}") for sec in ("model", "train") for k in given[sec]
               if f"{sec}.{k}" not in ESRNN_FIELDS.keys() | ESRNN_IGNORED]
    if unused:
        takes = ", ".join(dict.fromkeys(_flag_of(k) for k in ESRNN_FIELDS
                                        if k != "model.cell" or not hasattr(args, "n_windows")))
        raise ValueError(f"{', '.join(unused)}: not "
                         f"{'an option' if len(unused) == 1 else 'options'} of --model "
                         f"{args.model} (ES-RNN uses "
                         f"no covariates, search or Forecaster settings); leave them out (it "
                         f"takes {takes}, --ensemble) or use an RNN forecaster")


def _esrnn_config(given: dict[str, dict[str, Any]], season: int):
    """The :class:`~rnnkit.forecast.esrnn.ESRNNConfig` of the flags of :data:`ESRNN_FIELDS`
    (the library's defaults for the rest; ``season`` the given or inferred one)."""
    from ..forecast.esrnn import ESRNNConfig

    kw = {ESRNN_FIELDS[f"{sec}.{k}"]: v for sec in ("model", "train")
          for k, v in given[sec].items() if f"{sec}.{k}" in ESRNN_FIELDS and v is not None}
    return ESRNNConfig(**{**kw, "horizon": _horizon(given), "season": season})


def _esrnn(cfg, n_models: int):
    """An unfitted ES-RNN of ``cfg``, or (``n_models`` > 1) the mean of ``n_models`` of them
    with the seeds ``seed, seed + 1, ...`` (a mean :class:`ForecastCombination`)."""
    from ..forecast.esrnn import ESRNN

    if n_models == 1:
        return ESRNN(cfg)
    from ..forecast.combine import ForecastCombination

    return ForecastCombination({f"esrnn_seed{cfg.seed + k}": ESRNN(cfg, seed=cfg.seed + k)
                                for k in range(n_models)}, method="mean", validation_windows=0,
                               season=cfg.season, horizon=cfg.horizon)


def _new_model(args, cfg):
    """The unfitted model of ``--model esrnn`` or ``comb``: ES-RNN (``--ensemble`` seeds), or
    its :class:`ForecastCombination` with ETS and ARIMA, weighted by ``--combine`` over
    ``--validation-windows`` origins (each member fitted once for them: ``refit=False``)."""
    rnn = _esrnn(cfg, args.ensemble)
    if args.model == "esrnn":
        return rnn
    from ..forecast.baselines import ARIMA, ETS
    from ..forecast.combine import ForecastCombination

    m, H = cfg.season, cfg.horizon
    return ForecastCombination(
        {"esrnn": rnn, "ets": ETS(season=m, horizon=H), "arima": ARIMA(season=m, horizon=H)},
        method=args.method or "inverse_error",
        validation_windows=2 if args.validation_windows is None else args.validation_windows,
        season=m, horizon=H, refit=False)


def _weights_table(comb) -> str:
    """The combination's per-series weights (rows sum to 1), as a table for stdout."""
    w = comb.weights_.rename_axis("series").reset_index()
    return w.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def _esrnn_lines(model) -> list[str]:
    """One "trained ..." line per fitted ES-RNN in ``model`` (an ES-RNN or a combination)."""
    lines = []
    for m in _members(model):
        h = getattr(m, "history", None)
        if not hasattr(m, "net") or not isinstance(h, dict):
            continue
        val = (f"best validation MASE {h['best_val_mase']:.4f}"
               if h.get("best_val_mase") is not None else "no validation")
        lines.append(f"trained {m.config.cell} ES-RNN (seed {m.config.seed}) on {len(m.names)} "
                     f"series for {h.get('best_step')} steps ({val})")
    return lines


def _grid(items) -> dict:
    """``["baseline=last,seasonal", "input_len=24,48"]`` -> ``{"baseline": ["last", ...],
    "input_len": [24, 48]}`` (numbers parsed as int, else float, else kept as text)."""
    def num(v: str):
        for kind in (int, float):
            try:
                return kind(v)
            except ValueError:
                pass
        return v

    grid = {}
    for item in items or []:
        key, _, vals = item.partition("=")
        if not key or not vals:
            raise ValueError(f"--search takes FIELD=V1,V2,... (a ForecasterConfig field), "
                             f"got {item!r}")
        grid[key.strip().replace("-", "_")] = [num(v.strip()) for v in vals.split(",")]
    return grid


def _progress_path(args) -> str:
    """Where ``--model esrnn`` / ``comb`` keep a run that a signal stopped (``OUT.progress``),
    checked before any work: ``--resume`` needs it, a new run must not silently drop it."""
    path = f"{args.out}.progress"
    if args.resume and args.overwrite:
        raise ValueError("--resume continues the interrupted run and --overwrite starts over; "
                         "give one of them")
    if args.resume and args.model not in GLOBAL_MODELS:
        raise ValueError(f"--resume continues an interrupted --model esrnn or comb run; a "
                         f"--model {args.model} run is trained again (with --train.out_dir "
                         f"its last.pt is kept)")
    if args.resume and not os.path.exists(path):
        raise ValueError(f"--resume: no interrupted run to continue ({path} does not exist); "
                         f"drop --resume to train a new model")
    if os.path.exists(path) and not args.resume and not args.overwrite:
        again = ("pass --resume to continue it" if args.model in GLOBAL_MODELS else
                 "continue it with its own --model esrnn/comb command plus --resume")
        raise ValueError(f"{path} holds an interrupted run of --out {args.out}; {again}, or "
                         f"pass --overwrite to start over")
    return path


def _changed_flags(changed: dict[str, tuple[Any, Any]]) -> list[str]:
    """The settings of a ``--model esrnn | comb`` progress file that differ from this command's
    (``{key: (in the file, now)}``, keys of :meth:`ForecastCombination._describe
    <rnnkit.forecast.combine.ForecastCombination._describe>` or the ES-RNN's config), as flags:
    each changed leaf once by its flag, and another model or seed count as ``--model or
    --ensemble``."""
    flags = {field: _flag_of(key) for key, field in ESRNN_FIELDS.items()}
    flags |= {"method": "--combine", "validation_windows": "--validation-windows"}
    words: dict[str, str] = {}

    def kind(d: dict) -> Any:
        return d.get("model", d.get("class")), sorted(d)

    def walk(old: Any, new: Any) -> None:
        if isinstance(old, dict) and isinstance(new, dict) and kind(old) == kind(new):
            for k in old:
                if old[k] != new[k]:
                    walk_key(k, old[k], new[k])
        elif isinstance(old, dict) and isinstance(new, dict) and len(old) == len(new) and \
                "model" not in old and "class" not in old:  # members renamed (--seed): by order
            for a, b in zip(old.values(), new.values()):
                if a != b:
                    walk(a, b)
        else:
            words.setdefault("--model", "--model or --ensemble differ (another model, or "
                                        "another number of seeds)")

    def walk_key(k: str, old: Any, new: Any) -> None:
        if isinstance(old, dict) or isinstance(new, dict):
            walk(old, new)
        else:
            f = flags.get(k, k)
            words.setdefault(f, f"{f} was {old!r}, now {new!r}")

    if "model" in changed:
        walk({"model": changed["model"][0]}, {"model": changed["model"][1]})
    else:
        for k, (old, new) in changed.items():
            walk_key(k, old, new)
    return list(words.values())


def _drop_old_progress(args, path: str) -> None:
    """``--overwrite``: the interrupted run in ``path`` goes, once every check has passed and
    the data are read (a command refused for a typo keeps it); rank 0 only."""
    from ..train.distributed import is_main_process

    if args.overwrite and os.path.exists(path) and is_main_process():
        os.remove(path)


def _train(args) -> int:
    from ..forecast.ensemble import ForecastEnsemble
    from ..train.distributed import is_main_process

    # every file written, before any work; a resumed run replaces --out as the run it continues
    # was allowed to (with --overwrite, which the printed resume command leaves out)
    check_output(args.out, args.overwrite or args.resume, "--out")
    progress = _progress_path(args)
    given = _given(args)
    _check_run_dir(given, overwrite=args.overwrite)
    _check_counts(args)
    _check_new_model_flags(args, given)
    if args.model in GLOBAL_MODELS:
        return _train_global(args, given, progress)
    df, cols, season, note = _load(args, given["model"].get("season"))
    cfg = _config(given, season)
    notes = _choices(note, given, cfg, _grid(args.search))
    _drop_old_progress(args, progress)
    if args.search:
        from ..forecast.search import ForecastSearch

        search = ForecastSearch(cfg, _grid(args.search), n_models=args.ensemble,
                                top_k=args.top_k, progress=notes).fit(df, **cols)
        if not is_main_process():  # under torchrun only rank 0 reports and saves
            return 0
        notes()
        print("validation scores: " + ", ".join(f"{o} {v:.4f}" for o, v in search.scores))
        print(f"averaging {len(search.members)} network(s) of the settings {search.chosen}")
        members = search.members
    else:
        members = ForecastEnsemble(cfg, args.ensemble).fit(df, **cols).members
    if not is_main_process():  # under torchrun only rank 0 saves and reports
        return 0
    notes()  # now that the fit passed its checks
    model = members[0] if len(members) == 1 else ForecastEnsemble.of(members)
    model.save(args.out)  # atomic, and only now: an interrupted run leaves --out untouched
    for m in members:
        h = m.history or {}
        val = (f"best validation loss {h['best_val_loss']:.4f}" if m.config.val_fraction
               else "no validation: --model.val_fraction 0")
        print(f"trained {m.config.cell} forecaster for {h.get('steps')} steps ({val})")
    print(f"saved {args.out}")
    _card(args.out)
    return 0


def _train_global(args, given: dict[str, dict[str, Any]], progress: str) -> int:
    """``train --model esrnn | comb``: fit the ES-RNN (or its combination) on every series
    and save it with its own ``.save`` (atomic; ``--out`` already checked). A signal stops the
    fit with its work kept in ``progress`` (:mod:`rnnkit.forecast.progress`), which
    ``--resume`` continues and a finished run deletes."""
    from ..train.distributed import is_main_process

    df, cols, season, note = _load(args, given["model"].get("season"))
    cfg = _esrnn_config(given, season)
    model = _new_model(args, cfg)
    notes = _choices(note, given, cfg, {})
    _drop_old_progress(args, progress)
    if args.resume:
        print(f"continuing the run saved in {progress}", file=sys.stderr)
    from ..train.resumable import ProgressMismatch

    try:
        model.fit(df, progress=progress if is_main_process() else None, **cols)
    except ProgressMismatch as err:  # in flag words: the settings are flags here
        raise progress_mismatch(err, progress, _changed_flags(err.changed),
                                "the data holds other series or values") from None
    except ValueError as err:
        raise unreadable_progress(err, progress) from None
    if not is_main_process():  # under torchrun only rank 0 saves and reports
        return 0
    notes()  # now that the fit passed its checks
    for m in _members(model):  # a combination fits its members on Series, not on the columns:
        if hasattr(m, "columns") and not any(m.columns.values()):  # keep them for predict --csv
            m.columns = {k: cols[k] for k in ("time", "target", "series")}
    model.save(args.out)  # atomic, and only now: an interrupted run leaves --out untouched
    if os.path.exists(progress):  # spent: the model holds all of it
        os.remove(progress)
    for line in _esrnn_lines(model):
        print(line)
    if args.model == "comb":
        print(f"combination weights (--combine {model.method}, "
              f"{model.validation_windows} validation windows):")
        print(_weights_table(model))
    print(f"saved {args.out}")
    _card(args.out)
    return 0


def _card(path: str) -> None:
    from ..train.trainer import write_card

    card = write_card(path)
    if card:
        _status(f"wrote {card} (model card)")


def _check_counts(args) -> None:
    if args.ensemble < 1:
        raise ValueError(f"--ensemble takes a number of RNN seeds >= 1, got {args.ensemble}")
    if args.top_k < 1:
        raise ValueError(f"--top-k takes a number of settings >= 1, got {args.top_k}")
    if args.top_k > 1 and not args.search:
        raise ValueError("--top-k averages the best settings of a search; give the settings "
                         "with --search FIELD=V1,V2 (or leave --top-k out)")
    if args.search:
        n = math.prod(len(v) for v in _grid(args.search).values())
        if args.top_k > n:
            raise ValueError(f"--top-k {args.top_k} but the --search grid has {n} setting"
                             f"{'s' if n != 1 else ''}; give --top-k {n} or less (--top-k {n} "
                             f"averages them all) or more values to --search")


def _members(model) -> list:
    """The forecasters of a loaded model (an ensemble's members, a combination's fitted
    members in turn, or the model itself)."""
    fitted = getattr(model, "models_", None)
    if isinstance(fitted, dict):  # a ForecastCombination (its .members are templates)
        return [leaf for m in fitted.values() for leaf in _members(m)]
    return list(getattr(model, "members", [model]))


def _predict(args) -> int:
    from ..data.timeseries import read_csv
    from ..forecast.ensemble import load_forecaster
    from ..forecast.plots import plot_forecast
    from ..saving import atomic_write_text

    _check_writable(args, "--out", "--plot")
    model = load_forecaster(args.checkpoint)
    # the first rnnkit member (a combination's statistical baselines keep no columns)
    first = next(m for m in _members(model) if hasattr(m, "columns"))
    known = list(first.series[0].future_names)
    if known and not args.future_csv:
        raise ValueError(f"{args.checkpoint} uses known-future covariates {known}: give their "
                         f"next {first.config.horizon} values with --future-csv FILE (the time"
                         f"{', series' if first.columns.get('series') else ''} and covariate "
                         f"columns)")
    history = future = None
    if args.csv:
        wanted = _trained_columns(first, "past_covariates")
        history = read_csv(args.csv, "--csv", needs=f"the model's columns {wanted}")
        _check_columns(history, wanted, "--csv")
    if args.future_csv:
        wanted = _trained_columns(first, "future_covariates")
        future = read_csv(args.future_csv, "--future-csv", needs=f"the columns {wanted}")
        _check_columns(future, wanted, "--future-csv")
    if history is not None and hasattr(model, "models_"):
        # a combination hands the history to every member, and the baselines know no
        # columns: read it as the rnnkit member was trained
        from ..data.timeseries import as_series

        col = first.columns
        history = as_series(history, col.get("time"), col.get("target"), col.get("series"),
                            freq=getattr(first, "freq", None))
    with metered(args, "forecasts", 1) as meter:
        fc = model.predict(history=history, future=future, levels=args.levels)
        frame = fc.to_frame()
        meter.add(frame["series"].nunique() if "series" in frame else 1)
    if args.out:
        atomic_write_text(frame.to_csv(index=False), args.out)
        _status(f"wrote {len(frame)} forecast rows to {args.out}")
    else:
        print(frame.to_string(index=False))
    if args.plot:
        owner = model if hasattr(model, "_history") else first
        _status(f"wrote {plot_forecast(owner._history(history), fc, args.plot)}")
    return 0


def _trained_columns(model, covariates: str) -> list[str]:
    """The columns a CSV for ``model`` needs: the training time, series and target columns
    (``covariates="past_covariates"``: a history, with every covariate) or the time, series
    and known-future covariate columns (``"future_covariates"``: a ``--future-csv``)."""
    col = model.columns
    target = col.get("target")
    names = [col.get("time"), col.get("series")]
    if covariates == "past_covariates":
        names += [*([target] if isinstance(target, str) else list(target or ())),
                  *col.get("past_covariates", ())]
    names += list(col.get("future_covariates", ()))
    return [n for n in dict.fromkeys(names) if n]


def _check_columns(df, wanted: list[str], flag: str) -> None:
    """Before predicting: the CSV of ``flag`` holds the columns the model was trained on (a
    predict has no --time / --target to change: the model fixes them)."""
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise ValueError(f"{flag} lacks the column(s) {missing} the model was trained on; give "
                         f"a CSV with the columns {wanted} (it has {list(df.columns)})")


def _backtest(args) -> int:
    from ..forecast.backtest import backtest
    from ..forecast.baselines import ARIMA, ETS, Naive2, SeasonalNaive
    from ..forecast.forecaster import Forecaster
    from ..forecast.plots import plot_forecast
    from ..forecast.result import check_levels
    from ..saving import atomic_write_text

    given = _given(args)
    _check_writable(args, "--out", "--plot")
    _check_run_dir(given)
    _check_counts(args)
    if args.n_windows < 1:
        raise ValueError(f"--windows takes the number of forecast origins to score, >= 1, got "
                         f"{args.n_windows}")
    _check_new_model_flags(args, given)
    rnn_only = [flag for flag, used in (("--search", args.search),
                                        ("--ensemble", args.ensemble > 1),
                                        ("--top-k", args.top_k > 1),
                                        ("--ar-window", given["model"].get("ar_window")))
                if used]
    if args.model not in ("lstm", "gru", *GLOBAL_MODELS) and rnn_only:
        raise ValueError(f"{', '.join(rnn_only)}: RNN options, for --model lstm or gru, not "
                         f"{args.model}; leave them out or pick an RNN model")
    df, cols, season, note = _load(args, given["model"].get("season"))
    H = _horizon(given)
    if args.model in ("lstm", "gru"):
        cfg = _config(given, season, cell=args.model)
        grid = _grid(args.search)
        if not {"head", "quantiles"} & set(grid):  # levels the head cannot give: before work
            cfg.interval_levels(args.levels)
        notes = _choices(note, given, cfg, grid)

        def factory():
            if args.search:
                from ..forecast.search import ForecastSearch

                return ForecastSearch(cfg, grid, n_models=args.ensemble, top_k=args.top_k,
                                      progress=lambda text: notes(f"  {text}"))
            if args.ensemble > 1:
                from ..forecast.ensemble import ForecastEnsemble

                return ForecastEnsemble(cfg, n_models=args.ensemble)
            return Forecaster(cfg)
    elif args.model in GLOBAL_MODELS:
        cfg = _esrnn_config(given, season)
        _new_model(args, cfg)  # its settings checked before any work
        unlearned = [lv for lv in check_levels(args.levels, cfg.levels)
                     if float(lv) not in map(float, cfg.levels)]
        if unlearned:
            asked = " ".join(f"{lv:g}" for lv in unlearned)
            learned = ", ".join(f"{lv:g}" for lv in cfg.levels)
            raise ValueError(f"--levels {asked}: ES-RNN learns the intervals of the levels "
                             f"{learned} only; pick --levels from them (or --levels with no "
                             f"value: none)")
        notes = _choices(note, given, cfg, {})
        fitted: list = []  # the combinations fitted, for their weights

        def factory():
            fitted.append(_new_model(args, cfg))
            return fitted[-1]
    else:
        check_levels(args.levels)
        cls = {"snaive": SeasonalNaive, "naive2": Naive2, "arima": ARIMA,
               "ets": ETS}[args.model]
        notes = _choices(note, given, None, {})

        def factory():
            return cls(season=season, horizon=H)
    res = backtest(factory, df, horizon=H, n_windows=args.n_windows, refit=args.refit,
                   season=season, levels=args.levels, progress=notes, **cols)
    notes()
    print(res.scores.to_string(index=False))
    print("mean: " + ", ".join(f"{k} {v:.4g}" for k, v in res.summary().items()))
    if args.model == "comb":
        comb = fitted[-1]
        when = ("its last fit" if args.refit else "its fit before the first window")
        print(f"combination weights (--combine {comb.method}, {comb.validation_windows} "
              f"validation windows inside the data of {when}):")
        print(_weights_table(comb))
    if args.out:
        atomic_write_text(res.scores.to_csv(index=False), args.out)
        _status(f"wrote {args.out}")
    if args.plot:
        from ..data.timeseries import as_series

        series = as_series(df, **cols)
        _status(f"wrote {plot_forecast(series, res.forecasts[-1], args.plot, backtest=res)}")
    return 0


LEVELS_HELP = ("central prediction-interval levels in percent, e.g. --levels 80 95; --levels "
               "with no value: no intervals (default: {default})")


def register(subparsers) -> None:
    """Add ``forecast`` with its ``train``, ``predict`` and ``backtest`` subcommands."""
    p = subparsers.add_parser("forecast", help="train, predict and backtest RNN forecasters",
                              description=DESCRIPTION)
    sub = p.add_subparsers(dest="forecast_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    sections = _sections()

    def model_args(q, not_flags=frozenset()):
        q.add_argument("--config", metavar="FILE.toml",
                       help="TOML file with [model] (ForecasterConfig) and [train] "
                       "(TrainConfig) tables; flags win over it")
        q.add_argument("--search", nargs="*", metavar="FIELD=V1,V2",
                       help="settings to choose from by validation on the training tail, "
                       "e.g. baseline=last,seasonal,seasonal_mean")
        q.add_argument("--top-k", type=int, default=1,
                       help="with --search: average the K best settings (each with --ensemble "
                       "seeds) instead of only the best")
        q.add_argument("--ensemble", type=int, default=1,
                       help="RNN seeds averaged (per setting with --search)")
        add_config_arguments(q, sections, ALIASES, NOT_FLAGS | set(not_flags))
        g = q.add_argument_group("--model comb (ES-RNN + ETS + ARIMA, weighted per series)")
        g.add_argument("--combine", dest="method", default=None,
                       choices=["inverse_error", "best", "mean", "median"],
                       help="how the members are weighted per series: by inverse validation "
                       "MASE, all on the best one, equally, or the median (default: "
                       "inverse_error)")
        g.add_argument("--validation-windows", type=int, default=None, metavar="V",
                       help="rolling origins inside the training data that score the members "
                       "(each fitted once, before the first; default: 2)")

    t = sub.add_parser("train", help="train a forecaster and save it",
                       description="Train an RNN forecaster. Its options come from the "
                       "defaults, then --config FILE.toml ([model], [train] tables), then "
                       "flags. The last part of each series (--model.val_fraction, at least "
                       "one horizon) is held out to pick the best step.")
    _add_data_args(t)
    model_args(t)
    t.add_argument("--model", default="forecaster", choices=["forecaster", *GLOBAL_MODELS],
                   help="forecaster: the RNN Forecaster of the [model] settings; esrnn: the "
                   "ES-RNN hybrid, one network across all series (--horizon, --input-len, "
                   "--season, --cell, --hidden-size, --model.num_layers, --steps, --train.lr, "
                   "--seed, --eval-every, --patience); comb: ES-RNN, ETS and ARIMA combined per "
                   "series (--combine, --validation-windows) (default: %(default)s)")
    t.add_argument("--progress", dest="train.progress", action="store_const", const=True,
                   default=argparse.SUPPRESS, help="show a progress bar")
    t.add_argument("--out", default="forecaster.pt",
                   help="checkpoint path (default: %(default)s)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out file (and a --train.out_dir run, or the "
                   "OUT.progress of an interrupted --model esrnn/comb run)")
    t.add_argument("--resume", action="store_true",
                   help="--model esrnn or comb: continue the run that Ctrl-C or SIGTERM "
                   "stopped, from OUT.progress (same data and flags; the result is the model "
                   "an uninterrupted run gives)")
    t.set_defaults(func=speaking_flags(_train, t),
                   resumable=lambda a: a.model in GLOBAL_MODELS)  # the resume line's condition

    q = sub.add_parser("predict", help="forecast with a saved model",
                       description="Forecast the next horizon steps with a model saved by "
                       "'rnnkit forecast train'; the table goes to stdout unless --out is "
                       "given, status lines to stderr.")
    q.add_argument("checkpoint")
    q.add_argument("--csv", help="recent history (same columns as in training); default: the "
                   "end of the training data")
    q.add_argument("--future-csv", help="known-future covariates over the horizon")
    q.add_argument("--levels", type=int, nargs="*", default=None, metavar="LEVEL",
                   help=LEVELS_HELP.format(default="those the model's head gives: none for a "
                                           "point head, 80 95 for a gaussian head, the "
                                           "quantile pairs' levels for a quantile head"))
    q.add_argument("--out", help="write the forecast CSV here (default: print it)")
    q.add_argument("--plot", help="write a PNG of history + forecast + intervals to this path")
    add_compute_flag(q, "forecast (one series' horizon)")
    q.set_defaults(func=speaking_flags(_predict, q, t))  # its hints name train's flags

    b = sub.add_parser("backtest", help="rolling-origin evaluation over the last windows",
                       description="Evaluate a forecaster over the last --windows forecast "
                       "origins (fitted once before the first, or at each with --refit).")
    _add_data_args(b)
    model_args(b, not_flags={"model.cell"})  # --model names the cell
    b.add_argument("--model", default="lstm",
                   choices=["lstm", "gru", *GLOBAL_MODELS, "snaive", "naive2", "arima", "ets"],
                   help="the RNN cell; esrnn (the ES-RNN hybrid, one LSTM network across all "
                   "series); comb (ES-RNN, ETS and ARIMA weighted per series: --combine, "
                   "--validation-windows); or a baseline (default: %(default)s)")
    b.add_argument("--windows", dest="n_windows", type=int, default=4,  # backtest()'s name:
                   help="forecast origins (default: 4)")            # its hints say --windows
    b.add_argument("--refit", action="store_true", help="refit at every origin")
    b.add_argument("--levels", type=int, nargs="*", default=None, metavar="LEVEL",
                   help=LEVELS_HELP.format(default="an RNN's head's levels, 80 95 for the "
                                           "baselines"))
    b.add_argument("--out", help="write per-window scores CSV here")
    b.add_argument("--plot", help="write a PNG with the backtest forecasts to this path")
    b.set_defaults(func=speaking_flags(_backtest, b))
