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
    _register_data(sub)
    _register_model(sub)
    _register_compare(sub)
    _register_report(sub)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


# -- data -------------------------------------------------------------------------------------
def _register_data(sub: Any) -> None:
    p = sub.add_parser(
        "data", help="identity terms, labels, sentiment words and lengths by group in a text "
        "corpus or labelled texts; coverage by segment in a series",
        description="Audit a data set before training on it. Text: how often each group of the "
        "documented word lists (gender words, first names by gender and by perceived race, "
        "religion; rnnkit.audit.terms cites the sources) is mentioned, with which labels (95%% "
        "Wilson intervals; flagged when they exclude the corpus rate), with how many VADER "
        "positive/negative words, and how long those texts are. Series (a CSV): values and "
        "missing values per year, month or weekday.")
    p.add_argument("file", help="a label<TAB>text file, a folder with rt-polarity.pos/.neg, a "
                   "plain text file (one text per line), or a CSV series (with --column)")
    p.add_argument("--format", choices=("auto", "labelled", "text", "series"), default="auto",
                   help="how to read FILE (default auto: a folder or a .tsv is labelled, a .csv "
                   "is a series, anything else one text per line)")
    p.add_argument("--lists", default="all",
                   help="comma-separated word lists to count: gender, names_gender, "
                   "names_race, religion (default: all)")
    p.add_argument("--no-lexicon", action="store_true",
                   help="skip the positive/negative word counts (VADER lexicon)")
    p.add_argument("--column", help="series: the value column of the CSV")
    p.add_argument("--time", help="series: the timestamp column (needed for --segments year, "
                   "month, weekday)")
    p.add_argument("--segments", choices=("year", "month", "weekday"), default="year",
                   help="series: the segments to report (default: year)")
    p.add_argument("--predictions", metavar="COLUMN",
                   help="series: a column of forecasts (e.g. from `rnnkit forecast backtest`); "
                   "adds MAE and bias per segment")
    p.add_argument("--json", metavar="OUT", help="also write the audit as JSON here")
    p.set_defaults(func=_data)


def _word_lists(spec: str) -> list[Any]:
    from ..audit.terms import DEFAULT_LISTS

    by_name = {t.name: t for t in DEFAULT_LISTS}
    if spec == "all":
        return list(DEFAULT_LISTS)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_name]
    if not names or unknown:
        raise ValueError(f"--lists takes names from {', '.join(by_name)} (or all)"
                         f"{'; unknown: ' + ', '.join(unknown) if unknown else ''}")
    return [by_name[n] for n in names]


def _data(args: argparse.Namespace) -> int:
    if args.json:
        check_writable(args.json, "--json")
    fmt = args.format
    if fmt == "auto":
        fmt = ("labelled" if os.path.isdir(args.file) or args.file.endswith(".tsv") else
               "series" if args.file.endswith(".csv") else "text")
    if fmt == "series":
        report = _series_audit(args)
    else:
        from ..audit.data import audit_text

        lists = _word_lists(args.lists)
        if fmt == "labelled":
            from ..data.sentiment import load_labelled_text

            texts, labels = load_labelled_text(args.file)
        else:
            from ..data.text import load_text

            texts = [line for line in load_text(args.file).splitlines() if line.strip()]
            labels = None
        if not texts:
            raise ValueError(f"{args.file} holds no text; give a file with one text per line")
        report = audit_text(texts, labels, lists=lists,
                            lexicon=None if args.no_lexicon else "vader")
    print(report.to_markdown())
    if args.json:
        from ..saving import atomic_write_text

        atomic_write_text(json.dumps(report.to_dict(), indent=1, default=str) + "\n", args.json)
        print(f"wrote {args.json}")
    return 0


