"""``rnnkit vision video``: next-frame prediction on moving digits with a ConvLSTM.

    rnnkit vision video train --out-dir runs/video --max-time 600
    rnnkit vision video train --out-dir runs/video --resume        # continue a stopped run
    rnnkit vision video predict runs/video/best.pt --out pred.png  # held-out digits, scored

``train`` trains the encoder-forecaster ConvLSTM (:mod:`rnnkit.vision.video`) on moving-digit
sequences of the training digits, keeps ``best.pt`` by the loss on other sequences of
training digits, then scores it on sequences of held-out digits. ``--out-dir`` must be a new
or empty folder: ``--resume`` continues the run there from its ``last.pt``, ``--overwrite``
replaces it. Every option is a field of a config dataclass (``[model]``: VideoConfig,
``[data]``: VideoDataConfig, ``[train]``: TrainConfig), settable in a TOML file
(``--config``), as ``--section.field VALUE`` or by its short alias (``--steps``).

``predict`` draws a PNG grid for a few held-out sequences (per sequence three rows: the 10
input frames, the 10 true next frames, the 10 predicted ones) and prints per-frame MSE and
SSIM against copying the last frame.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from .options import add_command_options, build_configs, speaking_flags, with_defaults
from .runs import add_run_dir_flags, best_note, check_output, open_run

__all__ = ["register"]

ALIASES = {"model.cell": "--cell", "model.hidden_size": "--hidden", "model.num_layers":
           "--layers", "model.kernel_size": "--kernel-size", "data.batch_size": "--batch-size",
           "train.max_steps": "--steps", "train.max_time": "--max-time", "train.lr": "--lr",
           "train.seed": "--seed", "model.ssim_weight": "--ssim-weight"}
NOT_FLAGS: set[str] = {"train.out_dir"}


def _sections() -> dict[str, type]:
    from ..train.config import TrainConfig
    from ..vision.video_config import VideoConfig, VideoDataConfig

    return {"model": VideoConfig, "data": VideoDataConfig,
            "train": with_defaults(TrainConfig, epochs=20, lr=2e-3, card=False)}


def _train(args: argparse.Namespace) -> int:
    sections = _sections()
    cfg = build_configs(args, sections, NOT_FLAGS, {})
    cfg["train"] = dataclasses.replace(cfg["train"], out_dir=args.out_dir)
    cfg, _ = open_run(args, cfg, sections, not_flags=NOT_FLAGS, aliases=ALIASES)
    model_cfg, data, train = cfg["model"], cfg["data"], cfg["train"]

    import torch

    from ..vision.moving_digits import moving_digits
    from ..vision.video import NextFramePredictor, blank_frame, copy_last, evaluate, fit_predictor

    torch.manual_seed(train.seed)
    net = NextFramePredictor(model_cfg)
    size = sum(p.numel() for p in net.parameters())
    print(f"training a {model_cfg.cell} next-frame predictor ({size:,} parameters) on moving "
          f"training digits; best.pt by {data.valid_sequences} validation sequences",
          file=sys.stderr, flush=True)
    metrics = fit_predictor(net, train, batch_size=data.batch_size,
                            batches_per_epoch=data.batches_per_epoch,
                            valid_sequences=data.valid_sequences, seed=train.seed,
                            resume=args.resume,
                            run={"data_config": dataclasses.asdict(data)})
    print(f"validation loss {metrics['loss']:.4f}, mse {metrics.get('mse', float('nan')):.4f}"
          f"{best_note(metrics)}")
    frames = model_cfg.input_frames + model_cfg.output_frames
    test = moving_digits(data.test_sequences, split="test", seed=train.seed, frames=frames,
                         size=model_cfg.size)
    scores = evaluate({"model": net.predict,
                       "copy_last": lambda x: copy_last(x, model_cfg.output_frames),
                       "blank": lambda x: blank_frame(x, model_cfg.output_frames)},
                      test.split(32), model_cfg.input_frames, model_cfg.output_frames)
    _print_scores(scores, f"{data.test_sequences} sequences of held-out digits")
    print(f"wrote {args.out_dir}/best.pt and last.pt")
    return 0


def _print_scores(scores: dict, what: str) -> None:
    names = list(scores)
    n = len(scores[names[0]]["mse"])
    print(f"per-frame scores on {what}:")
    print("frame  " + "  ".join(f"{f'{name} MSE':>14} {f'{name} SSIM':>15}" for name in names))
    for k in range(n):
        print(f"{k + 1:>5}  " + "  ".join(f"{scores[m]['mse'][k]:>14.5f} "
                                         f"{scores[m]['ssim'][k]:>15.4f}" for m in names))
    print(" mean  " + "  ".join(f"{scores[m]['mean_mse']:>14.5f} {scores[m]['mean_ssim']:>15.4f}"
                                for m in names))


def _load(path: str):
    from ..saving import read_state, rebuild
    from ..vision.video import NextFramePredictor

    blob = read_state(path, (NextFramePredictor.KIND, "rnnkit.train"),
                      version=max(NextFramePredictor.VERSION, 1))
    if "state_dict" not in blob and (blob.get("extra_state") or {}).get("task") != \
            NextFramePredictor.TASK:
        task = (blob.get("extra_state") or {}).get("task")
        raise ValueError(f"{path} is a trainer checkpoint of task {task!r}, not a video "
                         f"predictor; give the best.pt of `rnnkit vision video train`")
    return rebuild(NextFramePredictor, blob, path)


def _grid(x, y, p) -> object:
    """uint8 image: per sequence rows (input, truth, prediction) of frames with 2 px gaps."""
    import numpy as np

    B, T, _, S, _ = y.shape
    gap = 2
    rows = []
    for b in range(B):
        for frames in (x[b], y[b], p[b]):
            row = np.full((S, T * (S + gap) - gap), 0.5, dtype=np.float32)
            for t in range(min(T, frames.shape[0])):
                row[:, t * (S + gap):t * (S + gap) + S] = frames[t, 0].numpy()
            rows.append(row)
            rows.append(np.full((gap, row.shape[1]), 0.5, dtype=np.float32))
        rows.append(np.full((3 * gap, rows[-1].shape[1]), 1.0, dtype=np.float32))
    return (np.clip(np.concatenate(rows[:-2]), 0, 1) * 255).astype(np.uint8)


def _predict(args: argparse.Namespace) -> int:
    check_output(args.out, args.overwrite, "--out")
    if args.sequences < 1 or args.sequences > 64:
        raise ValueError(f"--sequences must be between 1 and 64, got {args.sequences}")
    import io

    from PIL import Image

    from ..saving import atomic_write_bytes
    from ..vision.moving_digits import moving_digits
    from ..vision.video import blank_frame, copy_last, evaluate

    net = _load(args.checkpoint)
    cfg = net.config
    seqs = moving_digits(max(args.sequences, args.score_sequences), split="test",
                         seed=args.seed, frames=cfg.input_frames + cfg.output_frames,
                         size=cfg.size)
    x, y = seqs[:, :cfg.input_frames], seqs[:, cfg.input_frames:]
    shown = slice(0, args.sequences)
    pred = net.predict(x[shown])
    buf = io.BytesIO()
    Image.fromarray(_grid(x[shown], y[shown], pred), mode="L").save(buf, format="PNG")
    atomic_write_bytes(buf.getvalue(), args.out)
    print(f"wrote {args.out}: {args.sequences} held-out sequences, rows = {cfg.input_frames} "
          f"input frames / {cfg.output_frames} true next frames / predicted frames")
    scores = evaluate({"model": net.predict,
                       "copy_last": lambda v: copy_last(v, cfg.output_frames),
                       "blank": lambda v: blank_frame(v, cfg.output_frames)},
                      seqs.split(32), cfg.input_frames, cfg.output_frames)
    _print_scores(scores, f"{len(seqs)} sequences of held-out digits (--seed {args.seed})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vision video train|predict``."""
    parser = subparsers.add_parser("video", help="ConvLSTM next-frame prediction on moving "
                                   "digits", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="video_action", metavar="ACTION")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    tr = sub.add_parser("train", help="train on moving training digits into --out-dir",
                        description="Train the encoder-forecaster ConvLSTM (or --cell lstm, "
                        "the per-patch baseline) on moving-digit sequences; best.pt is chosen "
                        "on sequences of training digits, the score printed at the end is on "
                        "held-out digits. Options: defaults < --config FILE.toml ([model], "
                        "[data], [train]) < flags.")
    tr.add_argument("--out-dir", required=True, metavar="DIR",
                    help="run folder (last.pt, best.pt, logs); new or empty unless --resume "
                    "or --overwrite")
    add_command_options(tr, _sections(), ALIASES, NOT_FLAGS)
    add_run_dir_flags(tr, "model, data")
    tr.set_defaults(func=speaking_flags(_train, tr))

    pr = sub.add_parser("predict", help="draw and score predictions of held-out sequences",
                        description="Predict the next frames of moving held-out digits: a "
                        "PNG grid (rows per sequence: input, truth, prediction) and per-frame "
                        "MSE / SSIM against copying the last frame.")
    pr.add_argument("checkpoint", help="best.pt of `rnnkit vision video train` (or a file "
                    "saved with NextFramePredictor.save)")
    pr.add_argument("--out", required=True, metavar="PNG", help="the grid image to write")
    pr.add_argument("--sequences", type=int, default=4, help="sequences drawn (default: 4)")
    pr.add_argument("--score-sequences", type=int, default=128,
                    help="held-out sequences scored (default: 128)")
    pr.add_argument("--seed", type=int, default=0,
                    help="which held-out sequences (default: 0)")
    pr.add_argument("--overwrite", action="store_true",
                    help="replace --out if it exists (default: refuse)")
    pr.set_defaults(func=speaking_flags(_predict, pr))
