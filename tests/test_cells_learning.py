"""Each new cell learns a task that needs memory: the adding problem (Hochreiter & Schmidhuber,
1997; Le et al., 2015) at T = 100.

Input ``[B, 100, 2]``: a value ~ U(0, 1) and a marker that is 1 at two steps (one in each half);
the target is the sum of the two marked values. Predicting the mean (1.0) scores MSE 1/6
~ 0.167; a model must carry the first value across up to 99 steps to beat it. Every cell must
reach a held-out MSE below 0.01 (6% of that baseline) within its step budget.
"""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from rnnkit import Recurrent
from rnnkit.data.synthetic import adding_problem

T = 100
TARGET_MSE = 0.01


class Adder(nn.Module):
    def __init__(self, cell: str, hidden: int, layers: int, **options) -> None:
        super().__init__()
        self.rnn = Recurrent(cell, 2, hidden, num_layers=layers, **options)
        self.head = nn.Linear(hidden, 1)
        for c in self.rnn.cells:  # forget-gate bias 1 for LSTMs (Jozefowicz et al., 2015)
            if c.gate_size == 4 * hidden and getattr(c, "bias_ih", None) is not None:
                with torch.no_grad():
                    c.bias_ih[hidden:2 * hidden] += 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)  # [B, T, H]
        return self.head(out[:, -1])


# cell -> (hidden, layers, learning rate, max steps, options); budgets measured with 1 thread
CONFIGS = {
    "layernorm_lstm": (32, 1, 1e-2, 600, {}),
    "layernorm_gru": (32, 1, 1e-2, 400, {}),
    "peephole_lstm": (32, 1, 1e-2, 800, {}),
    "indrnn": (64, 2, 1e-3, 2000, {"recurrent_max": 2 ** (1 / T)}),
    "mingru": (32, 2, 1e-2, 1500, {}),
    "minlstm": (32, 2, 1e-2, 1500, {}),
    "layernorm_lstm+zoneout": (32, 1, 1e-2, 600, {"zoneout": 0.05}),
    "peephole_lstm+zoneout": (32, 1, 1e-2, 800, {"zoneout": 0.05}),
}


def train_adding(name: str, seed: int = 0, verbose: bool = False) -> tuple[float, int]:
    """Train until the held-out MSE is below the target; returns (MSE, steps)."""
    torch.manual_seed(seed)
    hidden, layers, lr, steps, options = CONFIGS[name]
    model = Adder(name.split("+")[0], hidden, layers, **options)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    x_val, y_val = adding_problem(512, T, gen)
    mse = float("inf")
    for step in range(1, steps + 1):
        x, y = adding_problem(64, T, gen)
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0:
            model.eval()
            with torch.no_grad():
                mse = nn.functional.mse_loss(model(x_val), y_val).item()
            model.train()
            if verbose:
                print(name, step, round(mse, 4), flush=True)
            if mse < TARGET_MSE:
                return mse, step
    return mse, steps


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_cell_learns_adding_problem(name):
    start = time.perf_counter()
    mse, steps = train_adding(name)
    assert mse < TARGET_MSE, (f"{name}: held-out MSE {mse:.4f} after {steps} steps "
                              f"({time.perf_counter() - start:.0f} s); baseline 0.167")


if __name__ == "__main__":  # python tests/test_cells_learning.py [cell ...]: print progress
    import sys

    torch.set_num_threads(1)
    for cell in sys.argv[1:] or list(CONFIGS):
        t0 = time.perf_counter()
        print(cell, train_adding(cell, verbose=True), f"{time.perf_counter() - t0:.1f} s")
