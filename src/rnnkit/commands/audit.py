"""``rnnkit audit``: what a model cost, whom its data and answers favour, what breaks it.

  rnnkit audit data FILE                  identity terms, labels, words and lengths by group
  rnnkit audit model CKPT --data FILE     group metrics, counterfactual probes, robustness scan
  rnnkit audit compare TEXT --cells ...   the same budget for several cells: quality vs energy
  rnnkit audit report RUN                 the model card with its plots

Every energy figure says whether it was measured (RAPL, NVML) or estimated, and how.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
from typing import Any

from .runs import check_folder, check_writable

__all__ = ["register"]

DEFAULT_CELLS = "lstm,gru,mingru,indrnn"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="compute/energy, bias and robustness audits, "
                                   "model cards", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    _register_compare(sub)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


# -- compare ----------------------------------------------------------------------------------
def _register_compare(sub: Any) -> None:
    p = sub.add_parser(
        "compare", help="train a character LM with several cells under one time budget; "
        "print quality vs energy and FLOPs and draw the Pareto front",
        description="Train `rnnkit train text` once per cell with the same --max-time budget "
        "(each run sized by the budgeted recipe for its cell, unless --hidden is given), then "
        "compare validation bits/char against training energy and FLOPs.")
    p.add_argument("text", help="the training text (UTF-8 or Latin-1)")
    p.add_argument("--cells", default=DEFAULT_CELLS,
                   help=f"comma-separated registered cells (default: {DEFAULT_CELLS})")
    p.add_argument("--max-time", type=float, default=120.0,
                   help="training seconds per cell (default: 120)")
    p.add_argument("--out-dir", default="runs/compare",
                   help="one run folder per cell goes here, plus compare.json and pareto.png "
                   "(default: runs/compare)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace earlier runs in --out-dir (default: refused)")
    p.add_argument("--train-flags", default="", metavar="FLAGS",
                   help="more `rnnkit train text` flags for every run, quoted "
                   "(e.g. --train-flags '--hidden 256 --lr 0.003')")
    p.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    from ..audit.compare import CompareRow, plot_pareto, table
    from ..cells import available_cells

    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    unknown = [c for c in cells if c not in available_cells()]
    if not cells or unknown:
        raise ValueError(f"--cells must list registered cells ({', '.join(available_cells())})"
                         f"{'; unknown: ' + ', '.join(unknown) if unknown else ''}")
    if len(set(cells)) != len(cells):
        raise ValueError(f"--cells lists a cell twice: {args.cells}")
    if not args.max_time > 0:
        raise ValueError(f"--max-time must be a positive number of seconds, got "
                         f"{args.max_time}")
    if not os.path.isfile(args.text):
        raise FileNotFoundError(f"no text file at {args.text}; give the training text")
    check_folder(args.out_dir, "--out-dir")
    extra = shlex.split(args.train_flags)
    for flag in ("--cell", "--out-dir", "--max-time", "--data", "--resume"):
        if flag in extra:
            raise ValueError(f"{flag} is set by `audit compare` for every run; leave it out of "
                             f"--train-flags")
    runs = {c: os.path.join(args.out_dir, c) for c in cells}
    if not args.overwrite:
        taken = [d for d in runs.values() if os.path.exists(os.path.join(d, "last.pt"))]
        if taken:
            raise ValueError(f"{', '.join(taken)} already hold runs; pass --overwrite to "
                             f"replace them, or choose another --out-dir")
    json_path = os.path.join(args.out_dir, "compare.json")
    png_path = os.path.join(args.out_dir, "pareto.png")
    for path in (json_path, png_path):
        check_writable(path, "--out-dir")
    from ..audit.energy import EnergyMeter

    probe = EnergyMeter()  # codecarbon's one-off hardware probe (~1.5 s of CPU) runs now, not
    probe.start()  # inside the first cell's budget
    probe.stop()
    rows = []
    for cell, out in runs.items():
        print(f"== {cell}: rnnkit train text --cell {cell} --max-time {args.max_time:g} "
              f"--out-dir {out} {' '.join(extra)}".rstrip(), flush=True)
        rows.append(_train_one(args.text, cell, out, args.max_time, extra, args.overwrite,
                               CompareRow))
    from ..saving import atomic_write_text

    atomic_write_text(json.dumps([r.__dict__ for r in rows], indent=1) + "\n", json_path)
    plot_pareto(rows, png_path, title=f"{os.path.basename(args.text)}: {args.max_time:g} s "
                "of training per cell")
    print(table(rows))
    print(f"wrote {json_path} and {png_path}")
    return 0


def _train_one(text: str, cell: str, out: str, max_time: float, extra: list[str],
               overwrite: bool, row_cls: Any) -> Any:
    from ..cli import build_parser
    from ..train import load_checkpoint

    argv = ["train", "text", "--data", text, "--cell", cell, "--max-time", f"{max_time:g}",
            "--out-dir", out, *(["--overwrite"] if overwrite and os.path.exists(out) else []),
            *extra]
    ns = build_parser().parse_args(argv)
    ns.func(ns)
    ckpt = load_checkpoint(os.path.join(out, "best.pt"))
    metrics = ckpt.get("metrics") or {}
    if "bits_per_token" not in metrics:
        raise ValueError(f"the {cell} run wrote no validation score; keep --val-fraction > 0")
    extra_state = ckpt.get("extra_state") or {}
    model = extra_state.get("config", {})
    level = (extra_state.get("run") or {}).get("data_config", {}).get("level", "char")
    with open(os.path.join(out, "compute.json"), encoding="utf-8") as f:
        compute = json.load(f)
    params = sum(int(t.numel()) for t in ckpt["model"].values())
    return row_cls(name=cell, quality=float(metrics["bits_per_token"]),
                   metric="val bits/char" if level == "char" else f"val bits/{level}",
                   compute=compute, details={"hidden": model.get("hidden_size"),
                                             "layers": model.get("num_layers"),
                                             "params": params, "step": ckpt.get("step")})
