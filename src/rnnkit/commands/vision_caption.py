"""``rnnkit vision caption``: train, run and evaluate a Show-Attend-Tell image captioner.

    rnnkit vision caption train --out-dir runs/cap                 # pictogram scenes
    rnnkit vision caption train --out-dir runs/cap --max-time 600 --no-attention
    rnnkit vision caption runs/cap/best.pt photo.png other.jpg --beam 3
    rnnkit vision caption runs/cap/best.pt scene.png --attention-png words.png
    rnnkit vision caption evaluate runs/cap/best.pt --split test --beam 3

The first word after ``caption`` decides the action: ``train``, ``evaluate``, or else the
checkpoint to caption images with (so options come after it). ``train`` renders the scene data
set (:mod:`rnnkit.vision.scenes`: real emoji pictograms, a compositional test split of class
pairs never seen together in training), caches the frozen encoder's features once, trains with
``best.pt`` kept by the validation loss, then prints BLEU-4, CIDEr-D and scene-fact accuracy
on the test split. ``--out-dir`` must be a new or empty folder: ``--resume`` continues the run
there from its last.pt, ``--overwrite`` replaces it. Every field of the configs is a flag
(``[model]``: CaptionerConfig, ``[data]``: SceneConfig, ``[train]``: TrainConfig), settable in
a TOML file given with ``--config``; short flags: ``--hidden``, ``--max-time``,
``--max-steps``, ``--lr``, ``--seed``, ``--n-train``, ``--no-attention``, ``--random-encoder``
(``--model.read_layout false``: the object counter instead of the layout reader, as in
version-2 files).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["register"]

ALIASES = {"model.hidden_size": "--hidden", "train.max_time": "--max-time",
           "train.max_steps": "--max-steps", "train.lr": "--lr", "train.seed": "--seed",
           "train.out_dir": "--out-dir", "data.n_train": "--n-train",
           "train.device": "--device", "train.epochs": "--epochs"}
NOT_FLAGS: set[str] = set()
PROG = "rnnkit vision caption"


def _sections() -> dict[str, type]:
    from ..train.config import TrainConfig
    from ..vision.captioner import CaptionerConfig
    from ..vision.scenes import SceneConfig
    from .options import with_defaults

    return {"model": CaptionerConfig, "data": SceneConfig,
            "train": with_defaults(TrainConfig, epochs=1000, max_time=300.0, lr=3e-3,
                                   eval_every=200, plot=False)}


def _load(path: str) -> Any:
    """The captioner of a ``best.pt`` / ``last.pt`` or an ``rnnkit.image_captioner`` file."""
    from ..saving import (
        TRAIN_KIND,
        describe,
        parse_tag,
        read_torch_file,
        rebuild,
        wrong_file_hint,
    )
    from ..vision.captioner import ImageCaptioner

    where = "`rnnkit vision caption train --out-dir DIR` writes DIR/best.pt"
    blob = read_torch_file(path, "cpu", where=where)
    parsed = parse_tag(blob)
    ok = parsed is not None and (parsed[0] == ImageCaptioner.KIND or (
        parsed[0] == TRAIN_KIND and isinstance(blob.get("extra_state"), dict)
        and blob["extra_state"].get("task") == ImageCaptioner.TASK))
    if not ok:
        raise ValueError(f"{path} is not an image captioner ({describe(blob)}"
                         f"{wrong_file_hint(blob, path)}); give the best.pt of `{PROG} train "
                         f"--out-dir DIR`")
    if parsed[0] == ImageCaptioner.KIND and parsed[1] > ImageCaptioner.VERSION:
        raise ValueError(f"{path} was written by a newer rnnkit; upgrade rnnkit")
    return rebuild(ImageCaptioner, blob, path)


# -- train -------------------------------------------------------------------------------------
def _train(argv: list[str]) -> int:
    import dataclasses

    from .options import add_command_options, build_configs
    from .runs import add_run_dir_flags, open_run

    sections = _sections()
    p = argparse.ArgumentParser(prog=f"{PROG} train", description="Train a captioner on "
                                "pictogram scenes; best.pt is the checkpoint best on the valid "
                                "split. Options: defaults < --config FILE.toml < flags.")
    add_command_options(p, sections, ALIASES, NOT_FLAGS)
    p.add_argument("--no-attention", dest="model.attention", action="store_const", const=False,
                   default=argparse.SUPPRESS, help="the mean-pooled decoder (= --model.attention "
                   "false; the layout reader still judges each cell on its own features: "
                   "--model.spatial_reader false reads it from the mean-pooled features too)")
    p.add_argument("--random-encoder", dest="model.pretrained", action="store_const",
                   const=False, default=argparse.SUPPRESS,
                   help="a randomly initialised encoder (= --model.pretrained false)")
    add_run_dir_flags(p, "model, data")
    args = p.parse_args(argv)
    cfg = build_configs(args, sections, NOT_FLAGS, {"train.out_dir": "--out-dir"})
    cfg, extra = open_run(args, cfg, sections, not_flags=NOT_FLAGS, aliases=ALIASES)
    import torch

    from ..vision.captioner import ImageCaptioner
    from ..vision.scenes import make_splits

    data, train, model = cfg["data"], cfg["train"], cfg["model"]
    if args.resume and extra.get("config"):  # a run of an older version: its own model
        from ..vision.captioner import upgrade_config

        saved = extra["config"]
        model = dataclasses.replace(model, **{k: v for k, v in upgrade_config(saved).items()
                                              if k not in saved})
    if model.image_size != data.image_size:
        model = dataclasses.replace(model, image_size=data.image_size)
    torch.manual_seed(train.seed)
    splits = make_splits(data)
    print(f"scenes: train {len(splits.train)}, valid {len(splits.valid)}, test "
          f"{len(splits.test)}, dev {len(splits.dev)} ({len(splits.heldout_pairs)} test and "
          f"{len(splits.dev_pairs)} dev class pairs held out of training)",
          file=sys.stderr, flush=True)
    cap = ImageCaptioner(model)
    cap.fit(splits.train, splits.valid, train, resume=args.resume,
            run={"data_config": dataclasses.asdict(data)}, progress=train.progress)
    scores = cap.evaluate(splits.test)
    print(f"trained {cap.history['steps']} steps; checkpoints in {train.out_dir}")
    _print_scores(scores, "test (compositional)")
    return 0


def _print_scores(scores: dict[str, Any], what: str) -> None:
    print(f"{what}: BLEU-4 {scores['bleu4']:.2f}  CIDEr-D {scores['cider_d']:.3f}  "
          f"scene-fact accuracy {scores['fact_accuracy']:.1%}  object precision "
          f"{scores['object_precision']:.1%}  recall {scores['object_recall']:.1%}")


# -- evaluate ------------------------------------------------------------------------------------
def _evaluate(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=f"{PROG} evaluate",
                                description="BLEU-4, CIDEr-D and scene-fact accuracy of a "
                                "captioner on its own scene data set (its saved settings).")
    p.add_argument("checkpoint", help=f"best.pt of `{PROG} train`")
    p.add_argument("--split", choices=("test", "dev", "valid"), default="test",
                   help="test: the compositional split; dev: the compositional split for "
                   "choices (other held-out pairs); valid: i.i.d. (default: test)")
    p.add_argument("--beam", type=int, default=1, help="beam size; 1 = greedy (default: 1)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N scenes")
    p.add_argument("--show", type=int, default=0, help="print N captions with a reference")
    args = p.parse_args(argv)
    _check_beam(args.beam)
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    cap = _load(args.checkpoint)
    from ..vision.scenes import SceneConfig, make_splits

    data = _data_config(args.checkpoint)
    if data is not None and "n_dev" not in data:
        data = {**data, "n_dev": 0}  # trained before the dev split: its train set had none
    config = SceneConfig(**data) if data else SceneConfig()
    if args.split == "dev" and not config.n_dev:
        raise ValueError(f"{args.checkpoint} was trained without a dev split (its scenes "
                         f"hold the dev pairs in training): use --split test or valid")
    splits = make_splits(config)
    scenes = getattr(splits, args.split)[: args.limit]
    scores = cap.evaluate(scenes, beam_size=args.beam)
    for c, s in list(zip(scores["captions"], scenes))[: max(0, args.show)]:
        print(f"{c}\t(reference: {s.captions[0]})")
    _print_scores(scores, f"{args.split} ({len(scenes)} scenes, beam {args.beam})")
    return 0


def _data_config(path: str) -> dict[str, Any] | None:
    from ..saving import read_torch_file

    blob = read_torch_file(path)
    extra = blob.get("extra_state") if isinstance(blob, dict) else None
    run = (extra or {}).get("run") or {}
    return run.get("data_config")


def _check_beam(beam: int) -> None:
    if beam < 1 or beam > 64:
        raise ValueError(f"--beam must be 1 to 64 (1 = greedy), got {beam}; e.g. --beam 3")


# -- caption images ------------------------------------------------------------------------------
def _caption(target: str, argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=f"{PROG} CHECKPOINT",
                                description="Caption images with a trained captioner.")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...; any size, "
                   "grayscale or with transparency)")
    p.add_argument("--beam", type=int, default=1, help="beam size; 1 = greedy (default: 1)")
    p.add_argument("--attention-png", metavar="FILE.png",
                   help="draw the image once per word with that word's attention (one image)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --attention-png (default: refuse)")
    args = p.parse_args(argv)
    _check_beam(args.beam)
    if args.attention_png:
        from .runs import check_output

        if len(args.images) != 1:
            raise ValueError("--attention-png draws one image; give one image with it")
        check_output(args.attention_png, args.overwrite, "--attention-png")
    for path in args.images:
        if os.path.isdir(path):
            raise IsADirectoryError(f"{path} is a folder; give image files")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such image file; check the path")
    cap = _load(target)
    from ..vision.captioner import save_attention_png

    for path in args.images:
        image = cap.images(path)
        result = cap.describe(image, beam_size=args.beam)[0]
        print(f"{path}\t{result.text}")
        if args.attention_png:
            save_attention_png(image[0], result, args.attention_png)
            print(f"wrote {args.attention_png}", file=sys.stderr)
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.target == "train":
        return _train(args.rest)
    if args.target == "evaluate":
        return _evaluate(args.rest)
    if args.target.startswith("-"):
        raise ValueError(f"{PROG}: the first word must be train, evaluate or a checkpoint, "
                         f"got the option {args.target}; put options after it")
    if not os.path.exists(args.target) and not args.target.endswith(".pt"):
        raise ValueError(f"{PROG} {args.target}: not an action (train, evaluate) nor an existing "
                         f"checkpoint file; give e.g. `{PROG} runs/cap/best.pt image.png`")
    return _caption(args.target, args.rest)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vision caption (train | evaluate | CHECKPOINT IMAGE...)``."""
    p = subparsers.add_parser("caption", help="image captioning with attention (Show, Attend "
                              "and Tell)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="train|evaluate|CHECKPOINT",
                   help="`train`, `evaluate`, or a checkpoint to caption images with")
    p.add_argument("rest", nargs=argparse.REMAINDER,
                   help="the action's arguments (`... train --help` lists them)")
    p.set_defaults(func=_dispatch)
