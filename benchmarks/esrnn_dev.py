"""ES-RNN on the development set: backtest MASE of one global ES-RNN against seasonal naive,
ETS and auto-ARIMA on the five package-shipped monthly series airpassengers, wineind,
elec_equip, co2 and us_employment (the development set; every setting of ES-RNN may be tuned
on them; the other registered series are kept untouched for the report).

Protocol: the last 4 non-overlapping windows of 12 steps of each series, season 12 for the
MASE. ES-RNN is fitted once, globally on all five series cut before each series' first origin,
and then only conditions on the newer history (``backtest(..., refit=False)``); the
statistical baselines are local models re-estimated at every origin (ARIMA's order and ETS's
form are searched at the first one).

    python benchmarks/esrnn_dev.py                      # the table (ARIMA: minutes)
    python benchmarks/esrnn_dev.py --seeds 0 1 2        # + the 3 seeds' mean forecast
    python benchmarks/esrnn_dev.py --models esrnn snaive --steps 400

The ES-RNN defaults here are ESRNNConfig's (hidden 32, 2 LSTM layers, input_len 12, level
penalty 10, 1000 steps, best validation weights kept).

Prints MASE per series and model, the mean, and each model's fit + forecast time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit.data.datasets import dataset_info, load_dataset  # noqa: E402
from rnnkit.data.timeseries import from_dataframe  # noqa: E402
from rnnkit.forecast.backtest import backtest  # noqa: E402
from rnnkit.forecast.baselines import ARIMA, ETS, SeasonalNaive  # noqa: E402
from rnnkit.forecast.esrnn import ESRNN, ESRNNConfig  # noqa: E402

DEV = ("airpassengers", "wineind", "elec_equip", "co2", "us_employment")
H, WINDOWS, SEASON = 12, 4, 12
MODELS = ("esrnn", "snaive", "ets", "arima")


def load_dev() -> list:
    out = []
    for name in DEV:
        info = dataset_info(name)
        s = from_dataframe(load_dataset(name), "time", info.target[0], freq=info.freq)[0]
        s.name = name
        out.append(s)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--steps", type=int, default=1000, help="ES-RNN max_steps")
    ap.add_argument("--input-len", type=int, default=None)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--cell", default="lstm")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--penalty", type=float, default=10.0)
    ap.add_argument("--max-history", type=int, default=600)
    ap.add_argument("--refit", action="store_true", help="ESRNNConfig(refit=True)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="ES-RNN seeds: one row each, plus their mean forecast when several")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dev()
    print("series lengths:", {s.name: len(s) for s in data})

    factories = {}
    for model in args.models:
        if model == "esrnn":
            for seed in args.seeds:
                cfg = ESRNNConfig(horizon=H, season=SEASON, input_len=args.input_len,
                                  hidden_size=args.hidden, num_layers=args.layers,
                                  cell=args.cell, lr=args.lr, level_penalty=args.penalty,
                                  max_steps=args.steps, max_history=args.max_history,
                                  refit=args.refit, seed=seed)
                factories[f"esrnn_s{seed}" if len(args.seeds) > 1 else "esrnn"] = \
                    (lambda cfg=cfg: ESRNN(cfg))
        elif model == "snaive":
            factories["snaive"] = lambda: SeasonalNaive(SEASON, H)
        elif model == "ets":
            factories["ets"] = lambda: ETS(SEASON, H)
        else:
            factories["arima"] = lambda: ARIMA(SEASON, H)

    table, secs, results = {}, {}, {}
    for name, make in factories.items():
        t0 = time.perf_counter()
        res = backtest(make, data, horizon=H, n_windows=WINDOWS, season=SEASON)
        secs[name] = time.perf_counter() - t0
        results[name] = res
        table[name] = res.scores.groupby("series", sort=False)["mase"].mean()
        print(f"{name}: {secs[name]:.1f}s, mean MASE {table[name].mean():.3f}", flush=True)
    seeds = [k for k in results if k.startswith("esrnn_s")]
    if len(seeds) > 1:  # the seeds' mean forecast, scored like the others
        from rnnkit.forecast.metrics import mase

        rows = {}
        for s in data:
            errs = []
            for w in range(WINDOWS):
                r0 = results[seeds[0]]
                i = r0.forecasts[w].names.index(s.name)
                o = r0.origins[w][[x.name for x in data].index(s.name)]
                mean = np.mean([results[k].forecasts[w].mean[i] for k in seeds], axis=0)
                errs.append(mase(s.target[o:o + H], mean, s.target[:o], SEASON))
            rows[s.name] = float(np.mean(errs))
        import pandas as pd

        table["esrnn_mean"] = pd.Series(rows)
        secs["esrnn_mean"] = sum(secs[k] for k in seeds)

    import pandas as pd

    frame = pd.DataFrame(table)
    frame.loc["mean"] = frame.mean()
    frame.loc["seconds"] = pd.Series(secs)
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
        print(f"\nbacktest MASE, last {WINDOWS} windows of {H} steps, season {SEASON} "
              f"(ES-RNN: global, fitted before the first origin; seconds: fit + forecasts)")
        print(frame)


if __name__ == "__main__":
    main()
