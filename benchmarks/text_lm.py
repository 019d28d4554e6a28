"""Quality benchmark: a character language model on tinyshakespeare under a wall-clock budget.

Data: ``../shared/data/tinyshakespeare.txt`` (relative to the project root), first 90% of the
characters for training, last 10% for validation, character level. The model trains for
``--budget`` seconds (default 900 = 15 minutes) with truncated BPTT, a cosine learning-rate
decay over the budget, and is then scored on the whole validation text.

Prints: validation loss (nats/char), bits/char, perplexity, training tokens/s, and the
configuration. Target <= 1.55 nats/char; the bar we aim for is <= 1.47.

    python benchmarks/text_lm.py                  # the 15-minute run (defaults = reported config)
    python benchmarks/text_lm.py --budget 180     # a short exploration run

Default configuration, chosen with 3-minute runs on the shared 2-core machine: a 1-layer LSTM,
H = 384, embeddings 64, no dropout, 16 rows x 64-step chunks (small batches learned the most
per second), AdamW lr 3e-3 with 50 warm-up steps and cosine decay over the time budget, global
gradient-norm clipping at 1, one torch thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

from rnnkit.data.text import TextDataConfig, load_text
from rnnkit.text.generation import SampleConfig, ThroughputMeter, TimeCosineLR, fit_text
from rnnkit.text.language_model import LanguageModelConfig
from rnnkit.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "tinyshakespeare.txt"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--budget", type=float, default=900.0, help="training seconds")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads; on a busy shared machine one thread is much faster "
                   "(idle OpenMP workers spin while waiting for CPU time)")
    p.add_argument("--cell", default="lstm")
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--bptt", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=50, help="lr warm-up steps")
    p.add_argument("--eval-every", type=int, default=0, help="0: every 1.5 epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=None, help="keep the checkpoint here (default: a "
                   "temporary folder)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    path = Path(args.data)
    if not path.exists():
        print(f"tinyshakespeare not found at {path}; pass --data FILE", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    text = load_text(path)
    model_cfg = LanguageModelConfig(cell=args.cell, embed_size=args.embed,
                                    hidden_size=args.hidden, num_layers=args.layers,
                                    dropout=args.dropout)
    data_cfg = TextDataConfig(level="char", val_fraction=0.1, batch_size=args.batch_size,
                              bptt=args.bptt)
    # steps between evaluations (each prints a sample and costs time from the budget): one
    # and a half epochs
    chunks = (len(text) * 9 // 10) // args.batch_size // args.bptt
    eval_every = args.eval_every or max(50, chunks * 3 // 2)
    out_dir = args.out_dir or tempfile.mkdtemp(prefix="rnnkit_text_lm_")
    train_cfg = TrainConfig(epochs=10_000, max_time=args.budget, lr=args.lr, clip_norm=1.0,
                            eval_every=eval_every, seed=args.seed, out_dir=out_dir,
                            progress=not args.no_progress, device="cpu", log_every=20)
    meter = ThroughputMeter()
    schedule = TimeCosineLR(args.budget, warmup_steps=args.warmup, floor=0.02)
    t0 = time.perf_counter()
    run = fit_text(text, model_cfg, data_cfg, train_cfg,
                   SampleConfig(prime="ROMEO:\n", length=200, temperature=0.8),
                   callbacks=[meter, schedule])
    wall = time.perf_counter() - t0
    val = run.val_metrics
    n_params = sum(q.numel() for q in run.model.parameters())
    config = {"model": asdict(run.model.config), "data": asdict(data_cfg),
              "lr": args.lr, "warmup": args.warmup, "schedule": "cosine over the time budget",
              "budget_s": args.budget, "threads": args.threads, "params": n_params}
    print("\n=== tinyshakespeare char LM (val = last 10%) ===")
    print(f"config: {json.dumps(config)}")
    print(f"trained {meter.steps} steps, {meter.items:,.0f} tokens "
          f"({meter.items / (len(text) * 0.9):.2f} epochs) in {meter.seconds:.0f} s "
          f"-> {meter.items_per_s:,.0f} tokens/s (training incl. periodic evaluation)")
    print(f"validation: {val['loss']:.4f} nats/char, {val['bits_per_char']:.4f} bits/char, "
          f"perplexity {val['perplexity']:.3f} over {val['tokens']:,} chars "
          f"(target <= 1.55, aim <= 1.47 nats/char)")
    print(f"total wall time {wall:.0f} s; checkpoint {out_dir}")
    print("sample:\nROMEO:\n" + run.model.generate("ROMEO:\n", 300, temperature=0.8, seed=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
