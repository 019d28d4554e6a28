"""Issue 4's speed table: custom cells, minGRU's parallel scan, GRU and streaming, each as a ratio
to the PyTorch peer measured in the same process (medians; lower is better).

    python benchmarks/speed_cells.py                 # full table, torch's default threads
    python benchmarks/speed_cells.py --threads 1     # what the notes were measured with
    python benchmarks/speed_cells.py --quick         # one small shape, for a smoke run

Correctness first: every backend timed here is checked against the ``loop`` reference in
float64 (outputs and gradients) before any timing starts. Timings on a shared machine are
noisy; only the ratios, taken back to back in one process, are meaningful.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from rnnkit import Recurrent

SHAPES = [(32, 100, 64, 256), (1, 1000, 32, 128), (8, 2048, 16, 64)]  # (B, T, I, H)
# (label, cell, options, backend)
CELLS = [
    ("layernorm_lstm", "layernorm_lstm", {}, "auto"),
    ("layernorm_gru", "layernorm_gru", {}, "auto"),
    ("peephole_lstm", "peephole_lstm", {}, "auto"),
    ("indrnn", "indrnn", {}, "auto"),
    ("peephole_lstm zoneout=0.1", "peephole_lstm", {"zoneout": 0.1}, "auto"),
    ("layernorm_lstm zoneout=0.1", "layernorm_lstm", {"zoneout": 0.1}, "auto"),
    ("layernorm_gru zoneout=0.1", "layernorm_gru", {"zoneout": 0.1}, "auto"),
    ("lstm (plain loop)", "lstm", {}, "loop"),
    ("lstm", "lstm", {}, "auto"),
    ("gru", "gru", {}, "auto"),
    ("gru (torch kernel)", "gru", {}, "fused"),
]


def ratio(ours, peer, repeats: int, budget_s: float = 30.0) -> tuple[float, float]:
    """Median of ``time(ours) / time(peer)`` over interleaved pairs (so drifting machine load
    hits both sides alike), and the peer's median time in seconds."""
    ours(), peer()
    ratios, peer_times = [], []
    start = time.perf_counter()
    while len(ratios) < repeats and (len(ratios) < 3 or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        ours()
        t1 = time.perf_counter()
        peer()
        t2 = time.perf_counter()
        ratios.append((t1 - t0) / (t2 - t1))
        peer_times.append(t2 - t1)
    return statistics.median(ratios), statistics.median(peer_times)


def forward_fn(module, x):
    def run():
        with torch.no_grad():
            module(x)
    return run


def train_fn(module, x):
    def run():
        out, _ = module(x)
        out.sum().backward()
    return run


def check_correctness() -> None:
    """Each backend used below equals the loop reference in float64, gradients included."""
    torch.manual_seed(0)
    timed = [(cell, options, backend) for _, cell, options, backend in CELLS]
    timed += [("mingru", {}, "scan"), ("minlstm", {}, "scan")]
    for cell, options, backend in timed:
        ref = Recurrent(cell, 3, 4, backend="loop", dtype=torch.float64, **options).eval()
        fast = Recurrent(cell, 3, 4, backend=backend, dtype=torch.float64, **options).eval()
        fast.load_state_dict(ref.state_dict())
        x = torch.randn(2, 50, 3, dtype=torch.float64)
        results = []
        for layer in (ref, fast):
            xi = x.clone().requires_grad_()
            out, _ = layer(xi, lengths=[50, 17])
            out.sin().sum().backward()
            results.append([out, xi.grad, *(p.grad for p in layer.parameters())])
        for a, b in zip(*results):
            torch.testing.assert_close(a, b)
    print("correctness: every timed backend equals the loop reference (float64, with grads)")


def cell_table(shapes, repeats: int) -> None:
    print("\n## Custom cells vs torch.nn.LSTM (time ratio, lower is better; target <= 1.5)")
    header = f"{'cell':28s} {'backend':9s}"
    for B, T, I, H in shapes:
        header += f" | {f'({B},{T},{I},{H}) fwd':>22s} {'train':>6s}"
    print(header)
    peer_ms: dict[tuple, list[float]] = {}
    for label, cell, options, backend in CELLS:
        row = None
        for shape in shapes:
            B, T, I, H = shape
            torch.manual_seed(0)
            x = torch.randn(B, T, I)
            xg = x.clone().requires_grad_()
            lstm = nn.LSTM(I, H, batch_first=True)
            layer = Recurrent(cell, I, H, backend=backend, **options)
            if row is None:
                row = f"{label:28s} {layer.active_backend:9s}"
            fwd, fwd_peer = ratio(forward_fn(layer.eval(), x), forward_fn(lstm, x), repeats)
            train, train_peer = ratio(train_fn(layer.train(), xg), train_fn(lstm, xg), repeats)
            peer_ms.setdefault(shape, []).append((fwd_peer * 1e3, train_peer * 1e3))
            row += f" | {fwd:22.2f} {train:6.2f}"
        print(row, flush=True)
    print("nn.LSTM ms, median over rows (fwd / train): " + ", ".join(
        f"{s}: {statistics.median(a for a, _ in v):.1f} / {statistics.median(b for _, b in v):.1f}"
        for s, v in peer_ms.items()))


def gru_table(shapes, repeats: int) -> None:
    print("\n## rnnkit GRU vs torch.nn.GRU (time ratio; target fwd <= 0.5, train <= 1.0)")
    for B, T, I, H in shapes:
        x = torch.randn(B, T, I)
        xg = x.clone().requires_grad_()
        ref = nn.GRU(I, H, batch_first=True)
        for backend in ("auto", "fused"):
            ours = Recurrent("gru", I, H, backend=backend)
            f, _ = ratio(forward_fn(ours, x), forward_fn(ref, x), repeats)
            t, _ = ratio(train_fn(ours, xg), train_fn(ref, xg), repeats)
            print(f"({B},{T},{I},{H}) [{ours.active_backend:8s}]: fwd {f:.2f}  train {t:.2f}",
                  flush=True)


def scan_table(hiddens, T: int, B: int, repeats: int) -> None:
    print(f"\n## minGRU / minLSTM parallel scan vs torch.nn.GRU, training, B={B}, T={T}, I=H "
          f"(speed-up, higher is better; target >= 3)")
    for H in hiddens:
        x = torch.randn(B, T, H, requires_grad=True)
        gru = train_fn(nn.GRU(H, H, batch_first=True), x)
        for cell in ("mingru", "minlstm"):
            r, peer = ratio(train_fn(Recurrent(cell, H, H, backend="scan"), x), gru, repeats)
            print(f"H={H:4d} {cell}: {1 / r:6.2f}x  (nn.GRU {peer * 1e3:.0f} ms, "
                  f"ours {peer * r * 1e3:.0f} ms)", flush=True)


def streaming_table(repeats: int) -> None:
    print("\n## Streaming: one step of a 2-layer LSTM, H=256, B=1 (us/step)")
    H, steps = 256, 200
    ours = Recurrent("lstm", H, H, num_layers=2).eval()
    ref = nn.LSTM(H, H, num_layers=2, batch_first=True).eval()
    xs = torch.randn(steps, 1, H)

    def run_ours():
        with torch.no_grad():
            state = None
            for x in xs:
                _, state = ours.step(x, state)

    def run_ref():
        with torch.no_grad():
            state = None
            for x in xs:
                _, state = ref(x.unsqueeze(1), state)

    r, peer = ratio(run_ours, run_ref, repeats)
    b = peer / steps * 1e6
    print(f"rnnkit Recurrent.step: {b * r:.1f} us   torch nn.LSTM (1 step, with state): "
          f"{b:.1f} us   ratio {r:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one small shape only")
    parser.add_argument("--only", choices=["cells", "gru", "scan", "stream"], default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    check_correctness()
    shapes = [(4, 50, 16, 32)] if args.quick else SHAPES
    if args.only in (None, "cells"):
        cell_table(shapes, args.repeats)
    if args.only in (None, "gru"):
        gru_table(shapes, args.repeats)
    if args.only in (None, "scan"):
        scan_table((64, 256), 256 if args.quick else 4096, 8, args.repeats)
    if args.only in (None, "stream"):
        streaming_table(args.repeats)


if __name__ == "__main__":
    main()