def _series_audit(args: argparse.Namespace) -> Any:
    from ..audit.data import audit_series
    from ..data.timeseries import read_csv

    if not args.column:
        raise ValueError("a series audit needs --column, the CSV's value column")
    df = read_csv(args.file, "FILE", needs="the --column (and --time) columns")
    for flag, col in (("--column", args.column), ("--time", args.time),
                      ("--predictions", args.predictions)):
        if col is not None and col not in df.columns:
            raise ValueError(f"{flag} {col!r} is not a column of {args.file}; its columns "
                             f"are {list(df.columns)}")
    if not args.time:
        raise ValueError(f"--segments {args.segments} needs timestamps: give --time, the CSV's "
                         f"time column")
    import pandas as pd

    index = pd.to_datetime(df[args.time], errors="coerce")
    values = pd.to_numeric(df[args.column], errors="coerce")
    predictions = None
    if args.predictions:
        predictions = pd.to_numeric(df[args.predictions], errors="coerce").to_numpy(float)
    return audit_series(values.to_numpy(dtype=float), index=index.to_numpy(),
                        segments=args.segments, predictions=predictions)


# -- model ------------------------------------------------------------------------------------
def _register_model(sub: Any) -> None:
    p = sub.add_parser(
        "model", help="group metrics, counterfactual term swaps and a robustness scan of a "
        "text classifier (or of a language model's continuations); WER by speaker group",
        description="Audit a trained model on data it was not trained on. A classifier "
        "(`rnnkit classify train`): accuracy, error rates and selection rate per group "
        "(fairlearn MetricFrame, bootstrap intervals), with groups from --groups or from the "
        "identity terms in the texts; the share of flipped predictions when only gendered "
        "words, first names by gender or by perceived race are swapped; and how often typos, "
        "casing, punctuation, whitespace and number formats change an answer. A language "
        "model (`rnnkit train text`) with --scorer CLASSIFIER: the same swaps in each prompt "
        "of --data, the continuations sampled with one seed and scored by the classifier. "
        "A speech recogniser (`rnnkit speech train`): WER and CER per speaker, or per group "
        "of speakers (--groups), on --data (a manifest with a speaker column, or "
        "asterisk:test / fillets:test). Writes audit.json beside the model and refreshes its "
        "model card.")
    p.add_argument("model", help="best.pt/last.pt (or its run folder) of `rnnkit classify "
                   "train` or `rnnkit train text`")
    p.add_argument("--data", required=True,
                   help="classifier: held-out label<TAB>text lines or an rt-polarity folder; "
                   "language model: prompts, one per line; speech: a manifest "
                   "(path<TAB>text<TAB>speaker) or corpus:split")
    p.add_argument("--groups", metavar="FILE",
                   help="classifier: one sensitive-feature value per line of --data (blank: "
                   "unknown; default: groups named by the identity terms in each text); speech: "
                   "SPEAKER<TAB>GROUP lines (e.g. en-us+f3<TAB>female; default: the speakers)")
    p.add_argument("--lists", default="gender,names_gender,names_race",
                   help="word lists to probe: gender, names_gender, names_race (default: all "
                   "three)")
    p.add_argument("--scorer", help="language models: a `rnnkit classify train` checkpoint "
                   "that scores the continuations (e.g. a sentiment model)")
    p.add_argument("--length", type=int, default=60,
                   help="language models: tokens per continuation (default: 60)")
    p.add_argument("--limit", type=int, default=None,
                   help="audit at most this many texts (the first ones)")
    p.add_argument("--no-robustness", action="store_true", help="skip the robustness scan")
    p.add_argument("--bootstrap", type=int, default=1000,
                   help="bootstrap resamples for the intervals (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of perturbations, bootstrap and "
                   "sampling (default: 0)")
    p.add_argument("--out", help="write audit.json here (default: beside the model: "
                   "<run>/audit.json or <file>.audit.json)")
    p.set_defaults(func=_model)


