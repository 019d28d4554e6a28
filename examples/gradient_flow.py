r"""Vanishing gradients, seen and solved: an Elman RNN against an LSTM on the adding problem.

The adding problem (Hochreiter & Schmidhuber, 1997): each input step is a pair
``(value ~ U(0, 1), marker in {0, 1})``; exactly two steps are marked, one in the first half of
the sequence and one in the second; the target is the sum of the two marked values. With
``T = 200`` the first marked value must be carried for 100 to 200 steps. Always answering the
mean (1.0) scores MSE = 1/6 ~ 0.167; a model "solves" the task when its validation MSE falls
below a tenth of that.

The script trains both cells with the same :class:`~rnnkit.train.Trainer` settings, measures
:math:`\lVert \partial L / \partial h_t \rVert` for every ``t`` with
:func:`rnnkit.diagnostics.gradient_flow` before and after training, prints the numbers and
writes ``gradient_flow.png`` (log scale) and each run's learning curves into ``--out-dir``.
What to expect: the Elman RNN's gradient at ``t = 1`` is many orders of magnitude below the one
at ``t = T``, so nothing teaches it to keep the first marked value, and it stays at the
baseline; the LSTM's additive cell state carries the gradient back, and it solves the task.

Run: ``python examples/gradient_flow.py`` (about 3 minutes on 2 CPU cores; ``--steps`` and
``--length`` scale it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from rnnkit import Recurrent
from rnnkit.data.synthetic import ADDING_BASELINE_MSE, adding_problem
from rnnkit.diagnostics import GradientFlow, gradient_flow, plot_gradient_flow
from rnnkit.train import LossOutput, TrainConfig, Trainer

BASELINE_MSE = ADDING_BASELINE_MSE


def chrono_init_(rnn: Recurrent, max_length: int) -> None:
    """Chrono initialization of LSTM gate biases (Tallec & Ollivier, 2018, eq. 16):
    ``b_f = log(u)``, ``u ~ U(1, max_length - 1)``, ``b_i = -b_f``, so that unit ``k``
    starts with a memory of about ``u_k`` steps. It only sets where the LSTM starts; whether
    the gradient can flow that far is the architecture's doing (an Elman RNN has no such gate).
    """
    for c in rnn.cells:
        H = c.hidden_size
        u = torch.empty(H).uniform_(1.0, max(max_length - 1, 2))
        with torch.no_grad():
            c.bias_hh[: 2 * H].zero_()
            c.bias_ih[H: 2 * H] = torch.log(u)  # forget gate (gate order i, f, g, o)
            c.bias_ih[:H] = -torch.log(u)  # input gate


class AddingModel(nn.Module):
    """``Recurrent(cell)`` over the sequence, a linear read-out of the last step."""

    def __init__(self, cell: str, hidden: int, length: int) -> None:
        super().__init__()
        self.rnn = Recurrent(cell, 2, hidden)
        self.head = nn.Linear(hidden, 1)
        if cell == "lstm":
            chrono_init_(self.rnn, length)

    def loss(self, batch: tuple[Tensor, Tensor], state: object = None) -> LossOutput:
        x, y = batch  # [B, T, 2], [B, 1]
        out, _ = self.rnn(x)  # [B, T, H]
        mse = nn.functional.mse_loss(self.head(out[:, -1]), y)
        return LossOutput(mse, None, {}, len(y))


def train_one(cell: str, args: argparse.Namespace, data: dict) -> dict:
    torch.manual_seed(args.seed)
    model = AddingModel(cell, args.hidden, args.length)
    probe = data["probe"]
    before = gradient_flow(model, probe)
    config = TrainConfig(max_steps=args.steps, lr=args.lr, clip_norm=1.0, seed=args.seed,
                         eval_every=max(1, args.steps // 5), log_every=25,
                         progress=args.progress, out_dir=os.path.join(args.out_dir, cell))
    train = DataLoader(TensorDataset(*data["train"]), batch_size=args.batch, shuffle=True)
    val = DataLoader(TensorDataset(*data["val"]), batch_size=500)
    t0 = time.perf_counter()
    trainer = Trainer(model, config, train, val)
    trainer.fit()
    return {"before": before, "after": gradient_flow(model, probe),
            "mse": trainer.evaluate(val)["loss"], "seconds": time.perf_counter() - t0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=200, help="sequence length T")
    parser.add_argument("--steps", type=int, default=800, help="optimizer steps per model")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out-dir", default="gradient_flow_out")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args(argv)
    if args.length < 4:
        parser.error("--length must be at least 4 (two halves with a marker each)")
    return args


def run(args: argparse.Namespace) -> dict[str, dict]:
    """Train and measure both cells; print the table and write the plot."""
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(1234)
    data = {"train": adding_problem(20_000, args.length, g),
            "val": adding_problem(1_000, args.length, g),
            "probe": adding_problem(256, args.length, g)}
    results = {cell: train_one(cell, args, data) for cell in ("elman", "lstm")}

    print(f"\nadding problem, T = {args.length}, {args.steps} steps, hidden {args.hidden} "
          f"(baseline MSE {BASELINE_MSE:.3f}; solved below {BASELINE_MSE / 10:.4f})")
    print(f"{'cell':6} {'val MSE':>9} {'solved':>6} {'|dL/dh_1|/|dL/dh_T| init':>26} "
          f"{'trained':>9} {'time':>7}")
    for cell, r in results.items():
        r["solved"] = r["mse"] < BASELINE_MSE / 10
        print(f"{cell:6} {r['mse']:9.4f} {'yes' if r['solved'] else 'no':>6} "
              f"{r['before'].decay():26.2e} {r['after'].decay():9.2e} {r['seconds']:6.0f}s")
    flows: dict[str, GradientFlow] = {}
    for cell, r in results.items():
        flows[f"{cell}, init"] = r["before"]
        flows[f"{cell}, trained"] = r["after"]
    path = plot_gradient_flow(flows, os.path.join(args.out_dir, "gradient_flow.png"),
                              title=f"Gradient flow through time, adding problem T = "
                                    f"{args.length}")
    print(f"wrote {path} and learning curves in {args.out_dir}/<cell>/curves.png")
    return results


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
