"""The loop backend's step inputs, read by ``xp[:, t]`` (before stop 33) or by one ``unbind``
(now), timed back to back in one process (forward + backward, medians of 7 after a warm-up,
one thread). The backward of T selects zero-fills and adds T tensors of the projection's full
size, so the old loop cost grew as T^2::

    python benchmarks/loop_unbind.py

Only the loop changes (``LoopBackend.direction`` is swapped); the cells are rnnkit's.
"""

from __future__ import annotations

import statistics
import time

import torch

from rnnkit import Recurrent
from rnnkit.backends.loop import LoopBackend, run_direction

CASES = [("lstm", (32, 50, 64), {"hidden_size": 128}),
         ("lstm", (32, 200, 64), {"hidden_size": 128}),
         ("lstm", (8, 1000, 32), {"hidden_size": 128}),
         ("gru", (32, 200, 64), {"hidden_size": 128}),
         ("convlstm", (16, 10, 16, 16, 16), {"hidden_size": 32, "kernel_size": 3}),
         ("convlstm", (16, 40, 16, 16, 16), {"hidden_size": 32, "kernel_size": 3})]


def select_per_step(cell, x, state, mask):
    """The loop as it was, for equal-length input (no mask): ``xp[:, t]`` at every step."""
    assert mask is None
    cell.begin_sequence()
    xp = cell.project_input(x)
    outs = []
    for t in range(x.shape[1]):
        out, state = cell.step(xp[:, t], state)
        outs.append(out)
    return torch.stack(outs, dim=1), state


def main() -> None:
    torch.set_num_threads(1)
    print("| cell | B x T x I -> H | xp[:, t] ms | unbind ms | ratio |\n|---|---|---|---|---|")
    for cell, shape, opts in CASES:
        torch.manual_seed(0)
        rnn = Recurrent(cell, shape[2], backend="loop", **opts)
        x = torch.randn(*shape, requires_grad=True)
        times = {"select": [], "unbind": []}
        for i in range(8):
            for name, fn in (("select", select_per_step), ("unbind", run_direction)):
                LoopBackend.direction = staticmethod(fn)
                t0 = time.perf_counter()
                rnn(x)[0].sum().backward()
                if i:  # the first round warms up
                    times[name].append(time.perf_counter() - t0)
        LoopBackend.direction = staticmethod(run_direction)
        before, after = (statistics.median(times[k]) * 1e3 for k in ("select", "unbind"))
        print(f"| {cell} | {' x '.join(map(str, shape))} -> {opts['hidden_size']} | "
              f"{before:.1f} | {after:.1f} | {before / after:.2f} |", flush=True)


if __name__ == "__main__":
    main()
