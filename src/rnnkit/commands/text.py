"""Text commands: ``rnnkit train text``, ``rnnkit generate``, ``rnnkit evaluate``, ``rnnkit demo``.

Every option of ``train text`` is a field of a config dataclass, settable three ways (later
wins): the dataclass default, a TOML file (``--config run.toml`` with tables ``[model]``,
``[data]``, ``[train]``, ``[sample]``), and a flag ``--model.hidden_size 256`` (dotted key) or
its short alias ``--hidden 256``. Config files are parsed with ``tomllib``, never executed.

Example ``shakespeare.toml`` (then ``rnnkit train text --config shakespeare.toml --lr 3e-3``)::

    [model]
    cell = "lstm"
    hidden_size = 384
    num_layers = 1

    [data]
    path = "../shared/data/tinyshakespeare.txt"
    batch_size = 32
    bptt = 64

    [train]
    max_time = 900
    lr = 5e-3
    out_dir = "runs/shakespeare"

    [sample]
    prime = "ROMEO:"
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from .options import (
    add_compute_flag,
    add_config_arguments,
    build_configs,
    config_overrides,
    converter,
    field_help,
    given_settings,
    metered,
    with_defaults,
)
from .options import load_config as _load_config
from .runs import add_run_dir_flags, check_folder, open_run

__all__ = ["SECTIONS", "load_config", "register"]


def load_config(path: str | None, overrides: dict[str, Any],
                sections: dict[str, type] | None = None) -> dict[str, Any]:
    """``train text``'s configs: defaults < TOML file < ``overrides``
    (:func:`rnnkit.commands.options.load_config` over :data:`SECTIONS`)."""
    return _load_config(path, overrides, sections or _sections(), NOT_FLAGS)


def _sections() -> dict[str, type]:
    from ..data.text import TextDataConfig
    from ..text.config import LanguageModelConfig, SampleConfig
    from ..train import TrainConfig

    # train text always writes a run folder: its default is DEFAULT_OUT_DIR, not None
    return {"model": LanguageModelConfig, "data": TextDataConfig,
            "train": with_defaults(TrainConfig, out_dir=DEFAULT_OUT_DIR), "sample": SampleConfig}


#: The config tables of ``train text`` and the dataclass each maps onto (filled lazily).
SECTIONS: dict[str, type] = {}

# short flags for the options people set most; every field also has --section.field
ALIASES = {
    "model.cell": "--cell", "model.hidden_size": "--hidden", "model.num_layers": "--layers",
    "model.embed_size": "--embed", "model.dropout": "--dropout",
    "model.tie_weights": "--tie-weights",
    "data.path": "--data", "data.level": "--level", "data.batch_size": "--batch-size",
    "data.bptt": "--bptt", "data.val_fraction": "--val-fraction",
    "train.epochs": "--epochs", "train.max_steps": "--max-steps", "train.max_time": "--max-time",
    "train.lr": "--lr", "train.seed": "--seed", "train.out_dir": "--out-dir",
    "train.device": "--device", "train.eval_every": "--eval-every",
    "train.scheduler": "--scheduler", "train.clip_norm": "--clip-norm",
}
NOT_FLAGS = {"model.vocab_size"}  # set from the tokenizer
# where train text gives a field a meaning of its own
TRAIN_HELPS = {
    "train.out_dir": "the run folder (last.pt, best.pt, log.jsonl, log.csv, curves.png); a "
                     "folder that already holds a run is refused unless --resume or "
                     "--overwrite is given",
    "train.max_time": "training budget of the run in seconds. Settings not given explicitly "
                      "then follow the budgeted recipe (rnnkit.text.recipe): the model size is "
                      "measured for this machine and budget, dropout grows with the passes "
                      "over the text, the lr decays over the budget; the line starting "
                      "'recipe:' says what was picked",
}
# generate: the [sample] table; evaluate: the [data] table's batching (the rest is the model's)
GENERATE_ALIASES = {f"sample.{k}": f"--{k.replace('_', '-')}"
                    for k in ("prime", "length", "temperature", "top_k", "top_p", "seed")}
GENERATE_NOT_FLAGS = {"sample.every_s"}
EVALUATE_ALIASES = {"data.path": "--data", "data.batch_size": "--batch-size",
                    "data.bptt": "--bptt"}
EVALUATE_NOT_FLAGS = {"data.level", "data.val_fraction", "data.overlap", "data.max_vocab",
                      "data.min_count", "data.lowercase"}


def _threads(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a number of threads >= 0 (0: torch's "
                                         f"default), got {text!r}")
    return n


# -- commands ------------------------------------------------------------------------------
def _train_text(args: argparse.Namespace) -> int:
    from ..data.text import load_text
    from ..text.generation import fit_text

    sections = _sections()
    given = given_settings(args, sections, NOT_FLAGS)  # what the user chose explicitly
    cfg = load_config(args.config, config_overrides(args, sections), sections)
    data, train = cfg["data"], cfg["train"]
    if data.path is None:
        raise ValueError("no training text: pass --data FILE (or set path in the [data] table "
                         "of --config); to try rnnkit without data run `rnnkit demo`")
    if not train.out_dir:
        raise ValueError("--out-dir is empty; give a folder for the run's checkpoints and logs")
    cfg, extra = open_run(args, cfg, sections, not_flags=NOT_FLAGS, aliases=ALIASES)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    text = load_text(data.path)
    callbacks, run_info = [], {}
    if args.resume:
        run_info = _resumed_schedule(cfg, extra)
    elif train.max_time is not None:
        cfg, run_info = _budgeted(cfg, given, text)
    if run_info.get("schedule") == "time_cosine":
        from ..text.generation import TimeCosineLR

        callbacks.append(TimeCosineLR(cfg["train"].max_time, run_info["warmup_steps"],
                                      run_info["floor"]))
    run = fit_text(text, cfg["model"], cfg["data"], cfg["train"], cfg["sample"],
                   callbacks=callbacks, resume=args.resume, run_info=run_info)
    if run.trainer.rank != 0:  # under torchrun only rank 0 reports
        return 0
    out_dir = Path(cfg["train"].out_dir)
    m = run.val_metrics
    if m:
        print(f"validation (best.pt, step {m['step']}): loss {m['loss']:.4f} nats/token, "
              f"perplexity {m['perplexity']:.3f}, {m['bits_per_char']:.4f} bits/char over "
              f"{m['tokens']:,} held-out tokens of {data.path} ({m['blocks']} block(s) spread "
              f"over the text, {100 * cfg['data'].val_fraction:g}%; unknown: "
              f"{100 * m['unk_rate']:.2f}%), each read after the text before it")
        ckpt = out_dir / "best.pt"
    else:
        print("no validation text (--val-fraction 0): the checkpoint is the final weights")
        ckpt = out_dir / "last.pt"
    print(f"checkpoint: {ckpt}\nnext: rnnkit generate {ckpt} --prime \"...\" --length 500")
    return 0


#: A budgeted run's epoch limit when none is given: the clock ends it (the best weights on
#: validation are kept, so passes beyond the useful ones cost nothing but time).
BUDGET_EPOCHS = 1_000_000
#: Where ``train text`` writes when neither ``--out-dir`` nor the TOML file says.
DEFAULT_OUT_DIR = "runs/text"


def _resumed_schedule(cfg: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The ``run_info`` of a resumed run (its schedule), checked to be resumable with the
    budget it now has."""
    run = dict(extra.get("run") or {})
    if run.get("schedule") == "time_cosine" and cfg["train"].max_time is None:
        raise ValueError("--resume: this run's lr follows its time budget, which is gone; give "
                         "--max-time SECONDS (the whole run's budget)")
    return {k: v for k, v in run.items() if k not in ("data", "data_config")}