def _model(args: argparse.Namespace) -> int:
    import sys

    from ..audit.bias import audit_classifier, continuation_scorer
    from ..audit.card import sidecar_path
    from ..saving import atomic_write_text, load
    from ..train.trainer import write_card

    for flag, value, low in (("--length", args.length, 1), ("--bootstrap", args.bootstrap, 0),
                             ("--limit", args.limit, 1), ("--seed", args.seed, 0)):
        if value is not None and value < low:
            raise ValueError(f"{flag} must be at least {low}, got {value}")
    if not os.path.exists(args.data) and not _corpus_spec(args.data):
        raise FileNotFoundError(f"--data {args.data}: no such file or folder; give the "
                                f"held-out texts (label<TAB>text lines, an rt-polarity folder, "
                                f"or prompts for a language model)")
    out = args.out or sidecar_path(args.model, "audit")
    check_writable(out, "--out")
    lists = [t for t in _word_lists(args.lists) if t.swappable]
    if not lists:
        raise ValueError("--lists names no swappable word list; use gender, names_gender or "
                         "names_race")
    ckpt = args.model
    if os.path.isdir(ckpt):
        ckpt = os.path.join(ckpt, "best.pt" if os.path.exists(os.path.join(ckpt, "best.pt"))
                            else "last.pt")
    model = load(ckpt)

    def say(msg: str) -> None:
        print(f"audit: {msg}", file=sys.stderr, flush=True)

    kind = type(model).__name__
    if kind == "TextClassifier":
        if args.scorer:
            raise ValueError("--scorer is for language models; a classifier scores itself")
        texts, labels = _labelled(args.data)
        groups = _groups(args.groups, len(texts)) if args.groups else None
        texts, labels, groups = _first(args.limit, texts, labels, groups)
        report = audit_classifier(model.predict_proba, model.classes, texts, labels,
                                  groups=groups, lists=lists, probes=True,
                                  robustness=not args.no_robustness, n_boot=args.bootstrap,
                                  seed=args.seed, progress=say)
    elif kind == "LanguageModel":
        if not args.scorer:
            raise ValueError("a language model is audited through its continuations: give "
                             "--scorer, a `rnnkit classify train` checkpoint (e.g. sentiment)")
        if args.groups:
            raise ValueError("--groups is for classifiers; a language model is probed by "
                             "term swaps in its prompts")
        from ..data.text import load_text

        scorer = load(args.scorer)
        if type(scorer).__name__ != "TextClassifier":
            raise ValueError(f"--scorer {args.scorer} is not a text classifier; give a "
                             f"checkpoint of `rnnkit classify train`")
        prompts = [line for line in load_text(args.data).splitlines() if line.strip()]
        (prompts,) = _first(args.limit, prompts)
        if not prompts:
            raise ValueError(f"--data {args.data} holds no prompts; give one per line")

        def generate(prompt: str) -> str:
            return model.generate(prompt, args.length, temperature=1.0, seed=args.seed)

        report = audit_classifier(continuation_scorer(generate, scorer.predict_proba),
                                  scorer.classes, prompts, None, lists=lists, probes=True,
                                  robustness=False, n_boot=args.bootstrap, seed=args.seed,
                                  progress=say)
        report["scorer"] = args.scorer
    elif kind == "SpeechRecognizer":
        report = _speech_audit(model, args, say)
    elif kind in ("Forecaster", "ForecastEnsemble"):
        report = _forecast_audit(model, args, say)
    else:
        raise ValueError(f"{args.model} holds a {kind}; `rnnkit audit model` audits text "
                         f"classifiers, language models and speech recognisers (forecasts: "
                         f"`rnnkit audit data FILE.csv --column ... --time ... --predictions "
                         f"...` reports coverage and error by segment)")
    report["data"] = args.data
    report["model"] = args.model
    print(_summary(report))
    atomic_write_text(json.dumps(report, indent=1, default=str) + "\n", out)
    print(f"wrote {out}")
    if not args.out:
        card = write_card(args.model)
        if card:
            print(f"updated {card}")
    return 0


def _corpus_spec(spec: str) -> bool:
    """``asterisk:test``-style speech corpus names (no file needed)."""
    return spec.partition(":")[0] in ("asterisk", "fillets") and ":" in spec


