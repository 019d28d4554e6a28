"""rnnkit's drop-ins vs torch.nn, forward and forward+backward, in one process.

Both sides get identical weights and inputs; the two are timed alternately within each repeat
(so drift on a shared machine hits both), and the table reports medians and the ratio
ours / torch (< 1 means rnnkit is faster). Correctness is checked before anything is timed.

    python benchmarks/speed.py                     # full table (several minutes on 2 cores)
    python benchmarks/speed.py --quick             # two small shapes, 3 repeats
    python benchmarks/speed.py --backend loop --shapes 32,100,64,256
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time

import torch

import rnnkit.nn as rnn

SHAPES = [(32, 100, 64, 256), (1, 1000, 32, 128), (64, 256, 256, 512), (8, 2048, 16, 64)]
KINDS = {"LSTM": (rnn.LSTM, torch.nn.LSTM), "GRU": (rnn.GRU, torch.nn.GRU),
         "RNN": (rnn.RNN, torch.nn.RNN)}
VARIANTS = [(1, False), (2, False), (1, True)]  # (num_layers, bidirectional)


def _time(fn, number: int) -> float:
    """Seconds per call of ``fn``, averaged over ``number`` back-to-back calls."""
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def _calls_for(fn, target: float = 0.05) -> int:
    """How many calls make one measurement last about ``target`` seconds (after a warm-up)."""
    fn()
    once = _time(fn, 1)
    return max(1, min(50, round(target / max(once, 1e-6))))


def bench_pair(kind, shape, layers, bidir, backend, repeats):
    B, T, I, H = shape
    ours_cls, torch_cls = KINDS[kind]
    theirs = torch_cls(I, H, num_layers=layers, bidirectional=bidir, batch_first=True)
    ours = ours_cls(I, H, num_layers=layers, bidirectional=bidir, batch_first=True,
                    backend=backend)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(B, T, I)
    with torch.no_grad():  # correctness before speed
        torch.testing.assert_close(ours(x)[0], theirs(x)[0], rtol=1e-4, atol=1e-5)

    def forward(m):
        with torch.no_grad():
            m(x)

    def train(m):
        xg = x.clone().requires_grad_(True)
        out, _ = m(xg)
        out.sum().backward()

    res = {}
    for phase, fn in (("fwd", forward), ("train", train)):
        calls = {m: (lambda m=m, fn=fn: fn(m)) for m in (ours, theirs)}
        number = max(_calls_for(c) for c in calls.values())
        o, t = [], []
        for r in range(repeats):
            pair = [(ours, o), (theirs, t)] if r % 2 == 0 else [(theirs, t), (ours, o)]
            for m, acc in pair:
                acc.append(_time(calls[m], number))
        res[phase] = (statistics.median(o), statistics.median(t))
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small shapes, 3 repeats")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--backend", default="auto", help="rnnkit backend to time (auto, fused, loop)")
    p.add_argument("--kinds", default="LSTM,GRU,RNN")
    p.add_argument("--shapes", nargs="*", help="B,T,I,H tuples")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    shapes = [tuple(int(v) for v in s.split(",")) for s in a.shapes] if a.shapes else SHAPES
    repeats = a.repeats
    if a.quick:
        shapes, repeats = (shapes if a.shapes else [(32, 100, 64, 256), (1, 1000, 32, 128)]), 3
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, backend={a.backend}, "
          f"median of {repeats}; ratio = rnnkit / torch (lower is better)\n")
    print("| cell | layers | bidir | B,T,I,H | fwd ms (ours / torch) | fwd ratio "
          "| train ms (ours / torch) | train ratio |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for kind, shape, (layers, bidir) in itertools.product(a.kinds.split(","), shapes, VARIANTS):
        r = bench_pair(kind, shape, layers, bidir, a.backend, repeats)
        (fo, ft), (to, tt) = r["fwd"], r["train"]
        ratios += [fo / ft, to / tt]
        print(f"| {kind} | {layers} | {'yes' if bidir else 'no'} | {','.join(map(str, shape))} "
              f"| {fo * 1e3:.2f} / {ft * 1e3:.2f} | {fo / ft:.3f} "
              f"| {to * 1e3:.2f} / {tt * 1e3:.2f} | {to / tt:.3f} |", flush=True)
    print(f"\nratio median {statistics.median(ratios):.3f}, max {max(ratios):.3f} "
          f"over {len(ratios)} measurements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