def _budgeted(cfg: dict[str, Any], given: dict[str, dict[str, Any]],
              text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--max-time`` without an explicit architecture or lr: the budgeted recipe of
    :mod:`rnnkit.text.recipe` (measured on this machine), below every explicit setting."""
    from ..text.generation import split_text
    from ..text.recipe import MAX_VAL_CHARS, plan_budget
    from ..train import resolve_device

    model, data, train = cfg["model"], cfg["data"], cfg["train"]
    gm, gd, gt = given.get("model", {}), given.get("data", {}), given.get("train", {})
    if "val_fraction" not in gd and len(text) * data.val_fraction > MAX_VAL_CHARS:
        data = dataclasses.replace(data, val_fraction=round(MAX_VAL_CHARS / len(text), 4))
    batch = gd.get("batch_size", 16)
    bptt = gd.get("bptt", 64)
    train_text, _ = split_text(text, data.val_fraction)
    tokenizer = data.build_tokenizer(text)
    plan = plan_budget(train.max_time, len(tokenizer.encode(train_text)), len(tokenizer),
                       cell=model.cell, num_layers=gm.get("num_layers", 1),
                       embed_size=gm.get("embed_size", 64),
                       hidden_size=gm.get("hidden_size"), batch_size=batch, bptt=bptt,
                       device=str(resolve_device(train.device)))
    model = dataclasses.replace(model, **{k: v for k, v in (
        ("hidden_size", plan.hidden_size), ("num_layers", plan.num_layers),
        ("embed_size", plan.embed_size), ("dropout", plan.dropout)) if k not in gm})
    data = dataclasses.replace(data, batch_size=batch, bptt=bptt)
    own_schedule = "scheduler" in gt or "warmup_steps" in gt
    train = dataclasses.replace(train, **{k: v for k, v in (
        ("lr", plan.lr), ("eval_every", plan.eval_every),
        ("epochs", BUDGET_EPOCHS)) if k not in gt})  # the budget, not epochs, ends the run
    # the measurement was spent from the budget: --max-time is the whole command's time
    train = dataclasses.replace(train, max_time=max(1.0, train.max_time - plan.calibration_s))
    info: dict[str, Any] = {}
    schedule = f"{train.scheduler} schedule (--scheduler)"
    if not own_schedule and train.scheduler == "none":
        train = dataclasses.replace(train, warmup_steps=0)
        info.update(schedule="time_cosine", warmup_steps=plan.warmup_steps, floor=plan.floor)
        schedule = "cosine over the budget"
    # what runs: the plan, with every explicit setting in it
    used = dataclasses.replace(plan, hidden_size=model.hidden_size, num_layers=model.num_layers,
                               embed_size=model.embed_size, dropout=model.dropout,
                               lr=train.lr, eval_every=train.eval_every, schedule=schedule)
    info["recipe"] = used.describe()
    print(f"{used.describe()}; validation: {100 * data.val_fraction:g}% of the text in "
          f"blocks spread over it")
    return {**cfg, "model": model, "data": data, "train": train}, info


def _print_metrics(name: str, m: dict) -> None:
    if m:
        print(f"{name}: loss {m['loss']:.4f} nats/token, perplexity {m['perplexity']:.3f}, "
              f"{m['bits_per_token']:.4f} bits/token, {m['bits_per_char']:.4f} bits/char "
              f"over {m['tokens']:,} tokens (unknown: {100 * m['unk_rate']:.2f}%), read as "
              f"{m['protocol']}")


def _generate_sections() -> dict[str, type]:
    from ..text.config import SampleConfig

    # generate's own defaults: longer samples, fresh randomness unless --seed is given
    return {"sample": with_defaults(SampleConfig, length=500, seed=None)}


def _evaluate_sections() -> dict[str, type]:
    from ..data.text import TextDataConfig

    return {"data": with_defaults(TextDataConfig, batch_size=16, bptt=256)}


def _generate(args: argparse.Namespace) -> int:
    from ..text.language_model import load_language_model

    if args.next < 0:  # checked before generating, not after
        raise ValueError(f"--next takes a number of tokens >= 0, got {args.next}")
    sample = build_configs(args, _generate_sections(), GENERATE_NOT_FLAGS, {})["sample"]
    model = load_language_model(args.checkpoint)
    temperature = 0.0 if args.greedy else sample.temperature
    out = sys.stdout
    out.write(sample.prime)
    with metered(args, "tokens", 1000) as meter:
        model.generate(sample.prime, sample.length, temperature, sample.top_k, sample.top_p,
                       sample.seed, stream=lambda piece: (out.write(piece), out.flush()))
        out.write("\n")
        meter.add(sample.length)
    if args.next:
        print("most likely next tokens after the prime: " + ", ".join(
            f"{t!r} {p:.3f}" for t, p in model.predict_next(sample.prime, args.next)))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ..data.text import load_text
    from ..text.language_model import load_language_model

    data = build_configs(args, _evaluate_sections(), EVALUATE_NOT_FLAGS,
                         {"data.path": "--data"})["data"]
    model = load_language_model(args.checkpoint)
    metrics = model.evaluate_text(load_text(data.path), data.batch_size, data.bptt)
    _print_metrics(str(data.path), metrics)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ..text.generation import DemoConfig, run_demo

    overrides = {k.split(".", 1)[1]: v for k, v in vars(args).items()
                 if k.startswith("demo.")}
    cfg = DemoConfig.quick(**overrides) if args.quick else DemoConfig(**overrides)
    check_folder(cfg.out_dir, "--out-dir")  # before any work; the demo rewrites its own folder
    if cfg.threads == 0:  # `rnnkit --threads N demo` is as explicit as `demo --threads N`
        cfg = dataclasses.replace(cfg, threads=args.torch_threads or _default_threads())
    run_demo(cfg)
    return 0


def _default_threads() -> int:
    """torch's default, unless the machine is already busy: then idle OpenMP workers spin
    waiting for CPU time and one thread is several times faster (measured on 2 cores)."""
    import os

    import torch

    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        return torch.get_num_threads()
    if load >= cores:
        print(f"(the machine is busy: load {load:.1f} on {cores} cores; training on 1 thread, "
              f"override with --threads)")
        return 1
    return torch.get_num_threads()


def register(subparsers: Any) -> None:
    """Add ``train`` (with ``text``), ``generate``, ``evaluate`` and ``demo``."""
    sections = _sections()
    SECTIONS.update(sections)

    train = subparsers.add_parser("train", help="train a model (see `rnnkit train text -h`)",
                                  description="Train a model for one application.")
    train_sub = train.add_subparsers(dest="task", metavar="TASK")
    text = train_sub.add_parser(
        "text", help="character or word language model on a text file",
        description="Train a recurrent language model on a text file with truncated BPTT. "
        "Options come from the defaults, then --config FILE.toml ([model], [data], [train], "
        "[sample] tables), then flags.",
        epilog="example: rnnkit train text --data ../shared/data/tinyshakespeare.txt "
        "--cell lstm --hidden 512 --layers 2 --max-time 600")
    text.add_argument("--config", metavar="FILE.toml", help="TOML config file")
    add_run_dir_flags(text, "model, data")
    text.add_argument("--threads", type=_threads, default=0,
                      help="torch CPU threads (0: torch's default)")
    add_config_arguments(text, sections, ALIASES, NOT_FLAGS, helps=TRAIN_HELPS)
    text.set_defaults(func=_train_text, command="train text")
    train.set_defaults(func=lambda args: (train.print_help(), 2)[1])

    gen = subparsers.add_parser("generate", help="generate text from a language model",
                                description="Stream text from a trained language model. "
                                "Options come from the defaults, then --config FILE.toml "
                                "(a [sample] table), then flags.")
    gen.add_argument("checkpoint", help="best.pt or last.pt written by `rnnkit train text`")
    gen.add_argument("--config", metavar="FILE.toml", help="TOML config file ([sample] table)")
    add_config_arguments(gen, _generate_sections(), GENERATE_ALIASES, GENERATE_NOT_FLAGS)
    gen.add_argument("--greedy", action="store_true", help="always take the most likely token")
    gen.add_argument("--next", type=int, default=0, metavar="K",
                     help="also print the K most likely next tokens after the prime")
    add_compute_flag(gen, "1,000 tokens")
    gen.set_defaults(func=_generate)

    ev = subparsers.add_parser("evaluate", help="score a language model on a text file",
                               description="Loss, perplexity and bits per character of a "
                               "language model on a text file, read as one stream: segments "
                               "of 2048 tokens, each after the 512 tokens before it.")
    ev.add_argument("checkpoint", help="best.pt or last.pt written by `rnnkit train text`")
    ev.add_argument("--config", metavar="FILE.toml", help="TOML config file ([data] table)")
    add_config_arguments(ev, _evaluate_sections(), EVALUATE_ALIASES, EVALUATE_NOT_FLAGS, helps={
        "data.path": "the text file to score",
        "data.batch_size": "segments scored side by side (speed only: the score is the same "
                           "for every batch size)",
        "data.bptt": "steps per forward call, state carried between them (speed only)"})
    ev.set_defaults(func=_evaluate)

    demo = subparsers.add_parser(
        "demo", help="the main job: a character LSTM learns to write Python, in minutes",
        description="Train a character LSTM on the Python standard library's own source (no "
        "download), printing samples as it learns; writes the checkpoint, learning curves "
        "and samples to --out-dir.")
    from ..text.config import DemoConfig

    helps = field_help(DemoConfig)
    demo.add_argument("--quick", action="store_true",
                      help="a ~30 s run with a small model (other flags still apply)")
    short = {"hidden_size": "--hidden", "num_layers": "--layers", "embed_size": "--embed"}
    for f in dataclasses.fields(DemoConfig):
        flags = [*([short[f.name]] if f.name in short else []),
                 "--" + f.name.replace("_", "-")]
        demo.add_argument(*flags, dest=f"demo.{f.name}", type=converter(f.type),
                          default=argparse.SUPPRESS,
                          metavar=str(f.type).split()[0].upper(),
                          help=f"{helps.get(f.name, '')} (default: {f.default!r})".strip())
    demo.set_defaults(func=_demo)
