"""Anomaly-detection benchmark on the labelled series shipped in sktime: Yahoo S5 (1000 points,
point anomalies) and MIT-BIH ECG (7500 samples, one anomalous segment).

Every detector is unsupervised: it is fitted on the leading part of the series (``train``
steps, no labels used; the labels show no anomaly there) and scored on the rest; thresholds
are chosen without labels (the telemanom dynamic threshold for the RNN detectors, a fixed
z = 3 over a 50-step window for the rolling z-score baseline, which needs no training). Prints
precision, recall, F1 and point-adjusted F1 over the steps after the training part, and writes
a PNG per series and detector to ``--out-dir``.

The three RNN detectors: one-step forecast errors (telemanom), one-step autoencoder errors,
and the beat-level ``method="window"`` autoencoder, whose window is one period of the training
part (autocorrelation, :func:`~rnnkit.anomaly.thresholds.beat_window`: 300 steps pooled by 6 on
mitdb, 12 steps on yahoo). MIT-BIH's labelled anomaly is one abnormal stretch of rhythm
(a premature beat, its missing T wave and the pause after it: steps 6936-7287), so one-step
errors miss it; Yahoo's are single-step spikes, so window scores blur them. The fourth row
runs the forecast and window detectors together
(:class:`~rnnkit.anomaly.union.AnomalyUnion`: a step is flagged when either flags it).

    python benchmarks/anomaly.py                 # about 1.5 min on 2 cores
    python benchmarks/anomaly.py --seeds 0 1 2   # the RNN detectors with three seeds, ~5 min
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit.anomaly import (  # noqa: E402
    AnomalyConfig,
    AnomalyDetector,
    AnomalyUnion,
    RollingZScore,
    beat_window,
    f1_scores,
    plot_anomalies,
)
from rnnkit.data.datasets import load_dataset  # noqa: E402

# name -> (training steps, window)
SETS = {"yahoo": (400, 32), "mitdb": (3000, 64)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=400, help="RNN optimizer steps")
    ap.add_argument("--window-steps", type=int, default=1500,
                    help="optimizer steps of the window autoencoder")
    ap.add_argument("--window-hidden", type=int, default=64,
                    help="hidden size of the window autoencoder")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out-dir", default="anomaly_plots")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.time()
    print(f"{'series':7s} {'detector':25s} {'prec':>6s} {'recall':>6s} {'F1':>6s} "
          f"{'F1-PA':>6s} {'flags':>5s} {'sec':>5s}")
    for name, (n_train, window) in SETS.items():
        df = load_dataset(name)
        y, lab = df["data"].to_numpy(), df["label"].to_numpy()
        beat_len, pool = beat_window(y[:n_train])       # unlabelled training part only

        def detector(method, seed, window=window, beat_len=beat_len, pool=pool):
            if method == "window":
                cfg = AnomalyConfig(method=method, input_len=beat_len, pool=pool,
                                    hidden_size=args.window_hidden,
                                    max_steps=args.window_steps, seed=seed)
            else:
                cfg = AnomalyConfig(method=method, input_len=window, max_steps=args.steps,
                                    seed=seed)
            return AnomalyDetector(cfg)

        def rnn(method, seed, y=y, n_train=n_train, detector=detector):
            if method == "forecast+window":
                model = AnomalyUnion([detector("forecast", seed), detector("window", seed)])
            else:
                model = detector(method, seed)
            return model.fit(y[:n_train]).detect(y)

        detectors = {"rolling z-score": partial(RollingZScore(window=50, z=3.0).detect, y)}
        for seed in args.seeds:
            tag = f" s{seed}" if len(args.seeds) > 1 else ""
            detectors[f"rnnkit lstm-forecast{tag}"] = partial(rnn, "forecast", seed)
            detectors[f"rnnkit lstm-autoenc{tag}"] = partial(rnn, "autoencoder", seed)
            detectors[f"rnnkit lstm-window{tag}"] = partial(rnn, "window", seed)
            detectors[f"rnnkit forecast+window{tag}"] = partial(rnn, "forecast+window", seed)
        for label, run in detectors.items():
            t = time.time()
            det = run()
            s = f1_scores(lab[n_train:], det.flags[n_train:])
            print(f"{name:7s} {label:25s} {s['precision']:6.3f} {s['recall']:6.3f} "
                  f"{s['f1']:6.3f} {s['f1_pa']:6.3f} {int(det.flags[n_train:].sum()):5d} "
                  f"{time.time() - t:5.1f}", flush=True)
            plot_anomalies(y, det, lab, str(out / f"{name}_{label.replace(' ', '_')}.png"),
                           title=f"{name}: {label}")
    print(f"total runtime {time.time() - t_all:.0f} s; plots in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
