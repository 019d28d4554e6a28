"""Forecasting benchmark with an honest protocol: choose on the development set, report once on
series no choice has seen.

**Two sets.** ``dev``: the series every earlier choice of this benchmark saw (grids, steps,
recipes were tuned on them; ES-RNN's settings too, see ``benchmarks/esrnn_dev.py``). ``report``:
:data:`rnnkit.data.datasets.REPORT_SET`, real series registered for this purpose; their
horizons, window counts and input lengths below were fixed from each series' frequency and
length (M4 horizons: yearly 6, quarterly 8, monthly 12 as in dev, daily 10-14, half-hourly
one day) before any model was run on them, and nothing here is tuned on them. The model
called ``--recipe`` ("rnnkit's best recipe") is named from the dev table before the report
run. ``report2``: :data:`~rnnkit.data.datasets.REPORT2_SET`, 27 series in three data sets
(20 World Bank fertility series, yearly; Danish money demand, 5 quarterly series; German
inflation and interest rate, 2 quarterly), registered after ``report`` had been read, by the
same rule and run once with the recipe ``report`` was run with.

**Protocol**, the same for every model: the last ``W`` non-overlapping windows of ``H`` steps
of each series are forecast from their origins. Neural models (rnnkit's, darts',
neuralforecast's) are trained once on the data before the first origin and then only condition
on the newer history (``backtest(refit=False)``); the *global* ones (``esrnn``, ``esrnn3``, the
combinations) learn one model across all series of a set that share ``(H, W, season)``. The
statistical baselines re-estimate their parameters at every origin (the ARIMA order and ETS
form are searched at the first). MASE is scaled per window by the in-sample seasonal-naive
error with the series' season ``m``; sMAPE in percent; OWA is the M4 score
``(sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2`` over the set's windows.

Models: ``snaive``, ``naive2`` (M4), ``ets``, ``arima`` (statistical); ``rnn`` (rnnkit's
:class:`~rnnkit.forecast.Forecaster`, the seasonal-baseline recipe, one network); ``search``
(the older GRID ensemble of :class:`~rnnkit.forecast.search.ForecastSearch`, 12 networks per
series: slow); ``esrnn`` (:class:`~rnnkit.forecast.esrnn.ESRNN`, global, its dev settings);
``esrnn3`` (the mean of 3 seeds' ES-RNNs); ``comb``
(:class:`~rnnkit.forecast.combine.ForecastCombination` of esrnn3, ETS and ARIMA, weighted per
series by inverse MASE on 2 rolling origins inside the training data); ``comb_mean`` (the same
three, plain median); ``comb4`` (``comb`` plus ``rnn`` as a fourth member); the peers
``darts_block_lstm``, ``darts_lstm`` and ``nf_lstm``, each fitted per series as in their own
examples (extra ``forecast-peers``; defaults from their docs, see
``benchmarks/forecast_peers.py``).

Results are merged into ``benchmarks/results/forecast_<set>.json`` (per series and model: the
per-window MASE and sMAPE and the seconds), so models can be run in separate calls::

    python benchmarks/forecast.py --set dev                       # all models on dev
    python benchmarks/forecast.py --set report --models esrnn comb snaive naive2 ets arima
    python benchmarks/forecast.py --set report --table            # print the merged table

Prints one row per (series, model) as it goes, then the MASE table, M4-style mean sMAPE / MASE
/ OWA, the targets (``--recipe`` beats ARIMA and ETS on most series, seasonal naive wherever any
model does, and the peers on most), and a paired Wilcoxon test of ``--recipe`` against each
model over all windows of the set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rnnkit.data.datasets import (  # noqa: E402
    REPORT2_SET,
    REPORT_SET,
    dataset_info,
    load_dataset,
)
from rnnkit.data.timeseries import from_dataframe  # noqa: E402
from rnnkit.forecast.backtest import backtest  # noqa: E402
from rnnkit.forecast.baselines import ARIMA, ETS, Naive2, SeasonalNaive  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# name -> (horizon H, windows W, input length L); season from the registry
DEV = {
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
}
# fixed from frequency and length only (see the module docstring), before any model ran
REPORT = {
    "ausbeer": (8, 4, 16),
    "austres": (8, 4, 16),
    "woolyrnq": (8, 4, 16),
    "uschange": (8, 4, 16),
    "lynx": (6, 4, 12),
    "seatbelts": (12, 4, 24),
    "shampoo": (6, 2, 12),
    "taylor": (48, 5, 96),
    "goog": (10, 5, 40),
    "heartrate": (10, 4, 20),
}
assert set(REPORT) == set(REPORT_SET), "the report table must cover REPORT_SET exactly"
# the second report set (registered after the first had been read; several series each), by
# the same rule: yearly (6, 4, 12) as lynx; quarterly (8, 4, 16), with W = 2 where 4 windows
# would leave less than L + H steps before the first origin (danish_money: 55 quarters)
REPORT2 = {
    "fertility": (6, 4, 12),
    "danish_money": (8, 2, 16),
    "german_rates": (8, 4, 16),
}
assert set(REPORT2) == set(REPORT2_SET), "the report2 table must cover REPORT2_SET exactly"
SETS = {"dev": DEV, "report": REPORT, "report2": REPORT2}

STATS = ("snaive", "naive2", "ets", "arima")
LOCAL_RNN = ("rnn", "search")
GLOBAL = ("esrnn", "esrnn3", "comb", "comb_mean", "comb4")
# the peers are fitted per series, as in their own examples (fitted globally across the dev
# set's unrelated series, their MASE was 1.5-2.5x worse)
PEERS = ("darts_block_lstm", "darts_lstm", "nf_lstm")
MODELS = STATS + LOCAL_RNN + GLOBAL + PEERS
DEFAULT_MODELS = ("snaive", "naive2", "ets", "arima", "rnn", "esrnn3", "comb", "comb_mean")
# the GRID of the older recipe (``search``): baseline x input length x AR highway
GRID = {"baseline": ["last", "seasonal", "seasonal_mean"], "input_len": [1, 2],
        "ar_window": [0, 1]}


def stat_factory(model: str, H: int, m: int):
    return partial({"snaive": SeasonalNaive, "naive2": Naive2, "ets": ETS, "arima": ARIMA}[model],
                   season=m, horizon=H)


def rnn_factory(model: str, H: int, L: int, m: int, steps: int, seed: int):
    from rnnkit.forecast import Forecaster, ForecasterConfig
    from rnnkit.forecast.search import ForecastSearch

    cfg = ForecasterConfig(
        horizon=H, input_len=L, cell="lstm", hidden_size=64, season=m,
        baseline="seasonal" if m > 1 else "last", transform="auto", max_steps=steps,
        lr=3e-3, batch_size=64, val_fraction=0.1, eval_every=50, patience=4, seed=seed)
    if model == "rnn":
        return lambda: Forecaster(cfg)
    grid = {**GRID, "input_len": [k * L for k in GRID["input_len"]],
            "ar_window": [k * L for k in GRID["ar_window"]]}
    n = int(np.prod([len(v) for v in grid.values()]))
    return lambda: ForecastSearch(cfg, grid, n_models=1, top_k=n)


def esrnn_factory(H: int, L: int, m: int, steps: int, seed: int):
    from rnnkit.forecast.esrnn import ESRNN, ESRNNConfig

    # the development set's settings (benchmarks/esrnn_dev.py: input length max(H, m, 4),
    # 1000 steps; a longer input was worse there)
    return lambda: ESRNN(ESRNNConfig(horizon=H, season=m, seed=seed))


def esrnn3_factory(H: int, L: int, m: int, steps: int, seed: int):
    """The mean forecast of ES-RNNs from 3 seeds (what won on the dev set), as a combination
    with equal weights and no validation."""
    from rnnkit.forecast.combine import ForecastCombination

    members = {f"seed{k}": esrnn_factory(H, L, m, steps, seed + k) for k in range(3)}
    return lambda: ForecastCombination(members, method="mean", validation_windows=0,
                                       season=m, horizon=H)


def global_factory(model: str, H: int, L: int, m: int, steps: int, seed: int):
    if model == "esrnn":
        return esrnn_factory(H, L, m, steps, seed)
    if model == "esrnn3":
        return esrnn3_factory(H, L, m, steps, seed)
    if model in ("comb", "comb_mean", "comb4"):
        from rnnkit.forecast.combine import ForecastCombination

        members = {"esrnn3": esrnn3_factory(H, L, m, steps, seed),
                   "ets": stat_factory("ets", H, m), "arima": stat_factory("arima", H, m)}
        if model == "comb4":
            members["rnn"] = rnn_factory("rnn", H, L, m, steps, seed)
        method = "median" if model == "comb_mean" else "inverse_error"
        return lambda: ForecastCombination(members, method=method,
                                           validation_windows=0 if model == "comb_mean" else 2,
                                           season=m, horizon=H, refit=False)
    raise ValueError(f"{model} is not a global model")


def peer_factory(model: str, H: int, L: int, seed: int):
    from forecast_peers import PEERS as PEER_FACTORIES  # the forecast-peers extra

    return partial(PEER_FACTORIES[model], H, L, seed)


def load(name: str):
    info = dataset_info(name)
    s = from_dataframe(load_dataset(name), "time", info.target[0], info.series)
    for x in s:  # results are keyed by these names: "stocks:AAPL" for a data set of several
        x.name = name if len(s) == 1 else f"{name}:{x.name}"
    return s, info.season


def expand(names: list[str], res: dict) -> list[str]:
    """The result keys of the data sets ``names`` (each, or each of its series)."""
    return [k for n in names for k in sorted(res) if k == n or k.startswith(n + ":")]


def results_path(which: str) -> Path:
    return RESULTS / f"forecast_{which}.json"


def read_results(which: str) -> dict:
    p = results_path(which)
    return json.loads(p.read_text()) if p.exists() else {}


def write_results(which: str, res: dict, mine: dict) -> None:
    """Merge this run's results (``mine``) into the file as it is now (another run may have
    written other models meanwhile) and into ``res``."""
    from rnnkit.atomic import merge_json

    merged = merge_json(results_path(which), mine, nested=True)
    res.clear()
    res.update(merged)


def record(res: dict, scores, model: str, seconds: float, n_series: int) -> None:
    for name, g in scores.groupby("series", sort=False):
        res.setdefault(str(name), {})[model] = {
            "mase": g["mase"].tolist(), "smape": g["smape"].tolist(),
            "seconds": seconds / n_series}


def run(which: str, names: list[str], models: list[str], steps: int, seed: int) -> dict:
    table = SETS[which]
    res, mine = read_results(which), {}
    data = {n: load(n) for n in names}
    print(f"{'series':16s} {'model':17s} {'MASE':>7s} {'sMAPE':>7s} {'sec':>7s}", flush=True)

    def show(scores, model, sec, n):
        for name, g in scores.groupby("series", sort=False):
            print(f"{name:16s} {model:17s} {g['mase'].mean():7.3f} {g['smape'].mean():7.2f} "
                  f"{sec / n:7.1f}", flush=True)

    for model in models:
        if model in GLOBAL:  # one model per group of series sharing (H, W, season)
            groups: dict = {}
            for n in names:
                H, W, L = table[n]
                groups.setdefault((H, W, L, data[n][1]), []).extend(data[n][0])
            for (H, W, L, m), series in groups.items():
                t = time.time()
                bt = backtest(global_factory(model, H, L, m, steps, seed), series, horizon=H,
                              n_windows=W, season=m, levels=())
                sec = time.time() - t
                record(mine, bt.scores, model, sec, len(series))
                show(bt.scores, model, sec, len(series))
                write_results(which, res, mine)
            continue
        for n in names:
            H, W, L = table[n]
            series, m = data[n]
            factory = (stat_factory(model, H, m) if model in STATS
                       else peer_factory(model, H, L, seed) if model in PEERS
                       else rnn_factory(model, H, L, m, steps, seed))
            t = time.time()
            bt = backtest(factory, series, horizon=H, n_windows=W, season=m, levels=())
            sec = time.time() - t
            record(mine, bt.scores, model, sec, len(series))
            show(bt.scores, model, sec, len(series))
            write_results(which, res, mine)
    return res


def report(which: str, res: dict, names: list[str], recipe: str) -> None:
    from scipy.stats import wilcoxon

    names = expand(names, res)
    models = [m for m in MODELS if any(m in res[n] for n in names)]
    full = [m for m in models if all(m in res[n] for n in names)]
    mean = {(n, m): float(np.mean(res[n][m]["mase"])) for n in names for m in models
            if m in res[n]}
    print(f"\n[{which}] backtest MASE per series (lower is better; - = not run)")
    print(f"{'series':16s}" + "".join(f"{m[:10]:>11s}" for m in models))
    for n in names:
        print(f"{n:16s}" + "".join(f"{mean[n, m]:11.3f}" if (n, m) in mean else f"{'-':>11s}"
                                   for m in models))
    if "naive2" in full:
        print(f"\n[{which}] M4 summary over all windows of the {len(names)} series "
              "(mean sMAPE %, mean MASE, OWA vs Naive2; mean fit+forecast s per series)")

        def pooled(m, key):
            return float(np.mean(np.concatenate([res[n][m][key] for n in names])))

        s2, m2 = pooled("naive2", "smape"), pooled("naive2", "mase")
        for m in full:
            s, a = pooled(m, "smape"), pooled(m, "mase")
            sec = np.mean([res[n][m]["seconds"] for n in names])
            print(f"  {m:17s} sMAPE {s:6.2f}  MASE {a:6.3f}  OWA {0.5 * (s / s2 + a / m2):6.3f}"
                  f"  {sec:7.1f} s")
    if recipe not in full:
        print(f"\n--recipe {recipe} was not run on every series of this set; no targets")
        return
    print(f"\n[{which}] targets for --recipe {recipe} (MASE per series)")
    for base in [m for m in full if m != recipe]:
        wins = sum(mean[n, recipe] < mean[n, base] for n in names)
        print(f"  beats {base:17s} on {wins:2d}/{len(names)} series")
    if "snaive" in full:
        beatable = [n for n in names if min(mean[n, m] for m in full) < mean[n, "snaive"]]
        missed = [n for n in beatable if mean[n, recipe] >= mean[n, "snaive"]]
        print(f"  seasonal naive is beaten by some model on {len(beatable)}/{len(names)} series;"
              f" {recipe} misses {len(missed)} of them" + (f": {', '.join(missed)}"
                                                              if missed else ""))
    print(f"\n[{which}] paired per-window MASE, {recipe} vs each model over all windows: windows "
          "won and the two-sided Wilcoxon signed-rank p")
    for base in [m for m in full if m != recipe]:
        a = np.concatenate([res[n][recipe]["mase"] for n in names])
        b = np.concatenate([res[n][base]["mase"] for n in names])
        d = a - b
        p = wilcoxon(d).pvalue if d.any() else 1.0
        print(f"  vs {base:17s} {int((d < 0).sum()):3d}/{len(d)} windows won, "
              f"median difference {np.median(d):+.3f}, p = {p:.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", dest="which", choices=list(SETS), default="dev")
    ap.add_argument("--series", nargs="*", default=None,
                    help="a subset of the set's series (default: all)")
    ap.add_argument("--models", nargs="*", default=list(DEFAULT_MODELS), choices=list(MODELS))
    ap.add_argument("--recipe", default="comb",
                    help="the model the targets are checked for (chosen on the dev set)")
    ap.add_argument("--steps", type=int, default=800, help="optimizer steps of rnnkit's RNNs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--table", action="store_true", help="only print the merged results")
    args = ap.parse_args(argv)
    names = args.series or list(SETS[args.which])
    unknown = sorted(set(names) - set(SETS[args.which]))
    if unknown:
        ap.error(f"--series {' '.join(unknown)}: not in the {args.which} set "
                 f"({', '.join(SETS[args.which])})")
    t0 = time.time()
    if args.table:
        res = read_results(args.which)
    else:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        with threadpool_limits(args.threads):  # BLAS threads fighting slow ARIMA down 20x
            res = run(args.which, names, args.models, args.steps, args.seed)
    report(args.which, res, names, args.recipe)
    print(f"\ntotal runtime {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
