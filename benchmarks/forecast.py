"""Forecasting benchmark: backtest MASE and sMAPE of rnnkit LSTM / GRU forecasters against
seasonal naive, auto-ARIMA (pmdarima) and ETS (statsmodels) on real package-shipped series.

Protocol, identical for every model: the last ``W`` non-overlapping windows of ``H`` steps of
each series are forecast from their origins. The RNNs are trained once on the data before the
first origin (no refit) and then only condition on the newer history: each is a
:class:`~rnnkit.forecast.search.ForecastSearch` that fits one network per setting in
``GRID`` (the same grid for every series: baseline x input length x with or without LSTNet's
linear AR highway), ranks them by scaled error on the last 10% of that training data and
averages the ``--top-k`` best (default: all of them, the N-BEATS recipe; ``--top-k 1`` keeps
only the best), each with ``--ensemble`` seeds (``--no-search``: the fixed seasonal-baseline
recipe, one setting). The statistical baselines re-estimate their parameters at
every origin (the ARIMA order, intercept included, is searched once, at the first origin).
MASE is scaled per window by the in-sample seasonal naive error with the series' season ``m``.

    python benchmarks/forecast.py                     # full table (see the runtime it prints)
    python benchmarks/forecast.py --series airpassengers wineind --models lstm snaive
    python benchmarks/forecast.py --quick             # 3 series, fewer steps: a smoke run

Prints one row per series and model, a wide MASE table, the win counts against the targets
(rnnkit beats seasonal naive everywhere and ARIMA on the majority) and, per series, how many
backtest windows each RNN wins against seasonal naive and ARIMA with a paired Wilcoxon test
(a series-level "win" over 4 windows can be luck).
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from scipy.stats import wilcoxon

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit.data.datasets import dataset_info, load_dataset  # noqa: E402
from rnnkit.data.timeseries import from_dataframe  # noqa: E402
from rnnkit.forecast import (  # noqa: E402
    ForecastEnsemble,
    Forecaster,
    ForecasterConfig,
)
from rnnkit.forecast.backtest import backtest  # noqa: E402
from rnnkit.forecast.baselines import ARIMA, ETS, SeasonalNaive  # noqa: E402
from rnnkit.forecast.search import ForecastSearch  # noqa: E402

# name -> (horizon, windows, input_len): a stock, weather, sales-like and classic series
SERIES = {
    "airpassengers": (12, 4, 36),
    "wineind": (12, 4, 36),
    "elec_equip": (12, 4, 36),
    "us_employment": (12, 2, 24),
    "co2": (12, 4, 36),
    "elnino": (12, 4, 36),
    "sunspots": (10, 4, 44),
    "macrodata": (8, 4, 24),
    "stocks": (6, 4, 24),
    "seattle_weather": (14, 5, 56),
    "seattle_temps": (24, 5, 96),
}
DEFAULT = ["airpassengers", "wineind", "elec_equip", "us_employment", "co2", "elnino",
           "sunspots", "stocks", "seattle_weather"]
MODELS = ("lstm", "gru", "snaive", "arima", "ets")


# the settings each RNN fits and ranks by validation on the data before the first origin;
# input lengths and AR-highway windows are multiples of the series' L in SERIES (a too-long
# input is skipped)
GRID = {"baseline": ["last", "seasonal", "seasonal_mean"], "input_len": [1, 2],
        "ar_window": [0, 1]}


def rnn_factory(cell: str, horizon: int, input_len: int, season: int, steps: int, seed: int,
                ensemble: int = 1, search: bool = True, top_k: int | None = None):
    cfg = ForecasterConfig(
        horizon=horizon, input_len=input_len, cell=cell, hidden_size=64, season=season,
        baseline="seasonal" if season > 1 else "last", transform="auto", max_steps=steps,
        lr=3e-3, batch_size=64, val_fraction=0.1, eval_every=50, patience=4, seed=seed)
    if search:
        grid = {**GRID, "input_len": [k * input_len for k in GRID["input_len"]],
                "ar_window": [k * input_len for k in GRID["ar_window"]]}
        k = top_k or int(np.prod([len(v) for v in grid.values()]))
        return lambda: ForecastSearch(cfg, grid, n_models=ensemble, top_k=k)
    if ensemble > 1:
        return lambda: ForecastEnsemble(cfg, n_models=ensemble)
    return lambda: Forecaster(cfg)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", nargs="*", default=DEFAULT, choices=list(SERIES))
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--steps", type=int, default=800, help="RNN optimizer steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ensemble", type=int, default=1,
                    help="RNN seeds averaged per setting (1 = a single network)")
    ap.add_argument("--top-k", type=int, default=None,
                    help="average the K settings of GRID with the best validation scores "
                    "(default: all of them)")
    ap.add_argument("--no-search", dest="search", action="store_false",
                    help="fixed settings (seasonal baseline) instead of the GRID ensemble")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--quick", action="store_true", help="3 series, 200 steps")
    args = ap.parse_args(argv)
    if args.top_k is not None and args.top_k < 1:
        ap.error(f"--top-k takes a number of settings >= 1, got {args.top_k}")
    if args.quick:
        args.series, args.steps = ["airpassengers", "wineind", "stocks"], 200
    torch.set_num_threads(args.threads)
    t_all = time.time()
    results: dict[tuple[str, str], dict] = {}
    windows: dict[tuple[str, str], np.ndarray] = {}   # per (series, window) MASE
    print(f"{'series':16s} {'kind':9s} {'model':7s} {'MASE':>7s} {'sMAPE':>7s} {'sec':>6s}")
    for name in args.series:
        info = dataset_info(name)
        H, W, L = SERIES[name]
        m = info.season
        series = from_dataframe(load_dataset(name), "time", info.target[0], info.series)
        for model in args.models:
            if model in ("lstm", "gru"):
                factory = rnn_factory(model, H, L, m, args.steps, args.seed, args.ensemble,
                                      args.search, args.top_k)
            else:
                cls = {"snaive": SeasonalNaive, "arima": ARIMA, "ets": ETS}[model]
                factory = partial(cls, season=m, horizon=H)
            t = time.time()
            res = backtest(factory, series, horizon=H, n_windows=W, season=m, levels=())
            s = res.summary()
            results[name, model] = s
            windows[name, model] = res.scores["mase"].to_numpy()
            print(f"{name:16s} {info.kind:9s} {model:7s} {s['mase']:7.3f} {s['smape']:7.2f} "
                  f"{time.time() - t:6.1f}", flush=True)
    print("\nBacktest MASE (sMAPE %) per series; lower is better")
    print(f"{'series':16s}" + "".join(f"{m:>16s}" for m in args.models))
    for name in args.series:
        cells = "".join(f"{results[name, m]['mase']:8.3f} ({results[name, m]['smape']:5.2f})"
                        for m in args.models)
        print(f"{name:16s}{cells}")
    for rnn in ("lstm", "gru"):
        for base in ("snaive", "arima", "ets"):
            if rnn in args.models and base in args.models:
                wins = sum(results[n, rnn]["mase"] < results[n, base]["mase"] for n in args.series)
                print(f"{rnn} beats {base} on {wins}/{len(args.series)} series (MASE)")
    if "lstm" in args.models and "gru" in args.models:
        for base in ("snaive", "arima"):
            if base in args.models:
                best = sum(min(results[n, "lstm"]["mase"], results[n, "gru"]["mase"])
                           < results[n, base]["mase"] for n in args.series)
                print(f"best rnnkit (lstm|gru) beats {base} on {best}/{len(args.series)}")
    pairs = [(r, b) for r in ("lstm", "gru") for b in ("snaive", "arima")
             if r in args.models and b in args.models]
    if pairs:
        print("\nWindows won (MASE lower) and the two-sided Wilcoxon signed-rank p of the paired "
              "per-window MASE (p is only shown for >= 10 pairs)")
        for name in args.series:
            cells = []
            for r, b in pairs:
                d = windows[name, r] - windows[name, b]
                p = f"p={wilcoxon(d).pvalue:.2f}" if len(d) >= 10 and d.any() else ""
                cells.append(f"{r} vs {b} {int((d < 0).sum())}/{len(d)} {p}".strip())
            print(f"{name:16s} " + "; ".join(cells))
    mean = {m: np.mean([results[n, m]["mase"] for n in args.series]) for m in args.models}
    print("mean MASE: " + ", ".join(f"{m} {v:.3f}" for m, v in mean.items()))
    print(f"total runtime {time.time() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
