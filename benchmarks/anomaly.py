"""Anomaly-detection benchmark on the labelled series shipped in sktime: Yahoo S5 (1000 points,
point anomalies) and MIT-BIH ECG (7500 samples, one anomalous segment).

Every detector is unsupervised: it is fitted on the leading part of the series (``train``
steps, no labels used) and scored on the rest; thresholds are chosen without labels (the
telemanom dynamic threshold for the RNN detectors, a fixed z = 3 over a 50-step window for the
rolling z-score baseline). Prints precision, recall, F1 and point-adjusted F1, and writes a PNG
per series and detector to ``--out-dir``.

    python benchmarks/anomaly.py                 # about 1-2 min on 2 cores
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit.data.datasets import load_dataset  # noqa: E402
from rnnkit.metrics_ts import f1_scores  # noqa: E402
from rnnkit.models.anomaly import (  # noqa: E402
    AnomalyConfig,
    AnomalyDetector,
    RollingZScore,
    plot_anomalies,
)

# name -> (training steps, window)
SETS = {"yahoo": (400, 32), "mitdb": (3000, 64)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=400, help="RNN optimizer steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", default="anomaly_plots")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.time()
    print(f"{'series':7s} {'detector':22s} {'prec':>6s} {'recall':>6s} {'F1':>6s} "
          f"{'F1-PA':>6s} {'flags':>5s} {'sec':>5s}")
    for name, (n_train, window) in SETS.items():
        df = load_dataset(name)
        y, lab = df["data"].to_numpy(), df["label"].to_numpy()
        def rnn(method, y=y, n_train=n_train, window=window):
            cfg = AnomalyConfig(method=method, input_len=window, max_steps=args.steps,
                                seed=args.seed)
            return AnomalyDetector(cfg).fit(y[:n_train]).detect(y)

        detectors = {
            "rolling z-score": partial(RollingZScore(window=50, z=3.0).detect, y),
            "rnnkit lstm-forecast": partial(rnn, "forecast"),
            "rnnkit lstm-autoenc": partial(rnn, "autoencoder"),
        }
        for label, run in detectors.items():
            t = time.time()
            det = run()
            s = f1_scores(lab[n_train:], det.flags[n_train:])
            print(f"{name:7s} {label:22s} {s['precision']:6.3f} {s['recall']:6.3f} "
                  f"{s['f1']:6.3f} {s['f1_pa']:6.3f} {int(det.flags[n_train:].sum()):5d} "
                  f"{time.time() - t:5.1f}", flush=True)
            plot_anomalies(y, det, lab, str(out / f"{name}_{label.replace(' ', '_')}.png"),
                           title=f"{name}: {label}")
    print(f"total runtime {time.time() - t_all:.0f} s; plots in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
