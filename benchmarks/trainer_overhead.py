"""What the Trainer costs on top of a hand-written truncated-BPTT loop.

Same model (character LSTM language model), same data (a ``BPTTStream``), same optimizer and
global-norm clipping; prints milliseconds per step and the ratio Trainer / plain loop, for the
Trainer without its compute meter (``compute=False``), with it (the default: FLOPs counted on
the first step, codecarbon energy metering, ``compute.json``), and with logs + a checkpoint
every ``--save-every`` steps. The meter's own cost is the ratio of the second to the first
(target: at most 1.02). Runs are
interleaved and repeated; each is reported as its median time and the median of its per-repeat
ratio to the plain loop run just before it (so drifting machine load hits both sides alike).

Run: ``python benchmarks/trainer_overhead.py`` (about three minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import Recurrent
from rnnkit.cells import state_map
from rnnkit.train import BPTTStream, LossOutput, TrainConfig, Trainer


class CharLM(nn.Module):
    def __init__(self, vocab: int, hidden: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.rnn = Recurrent("lstm", hidden, hidden)
        self.out = nn.Linear(hidden, vocab)

    def loss(self, batch, state=None):
        x, y = batch  # [B, T]
        h, state = self.rnn(self.emb(x), state)  # [B, T, H]
        logits = self.out(h)  # [B, T, V]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        return LossOutput(loss, state, {}, y.numel())


def plain_loop(model: nn.Module, stream: BPTTStream, steps: int) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    state, done = None, 0
    t0 = time.perf_counter()
    while done < steps:
        state = None
        for batch in stream:
            out = model.loss(batch, state)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            state = state_map(lambda s: s.detach(), out.state)
            done += 1
            if done == steps:
                break
    return (time.perf_counter() - t0) / steps


def with_trainer(model: nn.Module, stream: BPTTStream, steps: int, out_dir: str | None,
                 save_every: int, compute: bool = True) -> float:
    cfg = TrainConfig(max_steps=steps, lr=1e-3, clip_norm=1.0, progress=False, plot=False,
                      out_dir=out_dir, save_every=save_every if out_dir else 0,
                      compute=compute)
    trainer = Trainer(model, cfg, stream)
    t0 = time.perf_counter()
    trainer.fit()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--bptt", type=int, default=64)
    parser.add_argument("--save-every", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vocab = 65
    tokens = torch.randint(0, vocab, (args.batch * args.bptt * 40,),
                           generator=torch.Generator().manual_seed(0))
    stream = BPTTStream(tokens, args.batch, args.bptt)
    times: dict[str, list[float]] = {"plain loop": [], "Trainer, no meter": [],
                                     "Trainer + meter": [], "Trainer + logs/ckpt": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            for name, ts in times.items():
                torch.manual_seed(0)
                model = CharLM(vocab, args.hidden)
                if name == "plain loop":
                    ts.append(plain_loop(model, stream, args.steps))
                else:
                    ts.append(with_trainer(model, stream, args.steps,
                                           tmp if "ckpt" in name else None, args.save_every,
                                           compute="no meter" not in name))
    base = times["plain loop"]
    print(f"LSTM LM, hidden {args.hidden}, batch {args.batch} x bptt {args.bptt}, "
          f"{args.steps} steps, {args.threads} thread(s), median of {args.repeats}")
    for name, ts in times.items():
        r = statistics.median(t / b for t, b in zip(ts, base))
        print(f"{name:22} {1000 * statistics.median(ts):8.2f} ms/step   x{r:.3f} of the plain "
              f"loop")
    meter = statistics.median(t / b for t, b in zip(times["Trainer + meter"],
                                                     times["Trainer, no meter"]))
    print(f"compute meter (FLOPs, energy, compute.json): x{meter:.3f} of the Trainer without it")


if __name__ == "__main__":
    main()