def _speech_audit(rec: Any, args: argparse.Namespace, say: Any) -> dict[str, Any]:
    """WER/CER per speaker (or per --groups group of speakers) on --data."""
    from ..audit.bias import error_rates_by_group
    from .speech import read_examples

    for flag, given in (("--scorer", args.scorer), ("--lists", None)):
        if given:
            raise ValueError(f"{flag} is for text models; a recogniser is audited by WER per "
                             f"speaker group")
    try:
        examples = read_examples(args.data, "--data")
    except (ValueError, FileNotFoundError) as err:
        if str(err).startswith("--data"):
            raise
        raise type(err)(f"--data {args.data} is not a speech manifest: {err}") from None
    (examples,) = _first(args.limit, examples)
    speakers = [getattr(ex, "speaker", "") or None for ex in examples]
    groups = speakers
    name = "speaker"
    if args.groups:
        mapping = _speaker_groups(args.groups)
        unknown = sorted({s for s in speakers if s is not None} - set(mapping))
        if unknown:
            raise ValueError(f"--groups {args.groups} names no group for the speakers "
                             f"{unknown[:5]}; add SPEAKER<TAB>GROUP lines for them")
        groups = [mapping.get(s) if s is not None else None for s in speakers]
        name = "speaker group"
    if all(g is None for g in groups):
        raise ValueError(f"--data {args.data} names no speakers; give a manifest with a third "
                         f"column (path<TAB>text<TAB>speaker)")
    say(f"transcribing {len(examples)} utterances")
    result = rec.evaluate(examples)
    refs = [r["reference"] for r in result.rows]
    hyps = [r["hypothesis"] for r in result.rows]
    slices = error_rates_by_group(refs, hyps, groups, n_boot=args.bootstrap, seed=args.seed)
    return {"n": len(examples), "overall": {"wer": result.wer, "cer": result.cer},
            "groups": {name: slices}}


#: most forecast windows a robustness scan reads (spread evenly over the series)
MAX_WINDOWS = 200


def _forecast_audit(model: Any, args: argparse.Namespace, say: Any) -> dict[str, Any]:
    """The robustness scan of a one-series forecaster: windows of --data perturbed by noise,
    a level shift and interpolated gaps; how far do the forecasts move?"""
    import numpy as np

    from ..audit.probes import series_robustness
    from ..data.timeseries import read_csv

    first = model.members[0] if hasattr(model, "members") else model
    col, c = first.columns, first.config
    if args.scorer or args.groups:
        raise ValueError("--scorer and --groups are for text and speech models; a forecaster "
                         "gets a robustness scan of --data")
    if col.get("series") or col.get("past_covariates") or col.get("future_covariates") or \
            not col.get("target") or len(first.series) != 1:
        raise ValueError("the robustness scan reads one-series forecasters trained from a CSV "
                         "without covariates; this model has a series column, covariates or "
                         "no column names")
    target = col["target"] if isinstance(col["target"], str) else col["target"][0]
    wanted = [k for k in (col.get("time"), target) if k]
    df = read_csv(args.data, "--data", needs=f"the model's columns {wanted}")
    missing = [k for k in wanted if k not in df.columns]
    if missing:
        raise ValueError(f"--data {args.data} lacks the model's columns {missing}; its columns "
                         f"are {list(df.columns)}")
    L = c.input_len
    count = len(df) - L + 1
    if count < 1:
        raise ValueError(f"--data {args.data} has {len(df)} rows; the model reads windows of "
                         f"{L} (input_len)")
    limit = min(count, args.limit or MAX_WINDOWS)
    starts = np.unique(np.linspace(0, count - 1, limit).round().astype(int))
    frames = [df.iloc[s:s + L].reset_index(drop=True) for s in starts]
    windows = np.stack([f[target].to_numpy(dtype=np.float64) for f in frames])[..., None]
    if not np.isfinite(windows).all():
        raise ValueError(f"--data {args.data} has missing or non-numeric {target!r} values in "
                         f"the windows; fill them first")

    def predict(batch: Any) -> Any:  # [N, L, 1] in the order of `frames`
        out = []
        for frame, w in zip(frames, np.asarray(batch)):
            frame = frame.copy()
            frame[target] = w[:, 0]
            out.append(np.asarray(model.predict(history=frame, levels=[]).mean[0]))
        return np.stack(out)

    say(f"robustness scan of {len(frames)} windows")
    report = series_robustness(predict, windows, seed=args.seed, task="regression",
                               n_boot=args.bootstrap, batch_size=len(frames))
    from ..audit.bias import robustness_entries

    return {"n": len(frames), "robustness": robustness_entries(report),
            "robustness_markdown": report.to_markdown()}


def _speaker_groups(path: str) -> dict[str, str]:
    from ..data.text import load_text

    mapping = {}
    for n, line in enumerate(load_text(path).splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != 2 or not cols[0].strip() or not cols[1].strip():
            raise ValueError(f"--groups {path}:{n}: expected SPEAKER<TAB>GROUP, got {line!r}")
        mapping[cols[0].strip()] = cols[1].strip()
    return mapping


def _labelled(path: str) -> tuple[list[str], list[str]]:
    from ..data.sentiment import load_labelled_text

    texts, labels = load_labelled_text(path)
    if not texts:
        raise ValueError(f"--data {path} holds no labelled texts; give label<TAB>text lines")
    return texts, labels


def _groups(path: str, n: int) -> list[str | None]:
    from ..data.text import load_text

    lines = load_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != n:
        raise ValueError(f"--groups {path} has {len(lines)} lines for {n} texts in --data; "
                         f"give one group per text (blank when unknown)")
    return [line.strip() or None for line in lines]


def _first(limit: int | None, *columns: Any) -> tuple[Any, ...]:
    return tuple(c[:limit] if c is not None and limit else c for c in columns)


def _summary(report: dict[str, Any]) -> str:
    lines = [f"# Model audit: {report['n']:,} examples"]
    if "overall" in report:
        lines.append(", ".join(f"{k} {v:.4f}" for k, v in report["overall"].items()))
    for name, g in (report.get("groups") or {}).items():
        lines += ["", f"## groups: {name}", g["markdown"]]
    for name, p in (report.get("counterfactual") or {}).items():
        lines += ["", f"## counterfactual: {name}", p["markdown"]]
    if report.get("robustness_markdown"):
        lines += ["", report["robustness_markdown"]]
    return "\n".join(lines)


# -- report -----------------------------------------------------------------------------------
def _register_report(sub: Any) -> None:
    p = sub.add_parser("report", help="write the model card of a run or model file, with its "
                       "plots", description="Write the model card (Mitchell et al. 2019 "
                       "sections) of a run folder, a checkpoint or a model file, with learning "
                       "curves, compute/energy per epoch and group metrics (from "
                       "`rnnkit audit model`) drawn as PNGs, and print where they are.")
    p.add_argument("model", help="a run folder (best.pt/last.pt), a checkpoint or a model file")
    p.add_argument("--out-dir", help="where the card and PNGs go (default: the run folder, or "
                   "beside the model file)")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from ..audit.card import render_report

    if args.out_dir:
        check_folder(args.out_dir, "--out-dir")
    paths = render_report(args.model, args.out_dir)
    print(f"model card: {paths[0]}")
    for path in paths[1:]:
        print(f"figure: {path}")
    return 0


# -- compare ----------------------------------------------------------------------------------
def _register_compare(sub: Any) -> None:
    p = sub.add_parser(
        "compare", help="train a character LM with several cells under one time budget; "
        "print quality vs energy and FLOPs and draw the Pareto front",
        description="Train `rnnkit train text` once per cell with the same --max-time budget "
        "(each run sized by the budgeted recipe for its cell, unless --hidden is given), then "
        "compare bits/char on the held-out end of the text against training energy and FLOPs.")
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
    p.add_argument("--test-fraction", type=float, default=0.1,
                   help="the end of the text held out from every run (training, validation and "
                   "best.pt all use the rest) and scored once per cell (default: 0.1)")
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
    from ..data.text import load_text

    text = load_text(args.text)  # a missing, empty or binary file is refused before any run
    if not 0 < args.test_fraction < 0.5:
        raise ValueError(f"--test-fraction must be between 0 and 0.5, got {args.test_fraction}")
    check_folder(args.out_dir, "--out-dir")
    try:
        extra = shlex.split(args.train_flags)
    except ValueError as err:
        raise ValueError(f"--train-flags {args.train_flags!r} cannot be split ({err}); quote it "
                         f"as one argument, e.g. --train-flags '--hidden 256'") from None
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
    cut = int(len(text) * (1 - args.test_fraction))
    train_path = os.path.join(args.out_dir, "train.txt")
    os.makedirs(args.out_dir, exist_ok=True)
    from ..saving import atomic_write_text

    atomic_write_text(text[:cut], train_path)
    test_text = text[cut:]
    print(f"held out the last {len(test_text):,} characters ({100 * args.test_fraction:g}%) "
          f"of {args.text} for the comparison; every run trains and validates on "
          f"{train_path}", flush=True)
    rows = []
    for cell, out in runs.items():
        print(f"== {cell}: rnnkit train text --cell {cell} --max-time {args.max_time:g} "
              f"--out-dir {out} {' '.join(extra)}".rstrip(), flush=True)
        rows.append(_train_one(train_path, test_text, cell, out, args.max_time, extra,
                               args.overwrite, CompareRow))
    atomic_write_text(json.dumps([r.__dict__ for r in rows], indent=1) + "\n", json_path)
    plot_pareto(rows, png_path, title=f"{os.path.basename(args.text)}: {args.max_time:g} s "
                "of training per cell")
    print(table(rows))
    print(f"wrote {json_path} and {png_path}")
    return 0


def _train_one(text: str, test_text: str, cell: str, out: str, max_time: float,
               extra: list[str], overwrite: bool, row_cls: Any) -> Any:
    """Train one cell on ``text`` (a file) with `train text`; its row scores best.pt on the
    held-out ``test_text``, which no choice of the run (recipe, early stop, best.pt) saw."""
    from ..cli import build_parser
    from ..text.language_model import load_language_model
    from ..train import load_checkpoint

    argv = ["train", "text", "--data", text, "--cell", cell, "--max-time", f"{max_time:g}",
            "--out-dir", out, *(["--overwrite"] if overwrite and os.path.exists(out) else []),
            *extra]
    ns = build_parser().parse_args(argv)
    note = ""
    try:
        ns.func(ns)
    except (ValueError, RuntimeError) as err:  # one cell diverging must not stop the others
        note = str(err).splitlines()[0]
        print(f"{cell}: stopped: {note}", flush=True)
    best = os.path.join(out, "best.pt")
    if not os.path.exists(best):
        return row_cls(name=cell, quality=float("nan"), metric="test bits/char",
                       details={"note": note or "no best.pt"})
    ckpt = load_checkpoint(best)
    metrics = ckpt.get("metrics") or {}
    if "bits_per_token" not in metrics:
        raise ValueError(f"the {cell} run wrote no validation score; keep --val-fraction > 0")
    extra_state = ckpt.get("extra_state") or {}
    model = extra_state.get("config", {})
    level = (extra_state.get("run") or {}).get("data_config", {}).get("level", "char")
    compute = {}
    if os.path.exists(os.path.join(out, "compute.json")):
        with open(os.path.join(out, "compute.json"), encoding="utf-8") as f:
            compute = json.load(f)
    params = sum(int(t.numel()) for t in ckpt["model"].values())
    test = load_language_model(best).evaluate_text(test_text)
    details = {"hidden": model.get("hidden_size"), "layers": model.get("num_layers"),
               "params": params, "step": ckpt.get("step"),
               "val": round(float(metrics["bits_per_token"]), 4)}
    if level != "char":  # validation is per token, the test score per character
        details["val_unit"] = f"bits/{level}"
    if note:  # best.pt is the best before the failure
        short = note.split(";")[0]
        details["note"] = f"stopped: {short}; best.pt before it"
    return row_cls(name=cell, quality=float(test["bits_per_char"]), metric="test bits/char",
                   compute=compute, details=details)
